"""Readers of /proc: a process's CPU time, context switches, syscall counts, sockets,
descriptors and memory; the machine's Slab and CPU model."""

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


def open_sockets(pid):
    """Sockets among the descriptors of `pid` (the listener and every connection); -1 when unreadable."""
    count = 0
    try:
        for fd in os.listdir(f"/proc/{pid}/fd"):
            try:
                if os.readlink(f"/proc/{pid}/fd/{fd}").startswith("socket:"):
                    count += 1
            except OSError:
                pass
    except OSError:
        return -1
    return count


def fd_count(pid):
    """Open descriptors of `pid` (OSError when the process is gone)."""
    return len(os.listdir(f"/proc/{pid}/fd"))


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


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"
