import EchoSupport

extension EchoServer {
    /// A backend with the loops and limits it is to run with, checked: each option in range, the
    /// cap at least one connection per loop, and the running kernel able to serve the options
    /// (for io_uring, one trial ring and its probe).
    ///
    /// Making a plan is the one check a start makes: ``EchoServer/start(_:host:port:backlog:pinned:)``
    /// takes a plan and the loops do not check again, so `echo --check` and a start each check
    /// once, however many loops run.
    public struct Plan: Sendable {
        public let backend: any EventBackend
        public let loops: Int
        public let limits: ServerLimits

        /// Checks `backend` and `limits` for `loops` loops.
        ///
        /// - Throws: ``EchoError/invalidConfiguration(_:)`` for a value out of range, or the
        ///   backend's error when the kernel cannot serve it (a missing feature, io_uring refused).
        public init(_ backend: any EventBackend, loops: Int = 1, limits: ServerLimits = ServerLimits()) throws(EchoError) {
            guard loops >= 1 else { throw .invalidConfiguration("invalid thread count \(loops): must be at least 1") }
            try limits.validate(loops: loops)
            try backend.validate()
            self.backend = backend
            self.loops = loops
            self.limits = limits
        }
    }
}
