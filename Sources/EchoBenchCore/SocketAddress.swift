import CLinux

#if canImport(Glibc)
import Glibc
import EchoSupport
#endif

/// A resolved server address, ready for `connect(2)`.
struct SocketAddress: @unchecked Sendable {
    var storage = sockaddr_storage()
    var length: socklen_t = 0
    var family: Int32 = AF_INET

    /// Resolves `host:port` to its first TCP address.
    static func resolve(host: String, port: Int) throws(BenchmarkError) -> SocketAddress {
        var hints = addrinfo()
        hints.ai_flags = AI_NUMERICSERV
        hints.ai_family = AF_UNSPEC
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var list: UnsafeMutablePointer<addrinfo>?
        let status = getaddrinfo(host, String(port), &hints, &list)
        guard status == 0, let first = list else {
            let reason = status == EAI_SYSTEM ? EchoError.message(for: SystemCall.lastError) : String(cString: gai_strerror(status))
            throw .cannotResolve(host: host, reason: reason)
        }
        defer { freeaddrinfo(list) }
        var address = SocketAddress()
        address.family = first.pointee.ai_family
        address.length = first.pointee.ai_addrlen
        withUnsafeMutableBytes(of: &address.storage) { target in
            target.copyMemory(from: UnsafeRawBufferPointer(start: first.pointee.ai_addr, count: Int(first.pointee.ai_addrlen)))
        }
        return address
    }

    /// `connect(2)` on `descriptor`: 0, or the `errno` it failed with.
    @inline(__always)
    func connect(_ descriptor: Int32) -> Int32 {
        var copy = storage
        return SystemCall.outcome {
            withUnsafePointer(to: &copy) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(descriptor, $0, length) }
            }
        }.error
    }
}

extension SocketAddress {
    /// The first source address idle connections spread over: 127.0.0.2 (127.0.0.1 stays the
    /// measured connections').
    static let firstLoopbackSource: UInt32 = 0x7F00_0002

    /// Binds `descriptor` to source address 127.0.0.2 + `index`, port 0, with
    /// `IP_BIND_ADDRESS_NO_PORT` so the kernel picks the port at connect time, for the whole
    /// 4-tuple: each source address then has the full local port range towards the server.
    /// Returns 0 or the `errno` it failed with.
    static func bindLoopbackSource(_ descriptor: Int32, index: Int) -> Int32 {
        var enabled: Int32 = 1
        _ = setsockopt(descriptor, Int32(IPPROTO_IP), IP_BIND_ADDRESS_NO_PORT, &enabled, socklen_t(MemoryLayout<Int32>.size))
        var source = sockaddr_in()
        source.sin_family = sa_family_t(AF_INET)
        source.sin_port = 0
        source.sin_addr.s_addr = (firstLoopbackSource &+ UInt32(truncatingIfNeeded: index)).bigEndian
        return SystemCall.outcome {
            withUnsafePointer(to: &source) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    bind(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
                }
            }
        }.error
    }

    /// Whether this is an IPv4 address in 127.0.0.0/8, where source addresses can be spread.
    var isLoopbackIPv4: Bool {
        guard family == AF_INET else { return false }
        var copy = storage
        return withUnsafePointer(to: &copy) {
            $0.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { UInt32(bigEndian: $0.pointee.sin_addr.s_addr) >> 24 == 127 }
        }
    }
}
