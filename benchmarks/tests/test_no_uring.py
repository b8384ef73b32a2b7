"""benchmarks/no-uring: a real seccomp filter (the kernel evaluates it) under which io_uring's system
calls fail with EPERM and nothing else does; and the kit run under it, which skips the uring rows
with a line each and measures epoll."""

import errno
import json
import os
import platform
import subprocess
import sys
import tempfile
import unittest

from benchkit import seccomp
from tests.test_noise_flag import BENCHMARKS, built

NO_URING = os.path.join(BENCHMARKS, "no-uring")
# Tries io_uring_setup (425) with a zeroed io_uring_params, and getppid (110) as a control; prints
# both results with errno, and this process's NoNewPrivs and Seccomp lines.
PROBE = """
import ctypes, json, os
libc = ctypes.CDLL(None, use_errno=True)
params = ctypes.create_string_buffer(120)
fd = libc.syscall(ctypes.c_long(425), ctypes.c_ulong(4), params)
setup = [fd, ctypes.get_errno() if fd < 0 else 0]
if fd >= 0:
    os.close(fd)
status = {line.split(":")[0]: line.split()[1] for line in open("/proc/self/status")
          if line.startswith(("NoNewPrivs", "Seccomp:"))}
print(json.dumps({"setup": setup, "getppid": libc.syscall(ctypes.c_long(110)) == os.getppid(), "status": status}))
"""


def no_uring(*argv, timeout=60):
    return subprocess.run([sys.executable, NO_URING] + list(argv), capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL)


class FilterProgramTests(unittest.TestCase):
    def test_only_io_uring_calls_are_refused(self):
        program = seccomp.program()
        refused = seccomp.SECCOMP_RET_ERRNO | errno.EPERM
        for arch in (seccomp.AUDIT_ARCH_X86_64, seccomp.AUDIT_ARCH_I386):
            for nr in (425, 426, 427):
                self.assertEqual(seccomp.run_filter(program, nr, arch), refused, (nr, hex(arch)))
            for nr in (0, 1, 59, 110, 424, 428, 435):
                self.assertEqual(seccomp.run_filter(program, nr, arch), seccomp.SECCOMP_RET_ALLOW, (nr, hex(arch)))
        self.assertEqual(seccomp.run_filter(program, seccomp.X32_SYSCALL_BIT | 426, seccomp.AUDIT_ARCH_X86_64), refused)
        self.assertEqual(seccomp.run_filter(program, 425, 0xC00000B7), seccomp.SECCOMP_RET_ALLOW)  # aarch64: not judged
        self.assertEqual(seccomp.run_filter(seccomp.program(errno.ENOSYS), 425, seccomp.AUDIT_ARCH_X86_64),
                         seccomp.SECCOMP_RET_ERRNO | errno.ENOSYS)


@unittest.skipUnless(platform.machine() == "x86_64", "benchmarks/no-uring is x86_64 only")
class NoURingTests(unittest.TestCase):
    def test_io_uring_setup_is_refused_and_the_rest_works(self):
        for option, code in (((), errno.EPERM), (("--errno", "ENOSYS"), errno.ENOSYS)):
            done = no_uring(*option, "--", sys.executable, "-c", PROBE)
            self.assertEqual(done.returncode, 0, done.stderr)
            seen = json.loads(done.stdout)
            self.assertEqual(seen["setup"], [-1, code], option)
            self.assertTrue(seen["getppid"])
            self.assertEqual(seen["status"], {"NoNewPrivs": "1", "Seccomp": "2"})

    def test_exit_status_is_the_commands_and_bad_usage_is_one_line(self):
        self.assertEqual(no_uring("--", "sh", "-c", "exit 7").returncode, 7)
        for argv, status in (((), 2), (("--errno", "EBADF", "--", "true"), 2), (("--", "no-such-command-here"), 127)):
            done = no_uring(*argv)
            self.assertEqual(done.returncode, status, argv)
            self.assertEqual(len(done.stderr.strip().splitlines()), 1, done.stderr)
            self.assertTrue(done.stderr.startswith("benchmarks/no-uring: error: "), done.stderr)

    def test_the_kit_skips_the_uring_rows_and_measures_epoll(self):
        echo, bench = built("echo"), built("echo-bench")
        self.assertTrue(echo and bench, "echo and echo-bench are not built: run `swift build` first (make test does)")
        with tempfile.TemporaryDirectory(prefix="no-uring-run-") as out:
            # Bounded: two runs of epoll of about a second each, after one --check per row.
            done = no_uring("--", sys.executable, os.path.join(BENCHMARKS, "run"), "--backends", "uring,uring-legacy,epoll",
                            "--peers", "none", "--lengths", "128", "--connections", "4", "--rounds", "2",
                            "--duration", "0.5", "--warmup", "0.2", "--no-calibration", "--no-build", "--no-plots",
                            "--echo-binary", echo, "--bench-binary", bench, "--out", out, timeout=180)
            self.assertEqual(done.returncode, 0, f"runner failed:\n{done.stdout[-3000:]}\n{done.stderr[-2000:]}")
            skipped = [line for line in done.stdout.splitlines() if line.startswith("skipped ")]
            self.assertEqual([line.split(":")[0] for line in skipped], ["skipped uring", "skipped uring-legacy"])
            for line in skipped:
                self.assertIn(": io_uring is unavailable: ", line)
                self.assertIn("Operation not permitted", line)
            with open(os.path.join(out, "runs.jsonl")) as f:
                records = [json.loads(line) for line in f]
            self.assertEqual([r["server"] for r in records], ["epoll", "epoll"])
            self.assertTrue(all("metrics" in r for r in records), [r.get("error") for r in records])
            with open(os.path.join(out, "summary.json")) as f:
                summary = json.load(f)
            self.assertEqual([s["name"] for s in summary["skipped"]], ["uring", "uring-legacy"])
            where = summary["where_it_ran"]
            self.assertEqual(where["kernel_release"], platform.release())
            self.assertIs(where["io_uring"]["uring_available"], False)
            self.assertIn("Operation not permitted", where["io_uring"]["reason"])
            with open(os.path.join(out, "report.md")) as f:
                report = f.read()
            self.assertIn("- io_uring: unavailable here: ", report)
            self.assertIn("**Skipped** (rows this kernel cannot run; the rest ran)\n\n- uring: io_uring is unavailable",
                          report)
            self.assertIn("uring was not run: this kernel cannot run it (io_uring is unavailable", report)


if __name__ == "__main__":
    unittest.main()
