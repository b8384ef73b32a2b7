import Testing
import EchoBenchCore

@Suite("idle plan")
struct IdlePlanTests {
    func plan(idle: Int, connections: Int = 100, limit: Int = 1000, perProcess: Int? = nil, perSource: Int? = nil,
              ports: Int = 25_000, loopback: Bool = true) -> IdlePlan {
        IdlePlan(idle: idle, connections: connections, threads: 1, descriptorLimit: limit, reserved: 64,
                 perProcess: perProcess, perSource: perSource, portsPerSource: ports, loopbackIPv4: loopback)
    }

    @Test("what fits stays in this process, on the kernel's source address")
    func fits() {
        let small = plan(idle: 500)
        #expect(small.local == 0..<500 && small.helpers.isEmpty && small.perSource == 0 && small.sources == 1)
        let none = plan(idle: 0)
        #expect(none.local == 0..<0 && none.helpers.isEmpty && none.sources == 0)
    }

    @Test("past the descriptor limit, helpers take the rest, each up to its own limit")
    func helpers() {
        // This process: 1000 - 64 reserved - 100 connections - 1 loop = 835; a helper: 936.
        let large = plan(idle: 3000)
        #expect(large.local == 0..<835)
        #expect(large.helpers == [835..<1771, 1771..<2707, 2707..<3000])
        let capped = plan(idle: 300, perProcess: 100)
        #expect(capped.local == 0..<100 && capped.helpers == [100..<200, 200..<300])
        let full = plan(idle: 10, connections: 935, perProcess: nil)
        #expect(full.local == 0..<0 && full.helpers == [0..<10])
    }

    @Test("past the port range, connections spread over source addresses; only towards 127.0.0.0/8")
    func sources() {
        let spread = plan(idle: 60_000, connections: 10, limit: 1_000_000)
        #expect(spread.perSource == 25_000 && spread.sources == 3)
        let elsewhere = plan(idle: 60_000, connections: 10, limit: 1_000_000, loopback: false)
        #expect(elsewhere.perSource == 0 && elsewhere.sources == 1)
        let asked = plan(idle: 300, perSource: 50)
        #expect(asked.perSource == 50 && asked.sources == 6)
        #expect(IdlePlan.portsPerSource() > 1000)
    }
}
