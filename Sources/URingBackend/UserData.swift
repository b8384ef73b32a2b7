/// What a completion is about, packed into the 64-bit `user_data` of its submission.
///
/// Layout: bits 56–63 the operation, bits 32–47 a buffer id (or a count of buffers),
/// bits 0–31 the file descriptor. Decoding is shifts and masks: no lookup, no heap.
struct UserData: Equatable {
    /// The request a completion belongs to.
    enum Operation: UInt8, CaseIterable {
        case accept = 1
        case acceptRetry
        case recv
        case send
        case provideBuffers
        case stop
        /// Requests whose completion needs no handling (direct closes, shutdowns).
        case ignored
        /// The test hook's trigger fired (see ``RingFaultInjection``).
        case injectedFault
        /// The idle timeout's timer fired.
        case tick
        /// A cancel of a connection's receive found nothing it could stop (its success is silent).
        case receiveCancel
        /// A connection's readiness poll (`--splice`); ``UserData/buffer`` carries its generation.
        case poll
        /// A connection's poll for room to send what its pipe holds (`--splice`).
        case pollOut
        /// A splice from a connection into its pipe (`--splice linked`).
        case spliceIn
        /// A splice from a connection's pipe back to it (`--splice linked`).
        case spliceOut
        /// The splice loop's timer for closing idle pipes fired.
        case pipeTimer
    }

    let rawValue: UInt64

    @inline(__always)
    init(rawValue: UInt64) { self.rawValue = rawValue }

    @inline(__always)
    init(_ operation: Operation, fd: Int32 = 0, buffer: UInt16 = 0) {
        rawValue = UInt64(operation.rawValue) << 56 | UInt64(buffer) << 32 | UInt64(UInt32(bitPattern: fd))
    }

    /// The operation, or `nil` for a value this loop did not submit.
    @inline(__always)
    var operation: Operation? { Operation(rawValue: UInt8(truncatingIfNeeded: rawValue >> 56)) }

    @inline(__always)
    var fd: Int32 { Int32(bitPattern: UInt32(truncatingIfNeeded: rawValue)) }

    @inline(__always)
    var buffer: UInt16 { UInt16(truncatingIfNeeded: rawValue >> 32) }
}
