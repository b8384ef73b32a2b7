/// The multishot mode's send queues: each connection's filled buffers, oldest first, linked
/// through the per-buffer `bufferNext` array (no allocation), sent one at a time.
extension MultishotMode {
    @inline(__always)
    mutating func enqueue(_ id: UInt16, length: Int32, on fd: Int32) {
        let connection = connections[fd]
        bufferLength[Int(id)] = length
        bufferNext[Int(id)] = -1
        if connection.pointee.queueTail >= 0 {
            bufferNext[Int(connection.pointee.queueTail)] = Int32(id)
        } else {
            connection.pointee.queueHead = Int32(id)
        }
        connection.pointee.queueTail = Int32(id)
        connection.pointee.queued &+= 1
    }

    @inline(__always)
    mutating func dequeueHead(of fd: Int32) {
        let connection = connections[fd]
        let id = UInt16(truncatingIfNeeded: connection.pointee.queueHead)
        connection.pointee.queueHead = bufferNext[Int(id)]
        if connection.pointee.queueHead < 0 { connection.pointee.queueTail = -1 }
        connection.pointee.queued &-= 1
        connection.pointee.sendOffset = 0
        release(id)
    }

    /// Sends the head of the connection's queue, from its first byte.
    @inline(__always)
    mutating func sendHead(of fd: Int32, _ loop: inout LoopContext) {
        let connection = connections[fd]
        connection.pointee.send = .sending
        connection.pointee.sendOffset = 0
        armSend(fd, buffer: UInt16(truncatingIfNeeded: connection.pointee.queueHead), &loop)
    }

    /// A buffer whose bytes are all sent: back to the ring, or after its zero-copy notifications.
    @inline(__always)
    mutating func release(_ id: UInt16) {
        if pendingNotifications[Int(id)] > 0 {
            releaseOnNotification[Int(id)] = true
        } else {
            recycle(id)
        }
    }

    /// Puts buffer `id` back in the ring, visible to the kernel at the end of the turn.
    @inline(__always)
    mutating func recycle(_ id: UInt16) {
        bufferRing.add(id, address: pool.address(of: id), length: pool.bufferSize)
        buffersInRing &+= 1
    }
}
