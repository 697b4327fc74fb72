#!/usr/bin/env python3
"""Boot benchmark: the same kernel and initramfs (an /init that prints a
marker and powers off) under vireo and under QEMU on the same KVM,
alternating, several runs. Prints medians of the wall time from process
start to the marker and to process exit, peak RSS, and the ratios.
Vireo's own memory is its peak RSS minus the guest pages it had backed
(guest_resident_bytes from --stats-json)."""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GUEST = os.environ.get("VIREO_GUEST_DIR", os.path.join(ROOT, "build", "guest"))
KERNEL = os.path.join(GUEST, "vmlinuz")
INITRD = os.path.join(GUEST, "initramfs.cpio.gz")
MARKER = b"VIREO-BENCH-MARKER"
CMDLINE = "console=ttyS0 quiet vireo.mode=bench"


def run_once(cmd, timeout=300, env=None):
    t0 = time.monotonic()
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                         stdin=subprocess.DEVNULL, env=env)
    buf = b""
    t_marker = None
    while True:
        chunk = os.read(p.stdout.fileno(), 4096)
        if not chunk:
            break
        buf += chunk
        if t_marker is None and MARKER in buf:
            t_marker = time.monotonic() - t0
        if time.monotonic() - t0 > timeout:
            p.kill()
            break
    _, status, usage = os.wait4(p.pid, 0)
    t_exit = time.monotonic() - t0
    if t_marker is None:
        raise RuntimeError("%s: no marker; exit status %d; output tail %r" %
                           (cmd[0], status, buf[-300:]))
    return t_marker, t_exit, usage.ru_maxrss * 1024, os.waitstatus_to_exitcode(status)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=int(os.environ.get("BENCH_RUNS", "5")))
    ap.add_argument("--memory", default="256M")
    args = ap.parse_args()
    vireo = os.path.join(ROOT, "build", "vireo")
    qemu = ["qemu-system-x86_64", "-enable-kvm", "-cpu", "host", "-m", args.memory, "-smp", "1",
            "-nodefaults", "-no-user-config", "-display", "none", "-serial", "stdio",
            "-kernel", KERNEL, "-initrd", INITRD, "-append", CMDLINE]
    # "vireo" boots as users get it from the second boot of a kernel on: the
    # payload decompressed once into the kernel cache. "vireo-nocache"
    # (VIREO_KERNEL_CACHE=off) has the guest decompress it, as QEMU does.
    nocache_env = dict(os.environ, VIREO_KERNEL_CACHE="off")
    results = {"vireo": [], "vireo-nocache": [], "qemu": []}
    own = []
    with tempfile.TemporaryDirectory() as d:
        stats = os.path.join(d, "stats.json")
        vcmd = [vireo, "--kernel", KERNEL, "--initrd", INITRD, "--cmdline", CMDLINE,
                "--memory", args.memory, "--stats-json", stats]
        # One unmeasured run each warms the page cache, and vireo's kernel
        # cache (timed separately: a kernel's first boot).
        first = run_once(vcmd)
        run_once(qemu)
        for i in range(args.runs):
            order = [("vireo", vcmd, None), ("vireo-nocache", vcmd, nocache_env), ("qemu", qemu, None)]
            if i % 2:
                order.reverse()
            for name, cmd, env in order:
                r = run_once(cmd, env=env)
                results[name].append(r)
                if name == "vireo":
                    guest = json.load(open(stats))["guest_resident_bytes"]
                    own.append(r[2] - guest)
                print("run %d %-13s marker %6.3fs exit %6.3fs peak RSS %6.1f MiB status %d" %
                      (i + 1, name, r[0], r[1], r[2] / 2**20, r[3]), flush=True)

    def med(name, k):
        return statistics.median(r[k] for r in results[name])

    print()
    print("boot benchmark: %d runs each, --memory %s, %s" % (
        args.runs, args.memory,
        "inside the nested host" if os.environ.get("VIREO_NESTED") else "on this host's KVM"))
    print("%-22s %10s %14s %10s %8s %8s" % ("median", "vireo", "vireo-nocache", "qemu",
                                           "ratio", "nocache"))
    for label, k, unit, scale in (("wall time to marker", 0, "s", 1), ("wall time to exit", 1, "s", 1),
                                   ("peak RSS", 2, "M", 2**20)):
        v, n, q = (med(x, k) / scale for x in ("vireo", "vireo-nocache", "qemu"))
        print("%-22s %9.3f%s %13.3f%s %9.3f%s %8.2f %8.2f" % (label, v, unit, n, unit, q, unit,
                                                          v / q, n / q))
    print("%-22s %9.2fM" % ("vireo own memory", statistics.median(own) / 2**20))
    print("%-22s %9.3fs (includes decompressing the kernel into the cache, when it was not there)"
          % ("vireo first boot", first[0]))
    print("ratio = vireo / qemu; nocache = vireo-nocache / qemu")
    print("targets: marker ratio <= 0.50; vireo own memory <= 4 MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
