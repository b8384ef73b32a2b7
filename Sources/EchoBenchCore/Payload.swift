#if canImport(Glibc)
import Glibc
#endif

/// The bytes of every message, computed on the fly from (connection, request number, position).
///
/// Message `sequence` of connection `connection` is a run of little-endian 64-bit words: word `j`
/// is `seed &+ j &* step`, where `seed` hashes the pair. Any byte can be computed from its position,
/// so a partial send or a partial read regenerates just the words it covers, into a buffer the
/// loop shares across connections: no per-connection buffer, no copy of what was sent.
///
/// A server that echoes a previous message (stale bytes), another connection's bytes, or the
/// right bytes at the wrong offset differs from the expected words at every position.
public enum Payload {
    /// The odd constant words advance by (2^64 / φ).
    static let step: UInt64 = 0x9E37_79B9_7F4A_7C15

    /// The seed of one message: splitmix64's finalizer over the connection and the request number.
    @inline(__always)
    public static func seed(connection: UInt32, sequence: UInt64) -> UInt64 {
        var z = (UInt64(connection) << 40) ^ sequence ^ 0x5EED_0F_EC40_BE4C
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// Writes the words covering bytes `[firstWord * 8, firstWord * 8 + byteCount)` of the message
    /// `seed` names to `buffer`, rounded up to whole words: the buffer needs `byteCount + 7` bytes.
    @inline(__always)
    public static func fill(_ buffer: UnsafeMutableRawPointer, seed: UInt64, firstWord: Int, byteCount: Int) {
        let words = (byteCount + 7) >> 3
        var value = seed &+ UInt64(truncatingIfNeeded: firstWord) &* step
        var offset = 0
        for _ in 0..<words {
            buffer.storeBytes(of: value.littleEndian, toByteOffset: offset, as: UInt64.self)
            value &+= step
            offset &+= 8
        }
    }

    /// Writes bytes `[position, position + count)` of connection `connection`'s byte stream, in
    /// which message `m` (request `m + 1`) fills `[m * length, (m + 1) * length)`, to `buffer`, and
    /// returns the offset in `buffer` where they start (0 to 7: generation is by whole words).
    ///
    /// Pipelined and streamed sends and reads span several messages; each segment is generated
    /// after the previous one, whose up to 7 spilled bytes it overwrites. The buffer needs
    /// `count + 16` bytes.
    @inline(__always)
    public static func fill(_ buffer: UnsafeMutableRawPointer, connection: UInt32, from position: UInt64,
                            count: Int, length: Int) -> Int {
        let messageLength = UInt64(truncatingIfNeeded: length)
        var message = position / messageLength
        var offset = Int(truncatingIfNeeded: position &- message &* messageLength)
        let head = offset & 7
        var written = 0
        while written < count {
            let size = min(length &- offset, count &- written)
            let lead = offset & 7
            fill(buffer + (head &+ written &- lead), seed: seed(connection: connection, sequence: message &+ 1),
                 firstWord: offset >> 3, byteCount: lead &+ size)
            written &+= size
            message &+= 1
            offset = 0
        }
        return head
    }

    /// The byte at `position` of the message `seed` names.
    public static func byte(seed: UInt64, at position: Int) -> UInt8 {
        let word = seed &+ UInt64(truncatingIfNeeded: position >> 3) &* step
        return UInt8(truncatingIfNeeded: word >> (UInt64(position & 7) << 3))
    }

    /// The whole message, as an array (for tests and tools; the loop never allocates one).
    public static func message(connection: UInt32, sequence: UInt64, length: Int) -> [UInt8] {
        let seed = seed(connection: connection, sequence: sequence)
        return (0..<length).map { byte(seed: seed, at: $0) }
    }
}
