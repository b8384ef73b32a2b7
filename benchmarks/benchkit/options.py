"""benchmarks/run's command line: the options, the variants they name, and their defaults."""

import argparse
import os
import re
import shlex

from benchkit import netpath, noise, rounds, workloads
from benchkit.paths import BENCH_RELEASE, ECHO_RELEASE
from benchkit.variants import (ABLATION_LADDER, ABLATION_REFERENCE, BACKENDS, BUILTIN, PEERS, RESERVED_FLAGS,
                               VERDICT_SERVERS, VERDICT_SPLICE_SERVERS, Variant, variants_help)
from benchkit.workloads import churn, idle, pipeline, rate

# CPUs as taskset takes them ("0", "0-3", "0,2"); --server-cpus and --load-cpus change them.
SERVER_CPUS = "0"
LOAD_CPUS = "1"
# Many short rounds: this machine's slow mode lasts tens of seconds, so short runs alternated
# A B A B and paired by round see mostly the same mode.
ABLATION_DEFAULTS = {"lengths": [128, 1000], "connections": [50, 300, 1000], "rounds": rounds.AUTO,
                     "duration": 2.0, "warmup": 0.5}
QUICK_DEFAULTS = {"lengths": [128], "connections": [1, 50], "rounds": 4, "duration": 2.0, "warmup": 0.5}
FULL_DEFAULTS = {"lengths": [128, 512, 1000], "connections": [1, 50, 150, 300, 500, 1000], "rounds": 3,
                 "duration": 5.0, "warmup": 1.0}
# --verdict: every workload at its own size (Workload.verdict_cell), rounds until ±1 % or the budget.
VERDICT_DEFAULTS = {"rounds": rounds.AUTO, "duration": 2.0, "warmup": 0.5}

def int_list(text):
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a comma-separated list of integers: {text!r}")
    if not values or any(v <= 0 for v in values):
        raise argparse.ArgumentTypeError(f"need positive integers: {text!r}")
    return values


def rounds_option(text):
    try:
        return rounds.parse_rounds(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number of rounds (at least 1) or auto: {text!r}")


def name_list(allowed, allow_none=False):
    def parse(text):
        names = [v.strip() for v in text.split(",") if v.strip()]
        if allow_none and names == ["none"]:
            return []
        bad = [n for n in names if n not in allowed]
        if bad or not names:
            raise argparse.ArgumentTypeError(
                f"unknown {', '.join(bad) or 'empty list'}; choose from {','.join(allowed)}"
                + (" or none" if allow_none else ""))
        return names
    return parse


def percent_list(text):
    """Load levels in percent ("10,30,50"), as fractions."""
    try:
        values = [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a comma-separated list of percentages: {text!r}")
    if not values or any(not 0 < v <= 200 for v in values):
        raise argparse.ArgumentTypeError(f"need percentages above 0 and at most 200: {text!r}")
    return sorted(set(v / 100 for v in values))


def workload_text():
    return "\n".join(f"  {w.name:<9} {w.about}; unit: {w.unit_label}" for w in workloads.WORKLOADS.values())


def plain_list(text):
    names = [v.strip() for v in text.split(",") if v.strip()]
    if not names:
        raise argparse.ArgumentTypeError("empty list")
    return names


def cpu_list(text):
    """A CPU list as taskset -c takes it: numbers and ranges, comma-separated."""
    if not re.fullmatch(r"\d+(-\d+)?(,\d+(-\d+)?)*", text):
        raise argparse.ArgumentTypeError(f"invalid CPU list {text!r}: expected e.g. 0, 0-3 or 0,2")
    # All CPUs online, not this process's affinity: the runner pins itself to the load CPUs and
    # runs itself again (for the plots) from there.
    available = set(range(os.cpu_count() or 1))
    missing = sorted(cpu_set(text) - available)
    if missing:
        raise argparse.ArgumentTypeError(f"CPU {missing[0]} is not on this machine (CPUs 0-{max(available)})")
    return text


def cpu_set(text):
    cpus = set()
    for part in text.split(","):
        first, _, last = part.partition("-")
        cpus.update(range(int(first), int(last or first) + 1))
    return cpus


# An options stand-in for the help text's verdict sizes: the defaults of the workload options.
VERDICT_EXAMPLE = argparse.Namespace(pipeline_depth=pipeline.DEPTH, requests_per_connection=churn.REQUESTS_PER_CONNECTION,
                                     idle_connections=idle.IDLE_CONNECTIONS, rate_levels=list(rate.LEVELS),
                                     arrival=rate.ARRIVALS[0])


def workload_options(p, o):
    """--workload and its companions, --path and --netem-delay: checked, and o.points set."""
    names = [n for names in (o.workload or []) for n in names]
    if o.ablation and names:
        p.error("--workload: the ablation is ping-pong only")
    o.workloads = list(dict.fromkeys(names)) or (list(workloads.NAMES) if o.verdict else [workloads.DEFAULT])
    o.classic = o.workloads == [workloads.DEFAULT] and not o.verdict  # report.md only, as before workloads
    if not 1 <= o.pipeline_depth <= 4096:
        p.error("--pipeline-depth must be 1...4096")
    if not 1 <= o.requests_per_connection <= 1_000_000_000:
        p.error("--requests-per-connection must be at least 1")
    if not 1 <= o.idle_connections <= 1_000_000:
        p.error("--idle-connections must be 1...1000000")
    if o.netem_delay is not None:
        if o.path != "veth":
            p.error("--netem-delay needs --path veth")
        if not 0 < o.netem_delay <= 10_000:
            p.error("--netem-delay must be above 0 and at most 10000 ms")
    if o.path == "veth" and not o.dry_run:
        why = netpath.problem(o.netem_delay)
        if why:
            p.error(why)
    o.points = workloads.points(o)


def parse_options(argv):
    p = argparse.ArgumentParser(
        prog="benchmarks/run",
        description="Benchmark the echo backends (and peers: SwiftNIO, tokio, Go, C reference servers) "
                    "side by side: "
                    "requests/s, server CPU per request, syscalls per request, latency.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Full run: about 30-40 minutes on a quiet 2-core machine; --ablation runs rounds until every "
               "row's ratio to epoll is known within ±1 %, or --budget (40 minutes) runs out (the estimate is "
               "printed first). Server on CPU 0, echo-bench on CPU 1.\n\n"
               "Every paired ratio comes with a 95 % confidence interval (Student's t on the log of the "
               "per-round ratios) and a verdict: lower, higher, or same (the interval contains 1). Before and "
               "after every run a calibration probe (loopback TCP round trips) runs pinned to the server's "
               "CPUs; a run whose probe reads over --noise-threshold slower than the best probe of the "
               "invocation is flagged and re-run (see benchmarks/README.md).\n\n"
               + variants_help() + "\n\n"
               "uring is whatever `echo --backend uring` does by default; the report names the mode the\n"
               "server printed. Ad-hoc variants: --variant NAME='FLAGS' (repeatable); without --backends\n"
               "they run after the default servers, with --backends only where named.\n\n"
               "workloads (--workload; each has its unit of work, and every ratio is per that unit):\n"
               + workload_text() + "\n\n"
               "--verdict runs every workload at its own size on " + ", ".join(VERDICT_SERVERS)
               + " (the stream workload on " + ", ".join(VERDICT_SPLICE_SERVERS) + " as well):\n"
               + "\n".join(f"  {w.name:<9} {w.size_text(VERDICT_EXAMPLE, *w.verdict_cell)}"
                           for w in workloads.WORKLOADS.values())
               + "\nand writes verdict.md and verdict.json: per workload, uring ÷ epoll CPU per unit with its 95 % "
                 "interval, the C floor c-uring ÷ c-epoll, p99 (p99.9 for rate) and the verdict in words; for "
                 "streams, what splice buys each backend.")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_true",
                      help="a run of about a minute: lengths 128, connections 1,50, 4 rounds of 0.5 s warm-up + "
                           "2 s, backends uring,epoll, no peers (options given as well override these)")
    mode.add_argument("--verdict", action="store_true",
                      help="every workload at its own size (below) on " + ",".join(VERDICT_SERVERS)
                           + " (streams on " + ",".join(VERDICT_SPLICE_SERVERS) + " too)"
                           + ", --rounds auto of 0.5 s warm-up + 2 s within --budget (default "
                           f"{rounds.DEFAULT_BUDGET_MINUTES} minutes); writes verdict.md and verdict.json as well "
                           "(--workload, --backends, --peers, --lengths, --connections, --rounds, --duration, "
                           "--warmup override these)")
    mode.add_argument("--ablation", action="store_true",
                      help="the io_uring feature ablation: " + ", ".join(ABLATION_LADDER + ABLATION_REFERENCE)
                           + " (plus the --candidate unless it is the same server as one of them, plus any "
                             "--variant) at connections 50,300,1000 x lengths 128,1000, --rounds auto of "
                             "0.5 s warm-up + 2 s, no peers; writes ablation.md and ablation.png as well "
                             "(--backends, --peers, --connections, --lengths, --rounds, --duration, "
                             "--warmup override these)")
    p.add_argument("--backends", type=plain_list, metavar="NAMES",
                   help="variants to run, comma-separated: built-in names (see below) or --variant names "
                        "(default uring,epoll,blocking-threaded,blocking-naive; serving one client at a "
                        "time, blocking-naive only ever runs at 1 connection)")
    p.add_argument("--variant", action="append", default=[], metavar="NAME='FLAGS'",
                   help="define a variant: a name and the echo flags it runs with, e.g. "
                        "--variant ms-small-cq='--backend uring --uring-mode multishot --cq-entries 4096' "
                        "(repeatable)")
    p.add_argument("--binary", action="append", default=[], metavar="NAME=PATH",
                   help="run the variant NAME with this echo executable instead of the one the runner builds, "
                        "e.g. to compare two builds: --variant before='--backend uring' "
                        "--binary before=/tmp/echo-before --backends before,uring (repeatable)")
    p.add_argument("--pair", action="append", default=[], metavar="A/B",
                   help="also report A ÷ B (two rows of the run) with its interval in the findings, and narrow it "
                        "with --rounds auto, e.g. --pair uring/before for an A/B of two builds (repeatable)")
    p.add_argument("--peers", type=name_list(PEERS, allow_none=True),
                   help="other servers, comma-separated: nio (SwiftNIO's echo server, one event loop), nio-uring "
                        "(the same on NIO's io_uring selector, tried once per swift-nio version), tokio and "
                        "tokio-mt (tokio's current-thread and multi-thread runtimes), go and go-mt (GOMAXPROCS=1 "
                        "and the server's CPU count), c-epoll and c-uring (the C reference servers; with both, "
                        "the findings show the C floor c-uring ÷ c-epoll beside the candidate's ratio), or none "
                        "(default nio; none with --quick or --ablation). Each is built from benchmarks/peers/NAME "
                        "and must pass a quick conformance check first; one whose toolchain is missing (make "
                        "peer-deps installs Go, cargo and Debian's tokio) is skipped with a line saying so")
    p.add_argument("--candidate", default="uring", metavar="NAME",
                   help="the variant the findings are about: its ratio to epoll (and to the C servers and nio "
                        "when they run), with intervals (default uring)")
    p.add_argument("--workload", action="append", type=name_list(workloads.NAMES), metavar="NAMES",
                   help="workloads to run, comma-separated or repeated: " + ", ".join(workloads.NAMES)
                        + f" (default {workloads.DEFAULT}; all of them with --verdict). Each runs in every cell "
                          "(--lengths × --connections); with others than pingpong the runner writes workloads.md "
                          "and workloads.json (see below)")
    p.add_argument("--pipeline-depth", type=int, default=pipeline.DEPTH, metavar="D",
                   help=f"pipeline workload: requests in flight per connection (default {pipeline.DEPTH})")
    p.add_argument("--requests-per-connection", type=int, default=churn.REQUESTS_PER_CONNECTION, metavar="N",
                   help=f"churn workload: echoes per connection before it closes and another opens "
                        f"(default {churn.REQUESTS_PER_CONNECTION})")
    p.add_argument("--idle-connections", type=int, default=idle.IDLE_CONNECTIONS, metavar="N",
                   help=f"idle workload: idle connections held besides the active ones (default {idle.IDLE_CONNECTIONS})")
    p.add_argument("--rate-levels", type=percent_list, default=list(rate.LEVELS), metavar="PERCENTS",
                   help="rate workload: offered loads in percent of epoll's closed-loop capacity in the cell, "
                        "measured first (default " + ",".join(f"{round(100 * v)}" for v in rate.LEVELS) + ")")
    p.add_argument("--arrival", choices=rate.ARRIVALS, default=rate.ARRIVALS[0],
                   help=f"rate workload: how requests fall due (default {rate.ARRIVALS[0]})")
    p.add_argument("--path", choices=netpath.PATHS, default="loopback",
                   help="loopback (default), or veth: the server in a network namespace of its own, joined to "
                        "the load's by a veth pair (198.18.0.0/30, the machine's default qdisc on both ends); "
                        "the runner creates and removes both namespaces; needs root and ip")
    p.add_argument("--netem-delay", type=float, metavar="MS",
                   help="with --path veth: netem delays each direction by MS milliseconds (needs sch_netem)")
    p.add_argument("--lengths", type=int_list, help="message lengths in bytes (default 128,512,1000)")
    p.add_argument("--connections", type=int_list, help="connection counts (default 1,50,150,300,500,1000)")
    p.add_argument("--rounds", type=rounds_option, metavar="N|auto",
                   help="rounds; medians and intervals are taken over them (default 3; 4 with --quick). auto: "
                        f"at least {rounds.MIN_AUTO_ROUNDS}, then more until every interval the findings need "
                        f"is within ±{100 * rounds.TARGET:g} %% (with --ablation: every row's ratio to epoll), "
                        "or the --budget would run out (default with --ablation)")
    p.add_argument("--budget", type=float, default=rounds.DEFAULT_BUDGET_MINUTES, metavar="MINUTES",
                   help=f"time budget of --rounds auto, measuring only (default {rounds.DEFAULT_BUDGET_MINUTES})")
    p.add_argument("--noise-threshold", type=float, default=100 * noise.DEFAULT_THRESHOLD, metavar="PERCENT",
                   help="flag a run whose calibration probe reads this much slower than the best probe of the "
                        f"invocation (default {100 * noise.DEFAULT_THRESHOLD:g})")
    p.add_argument("--reruns", type=int, default=2, metavar="N",
                   help="re-run a flagged run up to N times; the flagged ones are left out (default 2)")
    p.add_argument("--no-calibration", action="store_true",
                   help="no calibration probe, so no run is flagged (ratios are still paired by round)")
    # Self-test of the noise detection: a CPU spinner pinned to the server's CPUs during run N's first
    # attempt, which the probe must flag (benchmarks/tests/test_noise_flag.py).
    p.add_argument("--inject-hog", type=int, metavar="N", help=argparse.SUPPRESS)
    p.add_argument("--duration", type=float, help="measured seconds per run (default 5)")
    p.add_argument("--warmup", type=float, help="warm-up seconds per run, after all connections are up (default 1)")
    p.add_argument("--bench-threads", type=int, default=1, help="echo-bench --threads (default 1: one core)")
    p.add_argument("--server-cpus", type=cpu_list, default=SERVER_CPUS, metavar="CPUS",
                   help="CPUs the server is pinned to, as taskset takes them (default 0). With more cores, "
                        "measure several loops with e.g. --server-cpus 0-3 --load-cpus 4-7 --bench-threads 4 "
                        "--variant uring-4='--backend uring --threads 4' (without --pin, or with CPUs 0..N-1)")
    p.add_argument("--load-cpus", type=cpu_list, default=LOAD_CPUS, metavar="CPUS",
                   help="CPUs echo-bench and the runner are pinned to (default 1)")
    p.add_argument("--out", help="result folder (default benchmarks/results/<YYYY-MM-DD>-<hostname>, "
                                 "with -2, -3... when it exists)")
    p.add_argument("--kernel", metavar="PATH",
                   help="run all of this inside a VM booted on that kernel (e.g. /boot/vmlinuz-6.1.0-NN-amd64, "
                        "Debian 12's; `make vm-deps` installs it and the launcher): the builds happen here, the "
                        "results land here (default folder: benchmarks/results/<date>-<host>-<release>), and every "
                        "report says 'under KVM' or 'under TCG: emulated, no speed meaning'. TCG unless "
                        "ON_KERNEL_KVM=1 (see benchmarks/on-kernel --help)")
    p.add_argument("--no-build", action="store_true", help="use the binaries as they are")
    p.add_argument("--dry-run", action="store_true", help="print the plan and the time estimate, run nothing")
    p.add_argument("--no-plots", action="store_true", help="skip matplotlib and the PNG plots")
    p.add_argument("--echo-binary", default=ECHO_RELEASE,
                   help=argparse.SUPPRESS)
    p.add_argument("--bench-binary", default=BENCH_RELEASE,
                   help=argparse.SUPPRESS)
    p.add_argument("--plot", metavar="DIR", help=argparse.SUPPRESS)  # the same as benchmarks/plot DIR
    o = p.parse_args(argv)
    if o.plot:
        return o
    if o.kernel is not None and not os.path.isfile(o.kernel):
        p.error(f"--kernel {o.kernel}: no such file")

    # Variants: the built-in ones and those defined with --variant.
    o.variants = dict(BUILTIN)
    adhoc = []
    for spec in o.variant:
        name, sep, text = spec.partition("=")
        name = name.strip()
        if not sep or not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._+-]*", name):
            p.error(f"--variant {spec!r}: expected NAME='FLAGS' with a name of letters, digits, . _ + -")
        if name in BUILTIN:
            p.error(f"--variant {name}: {name} is built in ({BUILTIN[name].flags_text or 'a peer'}); "
                    f"pick another name")
        if name in adhoc:
            p.error(f"--variant {name}: defined twice")
        try:
            flags = shlex.split(text)
        except ValueError as e:
            p.error(f"--variant {name}: cannot split its flags: {e}")
        if not flags:
            p.error(f"--variant {name}: no flags (a variant is echo's flags, e.g. '--backend uring --sqpoll')")
        reserved = [f for f in flags if f.split("=", 1)[0] in RESERVED_FLAGS]
        if reserved:
            p.error(f"--variant {name}: {' '.join(reserved)}: the runner sets --host, --port, --quiet and "
                    f"--stats-json itself")
        o.variants[name] = Variant(name, flags, "ad-hoc (--variant)", builtin=False)
        adhoc.append(name)

    o.binaries = {}
    for spec in o.binary:
        name, sep, path = spec.partition("=")
        name, path = name.strip(), os.path.abspath(os.path.expanduser(path.strip()))
        if not sep or name not in o.variants or o.variants[name].is_peer:
            p.error(f"--binary {spec!r}: expected NAME=PATH with NAME an echo variant (built in or --variant)")
        if not os.access(path, os.X_OK):
            p.error(f"--binary {name}: {path} is not an executable file")
        o.binaries[name] = path

    o.pairs = []
    for spec in o.pair:
        a, sep, b = (part.strip() for part in spec.partition("/"))
        if not sep or a not in o.variants or b not in o.variants or a == b:
            p.error(f"--pair {spec!r}: expected A/B, two different variant names")
        o.pairs.append((a, b))

    quick, ablation, verdict = o.quick, o.ablation, o.verdict
    o.verdict_sizes = verdict and o.lengths is None and o.connections is None
    if verdict:
        defaults = dict(VERDICT_DEFAULTS,
                        backends=[s for s in VERDICT_SERVERS if s not in PEERS] + VERDICT_SPLICE_SERVERS + adhoc,
                        peers=[s for s in VERDICT_SERVERS if s in PEERS])
        if o.verdict_sizes:  # the ping-pong size, for report.md; every workload runs at its own
            (length, connections), = workloads.cells(o, workloads.get(workloads.DEFAULT))
            defaults.update(lengths=[length], connections=[connections])
        else:
            defaults.update(lengths=o.lengths or [128], connections=o.connections or [50])
    elif ablation:
        defaults = dict(ABLATION_DEFAULTS, backends=ABLATION_LADDER + adhoc + ABLATION_REFERENCE, peers=[])
    elif quick:
        defaults = dict(QUICK_DEFAULTS, backends=["uring", "epoll"] + adhoc, peers=[])
    else:
        defaults = dict(FULL_DEFAULTS, backends=list(BACKENDS) + adhoc, peers=["nio"])
    for key, value in defaults.items():
        if getattr(o, key) is None:
            setattr(o, key, value)
    unknown = [n for n in o.backends if n not in o.variants]
    if unknown:
        p.error(f"--backends: unknown {', '.join(unknown)}; choose from {','.join(o.variants)} "
                f"or define one with --variant NAME='FLAGS'")
    if o.candidate not in o.variants:
        p.error(f"--candidate: unknown {o.candidate}; choose from {','.join(o.variants)}")
    if not (0.5 <= o.budget <= 24 * 60):
        p.error("--budget must be 0.5...1440 minutes")
    if not (0 < o.noise_threshold <= 1000):
        p.error("--noise-threshold must be a percentage above 0")
    if not (0 <= o.reruns <= 10):
        p.error("--reruns must be 0...10")
    if not (0.5 <= o.duration <= 3600):
        p.error("--duration must be 0.5...3600 seconds")
    if not (0 <= o.warmup <= 600):
        p.error("--warmup must be 0...600 seconds")
    if cpu_set(o.server_cpus) & cpu_set(o.load_cpus):
        p.error(f"--server-cpus {o.server_cpus} and --load-cpus {o.load_cpus} overlap: the load would share the server's cores")
    if o.bench_threads < 1:
        p.error("--bench-threads must be at least 1")
    workload_options(p, o)
    # The multi-thread peers (tokio-mt, go-mt) run one thread per server CPU, as echo --threads N would.
    o.server_threads = len(cpu_set(o.server_cpus))
    # A peer named in --backends counts as a peer.
    o.peers = list(dict.fromkeys(o.peers + [n for n in o.backends if n in PEERS]))
    o.backends = list(dict.fromkeys(n for n in o.backends if n not in PEERS))
    o.servers = o.backends + o.peers
    # The ablation judges the candidate: when it is not a row, it runs as one just before the
    # reference rows, unless the preflight finds it is the very same server as a row (same summary).
    o.candidate_may_alias = False
    o.candidate_row = o.candidate if o.candidate in o.servers else None
    if ablation and o.candidate_row is None:
        if o.variants[o.candidate].is_peer:
            o.peers.append(o.candidate)
            o.servers.append(o.candidate)
        else:
            at = min([o.servers.index(r) for r in ABLATION_REFERENCE + o.peers if r in o.servers],
                     default=len(o.servers))
            o.servers.insert(at, o.candidate)
            o.backends = [s for s in o.servers if s not in o.peers]
            o.candidate_may_alias = True
        o.candidate_row = o.candidate
    missing = [n for pair in o.pairs for n in pair if n not in o.servers]
    if missing:
        p.error(f"--pair: {', '.join(dict.fromkeys(missing))} not in this run (add to --backends or --peers)")
    return o


