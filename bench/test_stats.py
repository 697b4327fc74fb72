#!/usr/bin/env python3
"""The reporting rules of bench/stats.py: python3 bench/test_stats.py"""
import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from stats import Measure, Runs, sign_test_rank, verdict  # noqa: E402


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

    def test_sign_test_ranks(self):
        # [x(k)..x(n+1-k)] covers the median with 1 - 2 P(Bin(n, 1/2) <= k - 1):
        # n=4 at best 87.5 %, n=5 93.75 % (k=1), n=8 93.0 % (k=2), n=10 97.9 % (k=2;
        # k=3 would be 89.1 %).
        self.assertEqual([sign_test_rank(n) for n in (1, 3, 4, 5, 7, 8, 10, 20)],
                         [0, 0, 0, 1, 1, 2, 2, 6])

    def test_paired_ratio_from_alternating_runs(self):
        # Runs drift together (run 3 slow for both): unpaired, the spread
        # straddles 1 however many runs; paired, every run is ~1.05.
        a = Measure([105, 210, 315, 420, 525], run_nos=[1, 2, 3, 4, 5])
        b = Measure([100, 200, 300, 400, 500], run_nos=[1, 2, 3, 4, 5])
        r = a.over(b)
        self.assertTrue(r.paired)
        self.assertAlmostEqual(r.median, 1.05)
        self.assertAlmostEqual(r.lo, 1.05)
        self.assertEqual(r.cell(), "1.05 [1.05..1.05] paired n=5")
        self.assertEqual(verdict(r, 1.0, "higher"), "met")
        unpaired = Measure(a.values).over(Measure(b.values))
        self.assertFalse(unpaired.paired)
        self.assertTrue(verdict(unpaired, 1.0, "higher").startswith("not settled"))

    def test_paired_needs_five_pairs_of_the_same_runs(self):
        # Run 2 of b failed: four pairs, so worst..best pairing as before.
        a = Measure([1.0, 1.1, 1.2, 1.3, 1.4], run_nos=[1, 2, 3, 4, 5])
        b = Measure([1.0, 1.0, 1.0, 1.0], failed=1, run_nos=[1, 3, 4, 5])
        r = a.over(b)
        self.assertFalse(r.paired)
        self.assertEqual((r.n, r.lo, r.hi), (4, 1.0, 1.4))
        self.assertEqual(verdict(r, 1.0, "higher"), "not settled (1 failed run)")

    def test_paired_interval_is_order_statistics_of_the_pairs(self):
        # 8 pairs: the interval is the 2nd lowest to the 2nd highest pair.
        ratios = [0.9, 1.02, 1.03, 1.04, 1.05, 1.06, 1.07, 1.5]
        a = Measure([100 * x for x in ratios], run_nos=list(range(1, 9)))
        b = Measure([100.0] * 8, run_nos=list(range(1, 9)))
        r = a.over(b)
        self.assertAlmostEqual(r.median, 1.045)
        self.assertAlmostEqual(r.lo, 1.02)
        self.assertAlmostEqual(r.hi, 1.07)
        self.assertEqual(verdict(r, 1.0, "higher"), "met")
        self.assertEqual(verdict(r, 1.05, "higher"), "not settled (spread straddles the target)")
        self.assertEqual(verdict(r, 1.1, "higher"), "not met")

    def test_runs_measure_carries_run_numbers(self):
        runs = Runs(["a", "b"])
        for i in range(1, 6):
            runs.add(i, "a", {"x": 2.0 * i})
            runs.add(i, "b", {"x": 1.0 * i})
        r = runs.measure("a", lambda r: r["x"]).over(runs.measure("b", lambda r: r["x"]))
        self.assertTrue(r.paired)
        self.assertEqual((r.n, r.median, r.lo, r.hi), (5, 2.0, 2.0, 2.0))

    def test_runs_count_failures(self):
        runs = Runs(["a", "b"])

        def stall():
            raise Timeout("no prompt")

        def fail():
            raise AssertionError("exit status 1")

        self.assertIsNone(runs.attempt(1, "a", stall))
        self.assertIsNone(runs.attempt(1, "b", fail))
        runs.add(2, "a", {"x": 1.0})
        self.assertEqual(runs.measure("a", lambda r: r["x"]).cell(), "1.0 n=1 +1 failed")
        self.assertIn("a 1+1", runs.counts_line())
        self.assertIn("run 1 b (AssertionError: exit status 1)", runs.failed_line())
        with self.assertRaises(KeyError):  # a bug in the benchmark is not a failed run
            runs.attempt(2, "a", lambda: {}["x"])


if __name__ == "__main__":
    unittest.main()
