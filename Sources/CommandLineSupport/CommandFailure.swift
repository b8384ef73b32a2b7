#if canImport(Glibc)
import Glibc
#endif
import ArgumentParser
import EchoSupport

/// How `echo` and `echo-bench` end on an error: one line on standard error, `PROGRAM: error: …`,
/// and exit status 64 for bad arguments, 1 for anything else. ArgumentParser's own `main()`
/// would print the usage with it; `--help` and the like still print their text and exit 0.
public enum CommandFailure {
    /// Ends the process for `error`, thrown while `command` parsed or ran. `isOwnError` is true
    /// for the program's own typed errors, printed as they describe themselves.
    public static func exit<Command: ParsableCommand>(_ command: Command.Type, program: String,
                                                      error: any Error, isOwnError: Bool) -> Never {
        if isOwnError {
            writeLine("\(program): error: \(error)")
            Glibc.exit(1)
        }
        let code = Command.exitCode(for: error)
        if code == .success {
            print(Command.fullMessage(for: error))
            Glibc.exit(0)
        }
        var message = oneLine(Command.message(for: error))
        if message.hasSuffix(".") { message.removeLast() }
        if code == .validationFailure {
            writeLine("\(program): error: \(message.isEmpty ? "invalid arguments" : message) (see '\(program) --help')")
        } else if !message.isEmpty {
            writeLine("\(program): error: \(message)")
        }
        Glibc.exit(code.rawValue)
    }

    /// ArgumentParser's message, its lines trimmed and joined by spaces.
    static func oneLine(_ text: String) -> String {
        text.split(whereSeparator: \.isNewline)
            .map { line in
                var slice = line[...]
                while slice.first?.isWhitespace == true { slice = slice.dropFirst() }
                while slice.last?.isWhitespace == true { slice = slice.dropLast() }
                return String(slice)
            }
            .filter { !$0.isEmpty }
            .joined(separator: " ")
    }

    private static func writeLine(_ line: String) {
        StandardStream.write(line + "\n", to: 2)
    }
}
