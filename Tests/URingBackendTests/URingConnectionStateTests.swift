#if canImport(Glibc)
import Glibc
#endif
import Testing
@testable import URingBackend
@testable import EchoTestSupport

extension EchoSuite {
    /// The transitions of the multishot and bundle connections' state: what each completion does to
    /// it and which submission it asks the loop for. (Values are taken out before `#expect`, which
    /// neither calls mutating methods nor takes noncopyable values.)
    @Suite("io_uring connection state")
    struct URingConnectionState {
        @Test("a receive's final result is read as end of stream, no buffers, cancelled, failed or data")
        func receiveEndClassification() {
            #expect(ReceiveEnd(result: 0) == .endOfStream)
            #expect(ReceiveEnd(result: 1) == .withData)
            #expect(ReceiveEnd(result: -ENOBUFS) == .noBuffers)
            #expect(ReceiveEnd(result: -ECANCELED) == .cancelled)
            for code in [EINTR, EAGAIN] { #expect(ReceiveEnd(result: -code) == .interrupted, "errno \(code)") }
            for code in [ECONNRESET, EPIPE, EBADF] { #expect(ReceiveEnd(result: -code) == .failed, "errno \(code)") }
        }

        // MARK: Multishot

        @Test("multishot: EOF leaves the peer closed; it finishes once its queue is sent")
        func multishotPeerClosed() {
            var connection = MultishotConnection.accepted
            let action = connection.receiveEnded(result: 0)
            #expect(action == .nothing)
            #expect(connection.lifecycle == .peerClosed && connection.receive == .idle)
            connection.queueHead = 3  // a buffer still to echo
            #expect(!connection.isFinished)
            connection.queueHead = -1
            #expect(connection.isFinished)
        }

        @Test("multishot: ENOBUFS starves an armed receive; leaving the starved queue re-arms it")
        func multishotStarves() {
            var connection = MultishotConnection.accepted
            let action = connection.receiveEnded(result: -ENOBUFS)
            #expect(action == .starve && connection.receive == .starved)
            let rearm = connection.leaveStarvedQueue()
            #expect(rearm && connection.receive == .armed)
        }

        @Test("multishot: a starved connection that broke finishes only once out of the starved queue")
        func multishotStarvedWhileClosing() {
            var connection = MultishotConnection.accepted
            _ = connection.receiveEnded(result: -ENOBUFS)
            let started = connection.lifecycle.beginClosing()
            let startedAgain = connection.lifecycle.beginClosing()
            #expect(started && !startedAgain, "a second close has nothing to do")
            #expect(!connection.isFinished, "still linked in the starved queue")
            let rearm = connection.leaveStarvedQueue()
            #expect(!rearm, "a closing connection is not re-armed")
            #expect(connection.isFinished)
        }

        @Test("multishot: back-pressure cancels at the threshold, once; the receive resumes when the queue drains")
        func multishotPause() {
            var connection = MultishotConnection.accepted
            connection.queued = 7
            let belowThreshold = connection.shouldPause(threshold: 8)
            #expect(!belowThreshold)
            connection.queued = 8
            let atThreshold = connection.shouldPause(threshold: 8)
            #expect(atThreshold && connection.receive == .cancelling)
            #expect(connection.isReceiving, "the receive is in flight until its last completion")
            let again = connection.shouldPause(threshold: 8)
            #expect(!again, "one cancel per pause")
            connection.send = .sending
            let action = connection.receiveEnded(result: -ECANCELED)
            #expect(action == .nothing && connection.receive == .paused)
            let resume = connection.sendQueueDrained()
            #expect(resume && connection.receive == .armed && connection.send == .idle)
        }

        @Test("multishot: a pause whose queue drained before the cancel landed re-arms at once")
        func multishotPauseAlreadyDrained() {
            var connection = MultishotConnection.accepted
            connection.queued = 8
            _ = connection.shouldPause(threshold: 8)
            let action = connection.receiveEnded(result: -ECANCELED)
            #expect(action == .rearm && connection.receive == .armed)
            let resume = connection.sendQueueDrained()
            #expect(!resume, "no pause left to end")
        }

        @Test("multishot: a cancel that missed a running receive pauses again at the next slice, or shuts a closing one down")
        func multishotCancelMissed() {
            var connection = MultishotConnection.accepted
            connection.queued = 8
            _ = connection.shouldPause(threshold: 8)
            let shutDown = connection.cancelMissed()
            #expect(!shutDown && connection.receive == .armed, "the receive still runs: it counts as armed")
            let pausesAgain = connection.shouldPause(threshold: 8)
            #expect(pausesAgain && connection.receive == .cancelling)
            _ = connection.lifecycle.beginClosing()
            let shutDownClosing = connection.cancelMissed()
            #expect(shutDownClosing, "a closing connection whose receive runs on is shut down")

            var closing = MultishotConnection.accepted
            _ = closing.lifecycle.beginClosing()  // the close's own cancel, the receive still armed
            let shutDownArmed = closing.cancelMissed()
            #expect(shutDownArmed, "a close whose cancel missed the armed receive shuts it down")

            var ended = MultishotConnection.accepted
            ended.queued = 8
            _ = ended.shouldPause(threshold: 8)
            _ = ended.receiveEnded(result: 0)  // the end of stream came before the cancel's failure
            let nothing = ended.cancelMissed()
            #expect(!nothing && ended.receive == .idle && ended.lifecycle == .peerClosed)
        }

        @Test("multishot: an error closes, data (CQ overflow) and an interruption re-arm, a closing connection is never re-armed")
        func multishotEnds() {
            var broken = MultishotConnection.accepted
            let brokenAction = broken.receiveEnded(result: -ECONNRESET)
            #expect(brokenAction == .close)
            var overflowed = MultishotConnection.accepted
            let overflowedAction = overflowed.receiveEnded(result: 100)
            #expect(overflowedAction == .rearm)
            for code in [EINTR, EAGAIN] {
                var interrupted = MultishotConnection.accepted
                let interruptedAction = interrupted.receiveEnded(result: -code)
                #expect(interruptedAction == .rearm, "errno \(code): a receive that ends with no error must come back")
            }
            var closing = MultishotConnection.accepted
            _ = closing.lifecycle.beginClosing()
            let closingAction = closing.receiveEnded(result: 100)
            #expect(closingAction == .nothing && closing.isFinished)
        }

        @Test("multishot: a send in flight keeps a closing connection open")
        func multishotSendInFlight() {
            var connection = MultishotConnection.accepted
            connection.send = .sending
            _ = connection.lifecycle.beginClosing()
            _ = connection.receiveEnded(result: -ECANCELED)
            #expect(!connection.isFinished)
            connection.send = .idle
            #expect(connection.isFinished)
        }

        // MARK: Bundle

        @Test("bundle: ENOBUFS with every buffer queued starves; a send that returns buffers re-arms")
        func bundleStarves() {
            var connection = BundleConnection(accepted: ConnectionBufferRing(bufferSize: 64))
            connection.received = ConnectionBufferRing.count
            let action = connection.receiveEnded(result: -ENOBUFS)
            let starved = connection.receive
            #expect(action == .nothing && starved == .starved)
            let rearm = connection.buffersReturned()
            let armed = connection.receive
            #expect(rearm && armed == .armed)
            let rearmAgain = connection.buffersReturned()
            #expect(!rearmAgain, "only a starved receive is re-armed")
        }

        @Test("bundle: a receive interrupted with EINTR or EAGAIN is armed again")
        func bundleInterrupted() {
            for code in [EINTR, EAGAIN] {
                var connection = BundleConnection(accepted: ConnectionBufferRing(bufferSize: 64))
                let action = connection.receiveEnded(result: -code)
                #expect(action == .rearm, "errno \(code)")
            }
        }

        @Test("bundle: ENOBUFS handled after buffers came back re-arms at once")
        func bundleStarvedButReturned() {
            var connection = BundleConnection(accepted: ConnectionBufferRing(bufferSize: 64))
            connection.received = ConnectionBufferRing.count
            connection.sent = 1
            let action = connection.receiveEnded(result: -ENOBUFS)
            let receive = connection.receive
            #expect(action == .rearm && receive == .armed)
        }

        @Test("bundle: closing cancels an armed receive, once, and finishes when nothing is in flight")
        func bundleClosing() {
            var connection = BundleConnection(accepted: ConnectionBufferRing(bufferSize: 64))
            connection.send = .sending
            let cancel = connection.beginClosing()
            let cancelAgain = connection.beginClosing()
            #expect(cancel && !cancelAgain)
            let action = connection.receiveEnded(result: -ECANCELED)
            let finishedWhileSending = connection.isFinished
            #expect(action == .nothing && !finishedWhileSending, "a send is in flight")
            connection.send = .idle
            let finished = connection.isFinished
            #expect(finished)
        }

        @Test("bundle: receive and send accounting walk ring positions across the 16-bit wrap")
        func bundleAccountingWraps() {
            var connection = BundleConnection(accepted: ConnectionBufferRing(bufferSize: 100))
            connection.received = 65534
            connection.sent = 65534
            // Whole entries of 100 bytes: 250 bytes fill positions 65534, 65535 and 0 (50 bytes).
            connection.bundleReceived(250)
            let (received, queued) = (connection.received, connection.queued)
            #expect(received == 1 && queued == 3)
            let firstReturned = connection.bundleSent(150)
            let (sent, offset) = (connection.sent, connection.sendOffset)
            #expect(firstReturned && sent == 65535 && offset == 50, "the first buffer is all sent, the second half")
            let partReturned = connection.bundleSent(20)
            let partOffset = connection.sendOffset
            #expect(!partReturned && partOffset == 70)
            let restReturned = connection.bundleSent(80)
            let (finalSent, finalOffset, finalQueued) = (connection.sent, connection.sendOffset, connection.queued)
            #expect(restReturned && finalSent == 1 && finalOffset == 0 && finalQueued == 0)
        }
    }
}
