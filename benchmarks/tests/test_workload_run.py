"""A real run of two workloads beyond ping-pong (echo and echo-bench on loopback, a few seconds):
stream and churn on uring and epoll, two rounds; every row has its unit and every ratio its interval."""

import json
import os
import subprocess
import sys
import tempfile
import unittest

from tests.test_noise_flag import BENCHMARKS, built


class WorkloadRunTests(unittest.TestCase):
    def test_stream_and_churn_rows_units_and_intervals(self):
        echo, bench = built("echo"), built("echo-bench")
        self.assertTrue(echo and bench, "echo and echo-bench are not built: run `swift build` first (make test does)")
        with tempfile.TemporaryDirectory(prefix="workloads-") as out:
            argv = [sys.executable, os.path.join(BENCHMARKS, "run"), "--workload", "stream", "--workload", "churn",
                    "--backends", "uring,epoll", "--peers", "none", "--lengths", "1024", "--connections", "4",
                    "--rounds", "2", "--duration", "0.5", "--warmup", "0.2", "--no-calibration", "--no-build",
                    "--no-plots", "--echo-binary", echo, "--bench-binary", bench, "--out", out]
            # Bounded: 8 runs of about a second each.
            done = subprocess.run(argv, capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
            self.assertEqual(done.returncode, 0, f"runner failed:\n{done.stdout[-3000:]}\n{done.stderr[-2000:]}")
            self.assertFalse(os.path.exists(os.path.join(out, "report.md")), "no ping-pong, no ping-pong report")
            with open(os.path.join(out, "runs.jsonl")) as f:
                records = [json.loads(line) for line in f]
            self.assertEqual(sorted((r["workload"], r["server"]) for r in records),
                             sorted((w, s) for w in ("stream", "churn") for s in ("uring", "epoll") for _ in range(2)))
            with open(os.path.join(out, "workloads.json")) as f:
                data = json.load(f)
            units = {w["name"]: w["unit"] for w in data["workloads"]}
            self.assertEqual(units, {"stream": "MiB", "churn": "connection"})
            for entry in data["workloads"]:
                rows = {r["server"]: r for r in entry["points"][0]["rows"]}
                self.assertEqual(set(rows), {"uring", "epoll"})
                for row in rows.values():
                    self.assertEqual(row["runs"] - row["failed"], 2, row["errors"])
                    self.assertGreater(row["cpu_us_per_unit"], 0)
                    self.assertGreater(row["units_per_second"], 0)
                    self.assertEqual(row["bench_errors"], 0)
                ratio = next(r for r in entry["ratios"] if (r["a"], r["b"]) == ("uring", "epoll"))
                self.assertEqual((ratio["rounds"], ratio["unit"]), (2, entry["unit"]))
                self.assertLess(ratio["ci_low"], ratio["ratio"])
                self.assertLess(ratio["ratio"], ratio["ci_high"])
                self.assertIn(ratio["verdict"], ("lower", "higher", "same"))
            churn = next(w for w in data["workloads"] if w["name"] == "churn")
            for row in churn["points"][0]["rows"]:  # the server's accepts agree with echo-bench's connections
                self.assertTrue(0.5 < row["accept_agreement"] < 2, row["accept_agreement"])
            with open(os.path.join(out, "workloads.md")) as f:
                text = f.read()
            self.assertIn("Unit: **server CPU µs per MiB**", text)
            self.assertIn("Unit: **server CPU µs per connection**", text)
            self.assertIn("| server | connection/s | CPU µs/connection (lowest) |", text)
            self.assertIn("workloads (candidate uring):", done.stdout)


if __name__ == "__main__":
    unittest.main()
