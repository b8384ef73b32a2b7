import Backend
import CLinux

#if canImport(Glibc)
import Glibc
import EchoSupport
#endif

/// `--splice`: each readable connection moves its bytes socket → pipe → socket with `splice(2)`,
/// so the loop copies nothing: the pipe takes references to the received pages and the send
/// attaches them to new packets. Two system calls per direction, as the copy path.
///
/// A connection takes a pipe from the loop's ``PipePool`` when it becomes readable and gives it
/// back once the pipe is empty again. Bytes its peer does not take stay in the pipe, and the
/// connection waits for `EPOLLOUT` and reads nothing until they are out, as on the copy path: a
/// pipe's capacity is all it ever holds. With no pipe to be had it is served by the copy path.
///
/// Pipes cost descriptors that accepting needs too, so a pipe nobody uses does not keep them:
/// accepting out of descriptors closes the idle pipes and tries again at once, and a wait that
/// passes a whole second with nothing to do closes them as well.
extension EpollLoop {
    /// How long the loop waits before it closes its idle pipes, in milliseconds.
    static let idlePipeTimeoutMilliseconds: Int32 = 1000

    /// Splices what the socket has into a pipe and from there back to the peer.
    mutating func receiveSpliced(_ descriptor: Int32, _ connection: UnsafeMutablePointer<Connection>, events: UInt32) {
        guard let pipe = pipes.take(syscalls: &statistics[.other]) else {
            receive(descriptor, connection, events: events)
            return
        }
        statistics[.pipesTaken] &+= 1
        connection.pointee.pipe = pipe
        if spliceIn(descriptor, connection, events: events) {
            releasePipe(connection)
        }
    }

    /// The receiving half of ``receiveSpliced(_:_:events:)``. Returns `true` when the connection
    /// is still reading and its pipe is empty; `false` when it holds bytes in the pipe (waiting to
    /// write) or was closed.
    @inline(__always)
    private mutating func spliceIn(_ descriptor: Int32, _ connection: UnsafeMutablePointer<Connection>,
                                   events: UInt32) -> Bool {
        var reads = 0
        let writeEnd = pipes.writeEnd(connection.pointee.pipe)
        while true {
            let outcome = SystemCall.outcome { clinux_splice(descriptor, writeEnd, pipes.pipeSize) }
            let count = outcome.value
            statistics[.splice] &+= 1
            if count > 0 {
                statistics[.requests] &+= 1
                idle.touch(descriptor)
                statistics[.bytesReceived] &+= UInt64(truncatingIfNeeded: count)
                connection.pointee.pendingEnd = Int32(truncatingIfNeeded: count)
                guard drain(descriptor, connection) else { return false }
                reads += 1
                if reads == readsPerEvent { return true }
                // Level-triggered, a short splice most likely drained the socket, and the next wait
                // reports any rest (a pipe takes a slot per packet fragment, so a splice can stop
                // short of a full socket). Edge-triggered, nothing would report it: splice on to
                // EAGAIN, which also reaches a FIN behind the bytes.
                if triggerFlags == 0 && count < pipes.pipeSize { return true }
            } else if count == 0 {
                // End of stream. The pipe is empty: a connection holding bytes does not read.
                closeConnection(descriptor, connection)
                return false
            } else {
                switch outcome.error {
                case EINTR:
                    continue
                case EAGAIN:
                    // Readiness without data; an error or hang-up would be reported again at once.
                    if events & Interest.errorOrHangUp == 0 { return true }
                    closeConnection(descriptor, connection)
                    return false
                default:  // ECONNRESET, ETIMEDOUT, …
                    closeConnection(descriptor, connection)
                    return false
                }
            }
        }
    }

    /// Splices the bytes just received (``Connection/pendingCount`` of them) from the pipe to the
    /// peer. Returns `true` when all went out; otherwise the connection holds the rest in its pipe
    /// and waits to write, or was closed on an error (and its pipe, not empty, closed with it).
    @inline(__always)
    private mutating func drain(_ descriptor: Int32, _ connection: UnsafeMutablePointer<Connection>) -> Bool {
        let (_, error) = spliceOut(descriptor, connection)
        if error == 0 && connection.pointee.pendingCount == 0 { return true }
        if error == 0 || error == EAGAIN {
            // A short splice means the socket's send buffer is full: a second try now would only
            // see EAGAIN.
            waitToWrite(descriptor, connection)
        } else {  // EPIPE, ECONNRESET, …
            closeConnection(descriptor, connection)
        }
        return false
    }

    /// Splices what a writing connection holds in its pipe to the peer; once the pipe is empty,
    /// gives it back and reads again.
    mutating func flushPipe(_ descriptor: Int32, _ connection: UnsafeMutablePointer<Connection>, events: UInt32) {
        let (sent, error) = spliceOut(descriptor, connection)
        guard error == 0 else {
            _ = retriesFailedFlush(error, descriptor, connection, events: events)
            return
        }
        if sent > 0 { idle.touch(descriptor) }  // the peer takes its bytes: not idle
        if connection.pointee.pendingCount == 0 {
            releasePipe(connection)
            resumeReading(descriptor, connection, events: events)
        }
    }

    /// One splice of what the connection's pipe holds to the peer, tried again when a signal
    /// interrupts it: counts it and the bytes sent, and takes them off ``Connection/pendingCount``.
    /// Returns the bytes sent and 0, or 0 and the splice's `errno`.
    @inline(__always)
    private mutating func spliceOut(_ descriptor: Int32, _ connection: UnsafeMutablePointer<Connection>) -> (sent: Int, error: Int32) {
        let readEnd = pipes.readEnd(connection.pointee.pipe)
        while true {
            let outcome = SystemCall.outcome { clinux_splice(readEnd, descriptor, connection.pointee.pendingCount) }
            statistics[.splice] &+= 1
            let sent = outcome.value
            if sent >= 0 {
                statistics[.bytesSent] &+= UInt64(truncatingIfNeeded: sent)
                connection.pointee.pendingEnd &-= Int32(truncatingIfNeeded: sent)
                return (sent, 0)
            }
            if outcome.error != EINTR { return (0, outcome.error) }
        }
    }

    /// Gives the connection's pipe back to the pool: kept when empty, closed when bytes are left
    /// in it (the connection is closing).
    @inline(__always)
    mutating func releasePipe(_ connection: UnsafeMutablePointer<Connection>) {
        let pipe = connection.pointee.pipe
        guard pipe >= 0 else { return }
        pipes.give(pipe, empty: connection.pointee.pendingCount == 0, syscalls: &statistics[.close])
        connection.pointee.pipe = -1
        connection.pointee.pendingEnd = 0
        statistics[.pipesReturned] &+= 1
    }

    /// Closes the pipes no connection holds; returns whether there were any (their descriptors
    /// are free again).
    @discardableResult
    mutating func closeIdlePipes() -> Bool {
        pipes.closeIdle(syscalls: &statistics[.close]) > 0
    }
}
