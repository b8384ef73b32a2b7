import CommandLineSupport
import EchoCLI
import EchoSupport

do {
    var command = try EchoCommand.parseAsRoot()
    try command.run()
} catch {
    CommandFailure.exit(EchoCommand.self, program: "echo", error: error, isOwnError: error is EchoError)
}
