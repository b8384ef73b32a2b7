"""Tests of the noise gate's arithmetic, and a smoke test of the probe when cc exists."""

import shutil
import unittest

from benchkit import noise


class NoiseGateTests(unittest.TestCase):
    def test_first_reading_is_the_best_and_not_slow(self):
        gate = noise.NoiseGate(threshold=0.05)
        self.assertEqual(gate.slowdown(100.0), 0.0)
        self.assertEqual(gate.best, 100.0)

    def test_slowdown_is_relative_to_the_lowest_reading(self):
        gate = noise.NoiseGate()
        gate.observe(120.0)
        gate.observe(100.0)
        gate.observe(110.0)
        self.assertAlmostEqual(gate.slowdown(125.0), 0.25)
        self.assertEqual(gate.best, 100.0)

    def test_a_new_best_counts_for_its_own_slowdown(self):
        gate = noise.NoiseGate()
        gate.observe(100.0)
        self.assertEqual(gate.slowdown(90.0), 0.0)
        self.assertAlmostEqual(gate.slowdown(99.0), 0.1)

    def test_accepts_measure_dicts(self):
        gate = noise.NoiseGate()
        gate.observe({"signal": "tcp", "ns_per_op": 200.0, "cpu_ns_per_op": 199.0, "wall_ms": 1.0})
        self.assertAlmostEqual(gate.slowdown({"ns_per_op": 210.0}), 0.05)

    def test_is_noisy_uses_the_worse_probe(self):
        gate = noise.NoiseGate(threshold=0.10)
        gate.observe(100.0)
        self.assertFalse(gate.is_noisy(101.0, 109.0))
        self.assertTrue(gate.is_noisy(101.0, 111.0))
        self.assertTrue(gate.is_noisy(111.0, 100.0))

    def test_threshold_is_exclusive(self):
        gate = noise.NoiseGate(threshold=0.25)
        gate.observe(100.0)
        self.assertFalse(gate.is_noisy(125.0, 100.0))
        self.assertTrue(gate.is_noisy(125.5, 100.0))

    def test_quiet_first_run_is_not_noisy(self):
        gate = noise.NoiseGate()
        self.assertFalse(gate.is_noisy(100.0, 100.0))

    def test_rejects_non_positive_readings(self):
        with self.assertRaises(ValueError):
            noise.NoiseGate().observe(0.0)


@unittest.skipUnless(shutil.which("cc"), "no C compiler")
class ProbeTests(unittest.TestCase):
    def test_probe_builds_and_measures(self):
        binary = noise.build_probe(say=lambda message: None)
        self.assertIsNotNone(binary)
        reading = noise.Calibration(binary, "", noise.DEFAULT_SIGNAL).measure()
        self.assertEqual(reading["signal"], noise.DEFAULT_SIGNAL)
        self.assertGreater(reading["ns_per_op"], 0)
        self.assertGreater(reading["cpu_ns_per_op"], 0)
        self.assertGreater(reading["wall_ms"], 0)


if __name__ == "__main__":
    unittest.main()
