"""Preparation: building echo, echo-bench and the peer servers; the machine's description."""

import datetime
import os
import platform
import shlex
import socket
import subprocess
import sys
import time

from benchkit import peers, vm
from benchkit.paths import ROOT
from benchkit.processes import command_output
from benchkit.procfs import cpu_model
from benchkit.text import duration_text, say


def build(o):
    if o.no_build:
        say("build: skipped (--no-build)")
    else:
        for product in ("echo", "echo-bench"):
            say(f"build: swift build -c release --product {product}  (waits if another build holds the lock)")
            started = time.monotonic()
            r = subprocess.run(["swift", "build", "-c", "release", "--product", product], cwd=ROOT)
            if r.returncode != 0:
                sys.exit(f"benchmarks/run: error: building {product} failed (exit {r.returncode})")
            say(f"build: {product} ready in {duration_text(time.monotonic() - started)}")
    build_peers(o)
    needed = [o.echo_binary] if o.backends else []
    needed.append(o.bench_binary)
    for path in needed:
        if not os.access(path, os.X_OK):
            sys.exit(f"benchmarks/run: error: {path} is missing; build it or drop --no-build")


def build_peers(o):
    """Builds the run's peers (each folder once) into o.peer_builds {name: Built}. A peer that is
    skipped (its toolchain is missing; nio-uring does not compile) leaves the run with one line."""
    o.peer_builds, done = {}, {}
    for name in o.peers:
        peer = peers.BY_NAME[name]
        key = (peer.builder, peer.binary)  # tokio and tokio-mt, go and go-mt: one build each
        started = time.monotonic()
        try:
            if key not in done:
                done[key] = peers.build(peer, say, o.no_build)
        except peers.PeerBuildFailed as e:
            sys.exit(f"benchmarks/run: error: {e}")
        o.peer_builds[name] = built = done[key]
        if built.skipped:
            say(f"peers: {name} skipped: {built.skipped}")
        elif not o.no_build and time.monotonic() - started > 1:
            say(f"build: {name} ready in {duration_text(time.monotonic() - started)} ({built.version})")
    skipped = [n for n, b in o.peer_builds.items() if b.skipped]
    if skipped:
        o.peers = [n for n in o.peers if n not in skipped]
        o.servers = [n for n in o.servers if n not in skipped]
        o.pairs = [(a, b) for a, b in o.pairs if a not in skipped and b not in skipped]
        if o.candidate_row in skipped:
            sys.exit(f"benchmarks/run: error: the candidate {o.candidate} is skipped: {o.peer_builds[o.candidate].skipped}")
        if not o.servers:
            sys.exit("benchmarks/run: error: every server was skipped; nothing to run")


def environment(o):
    swift = command_output(["swift", "--version"]) or "unknown"
    return {
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "hostname": socket.gethostname(),
        "kernel": platform.release(),
        "vm": vm.report_note(),  # None on the machine itself; under what the VM ran (benchmarks/on-kernel)
        "cpu": cpu_model(),
        "cpus": os.cpu_count(),
        "swift": swift.splitlines()[0] if swift else "unknown",
        "liburing": command_output(["pkg-config", "--modversion", "liburing"]) or "unknown",
        "peers": {name: dict(built.as_dict(), about=peers.BY_NAME[name].about,
                             command=peers.BY_NAME[name].shown(o.server_threads))
                  for name, built in getattr(o, "peer_builds", {}).items()},
        "io_uring_disabled": (open("/proc/sys/kernel/io_uring_disabled").read().strip()
                              if os.path.exists("/proc/sys/kernel/io_uring_disabled") else "n/a"),
        "python": platform.python_version(),
        "commit": command_output(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"]) or "unknown",
        "command": " ".join(shlex.quote(a) for a in ["benchmarks/run"] + sys.argv[1:]),
        "pinning": f"server: taskset -c {o.server_cpus}; echo-bench: taskset -c {o.load_cpus}; runner: CPUs {o.load_cpus}",
        "rounds": o.rounds, "duration_s": o.duration, "warmup_s": o.warmup, "bench_threads": o.bench_threads,
        # Where it ran (environment.gather, once per run) and the rows this kernel could not run.
        "where_it_ran": getattr(o, "where", None), "skipped": getattr(o, "skipped", []),
    }

