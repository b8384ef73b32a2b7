/// Buffers for bytes a peer has not taken yet, one read's worth each, handed to connections
/// only while they hold unsent data.
///
/// Most connections never need one: in request–response traffic every echo goes out whole. A
/// connection takes a buffer when a send comes up short and gives it back once the last byte is
/// out, so memory follows the number of connections held up right now, not the number open. A few
/// returned buffers are kept for the next connection that needs one, so a stream that fills its
/// socket over and over does not allocate each time.
public struct PendingBufferPool: ~Copyable {
    /// Bytes in each buffer.
    public let bufferSize: Int
    private let cache: UnsafeMutablePointer<UnsafeMutableRawPointer>
    private let cacheCapacity: Int
    private var cachedCount = 0

    /// Buffers are aligned like this, enough for any vectorized copy.
    private static let alignment = 64
    /// At most this many bytes of returned buffers are kept (and never fewer than one buffer).
    private static let cachedBytesLimit = 4 << 20
    /// At most this many returned buffers are kept.
    private static let cachedBuffersLimit = 64

    /// A pool of `bufferSize`-byte buffers.
    public init(bufferSize: Int) {
        precondition(bufferSize > 0)
        self.bufferSize = bufferSize
        cacheCapacity = max(1, min(Self.cachedBuffersLimit, Self.cachedBytesLimit / bufferSize))
        cache = .allocate(capacity: cacheCapacity)
    }

    deinit {
        for index in 0..<cachedCount { cache[index].deallocate() }
        cache.deallocate()
    }

    /// A buffer of ``bufferSize`` bytes: a kept one if there is one, else a new one.
    public mutating func take() -> UnsafeMutableRawPointer {
        if cachedCount > 0 {
            cachedCount -= 1
            return cache[cachedCount]
        }
        return .allocate(byteCount: bufferSize, alignment: Self.alignment)
    }

    /// Gives back a buffer from ``take()``.
    public mutating func give(_ buffer: UnsafeMutableRawPointer) {
        if cachedCount < cacheCapacity {
            cache[cachedCount] = buffer
            cachedCount += 1
        } else {
            buffer.deallocate()
        }
    }
}
