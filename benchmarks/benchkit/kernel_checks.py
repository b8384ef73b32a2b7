"""make test-kernels' checks, run inside a VM booted on Debian 12's kernel (6.1) by benchmarks/kernel-tests:
what echo negotiates there and says about it, its refusals, every conformance case on every design
6.1 offers, the scarcity case, and a one-round benchmarks/run. Each check prints PASS or FAIL and
what it saw; the last line is "kernels: N passed, M failed".

Figures from an emulated kernel (TCG) mean nothing for speed: nothing here asserts a speed, only
completion and correctness (the conformance cases' time limits catch hangs, not slowness).
"""

import json
import os
import resource
import signal
import socket
import subprocess
import sys
import time

from benchkit import conformance, variants, vm
from benchkit.paths import BENCH_DIR, BENCH_RELEASE, ECHO_RELEASE
from benchkit.server import Server, ServerFailed, free_port

# What Debian 12's 6.1 has, by `echo --features --json`'s names (sqpoll may go either way).
DESIGN_61 = "multishot, defer-taskrun, whole buffers"
AVAILABLE_61 = ["fast-poll", "provide-buffers", "submit-all", "coop-taskrun", "buffer-ring", "multishot-accept",
                "direct-descriptors", "single-issuer", "multishot-receive", "zero-copy-send", "defer-taskrun"]
MISSING_61 = ["receive-bundles", "incremental-buffers", "direct-descriptor-release"]

# The scarcity the Swift suite's scarcity case injects (8 SQ and CQ entries, eight 512-byte buffers),
# as echo writes its flags. Added to a variant's flags; it sizes the server's resources and leaves its
# design as it is.
SCARCE = variants.SCARCITY_FLAGS
# Cases left out for a server, said so in the output. Multishot with eight 512-byte whole buffers: a
# client that never reads can hold the whole pool, and another client then waits until it reads (about
# 1 run in 10, on 6.18 as on 6.1; legacy passes). The Swift suite's scarcity case streams through tiny
# buffers with no stuck client.
LEFT_OUT = {"scarce-default": {"stuck_client": "a stuck client may hold all eight whole buffers, and others wait"}}
# The designs 6.1 offers, each served and put through every conformance case: (check name, the named
# variant whose flags start it, flags added to them). The flags are the variant's, from echo's table
# (variants.json), so a design is written once, in Sources/EchoCLI/NamedConfiguration.swift.
SERVERS = [
    ("default", "uring", []),                              # the negotiated design: 6.1's whole buffers
    ("legacy", "uring-legacy", []),
    ("multishot-whole", "uring-multishot-defer-64k", []),  # 6.1's design, stated as a requirement
    ("multishot-no-defer", "uring-multishot", []),         # without DEFER_TASKRUN or COOP_TASKRUN
    ("epoll", "epoll", []),
    ("scarce-default", "uring", SCARCE),
    ("scarce-legacy", "uring-legacy", SCARCE),
]
# Variants whose design 6.1 lacks: echo must refuse them with one line naming the feature and the release.
REFUSED = [
    ("uring-multishot-defer-bundle", ["receive bundles", "6.10"]),
    ("uring-multishot-defer-inc", ["incremental buffer", "6.12"]),
    ("uring-multishot-defer-fixed", ["release of closed direct descriptors", "6.13"]),
]
# A row of benchmarks/run that 6.1 cannot run (incremental buffers, 6.12): the runner must skip it with
# one line and run the rest.
UNRUNNABLE_ROW = "uring-multishot-defer-inc"


def server_flags(variant, extra):
    """The echo flags of a check's server: the named variant's, then `extra`."""
    return variants.echo_flags(variant) + list(extra)


class Failed(Exception):
    pass


def expect(condition, problem):
    if not condition:
        raise Failed(problem)


class Checks:
    """Runs checks one by one, each to PASS or FAIL, and counts them."""

    def __init__(self):
        self.passed, self.failed = 0, 0

    def check(self, name, function, *args):
        started = time.monotonic()
        try:
            said = function(*args)
        except (Failed, conformance.ConformanceFailed, ServerFailed, OSError, ValueError, KeyError,
                subprocess.SubprocessError) as e:
            self.failed += 1
            print(f"FAIL {name}: {e}", flush=True)
            return False
        self.passed += 1
        print(f"PASS {name} ({time.monotonic() - started:.1f} s): {said}", flush=True)
        return True


def echo_server(flags, log_path, name):
    return Server(lambda port: [ECHO_RELEASE, *flags, "--host", "127.0.0.1", "--port", str(port)],
                  log_path, name=name, start_timeout=60)


def run_echo(args, timeout=60):
    return subprocess.run([ECHO_RELEASE, *args], capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL)


def start_lines(out):
    """echo with no flags: its start lines name the negotiated design and what it left out and why;
    it serves an echo and stops with status 0 on SIGINT."""
    server = echo_server([], os.path.join(out, "start-lines.log"), "echo")
    server.start()
    try:
        with conformance.connect(server.port) as s:
            s.sendall(b"kernel 6.1")
            expect(conformance.receive_exactly(s, 10) == b"kernel 6.1", "the echo came back different")
        text = server.log_text()
    finally:
        server.process.send_signal(signal.SIGINT)
        try:
            status = server.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.stop()
            raise Failed("echo did not stop within 30 s of SIGINT")
    lines = text.splitlines()
    listening = [line for line in lines if "listening on 127.0.0.1:" in line]
    negotiated = [line for line in lines if line.startswith("echo: io_uring on Linux 6.1.")]
    expect(listening, f"no 'listening on 127.0.0.1:' line in {lines}")
    expect(negotiated, f"no 'echo: io_uring on Linux 6.1.…' line in {lines}")
    line = negotiated[0]
    expect(DESIGN_61 in line, f"the design is not '{DESIGN_61}': {line}")
    expect("left out: incremental buffer" in line and "needs Linux 6.12" in line,
           f"incremental buffers not left out with why (needs Linux 6.12): {line}")
    expect(status == 0, f"exit status {status} after SIGINT")
    return f"{line!r}; echoed; SIGINT: status 0"


def features():
    """echo --features --json against what 6.1 is known to have."""
    r = run_echo(["--features", "--json"])
    expect(r.returncode == 0, f"exit status {r.returncode}: {r.stderr.strip()}")
    doc = json.loads(r.stdout)
    expect(doc["kernel_release"].startswith("6.1."), f"kernel_release {doc['kernel_release']!r}")
    expect(doc["uring_available"] is True, f"uring_available {doc['uring_available']!r}: {doc.get('reason')}")
    design = (doc.get("default") or {}).get("design")
    expect(design == DESIGN_61, f"default design {design!r}")
    left_out = {item["feature"]: item["reason"] for item in doc["default"].get("left_out", [])}
    expect("6.12" in left_out.get("incremental-buffers", ""), f"left_out {left_out}")
    available = {f["name"]: f["available"] for f in doc["features"]}
    wrong = [n for n in AVAILABLE_61 if available.get(n) is not True] + \
            [n for n in MISSING_61 if available.get(n) is not False]
    expect(not wrong, "wrong or missing availability for " + ", ".join(wrong))
    return (f"kernel {doc['kernel_release']}, design {design!r}; {len(AVAILABLE_61)} features available, "
            f"{', '.join(MISSING_61)} not; sqpoll {available.get('sqpoll')}")


def refused(flags, words, check_only):
    """echo with flags 6.1 lacks: exit 1, one stderr line naming the feature and its release."""
    args = (["--check"] if check_only else []) + flags + ["--host", "127.0.0.1", "--port", str(free_port())]
    r = run_echo(args)
    lines = r.stderr.strip().splitlines()
    expect(r.returncode == 1, f"exit status {r.returncode} (expected 1); stderr {lines}")
    expect(len(lines) == 1 and lines[0].startswith("echo: error: "), f"stderr is not one error line: {lines}")
    missing = [w for w in words if w not in lines[0]]
    expect(not missing, f"the line does not name {', '.join(missing)}: {lines[0]}")
    return lines[0]


def check_default():
    """echo --check with no flags: exit 0, "can serve" and the design, nothing bound."""
    r = run_echo(["--check", "--host", "127.0.0.1", "--port", str(free_port())])
    expect(r.returncode == 0, f"exit status {r.returncode}: {r.stderr.strip()}")
    text = r.stdout + r.stderr
    expect("can serve" in text and DESIGN_61 in text, f"no 'can serve' with the design in {text.strip()!r}")
    return [line for line in text.splitlines() if "can serve" in line][0]


def conformance_case(server, case, quick):
    said = case(server, quick)
    expect(server.running(), f"the server exited: {server.log_tail()}")
    return said


def bench_run(out):
    """A one-round benchmarks/run --quick with the built binaries and a row 6.1 cannot run: completes,
    skips that row with one line, and its report says where it ran."""
    folder = os.path.join(out, "run")
    args = [sys.executable, os.path.join(BENCH_DIR, "run"), "--quick", "--rounds", "1", "--no-build", "--no-plots",
            "--no-calibration", "--duration", "0.5", "--warmup", "0.2", "--out", folder,
            "--backends", f"uring,epoll,{UNRUNNABLE_ROW}"]
    r = subprocess.run(args, capture_output=True, text=True, timeout=900, stdin=subprocess.DEVNULL)
    with open(os.path.join(out, "run.log"), "w") as log:
        log.write(r.stdout + r.stderr)
    tail = " | ".join((r.stdout + r.stderr).strip().splitlines()[-3:])
    expect(r.returncode == 0, f"exit status {r.returncode}: {tail}")
    with open(os.path.join(folder, "report.md")) as f:
        report = f.read()
    where = f"under {vm.guest_accelerator().upper()}" if vm.guest_accelerator() else None
    expect(where is None or where in report, f"report.md does not say '{where}'")
    skipped = [line for line in r.stdout.splitlines() if line.startswith(f"skipped {UNRUNNABLE_ROW}:")]
    expect(len(skipped) == 1, f"not one line 'skipped {UNRUNNABLE_ROW}: …' in the output: {skipped}")
    ran = {json.loads(line)["server"] for line in open(os.path.join(folder, "runs.jsonl")) if line.strip()}
    expect(ran == {"uring", "epoll"}, f"the rows run were {sorted(ran)}, not uring and epoll")
    return f"completed; {skipped[0]}; uring and epoll ran{'; report.md says ' + repr(where) if where else ''}"


def main(out, quick=False):
    """All the checks; the exit status: 0 when all passed."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # 1000 clients, both ends here
    print(f"kernels: on Linux {os.uname().release}"
          + (f", {vm.describe(vm.guest_accelerator())}" if vm.guest_accelerator() else ", not in a VM")
          + "; completion and correctness only, no speed", flush=True)
    checks = Checks()
    for path in (ECHO_RELEASE, BENCH_RELEASE):
        if not os.access(path, os.X_OK):
            print(f"FAIL {os.path.basename(path)}: {path} is not built (swift build -c release)")
            return 1
    checks.check("start lines", start_lines, out)
    checks.check("features --json", features)
    checks.check("check: default", check_default)
    for variant, words in REFUSED:
        flags = variants.echo_flags(variant)
        for check_only in (False, True):
            name = ("check " if check_only else "refuse ") + variant
            checks.check(name, refused, flags, words, check_only)
    for name, variant, extra in SERVERS:
        flags = server_flags(variant, extra)
        server = echo_server(flags, os.path.join(out, f"server-{name}.log"), name)
        if not checks.check(f"{name}: starts ({variant}: {' '.join(flags)})", lambda: server.start() or
                            server.log_tail(2)):
            continue
        try:
            for case in conformance.CASES:
                why = LEFT_OUT.get(name, {}).get(case.__name__)
                if why:
                    print(f"LEFT OUT {name}: {case.__name__.replace('_', ' ')}: {why}", flush=True)
                    continue
                checks.check(f"{name}: {case.__name__.replace('_', ' ')}", conformance_case, server, case, quick)
        finally:
            status = server.stop()
        checks.check(f"{name}: stops with status 0", lambda: expect(status == 0, f"status {status}") or "status 0")
    checks.check("benchmarks/run --quick --rounds 1", bench_run, out)
    print(f"kernels: {checks.passed} passed, {checks.failed} failed", flush=True)
    return 0 if checks.failed == 0 else 1
