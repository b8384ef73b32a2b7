#if canImport(Glibc)
import Glibc
#endif
import Backend
import CLibUring

/// What the running kernel's io_uring offers, checked once before a loop starts.
enum KernelSupport {
    /// Opcodes the loop submits, with the names a person would look up.
    static let requiredOpcodes: [(io_uring_op, String)] = [
        (IORING_OP_ACCEPT, "IORING_OP_ACCEPT"),
        (IORING_OP_RECV, "IORING_OP_RECV"),
        (IORING_OP_SEND, "IORING_OP_SEND"),
        (IORING_OP_SENDMSG, "IORING_OP_SENDMSG"),
        (IORING_OP_PROVIDE_BUFFERS, "IORING_OP_PROVIDE_BUFFERS"),
        (IORING_OP_POLL_ADD, "IORING_OP_POLL_ADD"),
        (IORING_OP_TIMEOUT, "IORING_OP_TIMEOUT"),
    ]

    /// Sets up a small ring with the options' set-up flags and checks the features and opcodes
    /// they need.
    ///
    /// - Throws: ``EchoError/uringUnavailable(reason:)`` when no ring can be set up,
    ///   ``EchoError/missingKernelFeature(_:)`` naming the first feature that is missing.
    static func check(_ options: URingBackend.Options) throws(EchoError) {
        var parameters = options.setupParameters
        parameters.cq_entries = 16
        let ring = try Ring(entries: 8, parameters: parameters)

        guard ring.features & UInt32(IORING_FEAT_FAST_POLL) != 0 else {
            throw .missingKernelFeature("IORING_FEAT_FAST_POLL (Linux 5.7)")
        }
        guard ring.features & UInt32(IORING_FEAT_NODROP) != 0 else {
            throw .missingKernelFeature("IORING_FEAT_NODROP (Linux 5.5)")
        }
        guard ring.features & UInt32(IORING_FEAT_SUBMIT_STABLE) != 0 else {
            throw .missingKernelFeature("IORING_FEAT_SUBMIT_STABLE (Linux 5.5)")
        }
        guard let probe = io_uring_get_probe_ring(ring.raw) else {
            throw .missingKernelFeature("IORING_REGISTER_PROBE (Linux 5.6)")
        }
        defer { io_uring_free_probe(probe) }
        var opcodes = requiredOpcodes
        if options.zeroCopyThreshold > 0 { opcodes.append((IORING_OP_SEND_ZC, "IORING_OP_SEND_ZC (Linux 6.0)")) }
        for (opcode, name) in opcodes where io_uring_opcode_supported(probe, Int32(opcode.rawValue)) == 0 {
            throw .missingKernelFeature(name)
        }
        if options.mode != .legacy {
            // Multishot receive came in 6.0, after everything else this mode uses (5.19).
            guard KernelVersion.running >= KernelVersion(major: 6, minor: 0) else {
                throw .missingKernelFeature("multishot receive (IORING_RECV_MULTISHOT, Linux 6.0)")
            }
            _ = try ProvidedBufferRing(registeringOn: ring, entries: 1, group: 1)
            if options.incrementalBuffers {
                _ = try ProvidedBufferRing(registeringOn: ring, entries: 1, group: 2, incremental: true)
            }
        }
        if options.mode == .bundle && ring.features & KernelConstant.featureRecvSendBundle == 0 {
            throw .missingKernelFeature("receive bundles (IORING_FEAT_RECVSEND_BUNDLE, Linux 6.10)")
        }
    }

    /// The error for a failed `io_uring_setup` with `flags`: a set-up flag this kernel does not
    /// know gives `EINVAL`, so that is reported as the missing feature it is.
    static func setupFailed(errno code: Int32, flags: UInt32) -> EchoError {
        guard code == EINVAL else { return unavailable(errno: code) }
        let named: [(UInt32, String)] = [
            (UInt32(IORING_SETUP_DEFER_TASKRUN), "IORING_SETUP_DEFER_TASKRUN (Linux 6.1)"),
            (UInt32(IORING_SETUP_SINGLE_ISSUER), "IORING_SETUP_SINGLE_ISSUER (Linux 6.0)"),
            (UInt32(IORING_SETUP_COOP_TASKRUN), "IORING_SETUP_COOP_TASKRUN (Linux 5.19)"),
            (UInt32(IORING_SETUP_SQPOLL), "IORING_SETUP_SQPOLL (Linux 5.13 for unprivileged use)"),
        ]
        let asked = named.filter { flags & $0.0 != 0 }.map(\.1)
        if asked.isEmpty { return unavailable(errno: code) }
        return .missingKernelFeature(asked.joined(separator: " or "))
    }

    /// The error for a failed `io_uring_setup`, saying why where the kernel tells.
    static func unavailable(errno code: Int32) -> EchoError {
        switch code {
        case ENOSYS:
            return .uringUnavailable(reason: "this kernel has no io_uring_setup (ENOSYS)")
        case EPERM, EACCES:
            let disabled = sysctlValue("/proc/sys/kernel/io_uring_disabled")
            if let disabled, disabled != "0" {
                return .uringUnavailable(reason: "kernel.io_uring_disabled is \(disabled)")
            }
            return .uringUnavailable(reason: "io_uring_setup was refused (\(EchoError.message(for: code))), "
                + "perhaps by a seccomp filter or a container policy")
        case ENOMEM:
            return .uringUnavailable(reason: "io_uring_setup could not allocate the ring (ENOMEM; check RLIMIT_MEMLOCK)")
        default:
            return .uringUnavailable(reason: "io_uring_setup failed: \(EchoError.message(for: code)) (errno \(code))")
        }
    }

    private static func sysctlValue(_ path: String) -> String? {
        guard let file = fopen(path, "r") else { return nil }
        defer { fclose(file) }
        var line = [CChar](repeating: 0, count: 32)
        guard fgets(&line, Int32(line.count), file) != nil else { return nil }
        let text = String(decoding: line.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        return text.trimmingWhitespace()
    }
}

extension String {
    fileprivate func trimmingWhitespace() -> String {
        String(self.drop { $0.isWhitespace }.reversed().drop { $0.isWhitespace }.reversed())
    }
}
