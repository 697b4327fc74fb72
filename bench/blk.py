#!/usr/bin/env python3
"""Block benchmark: virtio-blk under vireo and under QEMU on the same KVM,
same kernel, same tools initramfs, same raw image, alternating, several
runs. In the guest, fio (libaio, O_DIRECT on /dev/vda): sequential 1 MiB
writes and reads (MB/s) and 4 KiB random reads (IOPS). Prints medians with
their runs and spread, and vireo/QEMU ratios of like to like.

Configurations:
  vireo                   io_uring, its own I/O thread, ioeventfd;
  vireo-noioeventfd       the same, every queue notification an exit to
                          vireo (--no-ioeventfd);
  qemu-uring-iothread     aio=io_uring and an iothread: vireo's peer;
  qemu-noioeventfd        aio=io_uring, ioeventfd=off (so no iothread,
                          which needs ioeventfd): vireo-noioeventfd's peer;
  qemu                    QEMU's defaults: aio=threads, no iothread (the
                          previous method's only QEMU).
vireo-noioeventfd against plain qemu shows where the previous method's
gap came from: vireo won without ioeventfd too, so it was io_uring and the
I/O thread, not the notification path.

Exits per request, two ways:
  - per job, for every VMM: KVM's "exits" counter of the VM (debugfs,
    summed over vCPUs) across the fio run, divided by the requests the
    guest completed on vda in that time (/sys/block/vda/stat): every KVM
    exit, whatever its cause (interrupts, timers, halts of the vCPU too);
    and the exits that reached userspace (kvm_userspace_exit trace events,
    bench/vmguest.py) likewise; both net of what typing the command on the
    serial console cost (vmguest.fio_counted, as bench/blkfmt counts);
  - per VM, for vireo: "exits" summed over the vCPUs in --stats-json, minus
    those of a VM that only boots and powers off, divided by the requests
    over the same difference.
"""
import argparse
import json
import os
import sys
import tempfile
import time

from stats import LEGEND, Runs, target_line
from vmguest import BenchGuest, disk_requests, fio_counted, fio_rates, fmt, stats_exits

MIB = 1 << 20
JOBS = (
    ("seqwrite", "--rw=write --bs=1M --iodepth=8", "MB/s"),
    ("seqread", "--rw=read --bs=1M --iodepth=8", "MB/s"),
    ("randread", "--rw=randread --bs=4k --iodepth=32", "IOPS"),
)
# label: (kind, no_ioeventfd, QEMU's aio, QEMU's iothread)
CONFIGS = (
    ("vireo", "vireo", False, None, False),
    ("vireo-noioeventfd", "vireo", True, None, False),
    ("qemu-uring-iothread", "qemu", False, "io_uring", True),
    ("qemu-noioeventfd", "qemu", True, "io_uring", False),
    ("qemu", "qemu", False, None, False),
)
# Ratios: (a, b, what the pair compares); the first is the headline.
PAIRS = (
    ("vireo", "qemu-uring-iothread", "like for like: io_uring, an I/O thread, ioeventfd"),
    ("vireo-noioeventfd", "qemu-noioeventfd", "like for like without ioeventfd"),
    ("vireo-noioeventfd", "qemu", "vireo without ioeventfd vs QEMU's defaults (aio=threads)"),
    ("vireo", "qemu", "previous method: vireo vs QEMU's defaults (aio=threads, no iothread)"),
)


def odirect_ok(d):
    with tempfile.NamedTemporaryFile(dir=d) as t:
        try:
            os.close(os.open(t.name, os.O_RDONLY | os.O_DIRECT))
            return True
        except OSError:
            return False


def run_vm(config, img, cache, args, stats_json):
    kind, no_ioeventfd, aio, iothread = config
    g = BenchGuest(kind, disks=[(img, cache)], no_ioeventfd=no_ioeventfd, stats_json=stats_json,
                   qemu_aio=aio, qemu_iothread=iothread)
    res = {}
    try:
        for name, opts, _ in JOBS:
            fio = ("fio --name=%s --filename=/dev/vda --direct=1 --ioengine=libaio --size=%dM "
                   "--runtime=%d --time_based --ramp_time=1 %s --output-format=json "
                   "--output=/tmp/%s.json" % (name, args.size, args.runtime, opts, name))
            # The console's own exits (typing the command) are taken off.
            reqs, k = fio_counted(g, "vda", fio, args.runtime * 10 + 120)
            nums = fio_rates(g, name, opts)
            res[name] = {
                "mbps": nums["bw_bytes"] / 1e6,
                "iops": nums["iops"],
                "requests": reqs,
                "exits_per_req": k["exits"] / reqs if k and reqs else None,
                "uexits_per_req": k["user_exits"] / reqs if k and reqs else None,
            }
        total_reqs = disk_requests(g.ok("cat /sys/block/vda/stat"))
        g.poweroff()
    finally:
        g.close()
    return res, total_reqs


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=int(os.environ.get("BENCH_RUNS", "3")))
    ap.add_argument("--runtime", type=int, default=5, help="seconds per fio job")
    ap.add_argument("--size", type=int, default=256, help="MiB of the disk that fio uses")
    ap.add_argument("--cache", choices=("writeback", "none"), default="writeback")
    ap.add_argument("--dir", default=None, help="where the image goes (default: TMPDIR)")
    args = ap.parse_args()

    with tempfile.TemporaryDirectory(dir=args.dir) as d:
        if args.cache == "none" and not odirect_ok(d):
            print("bench/blk: cache=none needs O_DIRECT, which the file system of %s does not "
                  "have (tmpfs before Linux 6.6: the nested host's /tmp); use --dir or "
                  "--cache writeback" % d)
            return 2
        img = os.path.join(d, "disk.img")
        # Real data everywhere fio reads (a sparse file reads as zeroes
        # without touching any page).
        with open(img, "wb") as f:
            for _ in range(args.size):
                f.write(os.urandom(MIB))
            f.truncate((args.size + 64) * MIB)
        stats = os.path.join(d, "stats.json")

        # Boot-only VMs: the exits and requests that --stats-json's totals
        # include besides the benchmark.
        base = {}
        for label, kind, noev, _, _ in CONFIGS:
            if kind != "vireo":
                continue
            g = BenchGuest(kind, disks=[(img, args.cache)], no_ioeventfd=noev, stats_json=stats)
            try:
                reqs = disk_requests(g.ok("cat /sys/block/vda/stat"))
                g.poweroff()
            finally:
                g.close()
            base[label] = (stats_exits(stats)[0], reqs)

        labels = [c[0] for c in CONFIGS]
        runs = Runs(labels)
        for i in range(args.runs):
            order = list(CONFIGS)
            if i % 2:
                order.reverse()
            for label, *config in order:
                kind = config[0]
                if os.path.exists(stats):
                    os.unlink(stats)
                t0 = time.monotonic()
                got = runs.attempt(i + 1, label, run_vm, config, img, args.cache, args,
                                   stats if kind == "vireo" else None)
                if got is None:
                    continue
                res, total_reqs = got
                line = "run %d %-19s" % (i + 1, label)
                for name, _, unit in JOBS:
                    r = res[name]
                    v = r["iops"] if unit == "IOPS" else r["mbps"]
                    line += " %s %7.1f %s (%s exits/req)" % (name, v, unit, fmt(r["exits_per_req"], "%.2f"))
                if kind == "vireo":
                    exits, res["devices"] = stats_exits(stats)
                    e0, r0 = base[label]
                    res["whole"] = (exits - e0) / (total_reqs - r0) if total_reqs > r0 else None
                    line += " | stats-json %s exits/req" % fmt(res["whole"], "%.2f")
                runs.add(i + 1, label, res)
                print(line + " [%.0fs]" % (time.monotonic() - t0), flush=True)

    print()
    print("block benchmark: %d runs each, fio %ds per job on %d MiB, cache=%s, %s" % (
        args.runs, args.runtime, args.size, args.cache,
        "inside the nested host" if os.environ.get("VIREO_NESTED") else "on this host's KVM"))
    print(LEGEND)

    def m(label, job, key):
        return runs.measure(label, lambda r: r[job][key])

    def table(title, cells):
        if title:
            print(title)
        for label in labels:
            print("  %-20s %s" % (label, "  ".join("%-30s" % c(label) for c in cells)))

    print()
    print("%-22s %s" % ("", "  ".join("%-30s" % ("%s %s" % (n, u)) for n, _, u in JOBS)))
    table("throughput", [lambda l, n=n, u=u: m(l, n, "iops" if u == "IOPS" else "mbps").cell()
                         for n, _, u in JOBS])
    print()
    print("ratios of throughput (higher is better for vireo)")
    ratios = {}
    for a, b, why in PAIRS:
        cells = []
        for name, _, unit in JOBS:
            key = "iops" if unit == "IOPS" else "mbps"
            ratios[a, b, name] = m(a, name, key).over(m(b, name, key))
            cells.append(ratios[a, b, name].cell())
        print("  %-38s %s" % ("%s / %s" % (a, b), "  ".join("%-30s" % c for c in cells)))
        print("  %-38s (%s)" % ("", why))
    print("vireo --no-ioeventfd takes an exit to vireo for every queue notification; when it "
          "still beats QEMU's defaults, the gap to them is io_uring and the I/O thread, not the "
          "notification path: the fair peer is qemu-uring-iothread.")
    print()
    print("KVM exits per request during each job (debugfs): every exit of the VM's vCPUs")
    table("", [lambda l, n=n: m(l, n, "exits_per_req").cell("%.2f") for n, _, _ in JOBS])
    print("of which exits to userspace (io + mmio)")
    table("", [lambda l, n=n: m(l, n, "uexits_per_req").cell("%.2f") for n, _, _ in JOBS])
    print()
    print("vireo --stats-json: (exits summed over vCPUs - boot-only VM's) / (requests - boot-only VM's)")
    for l in base:
        print("  %-19s %s exits/request (boot-only VM: %d exits, %d requests)" % (
            l, runs.measure(l, lambda r: r["whole"]).cell("%.2f"), base[l][0], base[l][1]))
        if runs.ok[l]:
            blk = {k: v for k, v in runs.ok[l][-1]["devices"].items() if "blk" in k}
            print("  %-19s device counters of the last VM: %s" % (l, json.dumps(blk, sort_keys=True)))
    print()
    a, b, _ = PAIRS[0]
    for name, _, _ in JOBS:
        print(target_line("throughput %s %s / %s" % (name, a, b), ratios[a, b, name], 1.0, "higher"))
    for name, _, _ in JOBS:
        print(target_line("every KVM exit per request, %s, vireo" % name,
                          m("vireo", name, "exits_per_req"), 1.0, "lower"))
        print(target_line("exits to userspace per request, %s, vireo" % name,
                          m("vireo", name, "uexits_per_req"), 1.0, "lower"))
    print(runs.counts_line())
    print(runs.failed_line())
    return 0


if __name__ == "__main__":
    sys.exit(main())
