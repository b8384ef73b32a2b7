#if canImport(Glibc)
import Glibc
#endif

/// A Linux kernel's major and minor version, for features that no probe reports.
struct KernelVersion: Comparable {
    let major: Int
    let minor: Int

    /// The running kernel's version, from `uname`; 0.0 when it cannot be read.
    static var running: KernelVersion {
        var names = utsname()
        guard uname(&names) == 0 else { return KernelVersion(major: 0, minor: 0) }
        let release = withUnsafeBytes(of: &names.release) { raw in
            String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
        }
        return KernelVersion(release: release) ?? KernelVersion(major: 0, minor: 0)
    }

    init(major: Int, minor: Int) {
        self.major = major
        self.minor = minor
    }

    /// Parses a release string such as `6.18.44-fc-v857` or `6.10rc1`: the first two runs of
    /// digits. Nil when there are not two.
    init?(release: String) {
        let numbers = release.split(whereSeparator: { !$0.isNumber }).prefix(2).compactMap { Int($0) }
        guard numbers.count == 2 else { return nil }
        self.init(major: numbers[0], minor: numbers[1])
    }

    static func < (a: KernelVersion, b: KernelVersion) -> Bool {
        (a.major, a.minor) < (b.major, b.minor)
    }
}
