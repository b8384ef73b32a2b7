#if canImport(Glibc)
import Glibc
#endif
import Backend
import CLinux
import EchoSupport

/// ``URingBackend/SpliceStrategy/poll``: the ring reports readiness, the loop splices with
/// `splice(2)`, two system calls per direction as on epoll.
extension SpliceMode {
    /// Splices what the socket has into the connection's pipe and from there back, until the
    /// socket is drained (`EAGAIN`: a multishot poll would not report bytes left behind), the
    /// peer stops taking bytes (the connection holds the rest), or the connection ends.
    mutating func spliceIn(_ fd: Int32, _ connection: UnsafeMutablePointer<SpliceConnection>, _ loop: inout LoopContext) {
        let writeEnd = pipes.writeEnd(connection.pointee.pipe)
        let size = pipes.pipeSize
        while true {
            let outcome = SystemCall.outcome { clinux_splice(fd, writeEnd, size) }
            loop.statistics[.splice] &+= 1
            let count = outcome.value
            if count > 0 {
                loop.statistics[.requests] &+= 1
                loop.statistics[.bytesReceived] &+= UInt64(truncatingIfNeeded: count)
                loop.idle.touch(fd)
                connection.pointee.held = Int32(truncatingIfNeeded: count)
                guard spliceOut(fd, connection, &loop) else { return }
                continue
            }
            if count == 0 {
                close(fd, &loop)  // end of stream; the pipe is empty
                return
            }
            switch outcome.error {
            case EINTR:
                continue
            case EAGAIN:
                releasePipe(connection, &loop)
            default:  // ECONNRESET, …
                close(fd, &loop)
            }
            return
        }
    }

    /// Splices the bytes in the pipe back to the peer. Returns true when all went out; otherwise
    /// the connection holds the rest and waits for room, or was closed.
    @inline(__always)
    private mutating func spliceOut(_ fd: Int32, _ connection: UnsafeMutablePointer<SpliceConnection>,
                                    _ loop: inout LoopContext) -> Bool {
        let readEnd = pipes.readEnd(connection.pointee.pipe)
        while true {
            let count = Int(connection.pointee.held)
            let outcome = SystemCall.outcome { clinux_splice(readEnd, fd, count) }
            loop.statistics[.splice] &+= 1
            let sent = outcome.value
            if sent == count {
                loop.statistics[.bytesSent] &+= UInt64(truncatingIfNeeded: sent)
                connection.pointee.held = 0
                return true
            }
            if sent >= 0 {
                // The socket's send buffer is full: a second try now would only see EAGAIN.
                loop.statistics[.bytesSent] &+= UInt64(truncatingIfNeeded: sent)
                connection.pointee.held -= Int32(truncatingIfNeeded: sent)
                hold(fd, connection, &loop)
                return false
            }
            switch outcome.error {
            case EINTR:
                continue
            case EAGAIN:
                hold(fd, connection, &loop)
            default:  // EPIPE, ECONNRESET, …
                close(fd, &loop)
            }
            return false
        }
    }

    /// The socket has room: splices what the pipe holds; once it is empty, reads again.
    mutating func flushPipe(_ fd: Int32, _ connection: UnsafeMutablePointer<SpliceConnection>, _ loop: inout LoopContext) {
        guard spliceOut(fd, connection, &loop) else { return }
        loop.idle.touch(fd)  // the peer took its bytes
        connection.pointee.state = .waiting
        spliceIn(fd, connection, &loop)
    }
}
