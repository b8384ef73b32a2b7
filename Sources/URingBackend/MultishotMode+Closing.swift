#if canImport(Glibc)
import Glibc
#endif
import CLibUring

/// Closing in the multishot mode: a connection is closed only once nothing of it is in flight, so
/// its descriptor cannot be reused under one of its requests.
extension MultishotMode {
    /// Marks the connection broken: queued bytes are dropped and its receive cancelled; it is
    /// closed by ``closeIfFinished(_:_:)`` once nothing of it is in flight.
    mutating func beginClosing(_ fd: Int32, _ loop: inout LoopContext) {
        let connection = connections[fd]
        guard connection.pointee.lifecycle.beginClosing() else { return }
        // Drop what waits to be sent, except the slice a send in flight still reads.
        dropQueue(of: fd, keepingHead: connection.pointee.send == .sending)
        if connection.pointee.isReceiving {
            loop.ring.cancelReceive(on: fd, enters: &loop.statistics[.ioUringEnter])
        }
    }

    /// Cancels the connection's multishot receive (back-pressure); it ends with `ECANCELED`.
    mutating func cancelReceive(on fd: Int32, _ loop: inout LoopContext) {
        loop.ring.cancelReceive(on: fd, enters: &loop.statistics[.ioUringEnter])
    }

    /// A cancel of the connection's receive failed; see ``MultishotConnection/cancelMissed()``.
    mutating func receiveCancelFailed(on fd: Int32, result: Int32, _ loop: inout LoopContext) {
        if connections[fd].pointee.cancelMissed() { loop.shutDown(descriptor(fd)) }
    }

    /// Closes the connection if it is done (see ``MultishotConnection/isFinished``).
    mutating func closeIfFinished(_ fd: Int32, _ loop: inout LoopContext) {
        let connection = connections[fd]
        guard connection.pointee.lifecycle != .free, connection.pointee.send == .idle else { return }
        if connection.pointee.lifecycle == .closing {
            // A send that failed or completed while closing left its slice at the head.
            dropQueue(of: fd, keepingHead: false)
        }
        guard connection.pointee.isFinished else { return }
        connection.pointee.lifecycle = .free
        loop.close(descriptor(fd))
        loop.statistics[.connectionsClosed] &+= 1
    }

    /// Ends a connection silent past the idle timeout: shut down, so whatever it has in flight
    /// completes, then closed like a broken one.
    mutating func closeIdle(_ fd: Int32, _ loop: inout LoopContext) -> Bool {
        guard connections.isLive(fd) else { return false }
        loop.shutDown(descriptor(fd))
        beginClosing(fd, &loop)
        closeIfFinished(fd, &loop)
        return true
    }

    /// Closes every open connection at once: its requests are cancelled when the ring is torn
    /// down, and the buffers they may write into live until then.
    mutating func closeAll(_ loop: inout LoopContext) {
        for fd in 0..<Int32(connections.capacity) where connections[fd].pointee.lifecycle != .free {
            connections[fd].pointee.lifecycle = .free
            loop.close(descriptor(fd))
            loop.statistics[.connectionsClosed] &+= 1
        }
        if accepts == .direct {  // the closes are queued requests: submit them before the ring goes
            _ = io_uring_submit(loop.ring.raw)
            loop.statistics[.ioUringEnter] &+= 1
        }
    }
}
