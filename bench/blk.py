#!/usr/bin/env python3
"""Block benchmark: virtio-blk under vireo (with ioeventfd, and with
--no-ioeventfd) and under QEMU on the same KVM, same kernel, same tools
initramfs, same raw image, alternating, several runs. In the guest, fio
(libaio, O_DIRECT on /dev/vda): sequential 1 MiB writes and reads (MB/s)
and 4 KiB random reads (IOPS). Prints medians and vireo/QEMU ratios.

Exits per request, two ways:
  - per job, for every VMM: KVM's "exits" counter of the VM (debugfs,
    summed over vCPUs) across the fio run, divided by the requests the
    guest completed on vda in that time (/sys/block/vda/stat), and the
    exits that reached userspace (io_exits + mmio_exits) likewise;
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

from vmguest import (BenchGuest, attempt, delta, failed_runs_line, fmt, median, ratio,
                     stats_exits)

MIB = 1 << 20
JOBS = (
    ("seqwrite", "--rw=write --bs=1M --iodepth=8", "MB/s"),
    ("seqread", "--rw=read --bs=1M --iodepth=8", "MB/s"),
    ("randread", "--rw=randread --bs=4k --iodepth=32", "IOPS"),
)
CONFIGS = (
    ("vireo", "vireo", False),
    ("vireo-noioeventfd", "vireo", True),
    ("qemu", "qemu", False),
)


def disk_requests(stat_line):
    """Completed requests in a /sys/block/X/stat line: reads, writes,
    discards, flushes."""
    f = [int(x) for x in stat_line.split()]
    return f[0] + f[4] + (f[11] if len(f) > 11 else 0) + (f[15] if len(f) > 15 else 0)


def odirect_ok(d):
    with tempfile.NamedTemporaryFile(dir=d) as t:
        try:
            os.close(os.open(t.name, os.O_RDONLY | os.O_DIRECT))
            return True
        except OSError:
            return False


def run_vm(kind, no_ioeventfd, img, cache, args, stats_json):
    g = BenchGuest(kind, disks=[(img, cache)], no_ioeventfd=no_ioeventfd, stats_json=stats_json)
    res = {}
    try:
        for name, opts, _ in JOBS:
            fio = ("fio --name=%s --filename=/dev/vda --direct=1 --ioengine=libaio --size=%dM "
                   "--runtime=%d --time_based --ramp_time=1 %s --output-format=json "
                   "--output=/tmp/%s.json" % (name, args.size, args.runtime, opts, name))
            before = g.kvm_counters()
            g.ok("cat /sys/block/vda/stat > /tmp/s0; %s; cat /sys/block/vda/stat > /tmp/s1" % fio,
                 args.runtime * 10 + 120)
            after = g.kvm_counters()
            # Only the numbers needed: console output costs exits too (one
            # per byte on the 8250), and --stats-json counts them all.
            side = "write" if "write" in opts.split()[0] else "read"
            out = g.ok("awk '/^ *\"[a-z]+\" : \\{/ { s = $1 } s == \"\\\"%s\\\"\" && "
                       "/^ *\"(bw_bytes|iops)\" :/ { print $1, $3 }' /tmp/%s.json" % (side, name))
            nums = {}
            for line in out.splitlines():
                key, val = line.split()
                nums.setdefault(key.strip('"'), float(val.rstrip(",")))
            stat = g.ok("cat /tmp/s0 /tmp/s1").strip().splitlines()
            reqs = disk_requests(stat[1]) - disk_requests(stat[0])
            k = delta(after, before)
            res[name] = {
                "mbps": nums["bw_bytes"] / 1e6,
                "iops": nums["iops"],
                "requests": reqs,
                "exits_per_req": k["exits"] / reqs if k and reqs else None,
                "uexits_per_req": (k["io_exits"] + k["mmio_exits"]) / reqs if k and reqs else None,
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
        for label, kind, noev in CONFIGS:
            if kind != "vireo":
                continue
            g = BenchGuest(kind, disks=[(img, args.cache)], no_ioeventfd=noev, stats_json=stats)
            try:
                reqs = disk_requests(g.ok("cat /sys/block/vda/stat"))
                g.poweroff()
            finally:
                g.close()
            base[label] = (stats_exits(stats)[0], reqs)

        results = {label: [] for label, _, _ in CONFIGS}
        whole = {label: [] for label, kind, _ in CONFIGS if kind == "vireo"}
        devices = {}
        for i in range(args.runs):
            order = list(CONFIGS)
            if i % 2:
                order.reverse()
            for label, kind, noev in order:
                if os.path.exists(stats):
                    os.unlink(stats)
                t0 = time.monotonic()
                got = attempt(i + 1, label, run_vm, kind, noev, img, args.cache, args,
                              stats if kind == "vireo" else None)
                if got is None:
                    continue
                res, total_reqs = got
                results[label].append(res)
                line = "run %d %-18s" % (i + 1, label)
                for name, _, unit in JOBS:
                    r = res[name]
                    v = r["iops"] if unit == "IOPS" else r["mbps"]
                    line += " %s %7.1f %s (%s exits/req)" % (name, v, unit, fmt(r["exits_per_req"], "%.2f"))
                if kind == "vireo":
                    exits, devices[label] = stats_exits(stats)
                    e0, r0 = base[label]
                    per = (exits - e0) / (total_reqs - r0) if total_reqs > r0 else None
                    whole[label].append(per)
                    line += " | stats-json %s exits/req" % fmt(per, "%.2f")
                print(line + " [%.0fs]" % (time.monotonic() - t0), flush=True)

    print()
    print("block benchmark: %d runs each, fio %ds per job on %d MiB, cache=%s, %s" % (
        args.runs, args.runtime, args.size, args.cache,
        "inside the nested host" if os.environ.get("VIREO_NESTED") else "on this host's KVM"))
    labels = [c[0] for c in CONFIGS]
    print("%-22s %12s %18s %12s %8s %10s" % ("median", "vireo", "vireo-noioeventfd", "qemu",
                                            "ratio", "noioev"))
    for name, _, unit in JOBS:
        key = "iops" if unit == "IOPS" else "mbps"
        v = {l: median(r[name][key] for r in results[l]) for l in labels}
        print("%-22s %12s %18s %12s %8s %10s" % (
            "%s %s" % (name, unit), fmt(v["vireo"]), fmt(v["vireo-noioeventfd"]), fmt(v["qemu"]),
            fmt(ratio(v["vireo"], v["qemu"]), "%.2f"),
            fmt(ratio(v["vireo-noioeventfd"], v["qemu"]), "%.2f")))
    print()
    print("KVM exits per request during each job (debugfs; in parentheses: exits to userspace)")
    for name, _, _ in JOBS:
        cells = []
        for l in labels:
            e = median(r[name]["exits_per_req"] for r in results[l])
            u = median(r[name]["uexits_per_req"] for r in results[l])
            cells.append("%s (%s)" % (fmt(e, "%.2f"), fmt(u, "%.2f")))
        print("%-22s %12s %18s %12s" % (name, *cells))
    print()
    print("vireo --stats-json: (exits summed over vCPUs - boot-only VM's) / (requests - boot-only VM's)")
    for l in whole:
        print("  %-18s %s exits/request (median of %d VMs; boot-only VM: %d exits, %d requests)" % (
            l, fmt(median(whole[l]), "%.2f"), len(whole[l]), base[l][0], base[l][1]))
    for l, dev in devices.items():
        blk = {k: v for k, v in dev.items() if "blk" in k}
        print("  %-18s device counters of the last VM: %s" % (l, json.dumps(blk, sort_keys=True)))
    print("ratio = vireo / qemu; noioev = vireo --no-ioeventfd / qemu")
    print(failed_runs_line())
    return 0


if __name__ == "__main__":
    sys.exit(main())
