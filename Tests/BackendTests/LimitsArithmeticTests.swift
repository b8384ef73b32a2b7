#if canImport(Glibc)
import Glibc
#endif
import Testing
@testable import Backend
import EchoSupport
@testable import EchoTestSupport

@Suite("Limits arithmetic")
struct LimitsArithmeticTests {
    @Test("a connection expires after more than ten silent ticks, not before; a touch starts it again")
    func idleTrackerExpiry() {
        var limits = ServerLimits()
        limits.idleTimeoutNanoseconds = 2_000_000_000
        #expect(limits.tickNanoseconds == 200_000_000)
        var tracker = IdleTracker(limits: limits)
        tracker.opened(5)
        tracker.opened(3000)  // beyond the first allocation: the table grows
        let capacity = tracker.capacity
        #expect(capacity > 3000)
        for _ in 0..<10 { tracker.advance() }
        let afterTen = tracker.isExpired(5)
        #expect(!afterTen, "10 ticks: at most one timeout of silence")
        tracker.advance()
        let afterEleven = tracker.isExpired(5) && tracker.isExpired(3000)
        #expect(afterEleven, "11 ticks: at least one timeout of silence")
        tracker.touch(5)
        let touched = tracker.isExpired(5)
        #expect(!touched)
        let outside = tracker.isExpired(Int32(capacity))
        #expect(!outside, "a descriptor without a slot never expires")
        for _ in 0..<5 { tracker.advance() }
        let fiveLater = tracker.isExpired(5)
        #expect(!fiveLater)
    }

    @Test("without a timeout nothing is tracked and nothing expires")
    func idleTrackerDisabled() {
        var tracker = IdleTracker(limits: ServerLimits())
        tracker.opened(7)
        for _ in 0..<100 { tracker.advance() }
        let quiet = !tracker.isEnabled && tracker.capacity == 0 && !tracker.isExpired(7)
        #expect(quiet)
    }

    @Test("the cap is split over loops as evenly as whole connections allow")
    func capShares() throws {
        var limits = ServerLimits()
        limits.maxConnections = 10
        let shares = (0..<3).map { limits.share(loop: $0, of: 3).maxConnections }
        #expect(shares == [4, 3, 3])
        #expect(limits.share(loop: 0, of: 1).maxConnections == 10)
        #expect(throws: EchoError.self) { try limits.validate(loops: 11) }
        try limits.validate(loops: 10)
        limits.idleTimeoutNanoseconds = 1_000_000  // 1 ms: below the 10 ms floor
        #expect(throws: EchoError.self) { try limits.validate(loops: 1) }
    }

    @Test("every accept errno falls in one class")
    func acceptFailureClasses() {
        #expect(AcceptFailure(code: EAGAIN) == .backlogEmpty)
        for code in [EMFILE, ENFILE, ENOBUFS, ENOMEM] { #expect(AcceptFailure(code: code) == .exhausted) }
        for code in [EBADF, EINVAL, ENOTSOCK, EOPNOTSUPP, EFAULT] { #expect(AcceptFailure(code: code) == .listenerBroken) }
        for code in [EINTR, ECONNABORTED, EPROTO, EPERM, ETIMEDOUT, ENETDOWN, EHOSTUNREACH, ECANCELED] {
            #expect(AcceptFailure(code: code) == .transient)
        }
    }
}
