"""Running a command on another kernel: the kernel booted under qemu by virtme-ng (`vng`), with this
machine's own filesystem read-only inside (writable overlays on /tmp, /etc and the like; --rwdir
folders whose writes reach the host).

KVM or TCG: TCG (qemu's emulation) unless KVM is asked for (`--kvm`, or ON_KERNEL_KVM=1). A guest
that hangs under KVM cannot be told from one that boots slowly without waiting for it, and here
(nested KVM) it hangs right after "Probing EDD"; so the launcher never guesses, and a machine whose
KVM works opts in. TCG boots Debian 12's 6.1 in about 20 s here; figures measured under it mean
nothing for speed.

The guest runs the command as root in the current folder, with this machine's PATH, its descriptor
limits (the guest's own are 1024/4096) and ON_KERNEL set to "kvm" or "tcg", which the kit reads to
say in its reports where it ran. The launcher exits with the command's exit status, or 124 when the
whole boot and run took longer than its timeout (the guest is then killed).
"""

import glob
import os
import re
import resource
import shlex
import shutil
import signal
import subprocess
import sys
import threading
import time

from benchkit.paths import BENCH_DIR, ROOT

VENV = os.path.join(BENCH_DIR, ".venv-vm")
VNG = os.path.join(VENV, "bin", "vng")
REQUIREMENTS = os.path.join(BENCH_DIR, "requirements-vm.txt")
MARKER = "ON_KERNEL"          # set in the guest: "kvm" or "tcg"
KVM_ENV = "ON_KERNEL_KVM"     # ON_KERNEL_KVM=1 asks for KVM, as --kvm does
DEFAULT_MEMORY = "4G"
DEFAULT_CPUS = 2              # the kit pins the server to CPU 0 and the load to CPU 1
DEFAULT_TIMEOUT = 1800        # seconds, boot included
TIMED_OUT = 124               # the exit status of timeout(1)
DEFAULT_SERIES = "6.1"        # Debian 12's kernel, from linux-image-amd64


class VMError(Exception):
    pass


def version_key(path):
    """vmlinuz-6.1.0-57-amd64 sorts by its numbers: (6, 1, 0, 57)."""
    return tuple(int(n) for n in re.findall(r"\d+", os.path.basename(path)))


def default_kernel():
    """The newest /boot/vmlinuz-6.1.*, or None."""
    found = sorted(glob.glob(f"/boot/vmlinuz-{DEFAULT_SERIES}.*"), key=version_key)
    return found[-1] if found else None


def release(kernel):
    """The release a kernel image boots as (its name after vmlinuz-), e.g. 6.1.0-57-amd64."""
    name = os.path.basename(kernel)
    return name[len("vmlinuz-"):] if name.startswith("vmlinuz-") else name


def accelerator(kvm_asked):
    """("kvm" or "tcg", a note when KVM was asked for but cannot be had)."""
    if not kvm_asked:
        return "tcg", None
    if not os.access("/dev/kvm", os.R_OK | os.W_OK):
        return "tcg", "KVM asked for, but /dev/kvm is missing or not usable"
    return "kvm", None


def kvm_asked_by_environment():
    return os.environ.get(KVM_ENV, "") not in ("", "0")


def describe(accel):
    """The words the launcher and the kit's reports use."""
    return "under KVM" if accel == "kvm" else "under TCG (emulated: no speed meaning)"


def guest_accelerator():
    """Inside a guest started by this launcher: "kvm" or "tcg"; None elsewhere."""
    value = os.environ.get(MARKER)
    return value if value in ("kvm", "tcg") else None


def report_note():
    """For the kit's reports, in a guest this launcher started: "under KVM" or "under TCG: emulated, no
    speed meaning"; None elsewhere."""
    accel = guest_accelerator()
    return None if accel is None else "under KVM" if accel == "kvm" else "under TCG: emulated, no speed meaning"


def kernel_text(env):
    """The kernel as reports name it: its release, and in a VM under what it ran."""
    return env["kernel"] + (f", {env['vm']}" if env.get("vm") else "")


def problems(kernel):
    """What is missing to boot `kernel`, as short phrases (empty when nothing is)."""
    missing = []
    if not os.access(VNG, os.X_OK):
        missing.append(f"virtme-ng ({os.path.relpath(VNG, ROOT)})")
    if not shutil.which("qemu-system-x86_64"):
        missing.append("qemu-system-x86_64 (Debian qemu-system-x86)")
    if not any(os.access(p, os.X_OK) for p in ("/bin/busybox", "/usr/bin/busybox")):
        missing.append("busybox (Debian busybox-static)")
    if kernel is None:
        missing.append(f"a Linux {DEFAULT_SERIES} kernel in /boot (Debian linux-image-amd64)")
    elif not os.path.isfile(kernel):
        missing.append(f"the kernel {kernel}")
    elif not os.path.isdir(f"/lib/modules/{release(kernel)}"):
        missing.append(f"its modules (/lib/modules/{release(kernel)})")
    return missing


def guest_script(command, cwd, accel):
    """The shell line the guest runs: this machine's folder, PATH and descriptor limits, the marker."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    limits = "" if soft == resource.RLIM_INFINITY or hard == resource.RLIM_INFINITY else \
        f"ulimit -Hn {hard} && ulimit -Sn {soft} && "
    env = [f"PATH={os.environ.get('PATH', '/usr/sbin:/usr/bin:/sbin:/bin')}", f"{MARKER}={accel}"]
    return (f"cd {shlex.quote(cwd)} && {limits}exec env {' '.join(shlex.quote(e) for e in env)} "
            + " ".join(shlex.quote(a) for a in command))


def vng_command(kernel, script, accel, memory=DEFAULT_MEMORY, cpus=DEFAULT_CPUS, rwdirs=()):
    argv = [VNG, "--run", kernel, "--memory", str(memory), "--cpus", str(cpus), "--force-9p"]
    if accel == "tcg":
        argv.append("--disable-kvm")
    for folder in rwdirs:
        argv += ["--rwdir", folder]
    return argv + ["--", script]


def copy(source, target):
    """Everything from the pipe `source` to the stream `target`, as it comes."""
    target.flush()
    while True:
        chunk = os.read(source.fileno(), 65536)
        if not chunk:
            return
        target.buffer.write(chunk)
        target.flush()


def run(command, kernel=None, memory=DEFAULT_MEMORY, cpus=DEFAULT_CPUS, rwdirs=(), timeout=DEFAULT_TIMEOUT,
        kvm=False, cwd=None, say=None):
    """Boots `kernel` (default: the newest 6.1), runs `command` (argv) in it and returns its exit
    status (TIMED_OUT when the time ran out). Says one line first: which kernel, under what.
    VMError when something the launcher needs is missing."""
    say = say or (lambda text: print(text, file=sys.stderr, flush=True))
    kernel = os.path.abspath(kernel) if kernel else default_kernel()
    missing = problems(kernel)
    if missing:
        raise VMError("missing " + "; ".join(missing) + ": run `make vm-deps`")
    accel, note = accelerator(kvm or kvm_asked_by_environment())
    rwdirs = [os.path.abspath(d) for d in rwdirs]
    for folder in rwdirs:
        if not os.path.isdir(folder):
            raise VMError(f"--rwdir {folder}: no such folder")
    say(f"on-kernel: Linux {release(kernel)} ({kernel}) {describe(accel)}, {cpus} vCPUs, {memory}"
        + (f"; {note}" if note else ""))
    script = guest_script(command, cwd or os.getcwd(), accel)
    # vng finds its helpers (virtme-run) on PATH.
    env = dict(os.environ, PATH=os.path.dirname(VNG) + os.pathsep + os.environ.get("PATH", ""))
    # Pipes, copied here: virtme reopens /dev/stdout and /dev/stderr, which truncates a log file
    # they point at (and with it everything written there before, e.g. by make test).
    process = subprocess.Popen(vng_command(kernel, script, accel, memory, cpus, rwdirs), env=env,
                               stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               start_new_session=True)
    copies = [threading.Thread(target=copy, args=(source, target), daemon=True)
              for source, target in ((process.stdout, sys.stdout), (process.stderr, sys.stderr))]
    for thread in copies:
        thread.start()
    started = time.monotonic()
    try:
        status = process.wait(timeout=timeout)
        for thread in copies:
            thread.join(10)
        return status
    except subprocess.TimeoutExpired:
        say(f"on-kernel: timed out after {timeout:g} s (boot included); the guest was killed")
        return TIMED_OUT
    except KeyboardInterrupt:
        say(f"on-kernel: interrupted after {time.monotonic() - started:.0f} s; the guest was killed")
        return 130
    finally:
        if process.poll() is None:
            try:
                os.killpg(process.pid, signal.SIGKILL)  # vng and its qemu: their own session
            except OSError:
                pass
            process.wait()
