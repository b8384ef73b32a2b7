import ArgumentParser
import Testing
import EchoBenchCore

/// The mode flags becoming a ``BenchmarkMode``: each mode with its values, each exclusion and
/// companion with its one-line error and exit status 64, and the ranges the library checks again.
@Suite("echo-bench mode options")
struct ModeOptionsTests {
    /// The mode `arguments` parse into, through the whole command.
    func mode(_ arguments: [String]) throws -> BenchmarkMode? {
        let command = try EchoBenchCommand.parseAsRoot(arguments) as? EchoBenchCommand
        return try command?.benchmarkConfiguration.mode
    }

    @Test("each mode parses with its values and defaults")
    func parse() throws {
        #expect(try mode([]) == .pingPong)
        #expect(try mode(["--pipeline", "1"]) == .pingPong)
        #expect(try mode(["--pipeline", "4096"]) == .pipeline(depth: 4096))
        #expect(try mode(["--rate", "250.5"]) == .rate(.init(perSecond: 250.5, arrival: .uniform, queueLimit: 1000, inFlight: 1)))
        #expect(try mode(["--rate", "10", "--arrival", "poisson", "--queue-limit", "7", "--pipeline", "3"])
            == .rate(.init(perSecond: 10, arrival: .poisson, queueLimit: 7, inFlight: 3)))
        #expect(try mode(["--requests-per-connection", "5"]) == .churn(requestsPerConnection: 5))
        #expect(try mode(["--requests-per-connection", "5", "--pipeline", "1"]) == .churn(requestsPerConnection: 5))
        #expect(try mode(["--stream"]) == .stream(window: 256 << 10))
        #expect(try mode(["--stream", "--stream-window", "1"]) == .stream(window: 1))
        #expect(try mode(["--stream", "--idle", "3"]) == .stream(window: BenchmarkMode.defaultStreamWindow))
    }

    @Test("the report's name and requests in flight of each mode")
    func names() {
        let modes: [(BenchmarkMode, String, Int)] = [
            (.pingPong, "pingpong", 1), (.pipeline(depth: 8), "pipeline", 8),
            (.rate(.init(perSecond: 1, inFlight: 6)), "rate", 6), (.churn(requestsPerConnection: 9), "churn", 1),
            (.stream(window: 4096), "stream", 1),
        ]
        for (mode, name, inFlight) in modes {
            #expect(mode.name == name && mode.inFlight == inFlight, "\(mode)")
        }
    }

    @Test("exclusions and companions: one line each, exit status 64")
    func exclusions() {
        let stream = "--stream excludes --rate, --pipeline and --requests-per-connection"
        let churn = "--requests-per-connection excludes --rate and --pipeline"
        let cases: [([String], String)] = [
            (["--stream", "--rate", "100"], stream),
            (["--stream", "--pipeline", "2"], stream),
            (["--stream", "--requests-per-connection", "1"], stream),
            (["--stream", "--rate", "1", "--pipeline", "2", "--requests-per-connection", "1"], stream),
            (["--requests-per-connection", "1", "--rate", "100"], churn),
            (["--requests-per-connection", "1", "--pipeline", "2"], churn),
            (["--arrival", "poisson"], "--arrival needs --rate"),
            (["--queue-limit", "10"], "--queue-limit needs --rate"),
            (["--queue-limit", "10", "--stream"], "--queue-limit needs --rate"),
            (["--stream-window", "4096"], "--stream-window needs --stream"),
            (["--stream-window", "4096", "--rate", "1"], "--stream-window needs --stream"),
            // A value out of range is reported before an exclusion.
            (["--stream", "--rate", "0"], "invalid rate 0.0: must be more than 0 and at most 100000000 requests/s"),
            (["--stream", "--pipeline", "0"], "invalid pipeline 0: must be 1...4096 requests"),
            (["--requests-per-connection", "0", "--pipeline", "2"], "invalid requests per connection 0: must be 1...1000000000"),
            (["--rate", "1", "--queue-limit", "65537"], "invalid queue limit 65537: must be 1...65536 requests"),
            (["--stream", "--stream-window", "1073741825"], "invalid stream window 1073741825: must be 1...1073741824 bytes (1 GiB)"),
        ]
        for (arguments, message) in cases {
            do {
                _ = try EchoBenchCommand.parseAsRoot(arguments)
                Issue.record("\(arguments) parsed")
            } catch {
                #expect(EchoBenchCommand.message(for: error) == message, "\(arguments)")
                #expect(EchoBenchCommand.exitCode(for: error) == .validationFailure, "\(arguments) exits 64")
            }
        }
    }

    @Test("the library checks a mode's values with the flags' messages")
    func libraryRanges() {
        let cases: [(BenchmarkMode, String)] = [
            (.pipeline(depth: 0), "invalid pipeline 0: must be 1...4096 requests"),
            (.pipeline(depth: 4097), "invalid pipeline 4097: must be 1...4096 requests"),
            (.rate(.init(perSecond: 0)), "invalid rate 0.0: must be more than 0 and at most 100000000 requests/s"),
            (.rate(.init(perSecond: .infinity)), "invalid rate inf: must be more than 0 and at most 100000000 requests/s"),
            (.rate(.init(perSecond: 1, queueLimit: 0)), "invalid queue limit 0: must be 1...65536 requests"),
            (.rate(.init(perSecond: 1, inFlight: 0)), "invalid pipeline 0: must be 1...4096 requests"),
            (.churn(requestsPerConnection: 0), "invalid requests per connection 0: must be 1...1000000000"),
            (.stream(window: 0), "invalid stream window 0: must be 1...1073741824 bytes (1 GiB)"),
        ]
        for (mode, message) in cases {
            var configuration = BenchmarkConfiguration(port: 1)
            configuration.mode = mode
            #expect(throws: BenchmarkError.invalidConfiguration(message), "\(mode)") { try configuration.validate() }
        }
        var crowded = BenchmarkConfiguration(port: 1, connections: 1_000_000)
        crowded.mode = .rate(.init(perSecond: 1))
        #expect(throws: BenchmarkError.self) { try crowded.validate() }
        crowded.mode = .pipeline(depth: 256)
        #expect(throws: BenchmarkError.self) { try crowded.validate() }
        for mode: BenchmarkMode in [.pingPong, .pipeline(depth: 4096), .rate(.init(perSecond: 1)), .churn(requestsPerConnection: 1),
                                    .stream(window: 1)] {
            var configuration = BenchmarkConfiguration(port: 1)
            configuration.mode = mode
            #expect(throws: Never.self, "\(mode)") { try configuration.validate() }
        }
    }
}
