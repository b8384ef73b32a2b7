"""benchmarks/profile: perf's report parsed into costs per request, the table's choice of rows, and
a real profile of two servers when perf can record here."""

import io
import unittest
from contextlib import redirect_stderr, redirect_stdout

from benchkit import profile
from tests.test_noise_flag import built

# A flat report as `perf report --stdio --no-children --sort symbol -g none` prints it.
REPORT = """# Total Lost Samples: 0
#
# Samples: 8K of event 'cpu-clock:pppH'
# Event count (approx.): 2000000000
#
# Overhead  Symbol                       IPC   [IPC Coverage]
# ........  ...........................  ....................
#
    50.00%  [k] _copy_to_iter                    -      -
    25.00%  [k] tcp_sendmsg_locked               -      -
    20.00%  [.] $s12URingBackend4loopyyF         -      -
     5.00%  [.] $s12URingBackend4loopyyF         -      -
"""


# Why the real profile cannot run here, or None.
PERF_PROBLEM = profile.perf_problem()


class ReportTests(unittest.TestCase):
    def test_parses_event_count_and_rows(self):
        total, rows = profile.parse_report(REPORT)
        self.assertEqual(total, 2_000_000_000)
        self.assertEqual(rows[0], (50.0, "k", "_copy_to_iter"))
        self.assertEqual(rows[2], (20.0, ".", "$s12URingBackend4loopyyF"))
        self.assertEqual(len(rows), 4)

    def test_no_event_count_is_an_error(self):
        with self.assertRaises(profile.ProfileFailed):
            profile.parse_report("# nothing sampled\n")

    def test_cost_per_request_is_share_times_cpu_over_requests(self):
        total, rows = profile.parse_report(REPORT)
        costs = profile.per_request(total, rows, requests=100_000)
        # 2 s of CPU over 100,000 requests is 20 µs each; half of it is the copy.
        self.assertAlmostEqual(costs["_copy_to_iter"], 10.0)
        self.assertAlmostEqual(costs["tcp_sendmsg_locked"], 5.0)
        # A user symbol seen twice is summed and marked.
        self.assertAlmostEqual(costs["$s12URingBackend4loopyyF (user)"], 5.0)
        self.assertAlmostEqual(sum(costs.values()), 20.0)

    def test_no_request_is_an_error(self):
        with self.assertRaises(profile.ProfileFailed):
            profile.per_request(1000, [(100.0, "k", "x")], requests=0)

    def test_median_counts_a_missing_symbol_as_zero(self):
        medians = profile.median_costs([{"a": 1.0, "b": 2.0}, {"a": 3.0}, {"a": 2.0, "b": 4.0}])
        self.assertEqual(medians, {"a": 2.0, "b": 2.0})

    def test_rows_rank_by_cost_or_difference_and_keep_the_total(self):
        medians = {"x": {"big": 5.0, "differs": 1.5, "small": 0.1},
                   "y": {"big": 5.0, "differs": 0.1, "small": 0.1}}
        rows, rest, total = profile.table_rows(medians, ["x", "y"], top=2)
        self.assertEqual([s for s, _ in rows], ["big", "differs"])
        self.assertEqual(rest, [0.1, 0.1])
        self.assertAlmostEqual(total[0], 6.6)
        text = profile.render(medians, ["x", "y"], 2, "context")
        self.assertIn("| `differs` | 1.500 | 0.100 | +1.400 |", text)
        self.assertIn("| **total** | 6.600 | 5.200 | +1.400 |", text)


class OptionTests(unittest.TestCase):
    def refused(self, argv):
        """The one-line error and the exit status of bad input."""
        printed = io.StringIO()
        with redirect_stderr(printed), self.assertRaises(SystemExit) as raised:
            profile.servers(profile.parse_options(argv))
        return printed.getvalue(), raised.exception.code

    def test_unknown_server_and_reserved_flags_are_refused(self):
        message, status = self.refused(["no-such-server"])
        self.assertEqual(status, 2)
        self.assertIn("unknown server", message)
        message, status = self.refused(["--variant", "x=--backend uring --port 1", "x"])
        self.assertEqual(status, 2)
        self.assertIn("--port", message)
        self.assertEqual(message.count("\n"), 1)

    def test_variants_and_builtins_resolve_to_flags(self):
        chosen = profile.servers(profile.parse_options(["--variant", "big=--backend uring --buffer-size 262144",
                                                        "big", "epoll"]))
        self.assertEqual(chosen, [("big", ["--backend", "uring", "--buffer-size", "262144"]),
                                  ("epoll", ["--backend", "epoll"])])


@unittest.skipIf(PERF_PROBLEM, PERF_PROBLEM or "")
class RealProfileTests(unittest.TestCase):
    def test_two_servers_profiled_side_by_side(self):
        echo, bench = built("echo"), built("echo-bench")
        self.assertTrue(echo and bench, "echo and echo-bench are not built: run `swift build` first (make test does)")
        printed = io.StringIO()
        with redirect_stdout(printed):
            profile.run_main(["--rounds", "1", "--duration", "0.5", "--warmup", "0.2", "--connections", "4",
                              "--top", "5", "--echo-binary", echo, "--bench-binary", bench, "uring", "epoll"])
        lines = printed.getvalue().splitlines()
        total = [line for line in lines if line.startswith("| **total** |")]
        self.assertEqual(len(total), 1, printed.getvalue())
        uring, epoll = (float(cell) for cell in total[0].split("|")[2:4])
        self.assertGreater(uring, 0)
        self.assertGreater(epoll, 0)
        functions = [line for line in lines if line.startswith("| `")]
        self.assertEqual(len(functions), 5, printed.getvalue())


if __name__ == "__main__":
    unittest.main()
