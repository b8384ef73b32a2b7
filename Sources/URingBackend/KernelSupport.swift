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
        (IORING_OP_PROVIDE_BUFFERS, "IORING_OP_PROVIDE_BUFFERS"),
        (IORING_OP_POLL_ADD, "IORING_OP_POLL_ADD"),
        (IORING_OP_TIMEOUT, "IORING_OP_TIMEOUT"),
    ]

    /// Sets up a small ring and checks features and opcodes.
    ///
    /// - Throws: ``EchoError/uringUnavailable(reason:)`` when no ring can be set up,
    ///   ``EchoError/missingKernelFeature(_:)`` naming the first feature that is missing.
    static func check() throws(EchoError) {
        var ring = io_uring()
        var params = io_uring_params()
        let status = io_uring_queue_init_params(8, &ring, &params)
        guard status == 0 else { throw unavailable(errno: -status) }
        defer { io_uring_queue_exit(&ring) }

        guard params.features & UInt32(IORING_FEAT_FAST_POLL) != 0 else {
            throw .missingKernelFeature("IORING_FEAT_FAST_POLL (Linux 5.7)")
        }
        guard params.features & UInt32(IORING_FEAT_NODROP) != 0 else {
            throw .missingKernelFeature("IORING_FEAT_NODROP (Linux 5.5)")
        }
        guard let probe = io_uring_get_probe_ring(&ring) else {
            throw .missingKernelFeature("IORING_REGISTER_PROBE (Linux 5.6)")
        }
        defer { io_uring_free_probe(probe) }
        for (opcode, name) in requiredOpcodes where io_uring_opcode_supported(probe, Int32(opcode.rawValue)) == 0 {
            throw .missingKernelFeature(name)
        }
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
