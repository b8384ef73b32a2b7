import Testing
import EchoCLI
@testable import EchoTestSupport

extension EchoSuite {
    @Suite("Backends under test")
    struct BackendsUnderTest {
        /// A loop mode added to a backend without a case here would be run by no suite.
        @Test("every loop mode of every backend has a case, and the lists derived from them cover it")
        func everyLoopModeHasACase() {
            let covered = Set(BackendUnderTest.everyLoop.map(\.loopMode))
            for mode in BackendUnderTest.LoopMode.all {
                #expect(covered.contains(mode), "no BackendUnderTest case runs \(mode)")
                #expect(BackendUnderTest.cli.contains { $0.loopMode == mode }, "the CLI tests leave out \(mode)")
                if mode.family.isEventDriven {
                    #expect(BackendUnderTest.eventDriven.contains { $0.loopMode == mode }, "eventDriven leaves out \(mode)")
                }
                if mode.family.runsSeveralLoops {
                    #expect(BackendUnderTest.multiLoop.contains { $0.loopMode == mode }, "multiLoop leaves out \(mode)")
                }
            }
            #expect(BackendUnderTest.everyLoop.count == BackendUnderTest.LoopMode.all.count, "one case per loop mode")
        }

        /// The soak runs a few chosen cases; a splice path added without a soak case would be
        /// soaked by nobody.
        @Test("every event-driven data path, copying and splicing, has a soak and a hostile-client case")
        func everyDataPathIsSoaked() {
            for path in Set(BackendUnderTest.LoopMode.all.map(\.dataPath)) where path.family.isEventDriven {
                #expect(BackendUnderTest.soak.contains { $0.loopMode.dataPath == path }, "the soak leaves out \(path)")
                #expect(EchoSuite.HostileClients.backends.contains { $0.loopMode.dataPath == path },
                        "the hostile-client tests leave out \(path)")
            }
        }

        /// The soak runs kit variants by name; a case it should run whose loop no variant runs
        /// would be soaked by nobody.
        @Test("every soaked case has a variant of its own loop, and each event-driven family soaks its default")
        func soakNamesAreVariants() throws {
            let names = BackendUnderTest.soak.compactMap(\.soakName)
            #expect(names.count == BackendUnderTest.soak.count, "a soaked case has no variant: \(BackendUnderTest.soak)")
            #expect(Set(names).count == names.count, "two cases soak the same variant: \(names)")
            for backend in BackendUnderTest.soak {
                let name = try #require(backend.soakName)
                let variant = try #require(NamedConfiguration.named(name), "\(name) is not a named configuration")
                #expect(BackendUnderTest.LoopMode(variant.setup) == backend.loopMode, "\(backend) soaks \(name)")
                #expect(backend.family.isEventDriven, "\(backend) soaks a loop of a thread per connection")
            }
            for family in [BackendUnderTest.Family.uring, .epoll] {
                #expect(BackendUnderTest.soak.contains { $0.loopMode == family.defaultLoop }, "\(family)'s default is not soaked")
            }
            #expect(BackendUnderTest.soak.contains { $0.loopMode == .uring(.bundle, splice: nil) }, "the bundle mode is not soaked")
            #expect(BackendUnderTest.allCases.filter { $0.soakName != nil } == BackendUnderTest.soak)
        }
    }
}
