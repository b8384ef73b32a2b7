"""Readers of /proc: a process's CPU time, context switches, syscall counts, sockets,
descriptors and memory; the machine's Slab, TCP losses and CPU model."""

import os
import platform

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_times(pid):
    """(utime, stime) of every thread of `pid`, in seconds, from /proc/PID/stat."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    # After the command name: state is field 3, utime field 14, stime field 15 (1-based).
    return int(fields[11]) / CLOCK_TICKS, int(fields[12]) / CLOCK_TICKS


def switches_and_io(pid):
    """Context switches over all threads, and /proc/PID/io's read/write syscall counts."""
    extra = {"voluntary_ctxt_switches": 0, "nonvoluntary_ctxt_switches": 0}
    try:
        for tid in os.listdir(f"/proc/{pid}/task"):
            try:
                with open(f"/proc/{pid}/task/{tid}/status") as f:
                    for line in f:
                        key, _, value = line.partition(":")
                        if key in extra:
                            extra[key] += int(value)
            except OSError:
                pass
        with open(f"/proc/{pid}/io") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key in ("syscr", "syscw"):
                    extra[key] = int(value)
    except OSError:
        pass
    return extra


def socket_inodes(pid):
    """The inodes of the sockets among the descriptors of `pid`; None when unreadable."""
    inodes = set()
    try:
        for fd in os.listdir(f"/proc/{pid}/fd"):
            try:
                link = os.readlink(f"/proc/{pid}/fd/{fd}")
            except OSError:
                continue
            if link.startswith("socket:["):
                inodes.add(link[len("socket:["):-1])
    except OSError:
        return None
    return inodes


def open_sockets(pid):
    """Sockets among the descriptors of `pid`, of every kind (listeners, connections, a runtime's own);
    -1 when unreadable. Fast however many closed connections the kernel still remembers."""
    inodes = socket_inodes(pid)
    return -1 if inodes is None else len(inodes)


def tcp_connections(pid, port):
    """Connections `pid` holds on its local TCP port `port` (not the listener, nor its other
    sockets such as a runtime's wake-up pair): its socket inodes found in /proc/PID/net/tcp and tcp6,
    the tables of its own network namespace (--path veth). -1 when its descriptors are unreadable."""
    inodes = socket_inodes(pid)
    if inodes is None:
        return -1
    local, listening, count = f":{port:04X}", "0A", 0
    for table in (f"/proc/{pid}/net/tcp", f"/proc/{pid}/net/tcp6"):
        try:
            with open(table) as f:
                next(f)
                for line in f:
                    fields = line.split()
                    if fields[1].endswith(local) and fields[3] != listening and fields[9] in inodes:
                        count += 1
        except (OSError, StopIteration):
            pass
    return count


def passive_opens(pid):
    """TCP connections accepted in the network namespace of `pid` since it was made (PassiveOpens in
    /proc/PID/net/snmp); -1 when unreadable."""
    try:
        with open(f"/proc/{pid}/net/snmp") as f:
            rows = [line.split() for line in f if line.startswith("Tcp:")]
        return int(rows[1][rows[0].index("PassiveOpens")])
    except (OSError, IndexError, ValueError):
        return -1


def fd_count(pid):
    """Open descriptors of `pid` (OSError when the process is gone)."""
    return len(os.listdir(f"/proc/{pid}/fd"))


def pipe_count(pid):
    """Descriptors of `pid` that are pipes (OSError when the process is gone). A pipe may close
    between the listing and its readlink: it is then not counted."""
    count = 0
    for name in os.listdir(f"/proc/{pid}/fd"):
        try:
            if os.readlink(f"/proc/{pid}/fd/{name}").startswith("pipe:"):
                count += 1
        except FileNotFoundError:
            pass
    return count


def status_kib(pid, key="VmRSS"):
    """A kB figure from /proc/PID/status (VmRSS, VmHWM, ...); 0 when the key is absent."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return 0


def slab_kib():
    """The kernel's Slab from /proc/meminfo, in KiB (sockets of both ends of every connection)."""
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("Slab:"):
                return int(line.split()[1])
    return 0


def tcp_losses():
    """Machine-wide counters of what TCP lost: connections the kernel aborted for lack of memory
    (TcpExt TCPAbortOnMemory: too many orphans, each reset instead of closed) and packets dropped
    from the CPUs' input queues (/proc/net/softnet_stat, second column), where loopback delivers."""
    aborts = 0
    with open("/proc/net/netstat") as f:
        lines = f.read().splitlines()
    for names, values in zip(lines[::2], lines[1::2]):
        if names.startswith("TcpExt:"):
            aborts = dict(zip(names.split()[1:], values.split()[1:])).get("TCPAbortOnMemory", "0")
    with open("/proc/net/softnet_stat") as f:
        drops = sum(int(line.split()[1], 16) for line in f if line.strip())
    return {"aborts_on_memory": int(aborts), "backlog_drops": drops}


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"
