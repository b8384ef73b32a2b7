
#if canImport(Glibc)
import Glibc
import EchoSupport
#endif

/// Why a benchmark could not run. ``description`` is one readable line.
public enum BenchmarkError: Error, Equatable, CustomStringConvertible, Sendable {
    /// A value of the configuration is out of range (a usage error).
    case invalidConfiguration(String)
    /// The host did not resolve to an address.
    case cannotResolve(host: String, reason: String)
    /// Not one connection could be established; `errno` is the first failure's.
    case cannotConnect(endpoint: String, errno: Int32)
    /// The process may not open enough descriptors for the connections asked for.
    case descriptorLimit(needed: Int, limit: Int)
    /// A system call the generator needs failed.
    case system(EchoError)

    public var description: String {
        switch self {
        case .invalidConfiguration(let message):
            return message
        case .cannotResolve(let host, let reason):
            return "cannot resolve '\(host)': \(reason)"
        case .cannotConnect(let endpoint, let code):
            return "cannot connect to \(endpoint): \(EchoError.message(for: code))"
        case .descriptorLimit(let needed, let limit):
            return "\(needed) descriptors needed but the limit is \(limit) (RLIMIT_NOFILE's hard limit): "
                + "use fewer connections or raise 'ulimit -Hn'"
        case .system(let error):
            return error.description
        }
    }
}
