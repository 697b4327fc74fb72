#!/usr/bin/env python3
"""The reporting rules of bench/stats.py: python3 bench/test_stats.py"""
import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from stats import Measure, Runs, verdict  # noqa: E402


class Timeout(Exception):
    """Stands for tests/e2e/vm.py's Timeout (matched by name)."""


class StatsTest(unittest.TestCase):
    def test_measure_median_spread_runs(self):
        m = Measure([3.0, None, 1.0, 2.0, 10.0], failed=1)
        self.assertEqual((m.n, m.median, m.lo, m.hi), (4, 2.5, 1.0, 10.0))
        self.assertEqual(m.cell("%.1f"), "2.5 [1.0..10.0] n=4 +1 failed")
        self.assertEqual(Measure([]).cell(), "- n=0")

    def test_ratio_spread_is_worst_to_best_pairing(self):
        r = Measure([1.0, 2.0, 3.0]).over(Measure([4.0, 5.0, 6.0]))
        self.assertAlmostEqual(r.median, 2.0 / 5.0)
        self.assertAlmostEqual(r.lo, 1.0 / 6.0)
        self.assertAlmostEqual(r.hi, 3.0 / 4.0)

    def test_met_only_when_whole_spread_is_on_the_right_side(self):
        self.assertEqual(verdict(Measure([0.4, 0.45, 0.49]), 0.5, "lower"), "met")
        self.assertEqual(verdict(Measure([0.4, 0.45, 0.51]), 0.5, "lower"),
                         "not settled (spread straddles the target)")
        self.assertEqual(verdict(Measure([0.6, 0.7, 0.8]), 0.5, "lower"), "not met")
        self.assertEqual(verdict(Measure([1.1, 1.2, 1.3]), 1.0, "higher"), "met")

    def test_net_host_to_guest_example_is_not_settled(self):
        # The example: a 1.01 median from runs that vary 1.6x.
        r = Measure([1400.0, 1771.0, 2240.0]).over(Measure([1400.0, 1757.0, 2240.0]))
        self.assertTrue(verdict(r, 1.0, "higher").startswith("not settled"))

    def test_too_few_runs_or_failed_runs_are_never_met(self):
        self.assertTrue(verdict(Measure([0.1]), 0.5, "lower").startswith("not settled (only 1"))
        self.assertEqual(verdict(Measure([0.1, 0.2, 0.3], failed=1), 0.5, "lower"),
                         "not settled (1 failed run)")
        self.assertEqual(verdict(Measure([0.1, 0.2, 0.3]).over(Measure([1, 1, 1], failed=2)),
                                 0.5, "lower"), "not settled (2 failed runs)")
        self.assertEqual(verdict(Measure([]), 0.5, "lower"), "not settled (no data)")

    def test_runs_count_failures(self):
        runs = Runs(["a", "b"])

        def stall():
            raise Timeout("no prompt")

        def fail():
            raise AssertionError("exit status 1")

        self.assertIsNone(runs.attempt(1, "a", stall))
        self.assertIsNone(runs.attempt(1, "b", fail))
        runs.add("a", {"x": 1.0})
        self.assertEqual(runs.measure("a", lambda r: r["x"]).cell(), "1.0 n=1 +1 failed")
        self.assertIn("a 1+1", runs.counts_line())
        self.assertIn("run 1 b (AssertionError: exit status 1)", runs.failed_line())
        with self.assertRaises(KeyError):  # a bug in the benchmark is not a failed run
            runs.attempt(2, "a", lambda: {}["x"])


if __name__ == "__main__":
    unittest.main()
