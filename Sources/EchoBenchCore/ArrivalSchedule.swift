import ArgumentParser

#if canImport(Glibc)
import Glibc
#endif

/// When the requests of an open-loop (`--rate`) run are due: the arrival times of one loop's share.
///
/// Uniform arrivals are `start + k / rate`, computed from `k` rather than summed, so rounding
/// never drifts. Poisson arrivals are separated by exponential gaps of mean `1 / rate`, drawn from
/// a splitmix64 generator seeded per loop (runs are reproducible); their sum is kept in a `Double`
/// of nanoseconds, exact to well under a nanosecond for any run shorter than a day.
///
/// ```swift
/// var schedule = ArrivalSchedule(rate: 1000, arrival: .uniform, start: 0)
/// schedule.next      // 0
/// schedule.advance()
/// schedule.next      // 1_000_000 (ns)
/// ```
public struct ArrivalSchedule: Sendable {
    /// How arrivals are spaced.
    public enum Arrival: String, Sendable, CaseIterable, ExpressibleByArgument {
        /// Evenly, `1 / rate` apart.
        case uniform
        /// As a Poisson process: independent exponential gaps of mean `1 / rate`.
        case poisson
    }

    public let arrival: Arrival
    /// Monotonic nanoseconds of the first arrival.
    public let start: UInt64
    /// Mean nanoseconds between arrivals.
    public let interval: Double
    /// Arrivals passed so far (``advance()`` calls).
    public private(set) var index: UInt64 = 0
    /// Monotonic nanoseconds at which the next request is due.
    public private(set) var next: UInt64
    /// Nanoseconds from `start` to `next`, unrounded (Poisson).
    private var offset: Double = 0
    private var state: UInt64

    /// - Parameters:
    ///   - rate: arrivals per second, more than 0.
    ///   - start: monotonic nanoseconds of the first arrival.
    ///   - seed: the Poisson generator's seed (loops use different ones).
    public init(rate: Double, arrival: Arrival, start: UInt64, seed: UInt64 = 0x5EED) {
        self.arrival = arrival
        self.start = start
        interval = 1e9 / rate
        state = seed
        next = start
    }

    /// Moves to the following arrival.
    @inline(__always)
    public mutating func advance() {
        index &+= 1
        switch arrival {
        case .uniform:
            next = start &+ UInt64((Double(index) * interval).rounded())
        case .poisson:
            offset += Self.exponential(&state) * interval
            next = start &+ UInt64(offset.rounded())
        }
    }

    /// An exponentially distributed value of mean 1: `-ln(u)` for `u` uniform in (0, 1].
    @inline(__always)
    static func exponential(_ state: inout UInt64) -> Double {
        let unit = (Double(splitmix64(&state) >> 11) + 1) * 0x1p-53
        return -log(unit)
    }

    /// The splitmix64 generator: fast, and good enough for spacing arrivals.
    @inline(__always)
    static func splitmix64(_ state: inout UInt64) -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
