#if canImport(Glibc)
import Glibc
#endif

/// How `--idle` connections are spread: which of them this process holds, which ranges helper
/// processes hold, and how many share a source address.
///
/// A process can hold what its descriptor limit leaves (`RLIMIT_NOFILE`, raised to the hard limit
/// first), and one source address can open about as many connections to one server address as
/// the local port range has ports. Idle connections are numbered `0..<idle`; connection `k` binds
/// to 127.0.0.(2 + k / perSource) when spreading (the server must be on 127.0.0.0/8).
public struct IdlePlan: Sendable, Equatable {
    /// Idle connections in all.
    public var idle: Int
    /// The idle connections this process holds.
    public var local: Range<Int>
    /// The idle connections each helper process holds.
    public var helpers: [Range<Int>]
    /// Idle connections per source address, 0 when they keep the kernel's choice.
    public var perSource: Int

    /// Source addresses the idle connections use.
    public var sources: Int {
        guard idle > 0 else { return 0 }
        return perSource == 0 ? 1 : (idle + perSource - 1) / perSource
    }

    /// - Parameters:
    ///   - connections, threads: the measured connections and loops, which this process holds too.
    ///   - descriptorLimit: a process's descriptor limit; `reserved` of them are kept for other uses.
    ///   - perProcess: at most this many idle connections in one process (`--idle-per-process`).
    ///   - perSource: connections per source address (`--idle-per-source`); nil to spread only when
    ///     the connections to the server would exceed `portsPerSource`.
    ///   - loopbackIPv4: whether the server is on 127.0.0.0/8 (elsewhere no spreading is possible).
    public init(idle: Int, connections: Int, threads: Int, descriptorLimit: Int, reserved: Int,
                perProcess: Int?, perSource: Int?, portsPerSource: Int, loopbackIPv4: Bool) {
        self.idle = idle
        if !loopbackIPv4 || idle == 0 {
            self.perSource = 0
        } else if let perSource {
            self.perSource = perSource
        } else {
            self.perSource = connections + idle > portsPerSource ? max(portsPerSource, 1) : 0
        }
        var helperCapacity = max(descriptorLimit - reserved, 1)
        var localCapacity = max(descriptorLimit - reserved - connections - threads, 0)
        if let perProcess {
            helperCapacity = min(helperCapacity, perProcess)
            localCapacity = min(localCapacity, perProcess)
        }
        local = 0..<min(idle, localCapacity)
        helpers = []
        var next = local.upperBound
        while next < idle {
            let end = min(next + helperCapacity, idle)
            helpers.append(next..<end)
            next = end
        }
    }

    /// Ports one source address can use towards one server address: 90% of
    /// `/proc/sys/net/ipv4/ip_local_port_range` (the kernel may keep some back), or 25,000 when it
    /// cannot be read.
    public static func portsPerSource() -> Int {
        let fd = open("/proc/sys/net/ipv4/ip_local_port_range", O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return 25_000 }
        defer { close(fd) }
        var bytes = [UInt8](repeating: 0, count: 64)
        let count = bytes.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        guard count > 0 else { return 25_000 }
        let numbers = String(decoding: bytes[0..<count], as: UTF8.self).split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\n" })
            .compactMap { Int($0) }
        guard numbers.count == 2, numbers[1] >= numbers[0] else { return 25_000 }
        return (numbers[1] - numbers[0] + 1) * 9 / 10
    }
}
