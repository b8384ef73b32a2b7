import URingBackend

/// The scarcity the tests inject into an io_uring server: 8 SQ and 8 CQ entries (the smallest pair
/// the kernel accepts, since the CQ may not be smaller than the SQ) and eight 512-byte buffers.
///
/// It sizes the server's resources and leaves its design as it is. The Swift suite squeezes a
/// configuration's options with it; the kernel checks add ``arguments`` to a named configuration's
/// flags (from `echo --list-variants --json`).
public enum Scarcity {
    /// Shrinks `options`' rings and buffer pool to the scarcity.
    public static func squeeze(_ options: inout URingBackend.Options) {
        options.ringEntries = 8
        options.completionQueueEntries = 8
        options.bufferCount = 8
        options.bufferSize = 512
    }

    /// The `echo` flags that apply the scarcity, written by the options' own flag writer.
    public static var arguments: [String] {
        let standard = URingBackend.Options().arguments(negotiating: true)
        var squeezed = URingBackend.Options()
        squeeze(&squeezed)
        let all = squeezed.arguments(negotiating: true)
        precondition(all.starts(with: standard), "the scarcity changes more than sizes: \(all)")
        return Array(all.dropFirst(standard.count))
    }
}
