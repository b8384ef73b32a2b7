#if canImport(Glibc)
import Glibc
#endif
import Backend
import CLibUring

/// ``URingBackend/SpliceStrategy/linked``: `IORING_OP_SPLICE` pairs, run by the kernel in io-wq.
extension SpliceMode {
    /// Queues socket → pipe hard-linked to pipe → socket: the second runs once the first has
    /// completed, whatever it moved, and takes what is in the pipe (nothing, after an end of
    /// stream or an error: the pipe is non-blocking, so it fails with `EAGAIN`).
    mutating func submitPair(_ fd: Int32, _ connection: UnsafeMutablePointer<SpliceConnection>, _ loop: inout LoopContext) {
        loop.makeRoom(for: 2)
        let generation = connection.pointee.generation
        let size = UInt32(truncatingIfNeeded: pipes.pipeSize)
        let inward = loop.submission()
        io_uring_prep_splice(inward, fd, -1, pipes.writeEnd(connection.pointee.pipe), -1, size, Self.spliceFlags)
        inward.pointee.flags |= UInt8(1 << IOSQE_IO_HARDLINK_BIT)
        inward.pointee.user_data = UserData(.spliceIn, fd: fd, buffer: generation).rawValue
        let outward = loop.submission()
        io_uring_prep_splice(outward, pipes.readEnd(connection.pointee.pipe), -1, fd, -1, size, Self.spliceFlags)
        outward.pointee.user_data = UserData(.spliceOut, fd: fd, buffer: generation).rawValue
        connection.pointee.received = 0
        connection.pointee.state = .splicing
    }

    /// Queues a splice of what the pipe holds back to the peer (its socket has room).
    mutating func submitSpliceOut(_ fd: Int32, _ connection: UnsafeMutablePointer<SpliceConnection>,
                                  _ loop: inout LoopContext) {
        let sqe = loop.submission()
        io_uring_prep_splice(sqe, pipes.readEnd(connection.pointee.pipe), -1, fd, -1,
                             UInt32(truncatingIfNeeded: connection.pointee.held), Self.spliceFlags)
        sqe.pointee.user_data = UserData(.spliceOut, fd: fd, buffer: connection.pointee.generation).rawValue
        connection.pointee.sending = true
    }

    @inline(__always)
    mutating func spliced(on fd: Int32, tag: UInt16, outward: Bool, result: Int32, _ loop: inout LoopContext) {
        guard let connection = live(fd, tag) else { return }
        if !outward {
            // The pair's first half; the second completes next and settles the connection.
            connection.pointee.received = result
            if result > 0 {
                loop.statistics[.requests] &+= 1
                loop.statistics[.bytesReceived] &+= UInt64(result)
                loop.idle.touch(fd)
            }
            return
        }
        if result > 0 { loop.statistics[.bytesSent] &+= UInt64(result) }
        let failed = result < 0 && result != -EAGAIN && result != -EINTR
        switch connection.pointee.state {
        case .splicing:
            let received = connection.pointee.received
            if received == 0 || (received < 0 && received != -EAGAIN && received != -EINTR) || failed {
                connection.pointee.held = received > 0 ? received - max(result, 0) : 0
                close(fd, &loop)  // end of stream, reset, or a send that failed
                return
            }
            connection.pointee.held = max(received, 0) - max(result, 0)
            if connection.pointee.held > 0 {
                hold(fd, connection, &loop)
                return
            }
            releasePipe(connection, &loop)
            connection.pointee.state = .waiting
            armReadable(fd, connection, &loop)
        case .holding:
            connection.pointee.sending = false
            if failed {
                close(fd, &loop)
                return
            }
            if result > 0 {
                connection.pointee.held -= result
                loop.idle.touch(fd)
            }
            if connection.pointee.held > 0 {
                armWritable(fd, connection, &loop)
                return
            }
            releasePipe(connection, &loop)
            resumeReading(fd, connection, &loop)
        case .waiting, .closed:
            break
        }
    }
}
