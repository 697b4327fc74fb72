#!/usr/bin/env python3
"""Disk formats and protocols benchmark: the same guest, the same fio jobs
(libaio, O_DIRECT on /dev/vda: 1 MiB sequential writes and reads, 4 KiB
random reads and writes) on each kind of disk, under vireo and under QEMU
(aio=io_uring and an iothread: vireo's peer) on the same KVM, alternating,
several runs; medians, their spread, and the ratios the targets name.

Disks (all 256 MiB of data fio uses, random bytes where it reads):
  raw            a raw file;
  qcow2          a qcow2 image with every cluster allocated (qemu-img
                 convert from the raw file);
  qcow2-fresh    an empty qcow2 image: every write allocates (writes only;
                 a new image for every VM);
  qcow2-backing  an empty qcow2 overlay over the raw file (reads come from
                 the backing file; writes copy on write);
  nbd            nbdkit's memory plugin over a unix socket (filled with
                 random bytes first by the guest's sequential write);
  rbd            an image on a throwaway single-node Ceph cluster (one
                 monitor, one memstore OSD: tests/rbd/cluster) as
                 client.vireo, vireo through librbd and QEMU's rbd driver
                 (a new image for every VM, filled like nbd's).

Beside each job's rate, KVM's exits per disk request (every exit of the
VM, net of what typing the command on the serial console costs).

Targets (issue 11): qcow2 >= 0.9x vireo's raw and >= QEMU's qcow2;
qcow2-fresh writes >= QEMU's; nbd and rbd >= QEMU's on the same server."""
import argparse
import contextlib
import itertools
import os
import shutil
import subprocess
import sys
import tempfile
import time

from stats import LEGEND, Runs, target_line
import vmguest
from vmguest import BenchGuest, fio_counted, fio_rates, reasons, reasons_text
from test_virtio import ceph_missing, rbd_cluster

MIB = 1 << 20
JOBS = (
    ("seqwrite", "--rw=write --bs=1M --iodepth=8", "MB/s"),
    ("seqread", "--rw=read --bs=1M --iodepth=8", "MB/s"),
    ("randread", "--rw=randread --bs=4k --iodepth=32", "IOPS"),
    ("randwrite", "--rw=randwrite --bs=4k --iodepth=32", "IOPS"),
)
DISKS = ("raw", "qcow2", "qcow2-fresh", "qcow2-backing", "nbd", "rbd")
VMMS = (("vireo", None, False), ("qemu", "io_uring", True))


class NbdServer:
    def __init__(self, d, size_mib):
        self.sock = os.path.join(d, "nbd.sock")
        if os.path.exists(self.sock):  # a stopped server's: "exists" would not mean "listens"
            os.unlink(self.sock)
        self.p = subprocess.Popen(["nbdkit", "-f", "-U", self.sock, "memory", "%dM" % size_mib],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 30
        while not os.path.exists(self.sock):
            if time.monotonic() > deadline or self.p.poll() is not None:
                raise RuntimeError("nbdkit did not start")
            time.sleep(0.05)
        self.uri = "nbd+unix:///?socket=%s" % self.sock

    def stop(self):
        self.p.terminate()
        self.p.wait(30)
        if os.path.exists(self.sock):
            os.unlink(self.sock)


RBD_IMAGES = itertools.count(1)


def prepare(disk, d, raw, size_mib, ceph_conf=None):
    """The disk's image (a fresh one where writes must allocate): (path,
    format, cleanup)."""
    if disk == "rbd":
        name = "rbd/blkfmt%d" % next(RBD_IMAGES)
        subprocess.run(["rbd", "-c", ceph_conf, "create", name, "--size", "%dM" % (size_mib + 64)],
                       check=True, capture_output=True, timeout=120)
        return ("rbd:%s:conf=%s:id=vireo" % (name, ceph_conf), "raw",
                lambda: subprocess.run(["rbd", "-c", ceph_conf, "rm", "--no-progress", name],
                                       capture_output=True, timeout=300))
    if disk == "raw":
        return raw, "raw", lambda: None
    if disk == "qcow2":
        img = os.path.join(d, "alloc.qcow2")
        if not os.path.exists(img):
            subprocess.run(["qemu-img", "convert", "-O", "qcow2", raw, img], check=True)
        return img, "qcow2", lambda: None
    if disk == "qcow2-fresh":
        img = os.path.join(d, "fresh.qcow2")
        subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", img, "%dM" % (size_mib + 64)],
                       check=True)
        return img, "qcow2", lambda: os.unlink(img)
    if disk == "qcow2-backing":
        img = os.path.join(d, "overlay.qcow2")
        subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", "-b", raw, "-F", "raw", img],
                       check=True)
        return img, "qcow2", lambda: os.unlink(img)
    srv = NbdServer(d, size_mib + 64)
    return srv.uri, "raw", srv.stop


def run_vm(kind, aio, iothread, disk, d, raw, args, ceph_conf):
    path, fmt, cleanup = prepare(disk, d, raw, args.size, ceph_conf)
    jobs = [j for j in JOBS if disk != "qcow2-fresh" or "write" in j[1]]
    if disk in ("nbd", "rbd"):  # data first, then the jobs in their order
        jobs = [JOBS[0]] + [j for j in JOBS if j is not JOBS[0]]
    g = BenchGuest(kind, disks=[(path, "writeback", fmt)], qemu_aio=aio, qemu_iothread=iothread)
    res = {}
    try:
        for name, opts, unit in jobs:
            fio = ("fio --name=%s --filename=/dev/vda --direct=1 --ioengine=libaio --size=%dM "
                   "--runtime=%d --time_based --ramp_time=1 %s --output-format=json "
                   "--output=/tmp/%s.json" % (name, args.size, args.runtime, opts, name))
            reqs, k = fio_counted(g, "vda", fio, args.runtime * 10 + 120)
            nums = fio_rates(g, name, opts)
            res[name] = nums["iops"] if unit == "IOPS" else nums["bw_bytes"] / 1e6
            if k and reqs:
                res["exits/" + name] = k["exits"] / reqs
            why = reasons(k, reqs) if vmguest.EXIT_REASONS else None
            if why:
                print("  %s %s, per request: %s" % (kind, name, reasons_text(why)), flush=True)
        g.poweroff()
    finally:
        g.close()
        cleanup()
    return res


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=int(os.environ.get("BENCH_RUNS", "3")))
    ap.add_argument("--runtime", type=int, default=5, help="seconds per fio job")
    ap.add_argument("--size", type=int, default=256, help="MiB of the disk that fio uses")
    ap.add_argument("--only", default="", help="comma-separated disks (default: all)")
    ap.add_argument("--exit-reasons", action="store_true",
                    help="also print each job's KVM exits per request by exit reason and MSR "
                    "(trace histograms: a little slower)")
    args = ap.parse_args()
    vmguest.EXIT_REASONS = args.exit_reasons
    disks = [x for x in args.only.split(",") if x] or list(DISKS)
    if not shutil.which("nbdkit") and "nbd" in disks:
        print("bench/blkfmt: nbdkit is not installed: the nbd disk is left out")
        disks.remove("nbd")
    no_ceph = "rbd" in disks and ceph_missing()
    if no_ceph:
        print("bench/blkfmt: %s: the rbd disk is left out" % no_ceph)
        disks.remove("rbd")
    labels = ["%s/%s" % (k, disk) for disk in disks for k, _, _ in VMMS]
    runs = Runs(labels)
    # The images on tmpfs where there is one: the nested host's /tmp is an
    # overlay, which no ordinary disk is (overlayfs has no RWF_NOWAIT, so
    # vireo's qcow2 could not serve a read in its device thread there, as
    # it does on ext4, xfs or tmpfs). Both VMMs read the same files.
    shm = "/dev/shm" if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK) else None
    with tempfile.TemporaryDirectory(dir=shm) as d, contextlib.ExitStack() as stack:
        # One cluster for the whole bench: starting one takes a minute.
        ceph_conf = stack.enter_context(rbd_cluster(os.path.join(d, "ceph"))) \
            if "rbd" in disks else None
        raw = os.path.join(d, "disk.raw")
        with open(raw, "wb") as f:
            for _ in range(args.size):
                f.write(os.urandom(MIB))
            f.truncate((args.size + 64) * MIB)
        for i in range(args.runs):
            for disk in disks:
                order = VMMS if i % 2 == 0 else VMMS[::-1]
                for kind, aio, iothread in order:
                    label = "%s/%s" % (kind, disk)
                    t0 = time.monotonic()
                    got = runs.attempt(i + 1, label, run_vm, kind, aio, iothread, disk, d, raw,
                                       args, ceph_conf)
                    if got is None:
                        continue
                    runs.add(i + 1, label, got)
                    print("run %d %-20s %s [%.0fs]" % (i + 1, label, "  ".join(
                        "%s %.1f" % kv for kv in sorted(got.items())), time.monotonic() - t0),
                          flush=True)
    print()
    print("disk formats benchmark: %d runs each, fio %ds per job on %d MiB, %s" % (
        args.runs, args.runtime, args.size,
        "inside the nested host" if os.environ.get("VIREO_NESTED") else "on this host's KVM"))
    print(LEGEND)
    print("%-22s %s" % ("", "  ".join("%-30s" % ("%s (%s)" % (j, u)) for j, _, u in JOBS)))

    def m(label, job):
        return runs.measure(label, lambda r: r.get(job))

    for label in labels:
        print("%-22s %s" % (label, "  ".join("%-30s" % m(label, job).cell() for job, _, _ in JOBS)))
    print()
    print("KVM exits per disk request")
    for label in labels:
        print("%-22s %s" % (label, "  ".join("%-30s" % m(label, "exits/" + job).cell("%.2f")
                                             for job, _, _ in JOBS)))
    print()
    targets = []
    for job, _, _ in JOBS:
        if "qcow2" in disks and "raw" in disks:
            targets.append(("vireo qcow2 / vireo raw", "vireo/qcow2", "vireo/raw", job, 0.9))
        if "qcow2" in disks:
            targets.append(("vireo qcow2 / QEMU qcow2", "vireo/qcow2", "qemu/qcow2", job, 1.0))
        if "nbd" in disks:
            targets.append(("vireo / QEMU on nbdkit", "vireo/nbd", "qemu/nbd", job, 1.0))
        if "rbd" in disks:
            targets.append(("vireo / QEMU on Ceph RBD", "vireo/rbd", "qemu/rbd", job, 1.0))
        if "qcow2-fresh" in disks and "write" in job:
            targets.append(("vireo / QEMU, writes allocating clusters", "vireo/qcow2-fresh",
                            "qemu/qcow2-fresh", job, 1.0))
    for job, _, _ in JOBS:
        if "qcow2-backing" in disks:
            r = m("vireo/qcow2-backing", job).over(m("qemu/qcow2-backing", job))
            print("ratio vireo / QEMU, qcow2 over a backing file, %-10s %s" % (job, r.cell()))
        if "raw" in disks:
            r = m("vireo/raw", job).over(m("qemu/raw", job))
            print("ratio vireo / QEMU, raw, %-10s %s" % (job, r.cell()))
    for what, a, b, job, bar in targets:
        print(target_line("%s, %s" % (what, job), m(a, job).over(m(b, job)), bar, "higher"))
    print(runs.counts_line())
    print(runs.failed_line())
    return 1 if any(runs.bad[l] for l in labels) else 0


if __name__ == "__main__":
    sys.exit(main())
