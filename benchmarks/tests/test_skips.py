"""Skipping what the kernel cannot run: echo variants asked with `echo --check` (a stand-in echo, a
real process), io_uring peers against the feature table, the rows and pairs dropped with one line
each, and the runner's own exit when nothing is left."""

import os
import subprocess
import sys
import tempfile
import unittest

from benchkit import peers, skips, verdict
from benchkit.options import parse_options
from tests import kernels
from tests.test_noise_flag import BENCHMARKS

LACKS_INC = ("echo: error: the running kernel lacks incremental buffer consumption (IOU_PBUF_RING_INC, Linux 6.12)")
LACKS_BUNDLES = "echo: error: the running kernel lacks receive bundles (IORING_FEAT_RECVSEND_BUNDLE, Linux 6.10)"
BLOCKED = ("echo: error: io_uring is unavailable: io_uring_setup was refused (Operation not permitted), perhaps by "
           "a seccomp filter or a container policy; try --backend epoll")


def where(kernel, available=True):
    return {"kernel_release": kernel, "io_uring": kernels.table(kernel, available)}


class CheckTests(unittest.TestCase):
    def setUp(self):
        self.folder = tempfile.TemporaryDirectory()
        self.addCleanup(self.folder.cleanup)

    def test_the_error_line_is_the_reason(self):
        echo = kernels.fake_echo(self.folder.name, refuse={"--incremental-buffers": LACKS_INC})
        self.assertEqual(skips.check_variant(echo, ["--backend", "uring", "--incremental-buffers"]),
                         "the running kernel lacks incremental buffer consumption (IOU_PBUF_RING_INC, Linux 6.12)")
        self.assertIsNone(skips.check_variant(echo, ["--backend", "uring", "--no-incremental-buffers"]))

    def test_an_echo_without_check_skips_nothing(self):
        old = kernels.fake_echo(self.folder.name, old=True)
        self.assertIsNone(skips.check_variant(old, ["--backend", "uring", "--incremental-buffers"]))
        self.assertIsNone(skips.check_variant(os.path.join(self.folder.name, "missing"), ["--backend", "uring"]))


class PeerTests(unittest.TestCase):
    def test_c_uring_needs_what_its_source_sets_up(self):
        c_uring = peers.BY_NAME["c-uring"]
        self.assertIsNone(skips.peer_problem(c_uring, where("6.1")))
        self.assertEqual(skips.peer_problem(c_uring, where("6.0")),
                         "the running kernel lacks defer-taskrun (Linux 6.1), which c-uring uses")
        self.assertEqual(skips.peer_problem(c_uring, where("5.15")),
                         "the running kernel lacks single-issuer (Linux 6.0), defer-taskrun (Linux 6.1), "
                         "multishot-accept (Linux 5.19), multishot-receive (Linux 6.0), buffer-ring (Linux 5.19), "
                         "which c-uring uses")
        self.assertEqual(skips.peer_problem(c_uring, where("6.18", available=False)),
                         kernels.UNAVAILABLE)
        self.assertIsNone(skips.peer_problem(c_uring, {"io_uring": "unknown"}), "unknown: the preflight judges")

    def test_peers_without_io_uring_always_run(self):
        for name in ("c-epoll", "nio", "tokio", "go"):
            self.assertIsNone(skips.peer_problem(peers.BY_NAME[name], where("6.18", available=False)), name)
        self.assertIsNotNone(skips.peer_problem(peers.BY_NAME["nio-uring"], where("6.18", available=False)))


class DropTests(unittest.TestCase):
    def options(self, *argv):
        o = parse_options(list(argv) + ["--no-build"])
        lines = []
        # What echo refuses on a 6.0 kernel, by a flag or a flag's value (--uring-mode bundle).
        refuse = {"--incremental-buffers": LACKS_INC[len("echo: error: "):], "bundle": LACKS_BUNDLES[len("echo: error: "):]}

        def check(binary, flags):
            return next((line for flag, line in refuse.items() if flag in flags), None)
        return o, lines, check

    def test_rows_and_pairs_dropped_with_a_line_each(self):
        o, lines, check = self.options("--backends", "uring,uring-multishot-defer-inc,uring-multishot-defer-bundle,epoll",
                                       "--peers", "c-uring,c-epoll", "--pair", "uring/uring-multishot-defer-inc",
                                       "--pair", "uring/epoll")
        skipped = skips.find(o, where("6.0"), check=check)
        self.assertIsNone(skips.drop(o, skipped, lines.append))
        self.assertEqual(o.servers, ["uring", "epoll", "c-epoll"])
        self.assertEqual(o.pairs, [("uring", "epoll")])
        self.assertEqual(lines, [
            "skipped uring-multishot-defer-inc: " + LACKS_INC[len("echo: error: "):],
            "skipped uring-multishot-defer-bundle: " + LACKS_BUNDLES[len("echo: error: "):],
            "skipped c-uring: the running kernel lacks defer-taskrun (Linux 6.1), which c-uring uses",
            "skipped uring/uring-multishot-defer-inc: " + LACKS_INC[len("echo: error: "):]])
        self.assertEqual([s["name"] for s in o.skipped], ["uring-multishot-defer-inc", "uring-multishot-defer-bundle",
                                                          "c-uring", "uring/uring-multishot-defer-inc"])

    def test_nothing_left_is_an_error(self):
        o, lines, _ = self.options("--backends", "uring", "--peers", "c-uring")
        skipped = skips.find(o, where("6.18", available=False), check=lambda binary, flags: BLOCKED[len("echo: error: "):])
        problem = skips.drop(o, skipped, lines.append)
        self.assertIn("every row was skipped", problem)
        self.assertEqual(len(lines), 2)

    def test_the_verdict_says_which_of_its_ratios_are_gone(self):
        o, lines, _ = self.options("--verdict")
        skipped = skips.find(o, where("6.18", available=False),
                             check=lambda binary, flags: BLOCKED[len("echo: error: "):] if "uring" in flags else None)
        skips.drop(o, skipped, lines.append)
        self.assertEqual(o.servers, ["epoll", "epoll-splice", "c-epoll", "nio"])  # uring-splice-poll is gone too
        self.assertEqual(o.candidate_row, "uring")  # still named: the findings and the verdict say it was skipped
        gone = verdict.skipped_columns(o)
        self.assertEqual([item["name"] for item in gone],
                         ["the verdict's uring ÷ epoll", "the verdict's C floor c-uring ÷ c-epoll"])
        self.assertTrue(all("is skipped: io_uring is unavailable" in item["reason"] for item in gone))


class RunnerTests(unittest.TestCase):
    def test_every_row_skipped_is_one_line_and_a_failure(self):
        with tempfile.TemporaryDirectory(prefix="skips-") as folder:
            echo = kernels.fake_echo(folder, features=kernels.table("6.18", available=False),
                                     refuse={"--backend": BLOCKED})
            argv = [sys.executable, os.path.join(BENCHMARKS, "run"), "--backends", "uring,uring-legacy",
                    "--peers", "none", "--no-build", "--no-plots", "--no-calibration", "--rounds", "1",
                    "--echo-binary", echo, "--bench-binary", echo, "--out", os.path.join(folder, "out")]
            done = subprocess.run(argv, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
        self.assertNotEqual(done.returncode, 0, done.stdout)
        self.assertIn("skipped uring: io_uring is unavailable: io_uring_setup was refused", done.stdout)
        self.assertIn("skipped uring-legacy: io_uring is unavailable", done.stdout)
        self.assertIn("io_uring unavailable (io_uring_setup was refused", done.stdout)  # the where line
        self.assertEqual(done.stderr.strip().splitlines(),
                         ["benchmarks/run: error: every row was skipped: this kernel can run none of them "
                          "(the lines above say why)"])
        self.assertNotIn("Traceback", done.stderr)


if __name__ == "__main__":
    unittest.main()
