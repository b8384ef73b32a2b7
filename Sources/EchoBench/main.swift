#if canImport(Glibc)
import Glibc
#endif
import ArgumentParser
import EchoBenchCore

// ArgumentParser's own `main()` prints errors with a usage dump; this one prints exactly one
// line per error, `echo-bench: error: …`, and exits 64 for bad arguments and 1 for anything else
// (as `echo` does).
do {
    var command = try EchoBenchCommand.parseAsRoot()
    try command.run()
    exit(0)
} catch let error as BenchmarkError {
    EchoBenchCommand.writeError("echo-bench: error: \(error)")
    exit(1)
} catch {
    let code = EchoBenchCommand.exitCode(for: error)
    if code == .success {
        // --help, and anything else ArgumentParser answers with text and success.
        print(EchoBenchCommand.fullMessage(for: error))
        exit(0)
    }
    var message = EchoBenchCommand.message(for: error)
        .split(whereSeparator: \.isNewline)
        .map { line -> String in
            var slice = line[...]
            while slice.first?.isWhitespace == true { slice = slice.dropFirst() }
            while slice.last?.isWhitespace == true { slice = slice.dropLast() }
            return String(slice)
        }
        .filter { !$0.isEmpty }
        .joined(separator: " ")
    if message.hasSuffix(".") { message.removeLast() }
    if code == .validationFailure {
        EchoBenchCommand.writeError("echo-bench: error: \(message.isEmpty ? "invalid arguments" : message) (see 'echo-bench --help')")
    } else if !message.isEmpty {
        EchoBenchCommand.writeError("echo-bench: error: \(message)")
    }
    exit(code.rawValue)
}
