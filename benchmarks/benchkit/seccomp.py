"""benchmarks/no-uring: run a command where io_uring is blocked, as Docker Engine 25+'s default seccomp
profile blocks it.

    benchmarks/no-uring -- .build/release/echo                 echo's one-line error, exit 1
    benchmarks/no-uring -- .build/release/echo --features --json
    benchmarks/no-uring -- benchmarks/run --quick              the uring rows are skipped, epoll runs
    benchmarks/no-uring --errno ENOSYS -- COMMAND...           as some rootless Podman setups answer

It installs a seccomp filter (classic BPF, through prctl) under which io_uring_setup, io_uring_enter
and io_uring_register (x86_64 system calls 425, 426 and 427; also their i386 and x32 forms) fail with
EPERM and every other system call is allowed; sets no_new_privs first, which lets an unprivileged
user install a filter; then execs COMMAND. The filter is inherited by every child and cannot be
removed, so the whole command tree runs without io_uring. x86_64 only: elsewhere it refuses with
one line. Exit status: COMMAND's own; 2 for bad usage; 1 when the filter cannot be installed; 126 or
127 when COMMAND cannot be run.
"""

import ctypes
import errno
import os
import platform
import struct
import sys

PROG = "benchmarks/no-uring"
# seccomp_data: the system call number at offset 0, the audit architecture at offset 4.
OFFSET_NR, OFFSET_ARCH = 0, 4
AUDIT_ARCH_X86_64 = 0xC000003E
AUDIT_ARCH_I386 = 0x40000003
X32_SYSCALL_BIT = 0x40000000
# The same numbers on x86_64 and i386 (io_uring came after the system call tables were unified).
IO_URING_SYSCALLS = {"io_uring_setup": 425, "io_uring_enter": 426, "io_uring_register": 427}
# Classic BPF opcodes and seccomp return values (linux/filter.h, linux/seccomp.h).
BPF_LD_W_ABS = 0x20    # BPF_LD | BPF_W | BPF_ABS
BPF_JEQ_K = 0x15       # BPF_JMP | BPF_JEQ | BPF_K
BPF_RET_K = 0x06       # BPF_RET | BPF_K
SECCOMP_RET_ALLOW = 0x7FFF0000
SECCOMP_RET_ERRNO = 0x00050000
PR_SET_NO_NEW_PRIVS = 38
PR_SET_SECCOMP = 22
SECCOMP_MODE_FILTER = 2
ERRNOS = {"EPERM": errno.EPERM, "ENOSYS": errno.ENOSYS}


def program(error=errno.EPERM):
    """The filter as (code, jt, jf, k) instructions: on x86_64 (or i386) an io_uring system call
    returns -`error`; anything else is allowed."""
    numbers = sorted(IO_URING_SYSCALLS.values())
    numbers += [X32_SYSCALL_BIT | n for n in numbers]
    out = [(BPF_LD_W_ABS, 0, 0, OFFSET_ARCH),
           (BPF_JEQ_K, 2, 0, AUDIT_ARCH_X86_64),   # -> load the number
           (BPF_JEQ_K, 1, 0, AUDIT_ARCH_I386),     # -> load the number
           (BPF_RET_K, 0, 0, SECCOMP_RET_ALLOW),   # another architecture: not ours to judge
           (BPF_LD_W_ABS, 0, 0, OFFSET_NR)]
    deny = len(out) + len(numbers) + 1  # the last instruction, after the comparisons and the allow
    for number in numbers:
        out.append((BPF_JEQ_K, deny - (len(out) + 1), 0, number))
    out.append((BPF_RET_K, 0, 0, SECCOMP_RET_ALLOW))
    out.append((BPF_RET_K, 0, 0, SECCOMP_RET_ERRNO | (error & 0xFFFF)))
    return out


def run_filter(instructions, nr, arch):
    """Evaluates `instructions` on a system call (number, audit arch), as the kernel would: the
    seccomp return value. For the unit tests, which cannot watch the kernel's own evaluation."""
    data = struct.pack("<iI", nr, arch)
    pc, accumulator = 0, 0
    while True:
        code, jt, jf, k = instructions[pc]
        if code == BPF_LD_W_ABS:
            accumulator = struct.unpack_from("<I", data, k)[0]
            pc += 1
        elif code == BPF_JEQ_K:
            pc += 1 + (jt if accumulator == k else jf)
        elif code == BPF_RET_K:
            return k
        else:
            raise ValueError(f"unknown instruction {code:#x}")


class SockFilter(ctypes.Structure):
    _fields_ = [("code", ctypes.c_uint16), ("jt", ctypes.c_uint8), ("jf", ctypes.c_uint8), ("k", ctypes.c_uint32)]


class SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.POINTER(SockFilter))]


def install(error=errno.EPERM):
    """no_new_privs, then the filter, on this process (and so on what it execs). OSError on failure."""
    libc = ctypes.CDLL(None, use_errno=True)
    zero = ctypes.c_ulong(0)
    if libc.prctl(PR_SET_NO_NEW_PRIVS, ctypes.c_ulong(1), zero, zero, zero) != 0:
        code = ctypes.get_errno()
        raise OSError(code, f"prctl(PR_SET_NO_NEW_PRIVS): {os.strerror(code)}")
    instructions = program(error)
    array = (SockFilter * len(instructions))(*[SockFilter(*i) for i in instructions])
    fprog = SockFprog(len(instructions), array)
    if libc.prctl(PR_SET_SECCOMP, ctypes.c_ulong(SECCOMP_MODE_FILTER), ctypes.byref(fprog), zero, zero) != 0:
        code = ctypes.get_errno()
        raise OSError(code, f"prctl(PR_SET_SECCOMP): {os.strerror(code)}")


def fail(text, status):
    sys.stderr.write(f"{PROG}: error: {text}\n")
    sys.exit(status)


def main(argv=None):
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] in (["-h"], ["--help"]):
        print(__doc__.strip())
        return 0
    error = errno.EPERM
    if args[:1] == ["--errno"] or (args and args[0].startswith("--errno=")):
        name = args[1] if args[0] == "--errno" and len(args) > 1 else args[0].partition("=")[2]
        args = args[2:] if args[0] == "--errno" else args[1:]
        if name not in ERRNOS:
            fail(f"--errno takes {' or '.join(ERRNOS)}, not {name!r}", 2)
        error = ERRNOS[name]
    if args[:1] == ["--"]:
        args = args[1:]
    if not args or args[0].startswith("-"):
        fail(f"usage: {PROG} [--errno EPERM|ENOSYS] -- COMMAND [ARGUMENT...]", 2)
    machine = platform.machine()
    if machine != "x86_64":
        fail(f"x86_64 only (its io_uring system call numbers and audit arch are in the filter); "
             f"this machine is {machine or 'unknown'}", 1)
    try:
        install(error)
    except OSError as e:
        fail(f"cannot install the seccomp filter: {e.strerror}", 1)
    try:
        os.execvp(args[0], args)
    except FileNotFoundError:
        fail(f"{args[0]}: command not found", 127)
    except OSError as e:
        fail(f"{args[0]}: cannot run it: {e.strerror}", 126)
    return 1


def run_main():
    sys.exit(main())
