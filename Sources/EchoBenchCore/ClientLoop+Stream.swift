/// `--stream`: each connection keeps up to its window of bytes in flight, sending as echoes come
/// back, and every byte is verified like any other.
///
/// Bytes echoed in the window are counted (the report's requests are those bytes over `--length`).
/// Latency is sampled: a send records the position of its last byte and the time, for up to
/// ``streamSamples`` sends in flight per connection, and the read that brings that byte back
/// records the difference.
extension ClientLoop {
    /// Takes a latency sample for the send that just ended at connection `slot`'s `bytesSent`.
    @inline(__always)
    func sampleSend(_ slot: Int, _ connection: UnsafeMutablePointer<ClientConnection>) {
        let taken = connection.pointee.issued
        guard taken &- connection.pointee.samplesDone < UInt64(Self.streamSamples) else { return }
        let index = ring(slot, taken)
        samplePositions[index] = connection.pointee.bytesSent
        times[index] = ProcessClock.monotonic()
        connection.pointee.issued = taken &+ 1
    }

    /// `count` more bytes of connection `slot` came back and matched: counts them and completes
    /// the samples they reach. Returns false once the window has closed (the loop stops).
    @inline(__always)
    mutating func streamed(_ slot: Int, _ connection: UnsafeMutablePointer<ClientConnection>, count: UInt64) -> Bool {
        let now = ProcessClock.monotonic()
        if now >= windowEnd {
            windowClosed = true
            return false
        }
        let counted = now >= warmupEnd
        if counted { tally.streamBytes &+= count }
        let received = connection.pointee.bytesReceived
        var done = connection.pointee.samplesDone
        while done < connection.pointee.issued && samplePositions[ring(slot, done)] <= received {
            if counted { Self.record(&tally.latency, from: times[ring(slot, done)], to: now) }
            done &+= 1
        }
        connection.pointee.samplesDone = done
        return true
    }

    /// When connection `slot`'s oldest latency sample still waiting was taken, or nil when none is.
    func oldestSample(_ slot: Int, _ connection: UnsafeMutablePointer<ClientConnection>) -> UInt64? {
        let oldest = connection.pointee.samplesDone
        return oldest < connection.pointee.issued ? times[ring(slot, oldest)] : nil
    }
}
