#if canImport(Glibc)
import Glibc
#endif
import Backend
import CLibUring
import EchoSupport

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

    /// Checks that the running kernel has io_uring, what every mode needs and every feature the
    /// options use (all from ``URingFeatures/running``, probed once per process), then that a
    /// small ring sets up with the options' set-up flags.
    ///
    /// - Throws: ``EchoError/uringUnavailable(reason:)`` when no ring can be set up,
    ///   ``EchoError/missingKernelFeature(_:)`` naming the first feature that is missing.
    static func check(_ options: URingBackend.Options) throws(EchoError) {
        try requireFeatures(options, on: .running)
        var parameters = options.setupParameters
        parameters.cq_entries = 16
        _ = try Ring(entries: 8, parameters: parameters)
    }

    /// What every mode needs beyond its features, read off a ring and its opcode probe: the
    /// completion queue never drops (`IORING_FEAT_NODROP`), submissions are stable once submitted
    /// (`IORING_FEAT_SUBMIT_STABLE`), and the opcodes the loop submits. Nil when all are there.
    static func essentialMissing(on ring: borrowing Ring, probe: UnsafeMutablePointer<io_uring_probe>?) -> EchoError? {
        guard ring.features & UInt32(IORING_FEAT_NODROP) != 0 else {
            return .missingKernelFeature("IORING_FEAT_NODROP (Linux 5.5)")
        }
        guard ring.features & UInt32(IORING_FEAT_SUBMIT_STABLE) != 0 else {
            return .missingKernelFeature("IORING_FEAT_SUBMIT_STABLE (Linux 5.5)")
        }
        guard let probe else { return .missingKernelFeature("IORING_REGISTER_PROBE (Linux 5.6)") }
        for (opcode, name) in requiredOpcodes where io_uring_opcode_supported(probe, Int32(opcode.rawValue)) == 0 {
            return .missingKernelFeature(name)
        }
        return nil
    }

    /// Checks that `kernel` has io_uring and every feature the options use.
    ///
    /// - Throws: the reason io_uring is unavailable, or ``EchoError/missingKernelFeature(_:)``
    ///   naming the oldest feature that is missing and the flag that runs without it.
    static func requireFeatures(_ options: URingBackend.Options, on kernel: URingFeatures) throws(EchoError) {
        if let unavailable = kernel.unavailable { throw unavailable }
        if let missing = kernel.lacking(options).first {
            throw .missingKernelFeature(missing.requirement + (missing.hint.map { "; \($0)" } ?? ""))
        }
    }

    /// The error for a failed `io_uring_setup` with `flags`: a set-up flag this kernel does not
    /// know gives `EINVAL`, so that is reported as the missing feature it is.
    static func setupFailed(code: Int32, flags: UInt32) -> EchoError {
        guard code == EINVAL else { return unavailable(code: code) }
        let named: [(UInt32, String)] = [
            (UInt32(IORING_SETUP_DEFER_TASKRUN), "IORING_SETUP_DEFER_TASKRUN (Linux 6.1)"),
            (UInt32(IORING_SETUP_SINGLE_ISSUER), "IORING_SETUP_SINGLE_ISSUER (Linux 6.0)"),
            (UInt32(IORING_SETUP_COOP_TASKRUN), "IORING_SETUP_COOP_TASKRUN (Linux 5.19)"),
            (UInt32(IORING_SETUP_SUBMIT_ALL), "IORING_SETUP_SUBMIT_ALL (Linux 5.18)"),
            (UInt32(IORING_SETUP_SQPOLL), "IORING_SETUP_SQPOLL (Linux 5.13 for unprivileged use)"),
        ]
        let asked = named.filter { flags & $0.0 != 0 }.map(\.1)
        if asked.isEmpty { return unavailable(code: code) }
        return .missingKernelFeature(asked.joined(separator: " or "))
    }

    /// The error for a failed `io_uring_setup`, saying why where the kernel tells.
    static func unavailable(code: Int32) -> EchoError {
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
            return .uringUnavailable(reason: "\(SystemCall.failure("io_uring_setup", code: code))")
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
