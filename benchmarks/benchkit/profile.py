"""Where a server's CPU goes, per request: `perf record` on fresh servers under the same load,
kernel and user functions in microseconds per request, servers side by side.

    benchmarks/profile uring epoll                           128 B x 50, 3 alternating rounds
    benchmarks/profile --length 65536 --stream uring epoll   a stream of 64 KiB writes
    benchmarks/profile --variant 'big=--backend uring --buffer-size 262144' --length 1048576 big epoll

Each round starts every server afresh (in turn, the order flipped each round), pinned to
--server-cpus, with echo-bench pinned to --load-cpus. After --warmup seconds of load, `perf record`
samples the server's threads at --frequency Hz for --duration seconds; echo's own counters, read
before and after that window (--stats-json, SIGUSR1), give the requests served in it (bytes
received over --length, so a stream counts like ping-pong). A function's cost per request is its
share of the samples times the server's CPU time in the window over those requests. The table
shows the median over rounds of each function's cost, the functions that cost the most or differ
the most first; with two servers, a column of their difference. Samples are taken by the CPU clock
(a VM seldom exposes hardware counters), so inside a region with interrupts off the samples land
where interrupts come back on, such as `_raw_spin_unlock_irqrestore`.

Needs `perf` (Debian: linux-perf) and a release build of echo and echo-bench (swift build -c
release). Exit status 0 with the table; 1 when a server or the load failed; 2 for bad options.
"""

import argparse
import json
import os
import re
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

from benchkit import environment
from benchkit.paths import BENCH_RELEASE, ECHO_RELEASE
from benchkit.server import Server, ServerFailed
from benchkit.text import say
from benchkit.variants import RESERVED_FLAGS, echo_flags, lookup

# perf's flat report: "  12.34%  [k] symbol  -  -" (sorted by symbol alone; the dashes are IPC
# columns a VM without hardware counters leaves empty).
REPORT_LINE = re.compile(r"^\s*([\d.]+)%\s+\[(.)\]\s+(\S+)")
EVENT_COUNT = re.compile(r"^# Event count \(approx\.\): (\d+)")


class ProfileFailed(Exception):
    pass


def usage_error(text):
    """Bad input: one line on stderr, exit status 2 (as argparse's own errors)."""
    sys.stderr.write(f"benchmarks/profile: error: {text}\n")
    sys.exit(2)


def parse_report(text):
    """perf report --stdio --no-children --sort symbol -g none: (event count, [(percent, space,
    symbol)]), space 'k' for the kernel and '.' for user code. The event count of the cpu-clock
    event is in nanoseconds of CPU."""
    total, rows = None, []
    for line in text.splitlines():
        m = EVENT_COUNT.match(line)
        if m:
            total = int(m.group(1))
            continue
        if line.startswith("#"):
            continue
        m = REPORT_LINE.match(line)
        if m:
            rows.append((float(m.group(1)), m.group(2), m.group(3)))
    if total is None:
        raise ProfileFailed("perf report printed no event count (no samples?)")
    return total, rows


def per_request(total_ns, rows, requests):
    """{symbol: microseconds per request} from a report's rows; a symbol seen twice (a user
    symbol in two objects) is summed."""
    if requests <= 0:
        raise ProfileFailed("the server served no request in the profiled window")
    costs = {}
    for percent, space, symbol in rows:
        name = symbol if space == "k" else f"{symbol} (user)"
        costs[name] = costs.get(name, 0.0) + percent / 100.0 * total_ns / 1000.0 / requests
    return costs


def median_costs(rounds):
    """Per symbol, the median over rounds (a round where it was not sampled counts 0)."""
    symbols = set().union(*rounds) if rounds else set()
    return {s: statistics.median(r.get(s, 0.0) for r in rounds) for s in symbols}


def table_rows(medians, names, top):
    """The `top` symbols that cost the most in any server or, with two servers, differ the most;
    then the rest summed and the total."""
    symbols = set().union(*(medians[n] for n in names))

    def weight(s):
        values = [medians[n].get(s, 0.0) for n in names]
        spread = abs(values[0] - values[1]) if len(values) == 2 else 0.0
        return max(max(values), 2 * spread)

    ranked = sorted(symbols, key=weight, reverse=True)
    shown = ranked[:top]
    rows = [(s, [medians[n].get(s, 0.0) for n in names]) for s in shown]
    rest = [sum(medians[n].get(s, 0.0) for s in ranked[top:]) for n in names]
    total = [sum(medians[n].values()) for n in names]
    return rows, rest, total


def render(medians, names, top, context):
    rows, rest, total = table_rows(medians, names, top)
    two = len(names) == 2
    head = ["function"] + names + ([f"{names[0]} − {names[1]}"] if two else [])
    lines = [context, "", "µs of server CPU per request, median over rounds:", "",
             "| " + " | ".join(head) + " |", "|:--|" + "--:|" * (len(head) - 1)]

    def line(label, values):
        cells = [f"{v:.3f}" for v in values] + ([f"{values[0] - values[1]:+.3f}"] if two else [])
        return f"| {label} | " + " | ".join(cells) + " |"

    lines += [line(f"`{s}`", v) for s, v in rows]
    lines += [line("everything else", rest), line("**total**", total)]
    return "\n".join(lines)


# MARK: running

def perf_problem():
    """Why perf cannot record here (not installed, not permitted), or None when it can."""
    if shutil.which("perf") is None:
        return "perf is not installed (Debian: apt-get install linux-perf)"
    probe = subprocess.run(["perf", "record", "-q", "-o", "/dev/null", "--", "true"], capture_output=True, text=True)
    if probe.returncode != 0:
        return f"perf cannot record here: {(probe.stderr or probe.stdout).strip()[-200:]}"
    return None


def bench_command(o, port):
    argv = ["taskset", "-c", o.load_cpus, o.bench_binary, "--host", "127.0.0.1", "--port", str(port),
            "--length", str(o.length), "--connections", str(o.connections),
            "--warmup", str(o.warmup), "--duration", str(o.duration + 1.0), "--json"]
    return argv + (["--stream"] if o.stream else [])


def profile_once(o, name, flags, workdir, round_index):
    """One fresh server under load, profiled: {symbol: µs per request}, and the CPU µs per request
    perf saw."""
    stats = os.path.join(workdir, f"{name}-{round_index}.json")
    data = os.path.join(workdir, f"{name}-{round_index}.perf")
    server = Server(lambda port: [o.echo_binary, "--host", "127.0.0.1", "--port", str(port), "--quiet",
                                  "--stats-json", stats] + flags,
                    os.path.join(workdir, f"{name}.log"), name=name, stats_path=stats, cpus=o.server_cpus)
    server.start()
    load = None
    try:
        load = subprocess.Popen(bench_command(o, server.port), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                stdin=subprocess.DEVNULL, text=True)
        time.sleep(o.warmup + 0.2)
        before = server.statistics()
        record = subprocess.run(["perf", "record", "-q", "-F", str(o.frequency), "-p", str(server.pid), "-o", data,
                                 "--", "sleep", str(o.duration)], capture_output=True, text=True, timeout=o.duration + 60)
        after = server.statistics()
        out, err = load.communicate(timeout=o.duration + o.warmup + 60)
        if record.returncode != 0:
            raise ProfileFailed(f"perf record failed: {(record.stderr or record.stdout).strip()[-300:]}")
        if load.returncode != 0:
            raise ProfileFailed(f"echo-bench against {name} failed (exit {load.returncode}): {err.strip()[-300:]}")
    finally:
        if load and load.poll() is None:
            load.kill()
            load.wait()
        status = server.stop()
    if status not in (0, None):
        raise ProfileFailed(f"{name} exited with status {status}: {server.log_tail()}")
    requests = (after["bytes_received"] - before["bytes_received"]) / o.length
    report = subprocess.run(["perf", "report", "-i", data, "--stdio", "--no-children", "--sort", "symbol", "-g", "none"],
                            capture_output=True, text=True, timeout=300)
    if report.returncode != 0:
        raise ProfileFailed(f"perf report failed: {report.stderr.strip()[-300:]}")
    total_ns, rows = parse_report(report.stdout)
    os.unlink(data)
    return per_request(total_ns, rows, requests), total_ns / 1000.0 / requests


def servers(o):
    """[(name, echo flags)] for the names given: --variant definitions first, then built-ins."""
    defined = {}
    for text in o.variant:
        name, _, flags = text.partition("=")
        if not name or not flags:
            usage_error(f"--variant needs NAME='FLAGS', got {text!r}")
        defined[name] = shlex.split(flags)
    chosen = []
    for name in o.servers:
        if name in defined:
            flags = defined[name]
        else:
            try:
                if lookup(name).is_peer:
                    usage_error(f"{name} is a peer; profile runs echo variants")
                flags = echo_flags(name)
            except KeyError:
                usage_error(f"unknown server {name!r} (a built-in variant or --variant)")
        reserved = [f for f in flags if f.split("=", 1)[0] in RESERVED_FLAGS]
        if reserved:
            usage_error(f"{name}: the profiler sets {', '.join(reserved)} itself")
        chosen.append((name, flags))
    return chosen


def parse_options(argv=None):
    p = argparse.ArgumentParser(prog="benchmarks/profile", description=__doc__.split("\n\n")[0],
                                epilog=__doc__.split("\n\n", 1)[1], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("servers", nargs="+", metavar="SERVER", help="built-in variants (benchmarks/run --help) or --variant names")
    p.add_argument("--variant", action="append", default=[], metavar="NAME='FLAGS'", help="define a server: a name and its echo flags")
    p.add_argument("--length", type=int, default=128, help="bytes per message (default 128)")
    p.add_argument("--connections", type=int, default=50, help="client connections (default 50)")
    p.add_argument("--stream", action="store_true", help="echo-bench --stream instead of ping-pong")
    p.add_argument("--rounds", type=int, default=3, help="rounds, every server once in each (default 3)")
    p.add_argument("--duration", type=float, default=4.0, help="seconds profiled per run (default 4)")
    p.add_argument("--warmup", type=float, default=0.5, help="seconds of load before profiling (default 0.5)")
    p.add_argument("--frequency", type=int, default=4000, help="samples per second (default 4000)")
    p.add_argument("--top", type=int, default=20, help="functions shown (default 20)")
    p.add_argument("--server-cpus", default="0", metavar="CPUS", help="taskset CPUs of the server (default 0)")
    p.add_argument("--load-cpus", default="1", metavar="CPUS", help="taskset CPUs of echo-bench (default 1)")
    p.add_argument("--echo-binary", default=ECHO_RELEASE, metavar="PATH", help="the echo executable (default the release build)")
    p.add_argument("--bench-binary", default=BENCH_RELEASE, metavar="PATH",
                   help="the echo-bench executable (default the release build)")
    p.add_argument("--json", metavar="PATH", help="also write every round's costs as JSON to PATH")
    o = p.parse_args(argv)
    for field, low in (("length", 1), ("connections", 1), ("rounds", 1), ("frequency", 1), ("top", 1)):
        if getattr(o, field) < low:
            p.error(f"--{field} must be at least {low}")
    if o.duration <= 0 or o.warmup < 0:
        p.error("--duration must be above 0 and --warmup at least 0")
    return o


def run_main(argv=None):
    o = parse_options(argv)
    chosen = servers(o)
    problem = perf_problem()
    if problem:
        sys.exit(f"benchmarks/profile: error: {problem}")
    for path in (o.echo_binary, o.bench_binary):
        if not os.access(path, os.X_OK):
            sys.exit(f"benchmarks/profile: error: {path} is missing; run swift build -c release first")
    where = environment.gather(o.echo_binary)
    say(environment.console_line(where))
    names = [n for n, _ in chosen]
    costs = {n: [] for n in names}
    totals = {n: [] for n in names}
    with tempfile.TemporaryDirectory(prefix="echo-profile-") as workdir:
        for r in range(o.rounds):
            order = chosen if r % 2 == 0 else list(reversed(chosen))
            for name, flags in order:
                try:
                    cost, total = profile_once(o, name, flags, workdir, r)
                except (ProfileFailed, ServerFailed, subprocess.TimeoutExpired) as e:
                    sys.stderr.write(f"benchmarks/profile: {name}, round {r + 1}: {e}\n")
                    sys.exit(1)
                costs[name].append(cost)
                totals[name].append(total)
                say(f"round {r + 1}/{o.rounds}, {name}: {total:.2f} µs of CPU per request")
    medians = {n: median_costs(costs[n]) for n in names}
    mode = "stream" if o.stream else "ping-pong"
    context = (f"{o.length} B × {o.connections} connections ({mode}), {o.rounds} round(s) of {o.duration:g} s "
               f"at {o.frequency} Hz; Linux {where['kernel_release']}, io_uring: {environment.design_text(where)}; "
               f"servers: " + "; ".join(f"{n} = `{' '.join(f)}`" for n, f in chosen))
    print(render(medians, names, o.top, context))
    if o.json:
        with open(o.json, "w") as f:
            json.dump({"context": context, "servers": dict(chosen), "rounds": costs, "totals": totals,
                       "where_it_ran": where}, f, indent=1)
