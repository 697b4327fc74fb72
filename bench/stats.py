"""What every benchmark reports, and how: each figure as its median with
the number of runs behind it and their spread (min..max); every run that
failed (a guest that stopped answering, a nonzero exit status, lost
frames) counted and named, never silently left out; and a target called
"met" only when the whole spread is on the right side of it.

A ratio of two configurations is spread over the worst pairing to the best
(min(a)/max(b) .. max(a)/min(b)) when nothing better is known of it. That
spread only widens as runs are added, so two configurations on par stay
"not settled" however long they are measured. The benchmarks alternate
their configurations, run after run (run i of vireo beside run i of
QEMU, the machine's state shared by both), so with PAIRED_RUNS or more
such pairs a ratio is the median of the pairs' ratios, spread over its
distribution-free confidence interval (order statistics: the sign test,
which assumes nothing of the noise's shape), at CONFIDENCE at least."""
import math

# Fewer runs than this settle nothing either way: one or two runs show no
# spread worth the name (single runs here vary by up to 1.6x).
MIN_RUNS = 3

# From this many pairs a paired ratio's confidence interval exists at
# CONFIDENCE (two-sided: each side wrong with at most half the rest; with
# 5 pairs it is the lowest to the highest pair, 93.75 %).
PAIRED_RUNS = 5
CONFIDENCE = 0.90


class Measure:
    """One figure of one configuration over its runs: values of the runs
    that completed (None: not measured in that run, e.g. no debugfs), and
    how many runs failed."""

    def __init__(self, values, failed=0, run_nos=None):
        """run_nos: the run number of each value (parallel to values), for
        pairing with another configuration's runs; None: not pairable."""
        self.values = sorted(v for v in values if v is not None)
        self.failed = failed
        self.by_run = None if run_nos is None else {
            n: v for n, v in zip(run_nos, values) if v is not None}

    @property
    def n(self):
        return len(self.values)

    @property
    def median(self):
        return median_of(self.values)

    @property
    def lo(self):
        return self.values[0] if self.values else None

    @property
    def hi(self):
        return self.values[-1] if self.values else None

    def cell(self, spec="%.1f"):
        """"median [min..max] n=N" (and "+F failed")."""
        return cell(self.median, self.lo, self.hi, self.n, self.failed, spec)

    def over(self, other):
        """This figure divided by another configuration's."""
        return Ratio(self, other)


def median_of(xs):
    xs, n = sorted(xs), len(xs)
    if not n:
        return None
    return xs[n // 2] if n % 2 else (xs[n // 2 - 1] + xs[n // 2]) / 2


def sign_test_rank(n, confidence=CONFIDENCE):
    """The largest k (1-based) such that [x(k)..x(n+1-k)], order
    statistics of n values, covers their distribution's median with
    probability >= confidence; 0 if none does (too few values)."""
    k, below = 0, 0.0
    for j in range(n // 2 + 1):  # below: P(Binomial(n, 1/2) <= j)
        below += math.comb(n, j) / 2.0 ** n
        if 2 * below > 1 - confidence:
            break
        k = j + 1
    return k


class Ratio:
    """a / b. With PAIRED_RUNS or more runs completed by both under the
    same run number: the median of those pairs' ratios and its confidence
    interval (paired). Otherwise: the ratio of the medians, spread from
    the worst pairing to the best. The runs behind it are the pairs (or
    the fewer of the two sides); its failures both sides'."""

    def __init__(self, a, b):
        self.a, self.b = a, b
        self.failed = a.failed + b.failed
        self.pairs = []
        if a.by_run is not None and b.by_run is not None:
            self.pairs = sorted(a.by_run[i] / b.by_run[i] for i in a.by_run
                                if i in b.by_run and b.by_run[i] > 0)
        k = sign_test_rank(len(self.pairs))
        self.paired = len(self.pairs) >= PAIRED_RUNS and k > 0
        if self.paired:
            self.n = len(self.pairs)
            self.median = median_of(self.pairs)
            self.lo, self.hi = self.pairs[k - 1], self.pairs[-k]
            return
        self.n = min(a.n, b.n)
        ok = a.n and b.n and b.lo and b.lo > 0
        self.median = a.median / b.median if ok and b.median else None
        self.lo = a.lo / b.hi if ok else None
        self.hi = a.hi / b.lo if ok else None

    def cell(self, spec="%.2f"):
        text = cell(self.median, self.lo, self.hi, self.n, self.failed, spec)
        return text.replace(" n=", " paired n=", 1) if self.paired else text


def cell(median, lo, hi, n, failed, spec):
    tail = " +%d failed" % failed if failed else ""
    if median is None:
        return "- n=%d%s" % (n, tail)
    if n == 1:
        return "%s n=1%s" % (spec % median, tail)
    return "%s [%s..%s] n=%d%s" % (spec % median, spec % lo, spec % hi, n, tail)


def verdict(m, target, better):
    """"met", "not met" or "not settled (why)" for a Measure or Ratio
    against target; better is "lower" or "higher". Failed runs can only
    make a claim less certain, never met."""
    if m.median is None:
        return "not settled (no data)"
    if better == "lower":
        right, wrong = m.hi <= target, m.lo > target
    else:
        right, wrong = m.lo >= target, m.hi < target
    if m.n < MIN_RUNS:
        return "not settled (only %d run%s; %d needed)" % (m.n, "" if m.n == 1 else "s", MIN_RUNS)
    if wrong:
        return "not met"
    if right and not m.failed:
        return "met"
    if right:
        return "not settled (%d failed run%s)" % (m.failed, "" if m.failed == 1 else "s")
    return "not settled (spread straddles the target)"


def target_line(what, m, target, better, spec="%.2f"):
    """One line of a benchmark's targets: the claim, the figure with its
    runs and spread, and the verdict."""
    sign = "<=" if better == "lower" else ">="
    return "target %s %s %s: %s -> %s" % (what, sign, spec % target, m.cell(spec),
                                          verdict(m, target, better))


class Runs:
    """Every run of every configuration: the results of those that
    completed, and those that failed, with why."""

    def __init__(self, labels):
        self.labels = list(labels)
        self.ok = {l: [] for l in self.labels}
        self.run_nos = {l: [] for l in self.labels}  # parallel to ok
        self.bad = {l: [] for l in self.labels}

    def add(self, run_no, label, result):
        self.ok[label].append(result)
        self.run_nos[label].append(run_no)

    def fail(self, run_no, label, why):
        self.bad[label].append((run_no, why))
        print("run %d %s: FAILED, counted as failed (not in the medians): %s" %
              (run_no, label, why[:300]), flush=True)

    def attempt(self, run_no, label, fn, *args):
        """fn(*args) for one run. A guest that stops answering, a guest
        command that fails, or a VMM that exits with an error costs that run,
        not the whole benchmark (in the nested host guests stall at times,
        under QEMU as under vireo): recorded as failed; returns None."""
        try:
            return fn(*args)
        except (AssertionError, RuntimeError, OSError) as e:
            self.fail(run_no, label, "%s: %s" % (type(e).__name__, e))
        except Exception as e:  # vm.Timeout, without importing tests/e2e here
            if type(e).__name__ != "Timeout":
                raise
            self.fail(run_no, label, "timed out: %s" % e)
        return None

    def measure(self, label, key):
        """Measure of one figure: key is a function of a run's result."""
        return Measure([key(r) for r in self.ok[label]], len(self.bad[label]), self.run_nos[label])

    def counts_line(self):
        return "runs per configuration (completed + failed): " + ", ".join(
            "%s %d+%d" % (l, len(self.ok[l]), len(self.bad[l])) for l in self.labels)

    def failed_line(self):
        bad = ["run %d %s (%s)" % (n, l, why[:120]) for l in self.labels for n, why in self.bad[l]]
        return "runs that failed: %s" % ("; ".join(bad) if bad else "none")


LEGEND = ("each figure: median [min..max] n=runs behind it (+failed runs, not in the median); "
          "a ratio's spread is worst..best pairing, or, marked 'paired' (>= %d alternating runs "
          "completed by both), the median of the runs' ratios and its %d %% confidence interval "
          "(sign test); a target is met only when the whole spread is on its side, with >= %d runs "
          "and none failed" % (PAIRED_RUNS, round(CONFIDENCE * 100), MIN_RUNS))
