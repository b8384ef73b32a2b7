#if canImport(Glibc)
import Glibc
#endif

/// A Linux kernel's major and minor version: what the feature table and the start line compare.
public struct KernelVersion: Comparable, Hashable, Sendable, CustomStringConvertible {
    public let major: Int
    public let minor: Int

    /// The running kernel's release string, from `uname` (`6.1.0-28-amd64`); empty when unreadable.
    public static var runningRelease: String {
        var names = utsname()
        guard uname(&names) == 0 else { return "" }
        return withUnsafeBytes(of: &names.release) { raw in
            String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
        }
    }

    /// The running kernel's version; 0.0 when it cannot be read.
    public static var running: KernelVersion {
        KernelVersion(release: runningRelease) ?? KernelVersion(0, 0)
    }

    public init(_ major: Int, _ minor: Int) {
        self.major = major
        self.minor = minor
    }

    public init(major: Int, minor: Int) {
        self.init(major, minor)
    }

    /// Parses a release string such as `6.18.44-fc-v857` or `6.10rc1`: the first two runs of
    /// digits. Nil when there are not two.
    public init?(release: String) {
        let numbers = release.split(whereSeparator: { !$0.isNumber }).prefix(2).compactMap { Int($0) }
        guard numbers.count == 2 else { return nil }
        self.init(numbers[0], numbers[1])
    }

    public var description: String { "\(major).\(minor)" }

    public static func < (a: KernelVersion, b: KernelVersion) -> Bool {
        (a.major, a.minor) < (b.major, b.minor)
    }
}
