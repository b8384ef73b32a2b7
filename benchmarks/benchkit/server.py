"""One server process, from start to stop, for run, soak and hold.

A Server runs `command(port)` on a free port (pinned with taskset when given CPUs), waits until
it listens on the port and, when it writes --stats-json, until that file is there, and starts
again on another port when someone took the port in between. statistics() samples echo's own
counters the way `echo --help` says: remove PATH, send SIGUSR1, wait for PATH to reappear.
stop() sends SIGTERM, waits, and kills only this PID if it hangs.
"""

import json
import os
import signal
import socket
import subprocess
import time


class ServerFailed(Exception):
    pass


def free_port(host="127.0.0.1"):
    """A TCP port nobody listens on now (the kernel's pick)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def can_connect(port, host="127.0.0.1", timeout=0.2):
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


class Server:
    """A server process started by this script.

    command:    port -> argv (echo with its flags, a peer, or a test's own command)
    stats_path: the --stats-json PATH in that argv, if any: readiness waits for it, and
                statistics() reads it
    log_path:   where the server's stdout and stderr go
    cpus:       taskset -c CPUS in front of the command, or None
    preexec_fn: run in the child before exec (e.g. processes.die_with_parent)
    host:       the address it listens on, as clients reach it (readiness connects there)
    prefix:     argv in front of it all, e.g. `ip netns exec NS` (each part execs the next, so the
                PID is the server's)
    """

    def __init__(self, command, log_path, name="server", stats_path=None, cpus=None, preexec_fn=None,
                 start_timeout=30.0, attempts=3, host="127.0.0.1", prefix=()):
        self.command, self.log_path, self.name, self.stats_path = command, log_path, name, stats_path
        self.cpus, self.preexec_fn, self.host, self.prefix = cpus, preexec_fn, host, list(prefix)
        self.start_timeout, self.attempts = start_timeout, attempts
        self.process = None
        self.port = None
        self.argv = None

    @property
    def pid(self):
        return self.process.pid

    def start(self, port=None):
        """Starts the server and returns once it is ready; ServerFailed when it is not. The first
        attempt uses `port` when given; after an address-in-use, another free port."""
        for attempt in range(self.attempts):
            port = port if port is not None and attempt == 0 else free_port()
            if self.stats_path and os.path.exists(self.stats_path):
                os.unlink(self.stats_path)
            argv = self.prefix + (["taskset", "-c", self.cpus] if self.cpus else []) + list(self.command(port))
            with open(self.log_path, "w") as log:
                self.process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT,
                                                stdin=subprocess.DEVNULL, preexec_fn=self.preexec_fn)
            self.port, self.argv = port, argv
            if self.wait_ready():
                return
            output = self.log_tail()
            exited = self.process.poll()
            self.stop()
            if "address already in use" in output.lower():
                continue  # someone took the free port in between: try another
            raise ServerFailed(f"{self.name} did not start listening on port {port}"
                               + (f" (exited with status {exited})" if exited is not None else "")
                               + f": {output or 'no output'}")
        raise ServerFailed(f"{self.name}: no free port after {self.attempts} attempts")

    def wait_ready(self):
        """True once the server listens on its port (and has written its stats file, if any);
        False when it exits or the start-up time runs out."""
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                return False
            if can_connect(self.port, self.host) and (not self.stats_path or os.path.exists(self.stats_path)):
                time.sleep(0.05)  # let it accept and close the probe
                return True
            time.sleep(0.02)
        return False

    def running(self):
        return self.process is not None and self.process.poll() is None

    def statistics(self, timeout=5.0):
        """echo's counters now: remove PATH, SIGUSR1, wait for PATH to reappear, read it."""
        try:
            os.unlink(self.stats_path)
        except FileNotFoundError:
            pass
        os.kill(self.process.pid, signal.SIGUSR1)
        deadline = time.monotonic() + timeout
        while not os.path.exists(self.stats_path):
            if time.monotonic() > deadline or self.process.poll() is not None:
                raise ServerFailed(f"{self.name} wrote no statistics after SIGUSR1: {self.log_tail()}")
            time.sleep(0.001)
        with open(self.stats_path) as f:
            return json.load(f)

    def log_text(self, limit=2000):
        """The last `limit` characters of what the server printed."""
        try:
            with open(self.log_path, "rb") as f:
                return f.read()[-limit:].decode(errors="replace").strip()
        except OSError:
            return ""

    def log_tail(self, lines=3):
        """The last lines of what the server printed, on one line."""
        try:
            with open(self.log_path) as f:
                return " | ".join(f.read().strip().splitlines()[-lines:])
        except (OSError, UnicodeDecodeError):
            return ""

    def stop(self, timeout=20.0):
        """SIGTERM, wait; SIGKILL this PID only if it hangs. Returns the exit status, "killed" when
        it had to be killed, None when it never started."""
        if self.process is None or self.process.poll() is not None:
            return None if self.process is None else self.process.returncode
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)
            return "killed"
