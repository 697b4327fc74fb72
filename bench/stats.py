"""What every benchmark reports, and how: each figure as its median with
the number of runs behind it and their spread (min..max); every run that
failed (a guest that stopped answering, a nonzero exit status, lost
frames) counted and named, never silently left out; and a target called
"met" only when the whole spread is on the right side of it.

A ratio of two configurations is spread over the worst pairing to the best
(min(a)/max(b) .. max(a)/min(b)): runs of different VMs are not paired,
so nothing narrower is known about it."""

# Fewer runs than this settle nothing either way: one or two runs show no
# spread worth the name (single runs here vary by up to 1.6x).
MIN_RUNS = 3


class Measure:
    """One figure of one configuration over its runs: values of the runs
    that completed (None: not measured in that run, e.g. no debugfs), and
    how many runs failed."""

    def __init__(self, values, failed=0):
        self.values = sorted(v for v in values if v is not None)
        self.failed = failed

    @property
    def n(self):
        return len(self.values)

    @property
    def median(self):
        xs, n = self.values, len(self.values)
        if not n:
            return None
        return xs[n // 2] if n % 2 else (xs[n // 2 - 1] + xs[n // 2]) / 2

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


class Ratio:
    """a / b: the ratio of the medians, spread from the worst pairing to the
    best; the runs behind it are the fewer of the two, its failures both
    sides'."""

    def __init__(self, a, b):
        self.a, self.b = a, b
        self.n = min(a.n, b.n)
        self.failed = a.failed + b.failed
        ok = a.n and b.n and b.lo and b.lo > 0
        self.median = a.median / b.median if ok and b.median else None
        self.lo = a.lo / b.hi if ok else None
        self.hi = a.hi / b.lo if ok else None

    def cell(self, spec="%.2f"):
        return cell(self.median, self.lo, self.hi, self.n, self.failed, spec)


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
        self.bad = {l: [] for l in self.labels}

    def add(self, label, result):
        self.ok[label].append(result)

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
        return Measure([key(r) for r in self.ok[label]], len(self.bad[label]))

    def counts_line(self):
        return "runs per configuration (completed + failed): " + ", ".join(
            "%s %d+%d" % (l, len(self.ok[l]), len(self.bad[l])) for l in self.labels)

    def failed_line(self):
        bad = ["run %d %s (%s)" % (n, l, why[:120]) for l in self.labels for n, why in self.bad[l]]
        return "runs that failed: %s" % ("; ".join(bad) if bad else "none")


LEGEND = ("each figure: median [min..max] n=runs behind it (+failed runs, not in the median); "
          "a ratio's spread is worst..best pairing; a target is met only when the whole spread "
          "is on its side, with >= %d runs and none failed" % MIN_RUNS)
