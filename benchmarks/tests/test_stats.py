"""Tests for benchkit.stats. Run: cd benchmarks && python3 -m unittest discover -s tests -t ."""

import math
import unittest

from benchkit import stats


class Basics(unittest.TestCase):
    def test_median(self):
        self.assertEqual(stats.median([3, None, 1, float("nan"), 2]), 2)
        self.assertEqual(stats.median([4, 1, 3, 2]), 2.5)
        self.assertIsNone(stats.median([None, float("nan")]))
        self.assertIsNone(stats.median([]))

    def test_geomean(self):
        self.assertAlmostEqual(stats.geomean([1, 4, None, 0, -2]), 2.0, places=12)
        self.assertAlmostEqual(stats.geomean([2, 8]), 4.0, places=12)
        self.assertIsNone(stats.geomean([0, -1, None]))


class TQuantile(unittest.TestCase):
    # Textbook values (7 significant digits).
    TABLE = {(0.975, 1): 12.70620, (0.975, 2): 4.302653, (0.975, 4): 2.776445,
             (0.975, 9): 2.262157, (0.975, 29): 2.045230, (0.975, 1000): 1.962339,
             (0.95, 1): 6.313752, (0.95, 2): 2.919986, (0.95, 4): 2.131847,
             (0.95, 9): 1.833113, (0.95, 29): 1.699127, (0.95, 1000): 1.646379}

    def test_table(self):
        for (p, df), want in self.TABLE.items():
            with self.subTest(p=p, df=df):
                self.assertAlmostEqual(stats.t_quantile(p, df), want, delta=2e-6 * max(1, want))

    def test_symmetry_and_centre(self):
        self.assertEqual(stats.t_quantile(0.5, 7), 0.0)
        self.assertAlmostEqual(stats.t_quantile(0.025, 4), -2.776445, delta=2e-6)

    def test_closed_forms(self):
        # df = 1 is Cauchy: tan(pi (p - 1/2)); df = 2: (2p-1) / sqrt(2p(1-p)).
        for p in (0.6, 0.9, 0.99, 0.9995):
            self.assertAlmostEqual(stats.t_quantile(p, 1), math.tan(math.pi * (p - 0.5)),
                                   delta=1e-6 * max(1, math.tan(math.pi * (p - 0.5))))
            want2 = (2 * p - 1) / math.sqrt(2 * p * (1 - p))
            self.assertAlmostEqual(stats.t_quantile(p, 2), want2, delta=1e-6 * max(1, want2))

    def test_fractional_df_between_neighbours(self):
        t = stats.t_quantile(0.975, 4.5)
        self.assertTrue(stats.t_quantile(0.975, 5) < t < stats.t_quantile(0.975, 4))

    def test_cdf_inverts_quantile(self):
        for df in (1, 3.5, 12, 200):
            self.assertAlmostEqual(stats.t_cdf(stats.t_quantile(0.9, df), df), 0.9, places=10)

    def test_bad_arguments(self):
        for p in (0, 1, -0.1, 1.5):
            with self.assertRaises(ValueError):
                stats.t_quantile(p, 3)
        with self.assertRaises(ValueError):
            stats.t_quantile(0.975, 0)


class RatioCITests(unittest.TestCase):
    def test_hand_computed(self):
        rs = [0.90, 0.95, 1.00, 0.92]
        logs = [math.log(r) for r in rs]
        m = sum(logs) / 4
        sd = math.sqrt(sum((x - m) ** 2 for x in logs) / 3)
        w = 3.182446 * sd / 2  # t_{0.975, 3} from the table, sqrt(4) = 2
        ci = stats.ratio_ci(rs)
        self.assertEqual(ci.rounds, 4)
        self.assertAlmostEqual(ci.ratio, (0.90 * 0.95 * 1.00 * 0.92) ** 0.25, places=12)
        self.assertAlmostEqual(ci.ci_low, math.exp(m - w), delta=1e-6)
        self.assertAlmostEqual(ci.ci_high, math.exp(m + w), delta=1e-6)
        self.assertAlmostEqual(ci.half_width, math.sqrt(ci.ci_high / ci.ci_low) - 1, places=12)
        self.assertEqual(ci.verdict, "same")  # the interval straddles 1 (about 0.88 to 1.00)
        self.assertLess(ci.ci_low, 1)
        self.assertGreater(ci.ci_high, 1)

    def test_level(self):
        narrow, wide = stats.ratio_ci([0.9, 1.0, 0.95], 0.90), stats.ratio_ci([0.9, 1.0, 0.95], 0.99)
        self.assertLess(wide.ci_low, narrow.ci_low)
        self.assertGreater(wide.ci_high, narrow.ci_high)

    def test_verdicts(self):
        self.assertEqual(stats.ratio_ci([0.95, 0.96, 0.97, 0.955]).verdict, "lower")
        self.assertEqual(stats.ratio_ci([1.05, 1.06, 1.07, 1.055]).verdict, "higher")
        self.assertEqual(stats.ratio_ci([0.99, 1.01, 1.0, 0.995]).verdict, "same")

    def test_boundary_touching_one_is_same(self):
        # Identical ratios of 1: the interval is [1, 1], which contains 1.
        ci = stats.ratio_ci([1.0, 1.0, 1.0])
        self.assertEqual((ci.ci_low, ci.ci_high, ci.verdict), (1.0, 1.0, "same"))
        # The rule itself: a bound exactly at 1 is inclusive.
        self.assertEqual(stats._verdict(0.9, 1.0), "same")
        self.assertEqual(stats._verdict(1.0, 1.1), "same")
        self.assertEqual(stats._verdict(0.9, 0.999999), "lower")

    def test_identical_ratios(self):
        ci = stats.ratio_ci([0.9, 0.9, 0.9, 0.9])
        self.assertAlmostEqual(ci.ratio, 0.9, places=12)
        self.assertEqual(ci.ci_low, ci.ratio)
        self.assertEqual(ci.ci_high, ci.ratio)
        self.assertEqual(ci.half_width, 0.0)
        self.assertEqual(ci.verdict, "lower")

    def test_one_round(self):
        ci = stats.ratio_ci([0.97, None, 0])
        self.assertEqual(ci.rounds, 1)
        self.assertAlmostEqual(ci.ratio, 0.97, places=12)
        self.assertIsNone(ci.ci_low)
        self.assertIsNone(ci.ci_high)
        self.assertIsNone(ci.half_width)
        self.assertEqual(ci.verdict, "same")

    def test_filtering(self):
        ci = stats.ratio_ci([None, 0, -1, float("nan"), 2.0, 8.0], lowest=0.5)
        self.assertEqual(ci.rounds, 2)
        self.assertAlmostEqual(ci.ratio, 4.0, places=12)
        self.assertEqual(ci.lowest, 0.5)
        self.assertIsNone(stats.ratio_ci([None, 0, -3]))
        self.assertIsNone(stats.ratio_ci([]))

    def test_as_dict(self):
        d = stats.ratio_ci([0.95, 0.96, 0.97], lowest=0.9512345678).as_dict()
        self.assertEqual(set(d), {"ratio", "ci_low", "ci_high", "rounds", "verdict", "half_width", "lowest"})
        self.assertEqual(d["lowest"], 0.951235)
        self.assertEqual(d["rounds"], 3)
        self.assertEqual(d["verdict"], "lower")
        one = stats.ratio_ci([0.97]).as_dict()
        self.assertIsNone(one["ci_low"])
        self.assertIsNone(one["lowest"])


class PairedTests(unittest.TestCase):
    def test_paired_ratios(self):
        a = {0: 10.0, 1: 12.0, 2: 9.0, 3: 0.0, 4: 5.0}
        b = {0: 5.0, 1: 4.0, 3: 2.0, 4: None, 5: 7.0}
        self.assertEqual(stats.paired_ratios(a, b), [2.0, 3.0])

    def test_paired_missing_rounds_and_lowest(self):
        a = {1: 4.8, 2: 5.0, 3: 4.6, 4: None}
        b = {1: 5.0, 2: 5.2, 4: 4.0, 5: 9.0}
        ci = stats.paired(a, b)
        self.assertEqual(ci.rounds, 2)  # rounds 1 and 2 only
        self.assertAlmostEqual(ci.ratio, math.sqrt(4.8 / 5.0 * 5.0 / 5.2), places=12)
        self.assertAlmostEqual(ci.lowest, 4.6 / 4.0, places=12)  # minima over each side's rounds

    def test_paired_nothing_common(self):
        self.assertIsNone(stats.paired({1: 1.0}, {2: 1.0}))


class GeomeanCITests(unittest.TestCase):
    def test_drops_incomplete_rounds(self):
        cells = [{0: 0.9, 1: 0.8, 2: 0.95, 3: 0.7},
                 {0: 1.0, 1: 0.9, 2: 0.85},
                 {0: 0.81, 1: None, 2: 0.9, 3: 0.6}]
        ci = stats.geomean_ci(cells, lowest=0.42)
        per_round = [(0.9 * 1.0 * 0.81) ** (1 / 3), (0.95 * 0.85 * 0.9) ** (1 / 3)]  # rounds 0 and 2
        self.assertEqual(ci.rounds, 2)
        self.assertAlmostEqual(ci.ratio, math.sqrt(per_round[0] * per_round[1]), places=12)
        want = stats.ratio_ci(per_round)
        self.assertAlmostEqual(ci.ci_low, want.ci_low, places=12)
        self.assertAlmostEqual(ci.ci_high, want.ci_high, places=12)
        self.assertEqual(ci.lowest, 0.42)

    def test_empty(self):
        self.assertIsNone(stats.geomean_ci([]))
        self.assertIsNone(stats.geomean_ci([{0: 1.0}, {1: 1.0}]))


def ci(ratio, low, high, rounds=5):
    return stats.RatioCI(ratio, low, high, rounds, stats._verdict(low, high),
                         None if low is None else math.sqrt(high / low) - 1)


class TextTests(unittest.TestCase):
    def test_words_each_verdict(self):
        self.assertEqual(stats.words(ci(0.972, 0.951, 0.994), "uring", "epoll"),
                         "uring costs 0.97× epoll (0.95–0.99)")
        self.assertEqual(stats.words(ci(1.08, 1.05, 1.11), "uring", "epoll"),
                         "uring costs 1.08× epoll (1.05–1.11)")
        self.assertEqual(stats.words(ci(1.0, 0.98, 1.02), "uring", "epoll"),
                         "no measurable difference between uring and epoll: 1.00× (0.98–1.02)")

    def test_words_one_round(self):
        self.assertEqual(stats.words(ci(0.97, None, None, 1), "uring", "epoll"),
                         "uring costs 0.97× epoll (one round: no interval)")

    def test_words_adaptive_digits(self):
        # Narrower than 0.02: three digits, and the upper bound must not print as 1.00.
        self.assertEqual(stats.words(ci(0.990, 0.985, 0.996), "a", "b"), "a costs 0.990× b (0.985–0.996)")
        # Would print 0.99–0.99 at two digits.
        self.assertIn("(0.991–0.993)", stats.words(ci(0.992, 0.991, 0.993), "a", "b"))
        # Two digits would be distinct here, but the interval is narrower than 0.02.
        self.assertEqual(stats.words(ci(0.952, 0.946, 0.958), "a", "b"), "a costs 0.952× b (0.946–0.958)")
        self.assertEqual(stats.words(None, "a", "b"), "no data to compare a and b")

    def test_ci_text(self):
        self.assertEqual(stats.ci_text(ci(0.972, 0.951, 0.994)), "0.972 (0.951–0.994)")
        self.assertEqual(stats.ci_text(ci(0.972, None, None, 1)), "0.972")
        self.assertEqual(stats.ci_text(None), "–")


class SpreadTests(unittest.TestCase):
    def test_bimodal(self):
        v = [5.90, 4.61, 4.65, 5.88, 4.63]
        s = stats.spread(v)
        self.assertTrue(s["bimodal"])
        self.assertEqual(s["n"], 5)
        self.assertEqual((s["min"], s["median"], s["max"]), (4.61, 4.65, 5.90))
        self.assertAlmostEqual(s["spread"], 5.90 / 4.61 - 1, places=12)
        self.assertAlmostEqual(s["gap"], 5.88 / 4.65 - 1, places=12)
        self.assertEqual(s["gap_at"], 2)
        self.assertEqual(stats.spread_text(v), "4.61 4.63 4.65 | 5.88 5.90")

    def test_unimodal(self):
        v = [4.61, 4.70, 4.64, 4.66, 4.69]
        self.assertFalse(stats.spread(v)["bimodal"])
        self.assertEqual(stats.spread_text(v), "4.61 4.64 4.66 4.69 4.70")

    def test_single_outlier_is_not_bimodal(self):
        for v in ([4.61, 4.62, 4.63, 4.64, 6.0], [3.5, 4.61, 4.62, 4.63, 4.64]):
            s = stats.spread(v)
            self.assertGreater(s["gap"], 0.05)
            self.assertFalse(s["bimodal"])

    def test_even_steps_are_not_bimodal(self):
        # Gaps of 5-6 % all the way: spread out, but not two clusters.
        self.assertFalse(stats.spread([4.0, 4.22, 4.45, 4.7, 4.95, 5.2])["bimodal"])

    def test_too_few(self):
        self.assertFalse(stats.spread([4.0, 4.0, 6.0])["bimodal"])
        self.assertIsNone(stats.spread([None, 0]))
        self.assertEqual(stats.spread_text([]), "–")
        one = stats.spread([3.0])
        self.assertEqual((one["n"], one["spread"], one["gap"], one["gap_at"]), (1, 0.0, 0.0, None))


class NeedsMoreTests(unittest.TestCase):
    def test_needs_more(self):
        tight = stats.ratio_ci([0.970, 0.971, 0.972, 0.9705])
        wide = stats.ratio_ci([0.9, 1.0, 0.95])
        one = stats.ratio_ci([0.97])
        self.assertLess(tight.half_width, 0.01)
        self.assertGreater(wide.half_width, 0.01)
        self.assertFalse(stats.needs_more([tight]))
        self.assertTrue(stats.needs_more([tight, wide]))
        self.assertTrue(stats.needs_more([tight, one]))
        self.assertTrue(stats.needs_more([tight, None]))
        self.assertFalse(stats.needs_more([wide], target=0.5))
        self.assertFalse(stats.needs_more([]))
        self.assertFalse(stats.needs_more(iter([tight])))


if __name__ == "__main__":
    unittest.main()
