#if canImport(Glibc)
import Glibc
#endif

/// Everything that can go wrong in a backend or the server around it.
///
/// Each case carries what a person needs to act on it; ``description`` is one readable line.
public enum EchoError: Error, Equatable, CustomStringConvertible, Sendable {
    /// A system call failed: the call's name and the `errno` it left.
    case system(_ operation: String, errno: Int32)
    /// The address is taken by another socket.
    case addressInUse(host: String, port: Int)
    /// The host could not be resolved to an address to listen on.
    case invalidAddress(host: String, reason: String)
    /// io_uring cannot be used in this process (not built in, disabled, or forbidden).
    case uringUnavailable(reason: String)
    /// The running kernel lacks a feature this backend needs.
    case missingKernelFeature(String)
    /// An option's value is out of its range.
    case invalidConfiguration(String)
    /// The statistics file (`echo --stats-json PATH`) could not be written: its path and the
    /// error number of the call that failed.
    case statisticsFile(path: String, code: Int32)

    /// The `errno` behind this error, when there is one.
    public var errno: Int32? {
        switch self {
        case .system(_, let code), .statisticsFile(_, let code): return code
        case .addressInUse: return EADDRINUSE
        default: return nil
        }
    }

    public var description: String {
        switch self {
        case .system(let operation, let code):
            return "\(operation) failed: \(Self.message(for: code)) (errno \(code))"
        case .addressInUse(let host, let port):
            return "cannot listen on \(host):\(port): address already in use"
        case .invalidAddress(let host, let reason):
            return "cannot listen on '\(host)': \(reason)"
        case .uringUnavailable(let reason):
            return "io_uring is unavailable: \(reason); try --backend epoll"
        case .missingKernelFeature(let feature):
            return "the running kernel lacks \(feature)"
        case .invalidConfiguration(let message):
            return message
        case .statisticsFile(let path, let code):
            return "cannot write --stats-json file '\(path)': \(Self.message(for: code))"
        }
    }

    /// `strerror(code)` as a Swift string.
    public static func message(for code: Int32) -> String {
        guard let text = strerror(code) else { return "unknown error" }
        return String(cString: text)
    }
}
