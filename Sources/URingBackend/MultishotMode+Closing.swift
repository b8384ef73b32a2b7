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
        closeDescriptor(fd, &loop)
        loop.statistics[.connectionsClosed] &+= 1
    }

    func closeDescriptor(_ fd: Int32, _ loop: inout LoopContext) {
        if fixedFiles {
            let sqe = loop.submission()
            io_uring_prep_close_direct(sqe, UInt32(fd))
            sqe.pointee.flags |= UInt8(1 << IOSQE_CQE_SKIP_SUCCESS_BIT)
            sqe.pointee.user_data = UserData(.ignored, fd: fd).rawValue
        } else {
            _ = Glibc.close(fd)
            loop.statistics[.close] &+= 1
        }
    }

    /// Closes every open connection at once: its requests are cancelled when the ring is torn
    /// down, and the buffers they may write into live until then.
    mutating func closeAll(_ loop: inout LoopContext) {
        for fd in 0..<Int32(connections.capacity) where connections[fd].pointee.lifecycle != .free {
            connections[fd].pointee.lifecycle = .free
            closeDescriptor(fd, &loop)
            loop.statistics[.connectionsClosed] &+= 1
        }
        if fixedFiles {
            _ = io_uring_submit(loop.ring.raw)
            loop.statistics[.ioUringEnter] &+= 1
        }
    }
}
