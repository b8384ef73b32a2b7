#if canImport(Glibc)
import Glibc
#endif
import Backend
import CLibUring
import EchoSupport

/// Which io_uring features a kernel offers: the running kernel's, probed once per process by
/// trying each one, or a given set (for the negotiation's tests and for reports).
///
/// Probing by trying, not by version number, is what makes the answer right on kernels that
/// backport io_uring (enterprise kernels) and on kernels that block it (seccomp, sysctl). Two
/// features have no probe of their own and are inferred from one of the same release:
/// multishot receive (6.0) from `SINGLE_ISSUER` (6.0), and multishot accept (5.19) from
/// provided-buffer rings (5.19). A trial multishot receive proves nothing: older kernels ignore
/// the flag.
public struct URingFeatures: Sendable, Equatable {
    /// The kernel's release string, as `uname -r` prints it.
    public let release: String
    /// The features the kernel has.
    public let available: Set<URingFeature>
    /// Why io_uring cannot be used at all (nil: it can): no ring could be set up, or the kernel
    /// lacks what every mode needs.
    public let unavailable: EchoError?

    public init(release: String, available: Set<URingFeature>, unavailable: EchoError? = nil) {
        self.release = release
        self.available = available
        self.unavailable = unavailable
    }

    /// The kernel's version, from its release string.
    public var version: KernelVersion {
        KernelVersion(release: release) ?? KernelVersion(0, 0)
    }

    public func has(_ feature: URingFeature) -> Bool { available.contains(feature) }

    /// The features `options` use that this kernel lacks, oldest first: what
    /// ``URingBackend/validate()`` refuses them for.
    public func lacking(_ options: URingBackend.Options) -> [URingFeature] {
        options.featuresUsed.sorted().filter { !has($0) }
    }

    /// The running kernel's features, probed the first time they are asked for.
    public static let running = probe()

    /// Why `feature` is missing here, in words: "needs Linux 6.12, this kernel is 6.1".
    public func reasonMissing(_ feature: URingFeature) -> String {
        if let unavailable { return "\(unavailable)" }
        if version < feature.since { return "needs Linux \(feature.since), this kernel is \(version)" }
        return "this kernel (\(version)) does not offer it, though Linux \(feature.since) brought it"
    }

    /// Tries every feature on small rings of its own, then lets them go. The one opcode probe of
    /// the process is taken here, for the features and for what every mode needs
    /// (``KernelSupport/essentialMissing(on:probe:)``).
    static func probe() -> URingFeatures {
        let release = KernelVersion.runningRelease
        do {
            let ring = try Ring(entries: 2, parameters: io_uring_params())
            let probe = io_uring_get_probe_ring(ring.raw)
            defer { if let probe { io_uring_free_probe(probe) } }
            let found = features(of: ring, probe: probe)
            let unavailable = essentialsMissing(from: found) ?? KernelSupport.essentialMissing(on: ring, probe: probe)
            return URingFeatures(release: release, available: found, unavailable: unavailable)
        } catch {
            return URingFeatures(release: release, available: [], unavailable: error)
        }
    }

    /// The features `ring` and its opcode `probe` report or accept, and those of the rings set up
    /// beside it.
    private static func features(of ring: borrowing Ring, probe: UnsafeMutablePointer<io_uring_probe>?) -> Set<URingFeature> {
        var found = Set<URingFeature>()
        if ring.features & UInt32(IORING_FEAT_FAST_POLL) != 0 { found.insert(.fastPoll) }
        if ring.features & KernelConstant.featureRecvSendBundle != 0 { found.insert(.receiveBundles) }
        if let probe {
            if io_uring_opcode_supported(probe, Int32(IORING_OP_PROVIDE_BUFFERS.rawValue)) != 0 {
                found.insert(.provideBuffers)
            }
            if io_uring_opcode_supported(probe, Int32(IORING_OP_SEND_ZC.rawValue)) != 0 { found.insert(.zeroCopySend) }
        }
        let setupFlags: [(URingFeature, UInt32)] = [
            (.submitAll, UInt32(IORING_SETUP_SUBMIT_ALL)),
            (.coopTaskrun, UInt32(IORING_SETUP_COOP_TASKRUN)),
            (.singleIssuer, UInt32(IORING_SETUP_SINGLE_ISSUER)),
            (.deferTaskrun, UInt32(IORING_SETUP_SINGLE_ISSUER) | UInt32(IORING_SETUP_DEFER_TASKRUN)),
            (.sqpoll, UInt32(IORING_SETUP_SQPOLL)),
        ]
        for (feature, flags) in setupFlags where canSetUp(flags: flags) { found.insert(feature) }
        if found.contains(.singleIssuer) { found.insert(.multishotReceive) }
        if canRegisterBufferRing(on: ring, group: 1, incremental: false) {
            found.formUnion([.bufferRing, .multishotAccept])
            if canRegisterBufferRing(on: ring, group: 2, incremental: true) { found.insert(.incrementalBuffers) }
        }
        if io_uring_register_files_sparse(ring.raw, 1) == 0 {
            found.insert(.directDescriptors)
            if releasesClosedDirectDescriptors() { found.insert(.directDescriptorRelease) }
        }
        return found
    }

    /// Whether closing a direct descriptor lets go of its file at once while a request on another
    /// direct descriptor is still in flight: two socket pairs, one end of each in a two-slot file
    /// table, a poll that stays pending on the first, then the second slot emptied. The second
    /// pair's other end sees the hang-up at once where the kernel lets go of the file; older
    /// kernels hold it until the poll ends (here, when the ring goes).
    private static func releasesClosedDirectDescriptors() -> Bool {
        let ring: Ring
        do {
            ring = try Ring(entries: 2, parameters: io_uring_params())
        } catch {
            return false
        }
        guard io_uring_register_files_sparse(ring.raw, 2) == 0 else { return false }
        var pending: [Int32] = [-1, -1]
        var released: [Int32] = [-1, -1]
        guard socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0, &pending) == 0 else {
            return false
        }
        defer { close(pending[1]) }
        guard socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0, &released) == 0 else {
            close(pending[0])
            return false
        }
        defer { close(released[1]) }
        var installed = [pending[0], released[0]]
        let count = io_uring_register_files_update(ring.raw, 0, &installed, 2)
        close(pending[0])
        close(released[0])
        guard count == 2, let sqe = io_uring_get_sqe(ring.raw) else { return false }
        io_uring_prep_poll_add(sqe, 0, UInt32(POLLIN))
        sqe.pointee.flags |= UInt8(1 << IOSQE_FIXED_FILE_BIT)
        guard io_uring_submit(ring.raw) == 1 else { return false }
        var empty: Int32 = -1
        guard io_uring_register_files_update(ring.raw, 1, &empty, 1) == 1 else { return false }
        // The kernel lets go at once or holds on for at least a second (Linux 6.1) or for good.
        var peer = pollfd(fd: released[1], events: Int16(POLLIN), revents: 0)
        return poll(&peer, 1, 50) == 1 && peer.revents & Int16(POLLHUP) != 0
    }

    /// Whether a one-entry provided-buffer ring registers on `ring` (it is unregistered again).
    private static func canRegisterBufferRing(on ring: borrowing Ring, group: UInt16, incremental: Bool) -> Bool {
        do {
            _ = try ProvidedBufferRing(registeringOn: ring, entries: 1, group: group, incremental: incremental)
            return true
        } catch {
            return false
        }
    }

    /// Whether a ring can be set up with `flags`; a flag the kernel does not know gives `EINVAL`.
    private static func canSetUp(flags: UInt32) -> Bool {
        var parameters = io_uring_params()
        parameters.flags = flags
        if flags & UInt32(IORING_SETUP_SQPOLL) != 0 { parameters.sq_thread_idle = 1 }
        do {
            _ = try Ring(entries: 2, parameters: parameters)
            return true
        } catch {
            return false
        }
    }

    /// The error for a kernel whose io_uring every mode finds too old: fast poll and provided
    /// buffers (Linux 5.7) are what the oldest mode, legacy, stands on.
    private static func essentialsMissing(from found: Set<URingFeature>) -> EchoError? {
        for feature in [URingFeature.fastPoll, .provideBuffers] where !found.contains(feature) {
            return .missingKernelFeature(feature.requirement)
        }
        return nil
    }
}
