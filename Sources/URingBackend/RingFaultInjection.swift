/// A test hook: makes the loop's ring fail on demand, so a test can check what happens to open
/// connections when `io_uring_submit_and_wait` fails (every one must be closed, and the error
/// reported rather than the process crashing).
///
/// The loop watches `trigger` (an eventfd the test owns) like the stop signal; once it is readable,
/// the next ``Ring/submitAndWait(enters:)`` fails with `code` instead of entering the kernel. It
/// costs the loop nothing per request, and nothing at all when absent.
struct RingFaultInjection: Sendable, Equatable {
    /// The descriptor whose readability triggers the failure (owned by the test).
    let trigger: Int32
    /// The error number the failed call reports.
    let code: Int32
}
