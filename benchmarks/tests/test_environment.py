"""The "where it ran" record: the kernel, the CPU, its mitigations and echo's io_uring feature table,
read from this machine and from stand-in echo executables (real processes); and how the reports
render it, old runs without it as before."""

import io
import os
import platform
import tempfile
import unittest

from benchkit import environment, verdict
from benchkit.options import parse_options
from benchkit.report import write_header
from tests import kernels
from tests.test_report import ENV


def rendered(env, argv=("--quick", "--no-build")):
    o = parse_options(list(argv))
    o.summaries, o.conformance = {}, {}
    out = io.StringIO()
    write_header(lambda text="": out.write(text + "\n"), "Echo server benchmark", env, o, [], o.servers, 0, 1, 0, None)
    return out.getvalue()


class GatherTests(unittest.TestCase):
    def test_this_machine(self):
        with tempfile.TemporaryDirectory() as folder:
            where = environment.gather(kernels.fake_echo(folder, features=kernels.table("6.18")))
        self.assertEqual(where["kernel_release"], platform.release())
        with open("/proc/cpuinfo") as f:
            models = {line.split(":", 1)[1].strip() for line in f if line.startswith("model name")}
        if models:
            self.assertIn(where["cpu_model"], models)
        if os.path.isdir(environment.VULNERABILITIES):
            self.assertEqual(sorted(where["mitigations"]), sorted(os.listdir(environment.VULNERABILITIES)))
            for name, line in where["mitigations"].items():
                self.assertNotIn("\n", line, name)
        self.assertEqual(where["io_uring"]["kernel_release"], "6.18.0-test")
        self.assertNotIn("io_uring_unknown", where)

    def test_an_echo_without_features_is_unknown_not_a_crash(self):
        with tempfile.TemporaryDirectory() as folder:
            old = environment.gather(kernels.fake_echo(folder, old=True))
            garbled = environment.gather(kernels.fake_echo(folder, features=None))
        missing = environment.gather(os.path.join(tempfile.gettempdir(), "no-such-echo-here"))
        self.assertEqual(old["io_uring"], environment.UNKNOWN)
        self.assertEqual(old["io_uring_unknown"], "this echo predates --features")
        self.assertEqual(garbled["io_uring"], environment.UNKNOWN)
        self.assertIn("no feature table", garbled["io_uring_unknown"])
        self.assertEqual(missing["io_uring"], environment.UNKNOWN)
        self.assertIn("no echo executable", missing["io_uring_unknown"])
        for where in (old, garbled, missing):
            self.assertEqual(environment.design_text(where), "features unknown")
            self.assertIn("io_uring: features unknown (", "\n".join(environment.lines(where)))

    def test_mitigations_read_and_summarised(self):
        with tempfile.TemporaryDirectory() as folder:
            for name, line in {"meltdown": "Not affected", "spectre_v2": "Mitigation: Retpolines; STIBP: disabled",
                               "spec_store_bypass": "Vulnerable", "tsa": "Vulnerable: No microcode",
                               "odd": "Unknown: no idea"}.items():
                with open(os.path.join(folder, name), "w") as f:
                    f.write(line + "\n")
            lines = environment.mitigations(folder)
        self.assertEqual(lines["spectre_v2"], "Mitigation: Retpolines; STIBP: disabled")
        self.assertEqual(list(lines), sorted(lines))
        self.assertEqual(environment.mitigations_text(lines),
                         "2 vulnerable (spec_store_bypass, tsa), 1 mitigated, 1 not affected, 1 other (odd)")
        self.assertEqual(environment.mitigations(os.path.join(folder, "gone")), {})
        self.assertIn("unknown", environment.mitigations_text({}))


class RenderTests(unittest.TestCase):
    def where(self, kernel, available=True):
        return {"kernel_release": f"{kernel}.0-test", "machine": "x86_64", "cpu_model": "Test CPU", "cpus": 2,
                "mitigations": {"spectre_v2": "Mitigation: Retpolines", "tsa": "Vulnerable"},
                "io_uring": kernels.table(kernel, available)}

    def test_debian_12_kernel_names_the_design_and_what_it_left_out(self):
        text = "\n".join(environment.lines(self.where("6.1")))
        self.assertIn("Kernel: Linux 6.1.0-test (x86_64)", text)
        self.assertIn("CPU: Test CPU (2 CPUs)", text)
        self.assertIn("1 vulnerable (tsa), 1 mitigated", text)
        self.assertIn("io_uring: echo's negotiated default here is multishot, defer-taskrun, whole buffers; "
                      "left out: incremental-buffers (needs Linux 6.12, this kernel is 6.1)", text)
        self.assertIn("io_uring features missing (3 of 15): receive-bundles (Linux 6.10), incremental-buffers "
                      "(Linux 6.12), direct-descriptor-release (Linux 6.13)", text)
        self.assertEqual(environment.design_text(self.where("6.1")), "multishot, defer-taskrun, whole buffers")

    def test_everything_here_and_io_uring_blocked(self):
        text = "\n".join(environment.lines(self.where("6.18")))
        self.assertIn("incremental buffers; nothing left out", text)
        self.assertIn("all 15 that echo knows are available", text)
        blocked = self.where("6.18", available=False)
        text = "\n".join(environment.lines(blocked))
        self.assertIn("io_uring: unavailable here: io_uring_setup was refused (Operation not permitted)", text)
        self.assertNotIn("features missing", text)
        self.assertEqual(environment.design_text(blocked), "unavailable")

    def test_reports_render_the_block_and_the_skipped_rows(self):
        skipped = [{"name": "uring", "reason": "io_uring is unavailable: refused"}]
        text = rendered(dict(ENV, where_it_ran=self.where("6.1"), skipped=skipped))
        self.assertIn("**Where it ran**\n\n- Kernel: Linux 6.1.0-test (x86_64)\n", text)
        self.assertIn("**Skipped** (rows this kernel cannot run; the rest ran)\n\n"
                      "- uring: io_uring is unavailable: refused\n", text)
        self.assertNotIn("- Kernel: 6.18; CPU:", text)

    def test_an_older_run_renders_as_it_did(self):
        text = rendered(ENV)
        self.assertIn("- Kernel: 6.18; CPU: test cpu (2 CPUs)\n", text)
        self.assertNotIn("Where it ran", text)
        self.assertNotIn("Skipped", text)

    def test_verdict_header_names_the_kernel_and_the_design(self):
        o = parse_options(["--verdict", "--workload", "pingpong", "--no-build"])
        o.noise, o.rounds_reason, o.skipped = {"enabled": False}, None, []
        env = dict(ENV, where_it_ran=self.where("6.1"), skipped=[], path="loopback")
        with tempfile.TemporaryDirectory() as folder:
            path = os.path.join(folder, "verdict.md")
            verdict.write(path, env, o, [], [], 0, 1)
            with open(path) as f:
                first = f.readline()
            verdict.write(path, dict(ENV, path="loopback"), o, [], [], 0, 1)
            with open(path) as f:
                old = f.readline()
        self.assertIn("; Linux 6.1.0-test, io_uring: multishot, defer-taskrun, whole buffers)", first)
        self.assertEqual(old, "# Verdict: uring against epoll, per workload (2026-12-01 on test)\n")


if __name__ == "__main__":
    unittest.main()
