/// Buffer ownership in the multishot mode: references, and which free buffers the kernel sees.
///
/// With incremental consumption, a few large buffers serve every connection, and the kernel fills
/// them in ring order. Putting the whole pool in the ring would cycle every receive through all of
/// it (16 MiB by default), far beyond the core's cache, where epoll reads into one buffer that
/// stays hot. So the ring holds only ``ringTarget`` buffers; the other free ones wait in a stack,
/// most recently freed on top, and refill the ring at the end of each turn. A connection starved
/// of buffers doubles the target (up to the pool); a long quiet spell halves it again.
extension MultishotMode {
    /// Buffers the ring holds when the pool is not all in use, with incremental consumption.
    static var smallestRingTarget: Int { 8 }
    /// Turns without a starved connection after which the ring target halves.
    static var quietTurnsBeforeShrinking: Int { 4096 }

    /// Drops one reference to buffer `id`; the last one frees it.
    @inline(__always)
    mutating func unreference(_ id: UInt16) {
        references[Int(id)] &-= 1
        if references[Int(id)] == 0 { recycle(id) }
    }

    /// Buffer `id` is free: whole again, into the ring if it is below its target (the kernel's
    /// from the end of the turn), else on top of the spare stack.
    @inline(__always)
    mutating func recycle(_ id: UInt16) {
        filled[Int(id)] = 0
        if buffersInRing < ringTarget {
            supply(id)
        } else {
            spare[spareCount] = id
            spareCount &+= 1
        }
    }

    /// Puts buffer `id` in the ring, referenced by the kernel.
    @inline(__always)
    private mutating func supply(_ id: UInt16) {
        references[Int(id)] = 1
        bufferRing.add(id, address: pool.address(of: id), length: pool.bufferSize)
        buffersInRing &+= 1
    }

    /// End of turn: refills the ring up to its target from the spare stack, hottest first, and
    /// adapts the target (see the type's notes).
    @inline(__always)
    mutating func refillRing(starvedThisTurn: Bool) {
        guard incremental else { return }  // whole buffers: the whole pool is in the ring
        if starvedThisTurn {
            ringTarget = min(ringTarget * 2, pool.count)
            quietTurns = 0
        } else if ringTarget > Self.smallestRingTarget {
            quietTurns &+= 1
            if quietTurns >= Self.quietTurnsBeforeShrinking {
                ringTarget /= 2
                quietTurns = 0
            }
        }
        while buffersInRing < ringTarget && spareCount > 0 {
            spareCount &-= 1
            supply(spare[spareCount])
        }
    }
}
