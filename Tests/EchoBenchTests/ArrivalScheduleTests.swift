import Testing
import EchoBenchCore

@Suite("arrival schedule")
struct ArrivalScheduleTests {
    /// The first `count` due times of `schedule`.
    func times(_ schedule: ArrivalSchedule, count: Int) -> [UInt64] {
        var schedule = schedule
        var times: [UInt64] = []
        for _ in 0..<count {
            times.append(schedule.next)
            schedule.advance()
        }
        return times
    }

    @Test("uniform: start + k / rate, rounded per arrival, never drifting")
    func uniform() {
        let start: UInt64 = 5_000_000_000
        let thirds = times(ArrivalSchedule(rate: 3, arrival: .uniform, start: start), count: 7)
        #expect(thirds == [0, 333_333_333, 666_666_667, 1_000_000_000, 1_333_333_333, 1_666_666_667, 2_000_000_000].map { start + $0 })
        var schedule = ArrivalSchedule(rate: 7919, arrival: .uniform, start: 0)
        for _ in 0..<7919 * 10 { schedule.advance() }
        #expect(schedule.next == 10_000_000_000)
        #expect(schedule.index == 79_190)
        // A second holds exactly `rate` arrivals.
        let perMillisecond = times(ArrivalSchedule(rate: 1000, arrival: .uniform, start: 0), count: 1001)
        #expect(perMillisecond.filter { $0 < 1_000_000_000 }.count == 1000)
    }

    @Test("poisson: exponential gaps of mean 1 / rate, reproducible from the seed")
    func poisson() {
        let rate = 1000.0
        let arrivals = times(ArrivalSchedule(rate: rate, arrival: .poisson, start: 0, seed: 42), count: 100_001)
        let gaps = zip(arrivals.dropFirst(), arrivals).map { Double($0 - $1) }
        #expect(gaps.allSatisfy { $0 >= 0 })
        let mean = gaps.reduce(0, +) / Double(gaps.count)
        #expect(abs(mean - 1e6) < 0.02e6, "mean gap \(mean) ns")
        // An exponential's standard deviation equals its mean; 63.2% of gaps fall below the mean.
        let deviation = (gaps.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(gaps.count)).squareRoot()
        #expect(abs(deviation / mean - 1) < 0.03, "coefficient of variation \(deviation / mean)")
        let below = Double(gaps.filter { $0 < mean }.count) / Double(gaps.count)
        #expect(abs(below - 0.632) < 0.01, "share below the mean \(below)")
        // Arrivals in disjoint tenths of a second are counted about equally (rate / 10 each).
        let tenths = (0..<10).map { tenth in arrivals.filter { $0 / 100_000_000 == UInt64(tenth) }.count }
        #expect(tenths.allSatisfy { abs($0 - 100) < 50 }, "\(tenths)")
        #expect(times(ArrivalSchedule(rate: rate, arrival: .poisson, start: 0, seed: 42), count: 50) == Array(arrivals.prefix(50)))
        #expect(times(ArrivalSchedule(rate: rate, arrival: .poisson, start: 0, seed: 43), count: 50) != Array(arrivals.prefix(50)))
    }
}
