"""Noise detection: a short calibration probe pinned on the server's CPU.

Why: on the benchmark VM the server's CPU per request is bimodal (a slow mode
adds 20-60% and comes and goes within seconds to tens of seconds). An ALU
loop does not see it, but the kernel's loopback TCP path does, and so does
a CPU hog sharing the core. The runner probes before and after each run; a
run whose worse probe is more than DEFAULT_THRESHOLD slower than the best
probe seen in this invocation is flagged noisy. Measured (252 cycles, 2 s
runs): the tcp probe reads 1.45-1.9x its best in the slow mode and within
~1.15x otherwise; syscall moves 1.2-1.35x, a 64 MiB chase ~1.1-1.2x, ALU not
at all. The mode flips within seconds, so a clean probe pair does not prove
a clean run: flagged runs' median CPU/request was 5.6 us, passing runs' 4.5.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from pathlib import Path

CALIBRATION_DIR = Path(__file__).resolve().parent.parent / "calibration"
PROBE_SOURCE = CALIBRATION_DIR / "probe.c"
PROBE_BINARY = CALIBRATION_DIR / "build" / "probe"

DEFAULT_SIGNAL = "tcp"
# The tcp probe's fast mode spreads ~2.5% (CV) above its best; the slow mode
# reads 1.45-1.9x. 0.15 sits in the gap between the two clusters.
DEFAULT_THRESHOLD = 0.15

# Per signal: (iterations per repetition, repetitions). A repetition takes
# ~17-25 ms on the benchmark VM in the fast mode; the min of the repetitions
# is reported, so a stray interrupt inside one repetition does not count.
# (chase also spends ~100 ms building its 64 MiB buffer, untimed.)
SIGNALS = {
    "tcp": (5000, 3),
    "syscall": (250000, 3),
    "alu": (12000000, 3),
    "chase": (120000, 3),
}

# What each signal times, for the reports.
ABOUT = {
    "tcp": "128-byte round trips over one loopback TCP connection to itself, wall-clock",
    "syscall": "a getppid loop, wall-clock",
    "alu": "an arithmetic loop, wall-clock",
    "chase": "a pointer chase over a large buffer, wall-clock",
}


def build_probe(say=print) -> str | None:
    """Compiles the probe when missing or older than its source.

    Returns the binary's path, or None (after saying why) when there is no
    C compiler or the build fails: the runner then goes on without noise
    detection rather than stopping.
    """
    binary, source = PROBE_BINARY, PROBE_SOURCE
    if not source.exists():
        say(f"noise: no probe source at {source}; noise detection off")
        return None
    if binary.exists() and binary.stat().st_mtime >= source.stat().st_mtime:
        return str(binary)
    cc = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")
    if not cc or not shutil.which(cc.split()[0]):
        say("noise: no C compiler ($CC or cc) to build the calibration probe; noise detection off")
        return None
    binary.parent.mkdir(parents=True, exist_ok=True)
    # Build to a private name and rename, so concurrent runners never exec a half-written file.
    tmp = binary.with_name(f"{binary.name}.{os.getpid()}.tmp")
    cmd = cc.split() + ["-O2", "-pthread", "-o", str(tmp), str(source)]
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    except (OSError, subprocess.TimeoutExpired) as error:
        say(f"noise: building the probe failed ({error}); noise detection off")
        return None
    if done.returncode != 0:
        tmp.unlink(missing_ok=True)
        say(f"noise: building the probe failed: {done.stderr.strip()[:500]}; noise detection off")
        return None
    os.replace(tmp, binary)
    return str(binary)


class Calibration:
    """One probe measurement, pinned to the given CPUs (a taskset list such as "0").

    ns_per_op is wall-clock, not CPU time: a hog sharing the core leaves the
    probe's CPU time alone but stretches its wall time, and must be caught.
    """

    def __init__(self, binary: str, cpus: str, signal: str = DEFAULT_SIGNAL):
        if signal not in SIGNALS:
            raise ValueError(f"unknown probe signal {signal!r} (known: {', '.join(SIGNALS)})")
        self.binary, self.cpus, self.signal = binary, cpus, signal
        self.taskset = shutil.which("taskset")

    def command(self) -> list[str]:
        iterations, repetitions = SIGNALS[self.signal]
        probe = [self.binary, self.signal, "-n", str(iterations), "-r", str(repetitions)]
        return ([self.taskset, "-c", self.cpus] if self.cpus and self.taskset else []) + probe

    def measure(self) -> dict:
        """Runs the probe once (~100-150 ms) and returns its best repetition."""
        start = time.monotonic()
        done = subprocess.run(self.command(), capture_output=True, text=True, timeout=30, check=True)
        reading = json.loads(done.stdout)
        return {
            "signal": reading["signal"],
            "ns_per_op": float(reading["ns_per_op"]),
            "cpu_ns_per_op": float(reading["cpu_ns_per_op"]),
            "wall_ms": float(reading["wall_ms"]),
            "reps_ns_per_op": reading.get("reps_ns_per_op", []),
            "elapsed_ms": (time.monotonic() - start) * 1000,
            "cpus": self.cpus,
        }


def _value(reading) -> float:
    """Accepts a Calibration.measure() dict or a bare ns/op figure."""
    value = float(reading["ns_per_op"] if isinstance(reading, dict) else reading)
    if not value > 0:
        raise ValueError(f"probe reading must be positive, got {value}")
    return value


class NoiseGate:
    """Flags runs whose probes read slower than the best probe of this invocation.

    Interference only ever adds cost, so the lowest reading is the machine's
    quiet speed and everything is judged against it.
    """

    def __init__(self, threshold: float = DEFAULT_THRESHOLD):
        self.threshold = threshold
        self.best: float | None = None

    def observe(self, reading) -> None:
        value = _value(reading)
        if self.best is None or value < self.best:
            self.best = value

    def slowdown(self, reading) -> float:
        """reading / best - 1, with this reading counted towards the best."""
        self.observe(reading)
        return _value(reading) / self.best - 1

    def is_noisy(self, before, after) -> bool:
        """True if the worse of the run's two probes is over threshold slower than the best."""
        self.observe(before)
        self.observe(after)
        worse = max(_value(before), _value(after))
        return self.slowdown(worse) > self.threshold
