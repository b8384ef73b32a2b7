"""One run: a fresh server, echo-bench against it, the server sampled at both ends of the
measured window; what the run means (metrics); the preflight before a long run."""

import json
import os
import subprocess
import tempfile
import time

from benchkit import conformance, peers, procfs, workloads
from benchkit.netpath import LOOPBACK
from benchkit.server import Server, ServerFailed

SATURATED = 0.9          # generator CPU share of one core above which it limits the result
# Per request, each kind of system call the server counts is a metric "syscalls_<kind>"; the kinds are
# the server's (syscall_kinds), and these two metrics beside them are totals, of no kind.
SYSCALL_PREFIX = "syscalls_"
SYSCALL_TOTALS = ("syscalls_per_request", "syscalls_per_unit")

# A run that failed: the server would not start, died, wrote no statistics, or echo-bench failed.
RunFailed = ServerFailed


def syscall_kinds(syscalls):
    """The kinds of system call a server counts: the keys of the `syscalls` object of its --stats-json
    document but `total`, in the order it writes them. The server declares them; the kit lists none,
    so a counter added there reaches every table here."""
    return [kind for kind in syscalls if kind != "total"]


def syscall_fields(rows):
    """The per-kind metrics ("syscalls_read", ...) in `rows` (runs' metrics, or summary rows, also
    from an old summary.json), in the order they first appear: the order the server wrote its kinds."""
    fields = {}
    for row in rows:
        for key in row:
            if key.startswith(SYSCALL_PREFIX) and key not in SYSCALL_TOTALS:
                fields[key] = None
    return list(fields)


def network(o):
    """The path between load and server: loopback, or --path veth's namespaces (netpath)."""
    return getattr(o, "net", None) or LOOPBACK


def row_server(o, name, workdir):
    """A server for the row `name`, pinned to --server-cpus (in the server's namespace with --path
    veth), not started yet."""
    variant = o.variants[name]
    stats_path = os.path.join(workdir, f"stats-{name}.json") if not variant.is_peer else None
    net = network(o)

    def command(port):
        if variant.is_peer:
            return peers.BY_NAME[name].command(port, o.server_threads, net.server_host)
        return [o.binaries.get(name, o.echo_binary)] + variant.flags + ["--host", net.server_host, "--port", str(port),
                                                                         "--quiet", "--stats-json", stats_path]

    return Server(command, os.path.join(workdir, f"server-{name}.log"), name=name, stats_path=stats_path,
                  cpus=o.server_cpus, host=net.server_host, prefix=net.server_prefix)


def sample(server, cpu=True):
    """CPU times, context switches and (for echo) its own counters, now."""
    pid = server.pid
    if server.process.poll() is not None:
        raise RunFailed(f"{server.name} exited during the run (status {server.process.returncode}): "
                        f"{server.log_tail()}")
    result = {"time_ns": time.time_ns(), "monotonic": time.monotonic()}
    if cpu:
        result["utime_s"], result["stime_s"] = procfs.cpu_times(pid)
    if server.stats_path:
        result["server"] = server.statistics()
    if cpu:
        result.update(procfs.switches_and_io(pid))
    return result


def connection_count(server, counter):
    """The server's count of connections, "open" (held now) or "accepted" (since it started).

    echo says so itself (connections_open, connections_accepted, sampled with SIGUSR1). A peer keeps
    no counters: its sockets are counted in /proc/PID/fd, and its accepts by its network namespace's
    TCP PassiveOpens, which on loopback counts the machine's other accepts too (none while it
    measures). Both count from a baseline taken before the load (the listener and a runtime's own
    sockets; earlier accepts). Not /proc/PID/net/tcp: after churn it holds tens of thousands of
    TIME_WAIT entries, and reading it took longer than a short warm-up."""
    if server.stats_path:
        return sample(server, cpu=False)["server"][f"connections_{counter}"]
    if counter == "accepted":
        return procfs.passive_opens(server.pid)
    return procfs.open_sockets(server.pid)


def wait_for_connections(server, connections, limit, counter="open", before=0):
    """Waits until the server's `counter` (connection_count) reaches `before` + `connections`;
    returns when, and whether it saw it."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if connection_count(server, counter) - before >= connections:
            return time.monotonic(), True
        time.sleep(0.01)
    return time.monotonic(), False


def preflight(o):
    """Starts each server once, briefly, before the long run. An echo variant: a flag echo rejects
    or a kernel feature it lacks shows at once, not an hour later, and the summary it prints for
    its configuration goes into the report. A peer: the quick conformance cases (every byte
    checked), so one that drops or corrupts bytes stops the run instead of being measured.
    Returns ({name: summary}, [problems]); o.conformance gets {peer: what was verified}."""
    summaries, problems = {}, []
    o.conformance = {}
    with tempfile.TemporaryDirectory(prefix="echo-bench-preflight-") as workdir:
        for name in o.servers:
            variant = o.variants[name]
            server = row_server(o, name, workdir)
            failed = False
            try:
                server.start()
                if variant.is_peer:
                    done = conformance.run(server, conformance.QUICK, quick=True)
                    o.conformance[name] = (f"{len(done)} quick conformance cases passed, every byte compared ("
                                           + ", ".join(case.replace("_", " ") for case, _ in done) + ")")
                else:
                    with open(server.stats_path) as f:
                        summaries[name] = json.load(f).get("summary")
            except conformance.ConformanceFailed as e:
                problems.append(f"{name} failed the conformance check: {e}")
                failed = True
            except (RunFailed, OSError, ValueError) as e:
                problems.append(f"{name} ({variant.flags_text or peers.BY_NAME[name].shown(o.server_threads)}): {e}")
                failed = True
            finally:
                status = server.stop()
                if variant.is_peer and not failed and status not in (0, None):
                    problems.append(f"{name} exited with status {status} when stopped (SIGTERM): {server.log_tail()}")
    return summaries, problems


def one_run(o, workdir, name, length, connections, round_index, point=None):
    """One run of `point` (default: ping-pong) in one cell: its record, with metrics or an error."""
    point = point or workloads.Point(workloads.get(workloads.DEFAULT))
    workload = point.workload
    server = row_server(o, name, workdir)
    record = {"round": round_index, "server": name, "length": length, "connections": connections, **point.fields()}
    bench_process = None
    try:
        try:
            mode_args = workload.bench_args(o, point, length, connections)
        except ValueError as e:
            raise RunFailed(f"{point.key}: {e}")
        server.start()
        record["server_command"] = " ".join(server.argv)
        record["server_flags"] = o.variants[name].flags_text
        bench_argv = ["taskset", "-c", o.load_cpus, o.bench_binary, "--host", server.host,
                      "--port", str(server.port), "--connections", str(connections), "--length", str(length),
                      "--duration", str(o.duration), "--warmup", str(o.warmup), "--threads", str(o.bench_threads),
                      "--json"] + mode_args
        record["bench_command"] = " ".join(bench_argv)
        expected, counter = workload.server_connections(o, connections)
        # A peer's counts are from a baseline: its sockets at rest, its namespace's accepts so far.
        before = connection_count(server, counter) if not server.stats_path else 0
        bench_err = open(os.path.join(workdir, "bench.err"), "w+")
        started = time.monotonic()
        bench_process = subprocess.Popen(bench_argv, stdout=subprocess.PIPE, stderr=bench_err,
                                         stdin=subprocess.DEVNULL, text=True)
        # echo-bench connects all N, then warms up, then measures. The window it measures starts
        # when the last connection is up: watch the server's descriptors to see that moment, then
        # sample inside the window, a margin after its start and before its end.
        connected_at, all_seen = wait_for_connections(server, expected, limit=10 + expected / 100, counter=counter,
                                                      before=before)
        if not all_seen:
            connected_at = started
        record["connect_s"] = round(connected_at - started, 4)
        record["connect_seen"] = all_seen
        margin = min(0.25, 0.05 * o.duration)
        start_at = connected_at + o.warmup + margin
        end_at = connected_at + o.warmup + o.duration - margin
        time.sleep(max(0, start_at - time.monotonic()))
        if bench_process.poll() is not None:
            raise RunFailed(f"echo-bench exited early (status {bench_process.returncode})")
        first = sample(server)
        time.sleep(max(0, end_at - time.monotonic()))
        last = sample(server)
        record["samples"] = {"start": first, "end": last}
        try:
            out, _ = bench_process.communicate(timeout=o.duration + o.warmup + 60)
        except subprocess.TimeoutExpired:
            bench_process.kill()
            bench_process.wait()
            raise RunFailed("echo-bench did not finish in time")
        bench_err.seek(0)
        err_text = bench_err.read().strip()
        bench_err.close()
        if err_text:
            record["bench_stderr"] = err_text[-2000:]
        if bench_process.returncode != 0:
            raise RunFailed(f"echo-bench failed (status {bench_process.returncode}): {err_text[-300:]}")
        lines = [line for line in out.splitlines() if line.strip().startswith("{")]
        if not lines:
            raise RunFailed(f"echo-bench printed no JSON: {out[-300:]!r}")
        record["bench"] = json.loads(lines[-1])
    except RunFailed as e:
        record["error"] = str(e)
    finally:
        if bench_process is not None and bench_process.poll() is None:
            bench_process.kill()
            bench_process.wait()
        status = server.stop()
        record["server_exit"] = status
        if status not in (0, None) and "error" not in record:
            record["error"] = f"{name} exited with status {status} at stop: {server.log_tail()}"
    if "error" not in record:
        record["metrics"] = metrics(record)
    return record


def metrics(record):
    """What a run means, from the bench JSON and the two server samples."""
    bench, first, last = record["bench"], record["samples"]["start"], record["samples"]["end"]
    m = {}
    m["requests_per_second"] = bench["requests_per_second"]
    latency = bench.get("latency_us", {})
    for key in ("p50", "p99", "p999"):
        m[f"latency_{key}_us"] = latency.get(key)
    cpu = bench.get("cpu", {})
    m["generator_cpu_share"] = cpu.get("share_of_one_core")
    m["generator_saturated"] = (m["generator_cpu_share"] or 0) > SATURATED
    errors = bench.get("errors", {})
    # Drops at a full queue (--rate) say the server fell behind, not that it failed: the rate
    # workload reports them with the point, unsustained, and they are no error here.
    m["bench_errors"] = sum(v for k, v in errors.items() if isinstance(v, (int, float)) and k != "dropped")

    # The server's window (between the samples) lies inside echo-bench's window; compare rates,
    # so the small difference in length between the two windows cancels out.
    window = (last["time_ns"] - first["time_ns"]) / 1e9
    m["server_window_s"] = window
    user = last["utime_s"] - first["utime_s"]
    system = last["stime_s"] - first["stime_s"]
    rps = bench["requests_per_second"]
    requests_in_window = rps * window  # round trips echo-bench completed during the server's window
    if requests_in_window > 0:
        m["cpu_us_per_request"] = (user + system) / requests_in_window * 1e6
        m["user_us_per_request"] = user / requests_in_window * 1e6
        m["system_us_per_request"] = system / requests_in_window * 1e6
        switches = ((last["voluntary_ctxt_switches"] + last["nonvoluntary_ctxt_switches"])
                    - (first["voluntary_ctxt_switches"] + first["nonvoluntary_ctxt_switches"]))
        m["context_switches_per_request"] = switches / requests_in_window
    workload = workloads.of_record(record)
    units = (workload.units_per_second(bench) or 0) * window  # the workload's units in the server's window
    m["unit"] = workload.unit
    m["units_per_second"] = workload.units_per_second(bench)
    if units > 0:
        m[workloads.FIELD] = (user + system) / units * 1e6
    m.update(workload.extra_metrics(bench, first, last, window))
    m["server_cpu_share"] = (user + system) / window if window > 0 else None
    m["user_share"] = user / (user + system) if user + system > 0 else None
    window_info = bench.get("window", {})
    start_ns, end_ns = window_info.get("start_unix_ns"), window_info.get("end_unix_ns")
    if start_ns and end_ns:
        m["window_inside"] = start_ns <= first["time_ns"] and last["time_ns"] <= end_ns
        m["window_offsets_ms"] = [round((first["time_ns"] - start_ns) / 1e6, 1),
                                  round((end_ns - last["time_ns"]) / 1e6, 1)]
    if "server" in first and "server" in last:
        s0, s1 = first["server"], last["server"]
        server_requests = s1["requests"] - s0["requests"]
        m["server_requests"] = server_requests
        m["agreement"] = server_requests / requests_in_window if requests_in_window > 0 else None
        if units > 0:
            m["syscalls_per_unit"] = (s1["syscalls"]["total"] - s0["syscalls"]["total"]) / units
        if server_requests > 0:
            m["syscalls_per_request"] = (s1["syscalls"]["total"] - s0["syscalls"]["total"]) / server_requests
            for kind in syscall_kinds(s1["syscalls"]):
                m[SYSCALL_PREFIX + kind] = (s1["syscalls"][kind] - s0["syscalls"].get(kind, 0)) / server_requests
    return m

