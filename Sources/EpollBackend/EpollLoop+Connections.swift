import Backend
import CLinux

#if canImport(Glibc)
import Glibc
import EchoSupport
#endif

extension EpollLoop {
    /// Serves one event of the connection `token` names; drops it if that connection is gone.
    ///
    /// A reading connection reads, a writing one sends what it holds. `EPOLLERR` and `EPOLLHUP` need
    /// no case of their own: the read or send they lead to returns the error or the end of stream.
    @inline(__always)
    mutating func serve(_ token: EventToken, events: UInt32) {
        guard let connection = connections.connection(for: token) else { return }
        switch connection.pointee.state {
        case .reading: read(token.descriptor, connection, events: events)
        case .writing:
            if connection.pointee.pipe >= 0 {
                flushPipe(token.descriptor, connection, events: events)
            } else {
                flush(token.descriptor, connection, events: events)
            }
        case .closed: break
        }
    }

    /// Echoes what a readable connection has: through a pipe when the loop splices, else by copy.
    @inline(__always)
    mutating func read(_ descriptor: Int32, _ connection: UnsafeMutablePointer<Connection>, events: UInt32) {
        if splicing {
            receiveSpliced(descriptor, connection, events: events)
        } else {
            receive(descriptor, connection, events: events)
        }
    }

    /// Reads into the shared buffer and echoes each chunk at once.
    ///
    /// A read that returns less than the buffer means the socket is drained for now, so the loop
    /// moves on without the extra `read` that would only report `EAGAIN`. A full read may have left
    /// more, so it reads again, up to ``readsPerEvent`` times. It stops as soon as an echo cannot go
    /// out whole (the connection then holds the rest and waits to write).
    mutating func receive(_ descriptor: Int32, _ connection: UnsafeMutablePointer<Connection>, events: UInt32) {
        var reads = 0
        while true {
            let outcome = SystemCall.outcome { Glibc.read(descriptor, readBuffer, bufferSize) }
            let count = outcome.value
            statistics[.read] += 1
            if count > 0 {
                statistics[.requests] &+= 1
                idle.touch(descriptor)
                statistics[.bytesReceived] &+= UInt64(truncatingIfNeeded: count)
                guard echo(descriptor, connection, count: count) else { return }
                reads += 1
                if reads == readsPerEvent { return }
                // A short read drained the socket, unless the peer's FIN waits behind the bytes
                // (EPOLLRDHUP, asked for when edge-triggered): then read on to the end of stream.
                if count < bufferSize && events & EPOLLRDHUP.rawValue == 0 { return }
            } else if count == 0 {
                // End of stream. Nothing is pending: a connection holding bytes does not read.
                closeConnection(descriptor, connection)
                return
            } else {
                switch outcome.error {
                case EINTR:
                    continue
                case EAGAIN:
                    // Readiness without data; an error or hang-up that reads no further would be
                    // reported again at once, so it ends the connection.
                    if events & Interest.errorOrHangUp != 0 { closeConnection(descriptor, connection) }
                    return
                default:  // ECONNRESET, ETIMEDOUT, …
                    closeConnection(descriptor, connection)
                    return
                }
            }
        }
    }

    /// Sends the `count` bytes just read back to the peer.
    ///
    /// Returns `true` when all went out. Otherwise the connection either holds the rest and waits
    /// to write, or was closed on an error; either way it must not read now.
    @inline(__always)
    private mutating func echo(_ descriptor: Int32, _ connection: UnsafeMutablePointer<Connection>,
                               count: Int) -> Bool {
        while true {
            let outcome = SystemCall.outcome { Glibc.send(descriptor, readBuffer, count, Self.sendFlags) }
            let sent = outcome.value
            statistics[.write] += 1
            if sent == count {
                statistics[.bytesSent] &+= UInt64(truncatingIfNeeded: count)
                return true
            }
            if sent >= 0 {
                // The socket's send buffer is full: a second try now would only see EAGAIN.
                statistics[.bytesSent] &+= UInt64(truncatingIfNeeded: sent)
                hold(descriptor, connection, readBuffer + sent, count: count - sent)
                return false
            }
            switch outcome.error {
            case EINTR:
                continue
            case EAGAIN:
                hold(descriptor, connection, readBuffer, count: count)
            default:  // EPIPE, ECONNRESET, …
                closeConnection(descriptor, connection)
            }
            return false
        }
    }

    /// Keeps the `count` unsent bytes at `bytes` and switches the connection to waiting for
    /// `EPOLLOUT` only: it reads nothing more until they are sent.
    private mutating func hold(_ descriptor: Int32, _ connection: UnsafeMutablePointer<Connection>,
                               _ bytes: UnsafeRawPointer, count: Int) {
        let buffer = pendingBuffers.take()
        buffer.copyMemory(from: bytes, byteCount: count)
        connection.pointee.pending = buffer
        connection.pointee.pendingStart = 0
        connection.pointee.pendingEnd = Int32(count)
        waitToWrite(descriptor, connection)
    }

    /// Switches a connection that holds unsent bytes (in its pending buffer or its pipe) to
    /// waiting for `EPOLLOUT` only: it reads nothing more until they are out.
    mutating func waitToWrite(_ descriptor: Int32, _ connection: UnsafeMutablePointer<Connection>) {
        connection.pointee.state = .writing
        let token = EventToken(descriptor: descriptor, generation: connection.pointee.generation)
        if control(EPOLL_CTL_MOD, descriptor, interest: .write, token: token) != 0 {
            closeConnection(descriptor, connection)
        }
    }

    /// What a writing connection's failed send (or splice) means: `true` to try again at once
    /// (`EINTR`); otherwise it keeps waiting for `EPOLLOUT` (`EAGAIN`), or is closed (`EAGAIN`
    /// with the peer gone, or any other error).
    @inline(__always)
    mutating func retriesFailedFlush(_ error: Int32, _ descriptor: Int32, _ connection: UnsafeMutablePointer<Connection>,
                                     events: UInt32) -> Bool {
        switch error {
        case EINTR:
            return true
        case EAGAIN:
            if events & Interest.errorOrHangUp != 0 { closeConnection(descriptor, connection) }
        default:
            closeConnection(descriptor, connection)
        }
        return false
    }

    /// Sends what a writing connection holds. Once all of it is out, the connection reads again.
    private mutating func flush(_ descriptor: Int32, _ connection: UnsafeMutablePointer<Connection>, events: UInt32) {
        guard let pending = connection.pointee.pending else { return }
        while true {
            let start = Int(connection.pointee.pendingStart)
            let remaining = connection.pointee.pendingCount
            let outcome = SystemCall.outcome { Glibc.send(descriptor, pending + start, remaining, Self.sendFlags) }
            let sent = outcome.value
            statistics[.write] += 1
            if sent == remaining {
                statistics[.bytesSent] &+= UInt64(truncatingIfNeeded: sent)
                resumeReading(descriptor, connection, events: events)
                return
            }
            if sent >= 0 {
                statistics[.bytesSent] &+= UInt64(truncatingIfNeeded: sent)
                connection.pointee.pendingStart += Int32(sent)
                if sent > 0 { idle.touch(descriptor) }  // the peer takes its bytes: not idle
                return
            }
            if retriesFailedFlush(outcome.error, descriptor, connection, events: events) { continue }
            return
        }
    }

    /// Gives back the pending buffer of a connection that sent it all, and reads again.
    ///
    /// The connection stopped reading because its peer sent faster than it read, so data is all
    /// but certainly waiting: it is read at once rather than after another wait. A peer that
    /// half-closed gets every byte first and the connection closes at that read's end of stream.
    mutating func resumeReading(_ descriptor: Int32, _ connection: UnsafeMutablePointer<Connection>,
                                events: UInt32) {
        if let pending = connection.pointee.pending { pendingBuffers.give(pending) }
        connection.pointee.pending = nil
        connection.pointee.pendingStart = 0
        connection.pointee.pendingEnd = 0
        connection.pointee.state = .reading
        let token = EventToken(descriptor: descriptor, generation: connection.pointee.generation)
        guard control(EPOLL_CTL_MOD, descriptor, interest: .read, token: token) == 0 else {
            closeConnection(descriptor, connection)
            return
        }
        read(descriptor, connection, events: events & (Interest.errorOrHangUp | EPOLLRDHUP.rawValue))
    }

    /// Closes a connection, gives back its pending buffer or pipe and frees its slot. Closing the
    /// descriptor also takes it out of the epoll set: the loop never duplicates descriptors.
    mutating func closeConnection(_ descriptor: Int32, _ connection: UnsafeMutablePointer<Connection>) {
        if let pending = connection.pointee.pending { pendingBuffers.give(pending) }
        releasePipe(connection)
        connections.release(descriptor)
        _ = Glibc.close(descriptor)
        pipes.descriptorsFreed()
        statistics[.close] += 1
        statistics[.connectionsClosed] += 1
        closedThisTurn = true
    }

    /// Closes every connection silent for longer than the idle timeout (at each tick). A
    /// connection that holds bytes its peer has not read for that long is closed too.
    mutating func closeIdleConnections() {
        var cursor: Int32 = 0
        while let descriptor = idle.nextExpired(from: &cursor) {
            guard let connection = connections.openConnection(on: descriptor) else { continue }
            closeConnection(descriptor, connection)
            statistics[.closedIdle] &+= 1
        }
    }

    /// Closes every open connection (at stop, or when the loop fails).
    mutating func closeAllConnections() {
        var descriptor: Int32 = 0
        while connections.openCount > 0 && descriptor <= connections.highestDescriptor {
            if let connection = connections.openConnection(on: descriptor) {
                closeConnection(descriptor, connection)
            }
            descriptor += 1
        }
    }
}
