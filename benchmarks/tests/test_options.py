"""benchmarks/run's options: rounds, budget, noise, and A/B of two echo builds."""

import contextlib
import io
import unittest

from benchkit import rounds
from benchkit.options import parse_options


def rejected(argv):
    """The one-line error argparse prints (and exits 2 with) for argv."""
    err = io.StringIO()
    with contextlib.redirect_stderr(err), unittest.TestCase().assertRaises(SystemExit) as raised:
        parse_options(argv)
    assert raised.exception.code == 2
    return err.getvalue().strip().splitlines()[-1]


class OptionTests(unittest.TestCase):
    def test_rounds(self):
        self.assertEqual(parse_options(["--quick"]).rounds, 4)
        self.assertEqual(parse_options(["--ablation"]).rounds, rounds.AUTO)
        self.assertEqual(parse_options(["--rounds", "auto", "--budget", "5"]).budget, 5)
        self.assertIn("at least 1) or auto", rejected(["--rounds", "0"]))
        self.assertIn("--budget", rejected(["--rounds", "auto", "--budget", "0"]))

    def test_binary_runs_one_variant_with_another_executable(self):
        o = parse_options(["--variant", "before=--backend uring", "--binary", "before=/bin/true",
                           "--backends", "before,uring", "--peers", "none", "--no-build"])
        self.assertEqual(o.binaries, {"before": "/bin/true"})
        self.assertEqual(o.servers, ["before", "uring"])
        self.assertIn("NAME an echo variant", rejected(["--binary", "nio=/bin/true"]))
        self.assertIn("not an executable", rejected(["--binary", "uring=/nonexistent/echo"]))

    def test_pair(self):
        o = parse_options(["--variant", "before=--backend uring", "--backends", "before,uring,epoll",
                           "--peers", "none", "--pair", "uring/before"])
        self.assertEqual(o.pairs, [("uring", "before")])
        self.assertIn("two different variant names", rejected(["--pair", "uring"]))
        self.assertIn("not in this run", rejected(["--quick", "--pair", "uring/nio"]))

    def test_noise_options(self):
        o = parse_options(["--quick", "--noise-threshold", "20", "--reruns", "0"])
        self.assertEqual((o.noise_threshold, o.reruns), (20, 0))
        self.assertIn("--reruns", rejected(["--reruns", "11"]))


if __name__ == "__main__":
    unittest.main()
