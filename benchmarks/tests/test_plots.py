"""Tests for benchkit.plots. Run: cd benchmarks && python3 -m unittest discover -s tests -t .
The drawing tests need matplotlib (benchmarks/.venv/bin/python -m unittest ...) and skip without it."""

import importlib.util
import json
import os
import shutil
import tempfile
import unittest

from benchkit import plots

HAVE_MATPLOTLIB = importlib.util.find_spec("matplotlib") is not None
CI = {"ratio": 0.972, "ci_low": 0.951, "ci_high": 0.994, "rounds": 3, "verdict": "lower",
      "half_width": 0.022, "lowest": 0.95}


class Helpers(unittest.TestCase):
    def test_ci_of(self):
        self.assertEqual(plots.ci_of(CI), (0.972, 0.951, 0.994))
        self.assertEqual(plots.ci_of({"ratio": 1.1, "ci_low": None, "ci_high": None}), (1.1, None, None))
        self.assertEqual(plots.ci_of({"ratio": 1.1}), (1.1, None, None))
        self.assertIsNone(plots.ci_of(None))
        self.assertIsNone(plots.ci_of({"ratio": None}))

    def test_bar(self):
        below, above = plots.bar(1.0, 0.9, 1.2)
        self.assertAlmostEqual(below, 0.1)
        self.assertAlmostEqual(above, 0.2)
        self.assertEqual(plots.bar(1.0, 1.01, 1.2)[0], 0.0)  # rounding never gives a negative bar
        self.assertIsNone(plots.bar(1.0, None, 1.2))

    def test_label(self):
        self.assertEqual(plots.ci_label(0.972, 0.951, 0.994), "0.972 (0.951–0.994)")
        self.assertEqual(plots.ci_label(0.972, None, None), "0.972")

    def test_cpu_point(self):
        median, spread = plots.cpu_point({"cpu_us_per_request": 5.0, "cpu_rounds": [4.0, 5.0, 7.0]})
        self.assertEqual((median, spread), (5.0, (1.0, 2.0)))
        self.assertEqual(plots.cpu_point({"cpu_us_per_request": 5.0, "cpu_rounds": [5.0]}), (5.0, None))
        self.assertEqual(plots.cpu_point({"cpu_us_per_request": 5.0}), (5.0, None))
        self.assertIsNone(plots.cpu_point({"cpu_us_per_request": None}))

    def test_ratio_point(self):
        self.assertAlmostEqual(plots.ratio_point({"cpu_vs_epoll": CI})[1][1], 0.022)
        one_round = dict(CI, ci_low=None, ci_high=None)
        self.assertEqual(plots.ratio_point({"cpu_vs_epoll": one_round}), (0.972, None))
        self.assertEqual(plots.ratio_point({"cpu_ratio_vs_epoll": 1.05}), (1.05, None))  # older folders
        self.assertIsNone(plots.ratio_point({"cpu_vs_epoll": None, "cpu_ratio_vs_epoll": None}))

    def test_rate_series(self):
        curve = [_point(0.9, "uring", 900, 1), _point(0.1, "uring", 60, 0), _point(0.1, "epoll", 70, 0),
                 dict(_point(0.5, "uring", 300, 0), p999_us=None), dict(_point(0.5, "uring", 1, 0), length=1000)]
        self.assertEqual(plots.rate_series(curve, 128, 50, "uring", "p99_us"), [(10.0, 60, True), (50.0, 300, True),
                                                                               (90.0, 900, False)])
        self.assertEqual(plots.rate_series(curve, 128, 50, "uring", "p999_us"), [(10.0, 120, True), (90.0, 1800, False)])
        self.assertEqual(plots.rate_series(curve, 128, 50, "nio", "p99_us"), [])

    def test_verdict(self):
        self.assertEqual(plots.verdict_of(CI), "lower")
        self.assertIsNone(plots.verdict_of(dict(CI, ci_low=None)))
        self.assertIsNone(plots.verdict_of(None))


def _point(level, server, p99, unsustained):
    """A point of the rate workload's curve (workloads.json)."""
    return {"level": level, "length": 128, "connections": 50, "server": server, "p50_us": p99 / 10, "p99_us": p99,
            "p999_us": 2 * p99, "unsustained": unsustained, "runs": 3}


def _row(server, length, conns, cpu, ci=None, rounds=None):
    r = {"server": server, "length": length, "connections": conns, "requests_per_second": 1000.0 * conns,
         "cpu_us_per_request": cpu, "latency_p99_us": 100.0 + conns}
    if rounds is not None:
        r.update(cpu_rounds=rounds, cpu_us_per_request_min=rounds[0], cpu_vs_epoll=ci)
    elif server != "epoll":
        r["cpu_ratio_vs_epoll"] = cpu / 5.0  # older folders: a plain ratio, no interval
    return r


@unittest.skipUnless(HAVE_MATPLOTLIB, "matplotlib is not installed (make bench-deps; use benchmarks/.venv)")
class Drawing(unittest.TestCase):
    def folder(self, new):
        d = tempfile.mkdtemp(prefix="plots-test-")
        self.addCleanup(shutil.rmtree, d)
        rows = []
        for length in (128, 1000):
            for c in (1, 50, 300):
                rows.append(_row("epoll", length, c, 5.0, None, [4.8, 5.0, 5.5] if new else None))
                one = dict(CI, ci_low=None, ci_high=None) if c == 1 else CI
                rows.append(_row("uring", length, c, 4.9, one, [4.5, 4.9, 6.0] if new else None))
        summary = {"title": "test", "servers": ["uring", "epoll"], "lengths": [128, 1000],
                   "connections": [1, 50, 300], "rows": rows}
        ablation = {"cells": [[128, 50], [128, 300]], "reference": "epoll", "title": "test", "rows": [
            {"server": "uring-a", "parent": None, "about": "a", "cpu": [5.0, 5.1], "ratio": [1.02, 1.03],
             "ratio_geomean": 1.025, "ratio_cells": 2, "step_geomean": None},
            {"server": "uring-b", "parent": "uring-a", "about": "b", "cpu": [4.8, None], "ratio": [0.97, None],
             "ratio_geomean": 0.97, "ratio_cells": 1, "step_geomean": 0.95},
            {"server": "epoll", "parent": None, "about": "", "cpu": [5.0, 5.0], "ratio": [1.0, 1.0],
             "ratio_geomean": 1.0, "ratio_cells": 2, "step_geomean": None}]}
        if new:
            ablation["rows"][0].update(ratio_ci=[dict(CI, ratio=1.02, verdict="same", ci_low=0.99), None],
                                       ratio_geomean_ci=dict(CI, ratio=1.025, verdict="higher",
                                                             ci_low=1.01, ci_high=1.04))
            ablation["rows"][1].update(ratio_ci=[CI, None], ratio_geomean_ci=CI, step_ci=None)
        curve = [_point(level, server, p99 * (1.1 if server == "epoll" else 1), int(level > 0.8 and server == "epoll"))
                 for level, p99 in ((0.1, 60), (0.5, 200), (0.9, 5000)) for server in ("uring", "epoll")]
        workloads = {"title": "test", "servers": ["uring", "epoll"], "reference": "epoll",
                     "workloads": [{"name": "rate", "curve": curve}]}
        for name, obj in (("summary.json", summary), ("ablation.json", ablation), ("workloads.json", workloads)):
            with open(os.path.join(d, name), "w") as f:
                json.dump(obj, f)
        return d

    def test_new_and_old_folders(self):
        for new in (True, False):
            d = self.folder(new)
            plots.plot(d)
            for name in plots.PNGS:
                self.assertTrue(os.path.getsize(os.path.join(d, name)) > 1000, (new, name))

    def test_no_ratio_plot_without_epoll(self):
        d = self.folder(True)
        with open(os.path.join(d, "summary.json")) as f:
            summary = json.load(f)
        summary["servers"] = ["uring"]
        summary["rows"] = [r for r in summary["rows"] if r["server"] == "uring"]
        with open(os.path.join(d, "summary.json"), "w") as f:
            json.dump(summary, f)
        os.remove(os.path.join(d, "ablation.json"))
        os.remove(os.path.join(d, "workloads.json"))
        plots.plot(d)
        self.assertFalse(os.path.exists(os.path.join(d, "rate.png")))
        self.assertFalse(os.path.exists(os.path.join(d, "ratio_vs_epoll.png")))
        self.assertTrue(os.path.exists(os.path.join(d, "cpu_per_request.png")))


if __name__ == "__main__":
    unittest.main()
