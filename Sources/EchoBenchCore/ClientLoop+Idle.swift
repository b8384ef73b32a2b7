#if canImport(Glibc)
import Glibc
import EchoSupport
#endif

/// `--idle`: connections that only connect and wait. Nothing may arrive on them and the server
/// may not close them; one look at the end, through the epoll set they were registered in, finds
/// those that broke the rule.
extension ClientLoop {
    /// Counts the idle connections that became readable (unsolicited bytes: mismatch; end of
    /// stream: eof; an error: reset) and closes them. The others are closed with the loop.
    mutating func checkIdle() {
        // Each round closes what it reports; the bound only guards against a socket that keeps
        // reporting without being readable.
        for _ in 0...(count / Self.maxEvents + 1) {
            if wait(until: 0, now: 0, { loop, slot, _ in loop.checkIdleConnection(slot) }) <= 0 { return }
        }
    }

    private mutating func checkIdleConnection(_ slot: Int) {
        guard connections[slot].state == .established else { return }
        var byte: UInt8 = 0
        let outcome = SystemCall.outcome { recv(connections[slot].descriptor, &byte, 1, Int32(MSG_DONTWAIT)) }
        let count = outcome.value
        if count > 0 {
            tally.errors.mismatch &+= 1
        } else if count == 0 {
            tally.errors.eof &+= 1
        } else if outcome.error == EAGAIN || outcome.error == EINTR {
            return
        } else {
            tally.errors.reset &+= 1
        }
        closeSocket(slot)
    }
}
