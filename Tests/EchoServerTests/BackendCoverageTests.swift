import Testing
import EchoCLI
@testable import EchoTestSupport

extension EchoSuite {
    @Suite("Backends under test")
    struct BackendsUnderTest {
        /// A loop mode added to a backend without a case here would be run by no suite.
        /// On a kernel that lacks a feature, the cases that state it are left out (``BackendUnderTest/runnable``),
        /// and so are their loop modes when no other case runs them.
        @Test("every loop mode of every backend has a case, and the lists derived from them cover it")
        func everyLoopModeHasACase() {
            let declared = Set(BackendUnderTest.allCases.map { BackendUnderTest.LoopMode($0.setup) })
            let covered = Set(BackendUnderTest.everyLoop.map(\.loopMode))
            for mode in BackendUnderTest.LoopMode.all {
                #expect(declared.contains(mode), "no BackendUnderTest case runs \(mode)")
                guard BackendUnderTest.runnable.contains(where: { $0.loopMode == mode }) else { continue }
                #expect(covered.contains(mode), "everyLoop leaves out \(mode)")
                #expect(BackendUnderTest.cli.contains { $0.loopMode == mode }, "the CLI tests leave out \(mode)")
                if mode.family.isEventDriven {
                    #expect(BackendUnderTest.eventDriven.contains { $0.loopMode == mode }, "eventDriven leaves out \(mode)")
                }
                if mode.family.runsSeveralLoops {
                    #expect(BackendUnderTest.multiLoop.contains { $0.loopMode == mode }, "multiLoop leaves out \(mode)")
                }
            }
            #expect(BackendUnderTest.everyLoop.count == covered.count, "one case per loop mode")
        }

        /// The soak runs a few chosen cases; a splice path added without a soak case would be
        /// soaked by nobody.
        @Test("every event-driven data path, copying and splicing, has a soak and a hostile-client case")
        func everyDataPathIsSoaked() {
            for path in Set(BackendUnderTest.runnable.map(\.loopMode.dataPath)) where path.family.isEventDriven {
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
            let runnableLoops = Set(BackendUnderTest.runnable.map(\.loopMode))
            for family in [BackendUnderTest.Family.uring, .epoll] where runnableLoops.contains(family.defaultLoop) {
                #expect(BackendUnderTest.soak.contains { $0.loopMode == family.defaultLoop }, "\(family)'s default is not soaked")
            }
            if runnableLoops.contains(.uring(.bundle, splice: nil)) {
                #expect(BackendUnderTest.soak.contains { $0.loopMode == .uring(.bundle, splice: nil) }, "the bundle mode is not soaked")
            }
            #expect(BackendUnderTest.allCases.filter { $0.soakName != nil } == BackendUnderTest.soak)
        }
    }
}
