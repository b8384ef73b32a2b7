#if canImport(Glibc)
import Glibc
#endif
import CLinux

/// A bound TCP socket in the listening state, IPv4 or IPv6.
///
/// The value does not own the descriptor's lifetime on its own: whoever called ``bind(host:port:backlog:reusePort:)``
/// calls ``close()`` once the backend has returned.
public struct ListeningSocket: Sendable {
    /// The listening descriptor.
    public let fileDescriptor: Int32
    /// The host it was bound to, as given.
    public let host: String
    /// The port it is bound to (the kernel's choice when 0 was asked for).
    public let port: Int
    /// `AF_INET` or `AF_INET6`.
    public let family: Int32

    /// Resolves `host` (a numeric address or a name), binds a TCP socket to `host:port` with
    /// `SO_REUSEADDR` (and `SO_REUSEPORT` when asked) and `TCP_NODELAY` (which accepted sockets
    /// inherit) and starts listening with `backlog`.
    ///
    /// The socket is blocking and close-on-exec; backends switch it to non-blocking as they need.
    public static func bind(host: String, port: Int, backlog: Int32, reusePort: Bool = false) throws(EchoError) -> ListeningSocket {
        guard (0...65535).contains(port) else {
            throw .invalidConfiguration("invalid port \(port): must be 0...65535")
        }
        guard backlog > 0 else {
            throw .invalidConfiguration("invalid backlog \(backlog): must be at least 1")
        }
        var hints = addrinfo()
        hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV
        hints.ai_family = AF_UNSPEC
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var list: UnsafeMutablePointer<addrinfo>?
        let status = getaddrinfo(host, String(port), &hints, &list)
        guard status == 0, let first = list else {
            let reason = status == EAI_SYSTEM ? EchoError.message(for: SystemCall.lastError)
                                              : String(cString: gai_strerror(status))
            throw .invalidAddress(host: host, reason: reason)
        }
        defer { freeaddrinfo(list) }

        let family = first.pointee.ai_family
        let fd = try SystemCall.run("socket") { socket(family, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0) }
        do {
            try setOption(fd, SOL_SOCKET, SO_REUSEADDR, 1, name: "SO_REUSEADDR")
            if reusePort { try setOption(fd, SOL_SOCKET, SO_REUSEPORT, 1, name: "SO_REUSEPORT") }
            // Accepted sockets inherit TCP_NODELAY from the listener on Linux: one call here
            // instead of one per connection. An echo answers every request with one send, and
            // Nagle's algorithm would hold a second small send back for the peer's ACK.
            try setOption(fd, Int32(IPPROTO_TCP), TCP_NODELAY, 1, name: "TCP_NODELAY")
            let bound = SystemCall.outcome { Glibc.bind(fd, first.pointee.ai_addr, first.pointee.ai_addrlen) }
            if bound.failed {
                let code = bound.error
                if code == EADDRINUSE { throw EchoError.addressInUse(host: host, port: port) }
                if code == EADDRNOTAVAIL {
                    throw EchoError.invalidAddress(host: host, reason: "address not available on this machine")
                }
                if code == EACCES {
                    throw EchoError.invalidConfiguration("cannot listen on \(host):\(port): permission denied")
                }
                throw SystemCall.failure("bind", code: code)
            }
            try SystemCall.run("listen") { listen(fd, backlog) }
            return ListeningSocket(fileDescriptor: fd, host: host, port: try boundPort(fd), family: family)
        } catch {
            Glibc.close(fd)
            throw error as! EchoError
        }
    }

    /// Sets or clears `O_NONBLOCK`.
    public func setNonBlocking(_ nonBlocking: Bool) throws(EchoError) {
        let flags = try SystemCall.run("fcntl(F_GETFL)") { fcntl(fileDescriptor, F_GETFL) }
        let wanted = nonBlocking ? flags | O_NONBLOCK : flags & ~O_NONBLOCK
        try SystemCall.run("fcntl(F_SETFL)") { fcntl(fileDescriptor, F_SETFL, wanted) }
    }

    /// Closes the descriptor.
    public func close() {
        _ = Glibc.close(fileDescriptor)
    }

    private static func setOption(_ fd: Int32, _ level: Int32, _ option: Int32, _ value: Int32, name: String) throws(EchoError) {
        var value = value
        try SystemCall.run("setsockopt(\(name))") { setsockopt(fd, level, option, &value, socklen_t(MemoryLayout<Int32>.size)) }
    }

    private static func boundPort(_ fd: Int32) throws(EchoError) -> Int {
        var storage = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        try SystemCall.run("getsockname") {
            withUnsafeMutablePointer(to: &storage) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
            }
        }
        let family = Int32(storage.ss_family)
        return withUnsafePointer(to: &storage) { pointer -> Int in
            if family == AF_INET6 {
                return pointer.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { Int(UInt16(bigEndian: $0.pointee.sin6_port)) }
            }
            return pointer.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { Int(UInt16(bigEndian: $0.pointee.sin_port)) }
        }
    }
}
