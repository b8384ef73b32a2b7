"""The path between the load and the server: loopback (the default), or `--path veth`.

With veth the server runs in a network namespace of its own, joined by a veth pair to a second
namespace where the load runs: traffic crosses a device and its qdisc, as on a NIC, and never
leaves the two namespaces. The addresses come from the benchmarking range 198.18.0.0/15 (RFC 2544).
The runner moves its own thread into the load's namespace (setns), so echo-bench, the calibration
probe and the runner's readiness checks all start there; servers start through `ip netns exec`,
which execs them with the same PID, so /proc/PID (CPU time, descriptors) and the taskset pinning
work as on loopback. Both namespaces are removed on the way out, on an error or Ctrl-C too, and
those a killed runner left behind are removed by the next one.
"""

import ctypes
import os
import shutil
import subprocess

CLONE_NEWNET = 0x40000000
NAMESPACE_PREFIX = "echo-bench-"          # echo-bench-srv-PID and echo-bench-load-PID
NETNS_DIR = "/run/netns"                  # where `ip netns add` mounts them
SERVER_ADDRESS, LOAD_ADDRESS, PREFIX_LENGTH = "198.18.0.2", "198.18.0.1", 30
PATHS = ("loopback", "veth")


class NetPathError(Exception):
    pass


class Loopback:
    """Server and load on 127.0.0.1 in the runner's own namespace."""

    name = "loopback"
    server_host = "127.0.0.1"
    server_prefix = ()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def describe(self):
        return "loopback (127.0.0.1)"


LOOPBACK = Loopback()


def problem(netem_delay_ms=None):
    """Why --path veth cannot run here (one line), or None."""
    if os.geteuid() != 0:
        return "--path veth needs root (it creates network namespaces)"
    if not shutil.which("ip"):
        return "--path veth needs ip (iproute2)"
    if netem_delay_ms and not shutil.which("tc"):
        return "--netem-delay needs tc (iproute2)"
    return None


def ip(*args, tool="ip"):
    done = subprocess.run([tool, *args], capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=30)
    if done.returncode != 0:
        raise NetPathError(f"{tool} {' '.join(args)}: {(done.stderr or done.stdout).strip()}")
    return done.stdout


def default_qdisc():
    """The qdisc the kernel gives a NIC (net.core.default_qdisc)."""
    try:
        with open("/proc/sys/net/core/default_qdisc") as f:
            return f.read().strip() or "pfifo_fast"
    except OSError:
        return "pfifo_fast"


def namespaces():
    """The names `ip netns list` shows."""
    return [line.split()[0] for line in ip("netns", "list").splitlines() if line.strip()]


def remove_stale():
    """Removes the namespaces of runners that are gone (killed before they could clean up)."""
    for name in namespaces():
        if not name.startswith(NAMESPACE_PREFIX):
            continue
        pid = name.rsplit("-", 1)[-1]
        if pid.isdigit() and not os.path.exists(f"/proc/{pid}"):
            ip("netns", "del", name)


def setns(fd):
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.setns(fd, CLONE_NEWNET) != 0:
        error = ctypes.get_errno()
        raise OSError(error, f"setns: {os.strerror(error)}")


class Veth:
    """Two namespaces and a veth pair, for the length of a `with` block; this thread in the load's."""

    name = "veth"
    server_host = SERVER_ADDRESS

    def __init__(self, netem_delay_ms=None, tag=None):
        tag = tag or os.getpid()
        self.server_ns, self.load_ns = f"{NAMESPACE_PREFIX}srv-{tag}", f"{NAMESPACE_PREFIX}load-{tag}"
        self.server_if, self.load_if = f"ebs{tag}"[:15], f"ebl{tag}"[:15]
        self.netem_delay_ms = netem_delay_ms
        self.server_prefix = ["ip", "netns", "exec", self.server_ns]
        self.created, self.home, self.qdisc = [], None, "noqueue"

    def describe(self):
        qdisc = (f"netem delay {self.netem_delay_ms:g} ms on both ends (each direction)" if self.netem_delay_ms
                 else f"qdisc {self.qdisc} on both ends")
        return (f"veth: server in netns {self.server_ns} at {SERVER_ADDRESS}, load in netns {self.load_ns} at "
                f"{LOAD_ADDRESS} (/{PREFIX_LENGTH}), {qdisc}")

    def __enter__(self):
        try:
            self.create()
            self.home = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
            fd = os.open(os.path.join(NETNS_DIR, self.load_ns), os.O_RDONLY)
            try:
                setns(fd)
            finally:
                os.close(fd)
        except BaseException:
            self.__exit__()
            raise
        return self

    def create(self):
        remove_stale()
        for ns in (self.server_ns, self.load_ns):
            ip("netns", "add", ns)
            self.created.append(ns)
            ip("-n", ns, "link", "set", "lo", "up")
        ip("-n", self.load_ns, "link", "add", self.load_if, "type", "veth", "peer", "name", self.server_if,
           "netns", self.server_ns)
        for ns, device, address in ((self.load_ns, self.load_if, LOAD_ADDRESS),
                                    (self.server_ns, self.server_if, SERVER_ADDRESS)):
            ip("-n", ns, "addr", "add", f"{address}/{PREFIX_LENGTH}", "dev", device)
            ip("-n", ns, "link", "set", device, "up")
            self.add_qdisc(ns, device)

    def add_qdisc(self, ns, device):
        """A veth has no queue of its own (noqueue): give each end the machine's default qdisc, as a
        NIC has, or netem with --netem-delay. Without tc the ends stay noqueue, and describe() says so."""
        if self.netem_delay_ms:
            try:
                ip("-n", ns, "qdisc", "add", "dev", device, "root", "netem", "delay", f"{self.netem_delay_ms:g}ms",
                   tool="tc")
            except NetPathError as e:
                raise NetPathError(f"--netem-delay: netem is not available here (kernel module sch_netem?): {e}")
            self.qdisc = "netem"
        elif shutil.which("tc"):
            ip("-n", ns, "qdisc", "replace", "dev", device, "root", default_qdisc(), tool="tc")
            self.qdisc = default_qdisc()

    def __exit__(self, *exc):
        try:
            if self.home is not None:
                try:
                    setns(self.home)
                finally:
                    os.close(self.home)
                    self.home = None
        finally:
            failed = []
            for ns in reversed(self.created):
                try:
                    ip("netns", "del", ns)  # the veth pair goes with its namespaces
                except NetPathError as e:
                    failed.append(str(e))
            self.created = []
            if failed:
                raise NetPathError("; ".join(failed))
        return False


def open_path(o):
    """The context for o.path: LOOPBACK, or a Veth (not entered yet)."""
    return Veth(o.netem_delay) if o.path == "veth" else LOOPBACK
