import Foundation
import Testing
import BlockingBackend
@testable import EchoCLI
import EpollBackend
@testable import URingBackend
@testable import EchoTestSupport

extension EchoSuite {
    /// Every configuration is written once, as options, and its `echo` flags rendered from them:
    /// the benchmark kit's named configurations and the test cases. Here `echo`'s own parsing
    /// must give each one back, and each mode and each backend flag must be run by one of them.
    @Suite("Configurations: options to flags and back")
    struct ConfigurationTests {
        /// A configuration under test: its name, its options, and the flags rendered from them.
        struct Configuration: Sendable, CustomTestStringConvertible {
            let name: String
            let setup: ServerSetup
            let arguments: [String]
            /// Whether the flags leave the io_uring design to the kernel.
            let negotiated: Bool
            var testDescription: String { name }
        }

        static let named = NamedConfiguration.all.map {
            Configuration(name: $0.name, setup: $0.setup, arguments: $0.arguments, negotiated: $0.negotiated)
        }
        static let cases = BackendUnderTest.allCases.map {
            Configuration(name: "test case \($0.rawValue)", setup: $0.setup, arguments: $0.cliArguments,
                          negotiated: $0 == .uring)
        }
        static let all = named + cases

        /// A kernel with every io_uring feature this project knows.
        static let everyFeature = URingFeatures(release: "6.18.0", available: Set(URingFeature.allCases))
        /// Kernels that lack some: the negotiation's own table.
        static let olderKernels = KernelHistory.kernels.map(\.probed)

        /// The flags of `echo` that choose a backend's options. The others choose how the server
        /// runs around the backend, or what `echo` prints instead of serving; a new flag must be
        /// added to one list or the other.
        static let serverFlags: Set<String> = [
            "host", "port", "backlog", "threads", "pin", "idle-timeout", "max-connections", "over-limit",
            "stats-interval", "stats-json", "quiet", "features", "json", "check", "list-variants",
            // The same as --uring-mode bundle, which the rendering writes.
            "bundle",
        ]

        @Test("echo parses each configuration's flags back into its options", arguments: all)
        func roundTrip(_ configuration: Configuration) throws {
            let parsed = try ServerSetup(parsing: configuration.arguments, on: Self.everyFeature)
            #expect(parsed == configuration.setup, "\(configuration.arguments)")
        }

        /// A configuration that states its design gets exactly it on any kernel: the flags are
        /// requirements, which the kernel check then refuses where a feature is missing. One that
        /// leaves the design open gets what the negotiation picks for that kernel.
        @Test("on older kernels: stated designs stay as they are, open ones are negotiated", arguments: all)
        func olderKernels(_ configuration: Configuration) throws {
            for kernel in Self.olderKernels {
                let parsed = try ServerSetup(parsing: configuration.arguments, on: kernel)
                var expected = configuration.setup
                if case .uring(var options) = configuration.setup {
                    if configuration.negotiated { options = URingBackend.Options.negotiated(on: kernel).options }
                    if let splice = options.splice {
                        // --splice takes no design flag: the ring under it is negotiated as for
                        // a bare --backend uring, and only the splice options are stated.
                        let stated = options
                        options = URingBackend.Options.negotiated(on: kernel).options
                        options.splice = splice
                        options.pipeSize = stated.pipeSize
                        options.pipeLimit = stated.pipeLimit
                    }
                    options.submitAll = kernel.has(.submitAll)
                    expected = .uring(options)
                }
                #expect(parsed == expected, "\(configuration.arguments) on \(kernel.release)")
            }
        }

        @Test("every mode of every backend is run by a named configuration and by a test case")
        func everyModeHasAConfiguration() {
            for (list, what) in [(Self.named, "named configuration"), (Self.cases, "test case")] {
                let setups = list.map(\.setup)
                for mode in URingBackend.Mode.allCases {
                    #expect(setups.contains { if case .uring(let o) = $0 { o.mode == mode } else { false } },
                            "no \(what) runs --uring-mode \(mode)")
                }
                for trigger in EpollBackend.Trigger.allCases {
                    #expect(setups.contains { if case .epoll(let o) = $0 { o.trigger == trigger } else { false } },
                            "no \(what) runs --epoll-mode \(trigger)")
                }
                for mode in BlockingBackend.Mode.allCases {
                    #expect(setups.contains { if case .blocking(let o) = $0 { o.mode == mode } else { false } },
                            "no \(what) runs --blocking-mode \(mode)")
                }
            }
        }

        @Test("every backend flag of echo is rendered by some configuration, so the round trip checks it")
        func everyFlagHasAConfiguration() throws {
            let rendered = Set(Self.all.flatMap(\.arguments).filter { $0.hasPrefix("--") }.map {
                $0.hasPrefix("--no-") ? String($0.dropFirst(5)) : String($0.dropFirst(2))
            })
            let flags = Self.commandFlags()
            #expect(flags.count > 20, "the command's flags were not found: \(flags)")
            for flag in flags.subtracting(Self.serverFlags) {
                #expect(rendered.contains(flag), "no configuration renders --\(flag): add it to a test case or named configuration, or to serverFlags")
            }
            for flag in Self.serverFlags {
                #expect(flags.contains(flag), "serverFlags names --\(flag), which echo does not have")
                #expect(!rendered.contains(flag), "--\(flag) is rendered as a backend option")
            }
        }

        @Test("names are unique, and every ablation parent is an earlier named configuration")
        func namesAndParents() {
            let names = NamedConfiguration.all.map(\.name)
            #expect(Set(names).count == names.count, "\(names)")
            for (index, configuration) in NamedConfiguration.all.enumerated() {
                if let parent = configuration.parent {
                    #expect(names.prefix(index).contains(parent), "\(configuration.name)'s parent \(parent)")
                }
            }
            #expect(NamedConfiguration.all.filter(\.negotiated).map(\.name) == ["uring"])
        }

        @Test("--splice is negotiated for what the splice loop uses: older kernels leave out no buffer feature")
        func spliceNegotiation() throws {
            let debian12 = URingFeatures(release: "6.1.0-28-amd64", available: KernelHistory.linux6_1)
            let made = try EchoCommand.parse(["--backend", "uring", "--splice"]).setup(on: debian12)
            let negotiation = try #require(made.negotiation)
            #expect(negotiation.line(on: debian12)
                    == "io_uring on Linux 6.1.0-28-amd64: splice (poll), defer-taskrun; nothing left out")
            let linux6_0 = URingFeatures(release: "6.0.19", available: KernelHistory.linux6_0)
            let older = try #require(try EchoCommand.parse(["--backend", "uring", "--splice"]).setup(on: linux6_0).negotiation)
            #expect(older.leftOut.map(\.feature) == [.deferTaskrun], "\(older.leftOutText)")
            #expect(older.options.design == "splice (poll), coop-taskrun")
        }

        @Test("--backend takes each backend's own name")
        func backendNames() throws {
            for name in [URingBackend.name, EpollBackend.name, BlockingBackend.name] {
                let setup = try ServerSetup(parsing: ["--backend", name], on: Self.everyFeature)
                #expect(type(of: setup.backend).name == name)
            }
            #expect(throws: (any Error).self) { try ServerSetup(parsing: ["--backend", "kqueue"], on: Self.everyFeature) }
        }

        /// The kit reads its built-in variants from benchmarks/benchkit/variants.json, which is
        /// `echo --list-variants --json` committed, so the kit runs without a build.
        @Test("benchmarks/benchkit/variants.json is what echo --list-variants --json prints")
        func kitVariantsFile() throws {
            let path = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
                .deletingLastPathComponent().appendingPathComponent("benchmarks/benchkit/variants.json").path
            let committed = try String(contentsOfFile: path, encoding: .utf8)
            #expect(committed == NamedConfiguration.json(),
                    "stale: run `swift run echo --list-variants --json > benchmarks/benchkit/variants.json`")
        }

        /// The command's flags, from its stored properties: ArgumentParser names `cqEntries`
        /// `--cq-entries`.
        static func commandFlags() -> Set<String> {
            Set(Mirror(reflecting: EchoCommand()).children.compactMap(\.label).map { label in
                let name = label.hasPrefix("_") ? label.dropFirst() : Substring(label)
                return name.reduce(into: "") { flag, character in
                    if character.isUppercase { flag += "-" + character.lowercased() } else { flag.append(character) }
                }
            })
        }
    }
}
