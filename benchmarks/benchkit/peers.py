"""The peer servers: what a user would pick instead of uring-echo, one folder each in benchmarks/peers/.

One table says, for every peer, what it is, where its executable is, how it is started (the runner
adds the port, and the host where the peer takes one) and how it is built. build() builds one and
says which version it was built with, or why the peer is skipped: a missing toolchain skips its
peer instead of failing the run. nio-uring (SwiftNIO on NIO's own io_uring selector) is tried once
per swift-nio version and the outcome kept beside its build: it does not compile on swift-nio
2.101.x, and a release that fixes it gets its row with no change here.
"""

import json
import os
import re
import shlex
import shutil
import subprocess

from benchkit.paths import PEERS_DIR, ROOT
from benchkit.processes import command_output, run_bounded

UNAVAILABLE = 3        # a peer's build.sh exits with this, one line on stderr, when its toolchain is missing
THREADS = "{threads}"  # in a peer's arguments or environment: the number of server CPUs (--server-cpus)
BUILD_TIMEOUT = 1800   # seconds; SwiftNIO's first release build takes 1-2 minutes here
NIO_DIR = os.path.join(PEERS_DIR, "nio")
NIO_URING_SCRATCH = ".build-uring"
# SwiftNIO's own recipe for its io_uring selector (swift-nio's docs/io_uring.md).
NIO_URING_FLAGS = ["-Xcc", "-DSWIFTNIO_USE_IO_URING=1", "-Xlinker", "-luring", "-Xswiftc", "-DSWIFTNIO_USE_IO_URING"]
NIO_URING_OUTCOME = os.path.join(NIO_DIR, NIO_URING_SCRATCH, "outcome.json")


class PeerBuildFailed(Exception):
    """A peer of ours failed to build although its toolchain is there: that is a bug to see, not skip."""


class Built:
    """What preparing a peer gave: the version it was built with, or why it is skipped."""

    def __init__(self, version=None, skipped=None):
        self.version, self.skipped = version, skipped

    def as_dict(self):
        return {"version": self.version} if self.skipped is None else {"skipped": self.skipped}


class Peer:
    """One peer server: `folder` under benchmarks/peers, `binary` inside it, `args` and `env` (THREADS
    stands for the server's CPU count), `takes_host` when it accepts --host, and `builder`, the
    function that builds it (peers sharing a builder and an executable are built once). `uring`:
    None for a peer that does not use io_uring, else the io_uring features its source uses (names
    from `echo --features`), which the runner checks against the running kernel (skips.py)."""

    def __init__(self, name, about, folder, binary, builder, args=(), env=None, takes_host=True, uring=None):
        self.name, self.about, self.builder = name, about, builder
        self.folder = os.path.join(PEERS_DIR, folder)
        self.binary = os.path.join(self.folder, binary)
        self.args, self.env, self.takes_host = list(args), dict(env or {}), takes_host
        self.uring = None if uring is None else list(uring)

    @property
    def multi_threaded(self):
        return THREADS in self.args or THREADS in self.env.values()

    def _parts(self, threads):
        """(`env NAME=VALUE...` or nothing, the executable, its arguments), THREADS filled in."""
        def fill(text):
            return text.replace(THREADS, str(threads))
        env = [f"{k}={fill(v)}" for k, v in self.env.items()]
        return (["env"] + env if env else []), self.binary, [fill(a) for a in self.args]

    def command(self, port, threads=1, host="127.0.0.1"):
        """The argv that starts it on `port`."""
        env, binary, args = self._parts(threads)
        return env + [binary] + (["--host", host] if self.takes_host else []) + ["--port", str(port)] + args

    def shown(self, threads=1):
        """The command as the report shows it: the executable relative to the repository, no host or port."""
        env, binary, args = self._parts(threads)
        return " ".join(shlex.quote(a) for a in env + [os.path.relpath(binary, ROOT)] + args)


def build(peer, say, no_build=False):
    """Builds `peer` (unless `no_build`) and returns a Built: its version, or why it is skipped.
    PeerBuildFailed when a peer of ours does not build although its toolchain is there."""
    built = peer.builder(peer, say, no_build)
    if built.skipped is None and not os.access(peer.binary, os.X_OK):
        if no_build:
            raise PeerBuildFailed(f"{os.path.relpath(peer.binary, ROOT)} is missing; build it or drop --no-build")
        raise PeerBuildFailed(f"{peer.name}: the build left no {os.path.relpath(peer.binary, ROOT)}")
    return built


def first_line(text):
    return next((line.strip() for line in (text or "").splitlines() if line.strip()), "")


def build_script(peer, say, no_build):
    """The peer's own build.sh: exit 0 with build/version.txt, or UNAVAILABLE with one line."""
    script = os.path.join(peer.folder, "build.sh")
    version_file = os.path.join(peer.folder, "build", "version.txt")
    if not no_build:
        say(f"build: {os.path.relpath(script, ROOT)}")
        try:
            r = run_bounded(["sh", script], timeout=BUILD_TIMEOUT, cwd=peer.folder)
        except (OSError, subprocess.TimeoutExpired) as e:
            raise PeerBuildFailed(f"{peer.name}: {os.path.relpath(script, ROOT)} failed: {e}")
        if r.returncode == UNAVAILABLE:
            return Built(skipped=first_line(r.stderr) or "its toolchain is missing")
        if r.returncode != 0:
            raise PeerBuildFailed(f"{peer.name}: {os.path.relpath(script, ROOT)} failed (exit {r.returncode}):\n"
                                  + (r.stderr or r.stdout).strip()[-3000:])
    try:
        with open(version_file) as f:
            return Built(version=f.read().strip())
    except OSError:
        return Built(version="unknown")


def nio_version():
    """The swift-nio version the NIO peer's Package.resolved pins; None before it is resolved."""
    try:
        with open(os.path.join(NIO_DIR, "Package.resolved")) as f:
            for pin in json.load(f).get("pins", []):
                if pin.get("identity") == "swift-nio":
                    return pin.get("state", {}).get("version")
    except (OSError, ValueError):
        pass
    return None


def swift_build(argv, say, note):
    """`swift build ...` in the NIO peer's folder, bounded; the CompletedProcess."""
    say(f"build: cd {os.path.relpath(NIO_DIR, ROOT)} && {' '.join(argv)}  ({note})")
    try:
        return run_bounded(argv, timeout=BUILD_TIMEOUT, cwd=NIO_DIR)
    except (OSError, subprocess.TimeoutExpired) as e:
        return subprocess.CompletedProcess(argv, 1, "", str(e))


def build_nio(peer, say, no_build):
    if not no_build:
        if not shutil.which("swift"):
            return Built(skipped="swift not found")
        r = swift_build(["swift", "build", "-c", "release"], say, "the first build takes 1-2 minutes")
        if r.returncode != 0:
            raise PeerBuildFailed(f"building the NIO peer failed (exit {r.returncode}):\n"
                                  + (r.stderr or r.stdout).strip()[-3000:])
    return Built(version=f"swift-nio {nio_version() or 'unknown'}")


def nio_uring_command():
    return ["swift", "build", "-c", "release", "--scratch-path", NIO_URING_SCRATCH] + NIO_URING_FLAGS


def compile_errors(output):
    """The distinct `error:` lines of a swift build, paths from the package checkout on."""
    seen = []
    for line in output.splitlines():
        match = re.match(r"^(/\S+?):(\d+):(\d+): error: (.*)$", line.strip())
        if match:
            path = match.group(1)
            path = path.split("/checkouts/", 1)[1] if "/checkouts/" in path else os.path.relpath(path, NIO_DIR)
            text = f"{path}:{match.group(2)}:{match.group(3)}: {match.group(4)}"
            if text not in seen:
                seen.append(text)
    return seen


def nio_uring_outcome():
    try:
        with open(NIO_URING_OUTCOME) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def does_not_build(outcome):
    errors = outcome.get("errors") or []
    return (f"does not build on swift-nio {outcome.get('swift_nio')}: {len(errors)} compile error(s), the first "
            f"{errors[0] if errors else '?'} (tried once per swift-nio version; "
            f"{os.path.relpath(NIO_DIR, ROOT)}/README.md has the command and the errors)")


def build_nio_uring(peer, say, no_build):
    """Tried once per swift-nio version: a failure with compile errors is kept in NIO_URING_OUTCOME
    and skips the peer until Package.resolved names another swift-nio."""
    version = nio_version()
    if version is None and not no_build and shutil.which("swift"):
        run_bounded(["swift", "package", "resolve"], timeout=BUILD_TIMEOUT, cwd=NIO_DIR)
        version = nio_version()
    outcome = nio_uring_outcome()
    if outcome and outcome.get("swift_nio") == version and not outcome.get("built"):
        return Built(skipped=does_not_build(outcome))
    if no_build:
        return Built(version=f"swift-nio {version or 'unknown'}, io_uring selector")
    if not shutil.which("swift"):
        return Built(skipped="swift not found")
    argv = nio_uring_command()
    r = swift_build(argv, say, "NIO's io_uring selector; tried once per swift-nio version, 1-2 minutes")
    output = (r.stdout or "") + (r.stderr or "")
    errors = compile_errors(output)
    version = nio_version()
    if r.returncode == 0 or errors:  # a build, or NIO's own compile errors: the outcome for this version
        os.makedirs(os.path.dirname(NIO_URING_OUTCOME), exist_ok=True)
        outcome = {"swift_nio": version, "built": r.returncode == 0, "command": " ".join(argv), "errors": errors}
        with open(NIO_URING_OUTCOME, "w") as f:
            json.dump(outcome, f, indent=1)
    if r.returncode != 0:
        return Built(skipped=does_not_build(outcome) if errors
                     else f"swift build failed (exit {r.returncode}): {first_line(r.stderr) or first_line(r.stdout)}")
    return Built(version=f"swift-nio {version}, io_uring selector")


def c_build_command(peer):
    """cc -O2 for one C peer; c-uring links liburing (pkg-config liburing, else plain -luring)."""
    argv = [os.environ.get("CC", "cc"), "-O2", "-Wall", "-o", peer.binary,
            os.path.join(peer.folder, os.path.basename(peer.binary) + ".c")]
    if peer.name == "c-uring":
        flags = command_output(["pkg-config", "--cflags", "--libs", "liburing"], timeout=30)
        argv += shlex.split(flags) if flags else ["-luring"]
    return argv


def cc_version():
    return first_line(command_output([os.environ.get("CC", "cc"), "--version"])) or "unknown"


def build_c(peer, say, no_build):
    if not no_build:
        compiler = os.environ.get("CC", "cc")
        if not shutil.which(compiler):
            return Built(skipped=f"{compiler} not found (apt-get install gcc)")
        os.makedirs(os.path.dirname(peer.binary), exist_ok=True)
        argv = c_build_command(peer)
        say(f"build: {' '.join(shlex.quote(os.path.relpath(a, ROOT) if os.path.isabs(a) else a) for a in argv)}")
        try:
            r = run_bounded(argv, timeout=300, cwd=ROOT)
        except (OSError, subprocess.TimeoutExpired) as e:
            raise PeerBuildFailed(f"building {peer.name} failed: {e}")
        if r.returncode != 0:
            hint = " (c-uring needs liburing: apt-get install liburing-dev)" if peer.name == "c-uring" else ""
            raise PeerBuildFailed(f"building {peer.name} failed (exit {r.returncode}){hint}:\n"
                                  + (r.stderr or r.stdout).strip())
    return Built(version=f"{cc_version()} -O2")


# What c-uring-echo.c sets up: SINGLE_ISSUER + DEFER_TASKRUN rings, multishot accept, multishot recv on a
# provided-buffer ring registered by hand (its poll on a signalfd and its plain sends are older than all).
C_URING_FEATURES = ["single-issuer", "defer-taskrun", "multishot-accept", "multishot-receive", "buffer-ring"]

TABLE = [Peer(*p[:5], **p[5]) for p in [
    ("nio", "SwiftNIO's echo server (NIO's example handler behind BackPressureHandler), one event loop on epoll",
     "nio", ".build/release/nio-echo", build_nio, {"args": ["--threads", "1"]}),
    ("nio-uring", "the same SwiftNIO server on NIO's io_uring selector (SWIFTNIO_USE_IO_URING: io_uring polls, "
                  "reads and writes stay syscalls), one event loop",
     "nio", NIO_URING_SCRATCH + "/release/nio-echo", build_nio_uring, {"args": ["--threads", "1"], "uring": []}),
    ("tokio", "tokio's current-thread runtime: a task per connection, a 4 KiB read buffer reused, write_all, "
              "TCP_NODELAY (benchmarks/peers/tokio)",
     "tokio", "build/tokio-echo", build_script, {"args": ["--runtime", "current-thread"]}),
    ("tokio-mt", "the same tokio server on the multi-thread runtime, one worker per server CPU",
     "tokio", "build/tokio-echo", build_script, {"args": ["--runtime", "multi-thread", "--threads", THREADS]}),
    ("go", "Go: a goroutine per connection, a read/write loop on a 4 KiB buffer, TCP_NODELAY, GOMAXPROCS=1 "
           "(benchmarks/peers/go)",
     "go", "build/go-echo", build_script, {"env": {"GOMAXPROCS": "1"}}),
    ("go-mt", "the same Go server with GOMAXPROCS = the server's CPUs",
     "go", "build/go-echo", build_script, {"env": {"GOMAXPROCS": THREADS}}),
    ("c-epoll", "C reference: level-triggered epoll, one read per readiness, EPOLLOUT on a partial write "
                "(benchmarks/peers/c/c-epoll-echo.c)",
     "c", "build/c-epoll-echo", build_c, {"takes_host": False}),
    ("c-uring", "C reference: io_uring, SINGLE_ISSUER + DEFER_TASKRUN, multishot accept + multishot recv on a "
                "buffer ring, send from the received buffer (benchmarks/peers/c/c-uring-echo.c)",
     "c", "build/c-uring-echo", build_c, {"takes_host": False, "uring": C_URING_FEATURES}),
]]
BY_NAME = {p.name: p for p in TABLE}
NAMES = [p.name for p in TABLE]
