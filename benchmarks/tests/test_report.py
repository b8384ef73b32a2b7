"""The summary, the findings, the ablation and the Markdown report, from made-up runs: every
paired ratio carries its interval and verdict, and the reports say them in words."""

import json
import os
import tempfile
import unittest

from benchkit import ablation, findings, pairing, rounds, summary
from benchkit.options import parse_options
from benchkit.report import report

# CPU µs/request per round: uring is 1.5-4 % cheaper than epoll in every round, and round 3 is the
# slow mode for both, and so is round 5 (it must cancel in the paired ratio).
EPOLL = {1: 4.60, 2: 4.65, 3: 5.90, 4: 4.62, 5: 5.85}
URING = {1: 4.46, 2: 4.58, 3: 5.68, 4: 4.43, 5: 5.70}


def record(server, round_index, cpu, length=128, connections=50, **extra):
    metrics = {"cpu_us_per_request": cpu, "requests_per_second": 1e6 / cpu / 10, "user_us_per_request": 0.05,
               "system_us_per_request": cpu - 0.05, "user_share": 0.05 / cpu, "latency_p99_us": 900.0 + cpu,
               "generator_cpu_share": 0.4}
    return dict({"server": server, "round": round_index, "length": length, "connections": connections,
                 "metrics": metrics}, **extra)


def runs(cells=((128, 50),)):
    out = []
    for length, connections in cells:
        for k in EPOLL:
            out.append(record("epoll", k, EPOLL[k], length, connections))
            out.append(record("uring", k, URING[k], length, connections))
    return out


ENV = {"date": "2026-12-01T12:00:00+00:00", "hostname": "test", "command": "benchmarks/run --quick",
       "kernel": "6.18", "cpu": "test cpu", "cpus": 2, "pinning": "server 0, load 1", "swift": "Swift 6",
       "liburing": "2.3"}


class SummaryTests(unittest.TestCase):
    def test_cell_ratio_carries_interval_and_verdict(self):
        o = parse_options(["--quick", "--connections", "50", "--no-build"])
        rows = summary.summarize(runs(), o.servers)
        ratio = rows[(128, 50, "uring")]["cpu_vs_epoll"]
        for key in ("ratio", "ci_low", "ci_high", "rounds", "verdict"):
            self.assertIn(key, ratio)
        self.assertEqual(ratio["rounds"], 5)
        self.assertEqual(ratio["verdict"], "lower")
        self.assertLess(ratio["ci_high"], 1)
        self.assertAlmostEqual(ratio["ratio"], 0.97, delta=0.005)
        self.assertIsNone(rows[(128, 50, "epoll")]["cpu_vs_epoll"])
        self.assertEqual(rows[(128, 50, "epoll")]["cpu_us_per_request_min"], 4.60)
        self.assertTrue(rows[(128, 50, "epoll")]["cpu_spread"]["spread"] > 0.25)

    def test_excluded_runs_do_not_count(self):
        records = runs() + [record("uring", 2, 9.0, excluded="noisy calibration; re-run")]
        # The excluded run is a second uring run in round 2: it must not replace the counted one.
        records.sort(key=lambda r: r.get("excluded") is None)
        self.assertEqual(pairing.round_values(records, "uring", 128, 50)[2], URING[2])
        rows = summary.summarize(records, ["uring", "epoll"])
        self.assertEqual(rows[(128, 50, "uring")]["rerun"], 1)
        self.assertEqual(rows[(128, 50, "uring")]["runs"], 5)

    def test_every_ratio_in_summary_json_has_its_interval(self):
        o = parse_options(["--quick", "--no-build"])
        records = runs(cells=((128, 1), (128, 50)))
        items = summary.ratios(o, records, o.servers)
        self.assertTrue(items)
        self.assertIn("cells", {i["scope"] for i in items})
        for item in items:
            for key in ("ratio", "ci_low", "ci_high", "rounds", "verdict"):
                self.assertIn(key, item)
            self.assertIn(item["verdict"], ("lower", "higher", "same"))


class FindingsTests(unittest.TestCase):
    def test_candidate_and_c_floor_in_words(self):
        o = parse_options(["--quick", "--connections", "50", "--peers", "c-epoll,c-uring", "--no-build"])
        records = runs()
        for k in EPOLL:  # the C floor: c-uring as cheap as c-epoll, within noise
            records.append(record("c-epoll", k, EPOLL[k] * 0.99))
            records.append(record("c-uring", k, EPOLL[k] * 0.99 * (1.004 if k % 2 else 0.996)))
        rows = summary.summarize(records, o.servers)
        items = {f.key: f for f in findings.findings(o, rows, records, o.servers)}
        self.assertIn("uring costs 0.97× epoll (", items["candidate"].text)
        self.assertEqual(items["candidate"].ci.verdict, "lower")
        self.assertTrue(items["c_floor"].text.startswith("C floor: no measurable difference between c-uring"))
        self.assertEqual(items["c_floor"].ci.verdict, "same")
        self.assertIn("user_share", items)

    def test_pair_is_a_finding_and_narrowed_by_auto_rounds(self):
        o = parse_options(["--variant", "before=--backend uring", "--backends", "before,uring,epoll",
                           "--peers", "none", "--connections", "50", "--lengths", "128", "--pair", "uring/before"])
        records = runs() + [record("before", k, URING[k] * 1.002) for k in URING]
        rows = summary.summarize(records, o.servers)
        items = {f.key: f for f in findings.findings(o, rows, records, o.servers)}
        pair = items["pair uring/before"]
        self.assertTrue(pair.text.startswith("asked (--pair): "), pair.text)
        self.assertAlmostEqual(pair.ci.ratio, 1 / 1.002, places=6)
        self.assertIn(("uring", "before"), [(a, b) for a, b, _ in findings.needed(o, records, o.servers)])

    def test_auto_rounds_wait_for_narrow_intervals(self):
        o = parse_options(["--quick", "--connections", "50", "--no-build"])
        plan = rounds.RoundPlan(rounds.AUTO, budget_s=600)
        wide = [ci for _, _, ci in findings.needed(o, runs(), o.servers)]
        self.assertTrue(plan.another(2, 10, 5, wide), "fewer than the minimum rounds")
        self.assertTrue(plan.another(5, 10, 5, wide), "the intervals are wider than ±1 %")
        self.assertFalse(plan.another(5, 598, 5, wide), "the budget would run out")
        self.assertIn("budget", plan.reason)
        steady = [record(s, k, v) for k in range(1, 6) for s, v in (("epoll", 4.6), ("uring", 4.46))]
        narrow = [ci for _, _, ci in findings.needed(o, steady, o.servers)]
        self.assertFalse(plan.another(5, 10, 5, narrow))
        self.assertIn("within ±1 %", plan.reason)
        fixed = rounds.RoundPlan(3)
        self.assertTrue(fixed.another(2, 0, 0, wide))
        self.assertFalse(fixed.another(3, 0, 0, wide))


class ReportTests(unittest.TestCase):
    def test_report_and_ablation_say_the_intervals(self):
        o = parse_options(["--ablation", "--backends", "uring-multishot-defer,uring-multishot-defer-fixed,epoll",
                           "--connections", "50", "--lengths", "128", "--no-build"])
        records = runs()
        for r in list(records):
            if r["server"] == "uring":
                records.append(dict(r, server="uring-multishot-defer"))
                records.append(dict(r, server="uring-multishot-defer-fixed"))
        records = [r for r in records if r["server"] != "uring"]
        o.summaries, o.noise, o.rounds_reason, o.interrupted = {}, {"enabled": False, "reason": "test"}, None, False
        o.candidate_row = "uring-multishot-defer"
        servers = [s for s in o.servers if s != "uring"]
        rows = summary.summarize(records, servers)
        data = ablation.ablation_data(o, rows, records, servers)
        json.dumps(data)  # ablation.json must serialize
        fixed = next(r for r in data["rows"] if r["server"] == "uring-multishot-defer-fixed")
        self.assertEqual(fixed["parent"], "uring-multishot-defer")
        self.assertEqual(fixed["step_ci"]["verdict"], "same")
        self.assertEqual(fixed["ratio_geomean_ci"]["verdict"], "lower")
        with tempfile.TemporaryDirectory() as folder:
            path = os.path.join(folder, "ablation.md")
            ablation.ablation_report(path, ENV, o, rows, records, None, 0, 60, len(records), data)
            with open(path) as f:
                text = f.read()
            self.assertIn("## Findings", text)
            self.assertIn("costs 0.97× epoll (", text)
            self.assertIn("| lower |", text)
            self.assertNotIn("PASS", text)
            path = os.path.join(folder, "report.md")
            report(path, ENV, o, rows, records, None, 0, 60, len(records))
            with open(path) as f:
                text = f.read()
            self.assertIn("## Noise", text)
            self.assertIn("Paired CPU ratio against epoll (95 % interval)", text)
            self.assertIn("(bimodal)", text)  # the slow rounds 3 and 5 split the rounds in two groups


if __name__ == "__main__":
    unittest.main()
