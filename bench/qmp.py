#!/usr/bin/env python3
"""Control-socket benchmark: the same guest under vireo and under QEMU, the
same QMP client (tests/e2e/qmp.py) on each VMM's socket. Per run, 10
rounds of `stop` then `cont` while the guest runs a busy loop: the time
from sending the command to its reply (for stop: every vCPU parked and
every device quiesced; for cont: running again). Medians of the runs'
medians, with runs and spread, side by side. And vireo's own memory with
the control socket on: its peak RSS minus the guest pages it had backed
(query-vireo-stats guest_resident_bytes), against the 4 MiB target."""
import argparse
import os
import statistics
import sys
import tempfile
import time

from stats import LEGEND, Runs, target_line
from vmguest import BenchGuest, ROOT

sys.path.insert(0, os.path.join(ROOT, "tests", "e2e"))
from qmp import QMP  # noqa: E402

ROUNDS = 10


def peak_rss(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return None


def run_once(kind, tmp):
    sock = os.path.join(tmp, "%s.sock" % kind)
    if os.path.exists(sock):
        os.unlink(sock)
    g = BenchGuest(kind, memory="512M", cpus=2, qmp=sock)
    try:
        q = QMP(sock)
        g.detach("(while :; do :; done) >/dev/null 2>&1")
        stops, conts = [], []
        for _ in range(ROUNDS):
            t0 = time.perf_counter()
            q.cmd("stop")
            stops.append((time.perf_counter() - t0) * 1e3)
            t0 = time.perf_counter()
            q.cmd("cont")
            conts.append((time.perf_counter() - t0) * 1e3)
        g.ok("true")  # the guest still answers
        own = None
        if kind == "vireo":
            resident = q.cmd("query-vireo-stats")["guest_resident_bytes"]
            own = (peak_rss(g.vm.proc.pid) - resident) / 2**20
        q.cmd("quit")
        g.vm.wait(60)
        return {"stop_ms": statistics.median(stops), "cont_ms": statistics.median(conts),
                "own_mib": own}
    finally:
        g.close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=int(os.environ.get("BENCH_RUNS", "5")))
    args = ap.parse_args()
    labels = ["vireo", "qemu"]
    runs = Runs(labels)
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.runs):
            for label in labels:
                r = runs.attempt(i + 1, label, run_once, label, tmp)
                if r:
                    runs.add(i + 1, label, r)
                    print("run %d %s: stop %.2f ms, cont %.2f ms%s" % (
                        i + 1, label, r["stop_ms"], r["cont_ms"],
                        ", own memory %.2f MiB" % r["own_mib"] if r["own_mib"] else ""),
                        flush=True)

    def m(label, key):
        return runs.measure(label, lambda r: r[key])

    print("\nQMP stop/cont: %d runs each, %d rounds per run (per-run medians), 2 vCPUs busy" %
          (args.runs, ROUNDS))
    print(LEGEND)
    print("%-22s %-30s %-30s" % ("", "vireo", "qemu"))
    for key, what in (("stop_ms", "stop -> paused (ms)"), ("cont_ms", "cont -> running (ms)")):
        print("%-22s %-30s %-30s" % (what, m("vireo", key).cell("%.2f"), m("qemu", key).cell("%.2f")))
    for key, what in (("stop_ms", "stop"), ("cont_ms", "cont")):
        print("ratio vireo/qemu %-5s %s" % (what, m("vireo", key).over(m("qemu", key)).cell()))
    print(target_line("vireo's own memory with --qmp (MiB)", m("vireo", "own_mib"), 4.0, "lower"))
    return 1 if any(runs.bad[l] for l in labels) else 0


if __name__ == "__main__":
    sys.exit(main())
