
/// The `--idle` connections of a run, as its ``IdlePlan`` spreads them: those this process holds,
/// in a ``ClientLoop`` of their own that only connects them and finally checks them, and those of
/// its helper processes.
final class IdleFleet {
    let plan: IdlePlan
    private var local: ClientLoop
    private let helpers: [IdleHelper]
    /// Idle connections established, here and in the helpers.
    private(set) var established = 0
    /// Connections each helper established.
    private var helperEstablished: [Int] = []
    /// The helpers' failed connects.
    private var helperErrors = ErrorCounts()

    /// Starts the helpers, connects this process's share, then waits until every helper has
    /// connected its own.
    init(configuration: BenchmarkConfiguration, address: SocketAddress, plan: IdlePlan) throws(BenchmarkError) {
        self.plan = plan
        do {
            local = try ClientLoop(configuration: configuration, address: address, identifiers: plan.local,
                                   idle: true, perSource: plan.perSource)
        } catch {
            throw .system(error)
        }
        var helpers: [IdleHelper] = []
        if !plan.helpers.isEmpty {
            guard let executable = configuration.helperExecutable else {
                throw .invalidConfiguration("\(plan.idle) idle connections need helper processes, "
                    + "but no echo-bench executable was given to run them")
            }
            for range in plan.helpers {
                helpers.append(try IdleHelper(executable: executable,
                                              arguments: IdleHelper.arguments(configuration, range: range, perSource: plan.perSource)))
            }
        }
        self.helpers = helpers
        local.connectAll(timeout: ProcessClock.nanoseconds(configuration.connectTimeout))
        established = local.tally.established
        for (helper, range) in zip(helpers, plan.helpers) {
            let ready = helper.waitReady() ?? (established: 0, connectErrors: UInt64(range.count))
            established += ready.established
            helperEstablished.append(ready.established)
            helperErrors.connect &+= ready.connectErrors
        }
    }

    /// Checks every idle connection and closes them all (the helpers exit). Returns the errors of
    /// their whole life: failed connects, and connections the server closed, reset or wrote to.
    /// A helper that ended without a report lost every connection it held: counted as resets.
    func finish() -> ErrorCounts {
        local.checkIdle()
        var total = local.tally.errors + helperErrors
        for (helper, held) in zip(helpers, helperEstablished) {
            if let found = helper.finish() {
                total = total + found
            } else {
                total.reset &+= UInt64(held)
            }
        }
        return total
    }
}
