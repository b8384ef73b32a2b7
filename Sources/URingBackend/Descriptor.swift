import CLibUring

/// A connection's descriptor as io_uring sees it: an ordinary file descriptor, or a direct
/// descriptor (an index in the ring's registered file table, from an accept into that table).
///
/// The two need different requests: a direct descriptor is named with `IOSQE_FIXED_FILE`, closed
/// with `IORING_OP_CLOSE` on its index, and shut down through the ring; an ordinary one with the
/// plain calls. A mode accepts one kind only (``LoopMode/accepts``) and keeps its connection tables
/// by ``number``; it makes the value where a request is prepared. Eight bytes, no reference
/// counting, every member inlined: it costs what the `Int32` and `Bool` it replaces cost.
struct Descriptor: Equatable {
    /// Which table ``Descriptor/number`` indexes.
    enum Kind: Equatable {
        /// The process's file table: a descriptor `close(2)` and `shutdown(2)` take.
        case ordinary
        /// The ring's registered file table (`IORING_FILE_INDEX_ALLOC` accepts into it).
        case direct
    }

    /// The descriptor, or the index in the ring's file table.
    let number: Int32
    let kind: Kind

    @inline(__always)
    init(_ number: Int32, _ kind: Kind) {
        self.number = number
        self.kind = kind
    }

    /// Whether ``number`` is an index in the ring's file table.
    @inline(__always)
    var isDirect: Bool { kind == .direct }

    /// Points `sqe`, already prepared with ``number``, at the right table: sets
    /// `IOSQE_FIXED_FILE` for a direct descriptor.
    @inline(__always)
    func target(_ sqe: UnsafeMutablePointer<io_uring_sqe>) {
        kind.target(sqe)
    }
}

extension Descriptor.Kind {
    /// Sets `IOSQE_FIXED_FILE` on `sqe` when descriptors of this kind are direct.
    @inline(__always)
    func target(_ sqe: UnsafeMutablePointer<io_uring_sqe>) {
        if self == .direct { sqe.pointee.flags |= UInt8(1 << IOSQE_FIXED_FILE_BIT) }
    }
}
