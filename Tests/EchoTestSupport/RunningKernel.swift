import Backend
import URingBackend

/// What the running kernel's io_uring can serve, so that the suites run everything it can and leave
/// out, with a line each, what it cannot: a design that states a feature the kernel lacks is
/// refused by `echo`, as it should be, and is no failure of the server.
enum RunningKernel {
    /// The running kernel's features, probed once per process.
    static var features: URingFeatures { .running }

    /// Why the running kernel cannot serve `options`, nil when it can: io_uring cannot be set up,
    /// or the options use features it lacks ("receive bundles (needs Linux 6.10, this kernel is 6.1)").
    static func lacks(_ options: URingBackend.Options) -> String? {
        if let unavailable = features.unavailable { return "\(unavailable)" }
        let missing = features.lacking(options)
        guard !missing.isEmpty else { return nil }
        return missing.map { "\($0.title) (\(features.reasonMissing($0)))" }.joined(separator: ", ")
    }

    /// The `items` whose options the running kernel serves, in order; each one left out is said on
    /// standard output, with why.
    static func serving<Item>(_ items: [Item], named name: (Item) -> String,
                              options: (Item) -> URingBackend.Options?) -> [Item] {
        items.filter { item in
            guard let options = options(item), let reason = lacks(options) else { return true }
            print("left out on Linux \(features.release): \(name(item)), which needs \(reason)")
            return false
        }
    }
}
