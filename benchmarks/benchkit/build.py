"""Preparation: building echo, echo-bench and the peer servers; the machine's description."""

import datetime
import json
import os
import platform
import shlex
import socket
import subprocess
import sys
import time

from benchkit.paths import C_BUILD, C_DIR, NIO_BINARY, NIO_DIR, ROOT
from benchkit.processes import command_output, run_bounded
from benchkit.procfs import cpu_model
from benchkit.text import duration_text, say
from benchkit.variants import C_PEERS, c_binary


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
        if "nio" in o.peers:
            say("build: SwiftNIO peer (cd benchmarks/peers/nio && swift build -c release); the first build takes 1-2 minutes")
            started = time.monotonic()
            r = subprocess.run(["swift", "build", "-c", "release"], cwd=NIO_DIR)
            if r.returncode != 0:
                sys.exit(f"benchmarks/run: error: building the NIO peer failed (exit {r.returncode})")
            say(f"build: nio-echo ready in {duration_text(time.monotonic() - started)}")
        for name in [p for p in o.peers if p in C_PEERS]:
            build_c_peer(name)
    needed = [o.echo_binary] if o.backends else []
    needed.append(o.bench_binary)
    if "nio" in o.peers:
        needed.append(NIO_BINARY)
    needed += [c_binary(p) for p in o.peers if p in C_PEERS]
    for path in needed:
        if not os.access(path, os.X_OK):
            sys.exit(f"benchmarks/run: error: {path} is missing; build it or drop --no-build")


def c_build_command(name):
    """cc -O2 for one C peer; c-uring links liburing (pkg-config liburing, else plain -luring)."""
    stem = C_PEERS[name]
    argv = [os.environ.get("CC", "cc"), "-O2", "-Wall", "-o", os.path.join(C_BUILD, stem),
            os.path.join(C_DIR, stem + ".c")]
    if name == "c-uring":
        flags = command_output(["pkg-config", "--cflags", "--libs", "liburing"], timeout=30)
        argv += shlex.split(flags) if flags else ["-luring"]
    return argv


def build_c_peer(name):
    os.makedirs(C_BUILD, exist_ok=True)
    argv = c_build_command(name)
    say(f"build: {' '.join(shlex.quote(os.path.relpath(a, ROOT) if os.path.isabs(a) else a) for a in argv)}")
    try:
        r = run_bounded(argv, timeout=300, cwd=ROOT)
    except (OSError, subprocess.TimeoutExpired) as e:
        sys.exit(f"benchmarks/run: error: building {name} failed: {e}")
    if r.returncode != 0:
        hint = " (c-uring needs liburing: apt-get install liburing-dev)" if name == "c-uring" else ""
        sys.exit(f"benchmarks/run: error: building {name} failed (exit {r.returncode}){hint}:\n"
                 + (r.stderr or r.stdout).strip())


def environment(o):
    swift = command_output(["swift", "--version"]) or "unknown"
    nio_version = None
    try:
        with open(os.path.join(NIO_DIR, "Package.resolved")) as f:
            for pin in json.load(f).get("pins", []):
                if pin.get("identity") == "swift-nio":
                    nio_version = pin.get("state", {}).get("version")
    except (OSError, ValueError):
        pass
    return {
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "hostname": socket.gethostname(),
        "kernel": platform.release(),
        "cpu": cpu_model(),
        "cpus": os.cpu_count(),
        "swift": swift.splitlines()[0] if swift else "unknown",
        "liburing": command_output(["pkg-config", "--modversion", "liburing"]) or "unknown",
        "swift_nio": nio_version,
        "cc": (command_output([os.environ.get("CC", "cc"), "--version"]) or "unknown").splitlines()[0]
              if any(p in C_PEERS for p in o.peers) else None,
        "io_uring_disabled": (open("/proc/sys/kernel/io_uring_disabled").read().strip()
                              if os.path.exists("/proc/sys/kernel/io_uring_disabled") else "n/a"),
        "python": platform.python_version(),
        "commit": command_output(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"]) or "unknown",
        "command": " ".join(shlex.quote(a) for a in ["benchmarks/run"] + sys.argv[1:]),
        "pinning": f"server: taskset -c {o.server_cpus}; echo-bench: taskset -c {o.load_cpus}; runner: CPUs {o.load_cpus}",
        "rounds": o.rounds, "duration_s": o.duration, "warmup_s": o.warmup, "bench_threads": o.bench_threads,
    }

