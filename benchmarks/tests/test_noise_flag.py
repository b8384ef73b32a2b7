"""The noise flag fires: a real quick matrix (echo and echo-bench on loopback, the calibration probe
pinned to the server's CPU) with a CPU hog on the server's core during one run. That run must be
flagged, left out and re-run, and every paired ratio in summary.json must carry its interval."""

import json
import os
import subprocess
import sys
import tempfile
import unittest

BENCHMARKS = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ROOT = os.path.dirname(BENCHMARKS)
HOGGED_RUN = 3


def built(product):
    """The product from `swift build` (debug, as make test builds it), else the release build."""
    for configuration in ("debug", "release"):
        path = os.path.join(ROOT, ".build", configuration, product)
        if os.access(path, os.X_OK):
            return path
    return None


class NoiseFlagTests(unittest.TestCase):
    def test_a_hog_on_the_server_core_is_flagged_and_rerun(self):
        echo, bench = built("echo"), built("echo-bench")
        self.assertTrue(echo and bench, "echo and echo-bench are not built: run `swift build` first (make test does)")
        with tempfile.TemporaryDirectory(prefix="noise-flag-") as out:
            argv = [sys.executable, os.path.join(BENCHMARKS, "run"), "--quick", "--no-build", "--no-plots",
                    "--echo-binary", echo, "--bench-binary", bench, "--out", out,
                    "--connections", "50", "--rounds", "2", "--duration", "0.5", "--warmup", "0.1",
                    "--inject-hog", str(HOGGED_RUN)]
            # Bounded: 4 runs of ~2 s, each re-run at most twice, plus the probes.
            done = subprocess.run(argv, capture_output=True, text=True, timeout=240, stdin=subprocess.DEVNULL)
            self.assertEqual(done.returncode, 0, f"runner failed:\n{done.stdout[-3000:]}\n{done.stderr[-2000:]}")
            with open(os.path.join(out, "runs.jsonl")) as f:
                records = [json.loads(line) for line in f]
            hogged = [r for r in records if r.get("injected_hog")]
            self.assertEqual(len(hogged), 1, "exactly one run had the hog")
            hogged = hogged[0]
            self.assertTrue(hogged["calibration"]["noisy"],
                            f"the hog went unnoticed: probe slowdown {hogged['calibration']['slowdown']}")
            self.assertGreater(hogged["calibration"]["slowdown"], 0.3, "a hog sharing the core halves the probe's speed")
            self.assertEqual(hogged.get("excluded"), "noisy calibration; re-run")
            key = (hogged["round"], hogged["length"], hogged["connections"], hogged["server"])
            again = [r for r in records if (r["round"], r["length"], r["connections"], r["server"]) == key
                     and r.get("attempt", 1) > 1]
            self.assertTrue(again, "the flagged run was not re-run")
            self.assertTrue(any(not r.get("excluded") for r in again), "no re-run of it counts")
            self.assertIn("NOISY: re-run", done.stdout)

            with open(os.path.join(out, "summary.json")) as f:
                summary = json.load(f)
            self.assertTrue(summary["ratios"], "no paired ratio in summary.json")
            for item in summary["ratios"]:
                for field in ("ratio", "ci_low", "ci_high", "rounds", "verdict"):
                    self.assertIn(field, item)
                self.assertEqual(item["rounds"], 2)
                self.assertIsNotNone(item["ci_low"])
            self.assertTrue(summary["noise"]["enabled"])
            with open(os.path.join(out, "report.md")) as f:
                report = f.read()
            self.assertIn("## Noise", report)
            self.assertIn("(re-run)", report)


if __name__ == "__main__":
    unittest.main()
