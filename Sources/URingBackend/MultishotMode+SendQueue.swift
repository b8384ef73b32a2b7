/// The multishot mode's send queues: each connection's received bytes as slices, oldest first
/// (``SendSlices``, no allocation), sent at the end of each turn, several slices at once (see
/// ``GatherScratch``). Buffer references are in `MultishotMode+Buffers.swift`.
extension MultishotMode {
    /// Queues `length` received bytes at `offset` in buffer `id` on the connection: they extend
    /// its last slice when they follow it in the same buffer, or make a new slice that references
    /// the buffer.
    @inline(__always)
    mutating func enqueue(_ id: UInt16, offset: Int32, length: Int32, on fd: Int32) {
        let connection = connections[fd]
        let tail = connection.pointee.queueTail
        if tail >= 0 {
            let last = slices[tail]
            if last.buffer == id && last.offset &+ last.length == offset {
                slices[tail].length = last.length &+ length
                return
            }
        }
        references[Int(id)] &+= 1
        let index = slices.take(buffer: id, offset: offset, length: length)
        if tail >= 0 {
            slices[tail].next = index
        } else {
            connection.pointee.queueHead = index
        }
        connection.pointee.queueTail = index
        connection.pointee.queued &+= 1
    }

    /// `count` more bytes of the queue are sent: drops the slices sent whole and leaves the offset
    /// into the first one left.
    @inline(__always)
    mutating func advanceQueue(of fd: Int32, by count: Int32) {
        let connection = connections[fd]
        var offset = connection.pointee.sendOffset &+ count
        var index = connection.pointee.queueHead
        while index >= 0 {
            let slice = slices[index]
            guard offset >= slice.length else { break }
            offset &-= slice.length
            slices.give(index)
            unreference(slice.buffer)
            connection.pointee.queued &-= 1
            index = slice.next
        }
        connection.pointee.queueHead = index
        if index < 0 { connection.pointee.queueTail = -1 }
        connection.pointee.sendOffset = offset
    }

    /// Drops every queued slice of the connection; with `keepingHead`, all but the head, which a
    /// send in flight still reads.
    mutating func dropQueue(of fd: Int32, keepingHead: Bool) {
        let connection = connections[fd]
        var index = connection.pointee.queueHead
        guard index >= 0 else { return }
        if keepingHead {
            index = slices[index].next
            slices[connection.pointee.queueHead].next = -1
            connection.pointee.queueTail = connection.pointee.queueHead
            connection.pointee.queued = 1
        } else {
            connection.pointee.queueHead = -1
            connection.pointee.queueTail = -1
            connection.pointee.queued = 0
            connection.pointee.sendOffset = 0
        }
        while index >= 0 {
            let slice = slices[index]
            slices.give(index)
            unreference(slice.buffer)
            index = slice.next
        }
    }

    /// The connection has bytes to send and no send in flight: its send goes out at the end of
    /// the turn, with whatever else it receives meanwhile.
    @inline(__always)
    mutating func scheduleSend(_ fd: Int32) {
        connections[fd].pointee.send = .sending
        schedule.append(fd)
    }
}
