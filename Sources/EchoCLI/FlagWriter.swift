/// `echo` flags written one option at a time: each option's value is given only where it differs
/// from the default the command would otherwise use, or where it must be stated (a requirement
/// the kernel must meet rather than a choice it negotiates).
struct FlagWriter {
    private(set) var arguments: [String]

    /// Starts with `--backend name`.
    init(backend name: String) {
        arguments = ["--backend", name]
    }

    /// `--name value` when `value` differs from `standard`, or when `stated`.
    mutating func value<Value: Equatable & CustomStringConvertible>(_ name: String, _ value: Value,
                                                                    default standard: Value, stated: Bool = false) {
        if stated || value != standard { arguments += ["--\(name)", value.description] }
    }

    /// `--name` or `--no-name` when `value` differs from `standard`, or when `stated`.
    mutating func toggle(_ name: String, _ value: Bool, default standard: Bool, stated: Bool = false) {
        if stated || value != standard { arguments.append(value ? "--\(name)" : "--no-\(name)") }
    }

    /// `--name` when `on`: a flag that is off unless given.
    mutating func flag(_ name: String, _ on: Bool) {
        if on { arguments.append("--\(name)") }
    }
}
