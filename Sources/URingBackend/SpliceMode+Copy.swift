#if canImport(Glibc)
import Glibc
#endif
import Backend
import EchoSupport

/// The splice loop's copy path, for a connection that finds no pipe (the pool is at its bound, or
/// `pipe2` fails for lack of descriptors): `read` into the loop's one buffer and `send` straight
/// back, as the epoll loop's copy path does. Never dropped, never stalled.
extension SpliceMode {
    /// Reads and echoes until the socket is drained, the peer stops taking bytes (the rest waits
    /// in a pending buffer), or the connection ends.
    mutating func copyEcho(_ fd: Int32, _ connection: UnsafeMutablePointer<SpliceConnection>, _ loop: inout LoopContext) {
        let size = pipes.pipeSize
        while true {
            let outcome = SystemCall.outcome { Glibc.read(fd, copyBuffer, size) }
            loop.statistics[.read] &+= 1
            let count = outcome.value
            if count > 0 {
                loop.statistics[.requests] &+= 1
                loop.statistics[.bytesReceived] &+= UInt64(truncatingIfNeeded: count)
                loop.idle.touch(fd)
                guard copyOut(fd, connection, count: count, &loop) else { return }
                continue
            }
            if count == 0 {
                close(fd, &loop)
                return
            }
            switch outcome.error {
            case EINTR: continue
            case EAGAIN: return
            default: close(fd, &loop)
            }
            return
        }
    }

    /// Sends the `count` bytes just read. Returns true when all went out; otherwise the rest is
    /// held in a pending buffer (or the connection was closed).
    @inline(__always)
    private mutating func copyOut(_ fd: Int32, _ connection: UnsafeMutablePointer<SpliceConnection>, count: Int,
                                  _ loop: inout LoopContext) -> Bool {
        while true {
            let outcome = SystemCall.outcome { Glibc.send(fd, copyBuffer, count, Self.sendFlags) }
            loop.statistics[.write] &+= 1
            let sent = outcome.value
            if sent == count {
                loop.statistics[.bytesSent] &+= UInt64(truncatingIfNeeded: count)
                return true
            }
            if sent < 0 && outcome.error == EINTR { continue }
            if sent < 0 && outcome.error != EAGAIN {
                close(fd, &loop)
                return false
            }
            let taken = max(sent, 0)
            loop.statistics[.bytesSent] &+= UInt64(truncatingIfNeeded: taken)
            let buffer = pendingBuffers.take()
            buffer.copyMemory(from: copyBuffer + taken, byteCount: count - taken)
            connection.pointee.pending = buffer
            connection.pointee.pendingStart = 0
            connection.pointee.held = Int32(truncatingIfNeeded: count - taken)
            hold(fd, connection, &loop)
            return false
        }
    }

    /// The socket has room: sends what the pending buffer holds; once it is empty, reads again.
    mutating func flushPending(_ fd: Int32, _ connection: UnsafeMutablePointer<SpliceConnection>, _ loop: inout LoopContext) {
        guard let pending = connection.pointee.pending else { return }
        while true {
            let start = Int(connection.pointee.pendingStart)
            let remaining = Int(connection.pointee.held)
            let outcome = SystemCall.outcome { Glibc.send(fd, pending + start, remaining, Self.sendFlags) }
            loop.statistics[.write] &+= 1
            let sent = outcome.value
            if sent == remaining {
                loop.statistics[.bytesSent] &+= UInt64(truncatingIfNeeded: sent)
                loop.idle.touch(fd)
                pendingBuffers.give(pending)
                connection.pointee.pending = nil
                connection.pointee.held = 0
                resumeReading(fd, connection, &loop)
                return
            }
            if sent >= 0 {
                loop.statistics[.bytesSent] &+= UInt64(truncatingIfNeeded: sent)
                connection.pointee.pendingStart += Int32(truncatingIfNeeded: sent)
                connection.pointee.held -= Int32(truncatingIfNeeded: sent)
                if sent > 0 { loop.idle.touch(fd) }
                armWritable(fd, connection, &loop)
                return
            }
            switch outcome.error {
            case EINTR: continue
            case EAGAIN: armWritable(fd, connection, &loop)
            default: close(fd, &loop)
            }
            return
        }
    }
}
