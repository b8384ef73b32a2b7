#if canImport(Glibc)
import Glibc
#endif
import ArgumentParser
import Backend
import EchoCLI
import EchoSupport

// ArgumentParser's own `main()` prints errors with a usage dump; this one prints exactly one
// line per error, `echo: error: …`, and exits 64 for bad arguments and 1 for anything else.
do {
    var command = try EchoCommand.parseAsRoot()
    try command.run()
} catch let error as EchoError {
    Console.writeLine("echo: error: \(error)")
    exit(1)
} catch {
    let code = EchoCommand.exitCode(for: error)
    if code == .success {
        // --help, and anything else ArgumentParser answers with text and success.
        print(EchoCommand.fullMessage(for: error))
        exit(0)
    }
    var message = EchoCommand.message(for: error)
        .split(whereSeparator: \.isNewline)
        .map { $0.trimmingCharacters() }
        .filter { !$0.isEmpty }
        .joined(separator: " ")
    if message.hasSuffix(".") { message.removeLast() }
    if code == .validationFailure {
        Console.writeLine("echo: error: \(message.isEmpty ? "invalid arguments" : message) (see 'echo --help')")
    } else if !message.isEmpty {
        Console.writeLine("echo: error: \(message)")
    }
    exit(code.rawValue)
}
