#if canImport(Glibc)
import Glibc
#endif

/// The running kernel's memory page: 4 KiB on x86-64, 16 or 64 KiB on some arm64 kernels.
///
/// A provided-buffer ring the loop allocates must start on a page boundary, or registering it
/// fails with `EINVAL`, which would read as a missing kernel feature. Read once, at first use
/// (when a mode allocates its buffers), never on the per-request path.
enum MemoryPage {
    static let size: Int = {
        let size = sysconf(Int32(_SC_PAGESIZE))
        return size > 0 ? size : 4096
    }()
}
