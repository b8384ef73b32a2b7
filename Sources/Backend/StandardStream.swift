#if canImport(Glibc)
import Glibc
#endif

/// Whole writes to standard output and error without Foundation, for the command-line tools'
/// messages (`echo`'s and `echo-bench`'s), and `echo-bench`'s helper processes' reports.
public enum StandardStream {
    /// Writes `text` to `descriptor`, retrying short writes and `EINTR`; gives up on other errors.
    public static func write(_ text: String, to descriptor: Int32) {
        var text = text
        text.withUTF8 { bytes in
            guard let base = bytes.baseAddress else { return }
            var offset = 0
            while offset < bytes.count {
                let written = SystemCall.outcome(retryingInterrupts: true) {
                    Glibc.write(descriptor, base + offset, bytes.count - offset)
                }
                guard written.value > 0 else { return }
                offset += written.value
            }
        }
    }
}
