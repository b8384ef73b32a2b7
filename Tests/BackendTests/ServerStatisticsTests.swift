import Testing
@testable import Backend
@testable import EchoTestSupport

@Suite("Server statistics")
struct ServerStatisticsTests {
    @Test("every counter has a slot, a unique key and a meaning")
    func everyCounterFits() {
        let counters = ServerStatistics.Counter.allCases
        #expect(counters.count <= ServerStatistics.capacity)
        #expect(Set(counters.map(\.key)).count == counters.count)
        #expect(counters.allSatisfy { !$0.meaning.isEmpty })
    }

    @Test("sums, equality and the live copy cover every counter")
    func sumsAndPublishing() {
        var a = ServerStatistics()
        var b = ServerStatistics()
        for (index, counter) in ServerStatistics.Counter.allCases.enumerated() {
            a[counter] = UInt64(index + 1)
            b[counter] = 100
        }
        let sum = a + b
        for (index, counter) in ServerStatistics.Counter.allCases.enumerated() {
            #expect(sum[counter] == UInt64(index + 101), "\(counter)")
        }
        #expect(a != b)
        let live = LiveStatistics()
        live.publish(a)
        #expect(live.snapshot() == a)
        live.add(b)
        #expect(live.snapshot() == sum)
        #expect(a.syscallTotal == ServerStatistics.Counter.syscalls.reduce(0) { $0 + a[$1] })
    }
}
