#if canImport(Glibc)
import Glibc
#endif
import CommandLineSupport
import EchoBenchCore

do {
    var command = try EchoBenchCommand.parseAsRoot()
    try command.run()
    exit(0)
} catch {
    CommandFailure.exit(EchoBenchCommand.self, program: "echo-bench", error: error, isOwnError: error is BenchmarkError)
}
