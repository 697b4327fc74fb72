#!/usr/bin/env python3
"""Network benchmark: virtio-net on a tap interface under vireo and under
QEMU (-netdev tap,vhost=off -device virtio-net-pci) on the same KVM, same
kernel, same tools initramfs, alternating, several runs. iperf3 TCP from
the guest to an iperf3 server on the host side of the tap, and back (-R).
Prints medians with their runs and spread, vireo/QEMU ratios, and KVM
exits per MB moved (debugfs, summed over vCPUs: every exit, then split
into halts, interrupts injected and exits to the VMM process).

The host's iperf3 is the one on PATH, else the guest's own (Debian's
package in the tools cache, guest/fetch --tools) run with its library
directory."""
import argparse
import glob
import os
import shutil
import subprocess
import sys
import tempfile
import time

from stats import LEGEND, Runs, target_line
from vmguest import BenchGuest, delta

TAP = "vbtap0"
HOST_IP, GUEST_IP = "192.168.101.1", "192.168.101.2"
PORT = 5201
CONFIGS = (("vireo", "vireo"), ("qemu", "qemu"))
DIRECTIONS = (("guest->host", ""), ("host->guest", "-R"))


def host_iperf3(tmp):
    """argv prefix and environment for an iperf3 on this host."""
    exe = shutil.which("iperf3")
    if exe:
        return [exe], None
    cache = os.environ.get("VIREO_CACHE", os.path.expanduser("~/.cache/vireo"))
    root = os.path.join(cache, "tools", "root")
    exe = os.path.join(root, "usr", "bin", "iperf3")
    if not os.path.exists(exe):
        raise SystemExit("bench/net: no iperf3 on this host nor in %s (run guest/build)" % root)
    # Only iperf3's own libraries from the cache: libc and libcrypto come
    # from this host (the cache's libc would need its own loader).
    libs = os.path.join(tmp, "lib")
    os.mkdir(libs)
    for pat in ("libiperf.so.*", "libsctp.so.*"):
        for p in glob.glob(os.path.join(root, "usr", "lib", "x86_64-linux-gnu", pat)):
            os.symlink(p, os.path.join(libs, os.path.basename(p)))
    env = dict(os.environ, LD_LIBRARY_PATH=libs)
    return [exe], env


def ip(*args):
    r = subprocess.run(["ip"] + list(args), capture_output=True, text=True)
    if r.returncode:
        raise SystemExit("bench/net: ip %s: %s" % (" ".join(args), r.stderr.strip()))


def run_vm(kind, args):
    g = BenchGuest(kind, tap=TAP, cmdline="vireo.net=%s/24" % GUEST_IP)
    res = {}
    try:
        g.ok("ping -c 1 -W 5 %s > /dev/null" % HOST_IP, 60)
        nic = "cat /sys/class/net/eth0/statistics/rx_bytes /sys/class/net/eth0/statistics/tx_bytes"
        for name, flag in DIRECTIONS:
            before = g.kvm_counters()
            g.ok("%s > /tmp/n0; iperf3 -c %s -p %d -t %d -O 1 %s -J > /tmp/ip.json; %s > /tmp/n1" % (
                nic, HOST_IP, PORT, args.time, flag, nic), args.time * 5 + 60)
            after = g.kvm_counters()
            # The receiver's figure (iperf3's sum_received), and the bytes
            # the guest's NIC moved meanwhile both ways.
            out = g.ok("awk '/\"sum_received\"/ { r = 1 } r && /\"bits_per_second\"/ "
                       "{ print $2; exit }' /tmp/ip.json")
            bps = float(out.strip().rstrip(","))
            n = [int(x) for x in g.ok("cat /tmp/n0 /tmp/n1").split()]
            moved = n[2] + n[3] - n[0] - n[1]
            k = delta(after, before)
            mb = moved / 1e6

            def per_mb(*keys):
                return sum(k.get(x, 0) for x in keys) / mb if k and mb else None
            res[name] = {"mbps": bps / 1e6, "exits_per_mb": per_mb("exits"),
                         "halts_per_mb": per_mb("halt_exits"),
                         "irqs_per_mb": per_mb("irq_injections"),
                         "user_per_mb": per_mb("user_exits")}
        g.poweroff()
    finally:
        g.close()
    return res


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=int(os.environ.get("BENCH_RUNS", "3")))
    ap.add_argument("--time", type=int, default=5, help="seconds per iperf3 test")
    args = ap.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("bench/net: needs root (tap interface)")

    tmp = tempfile.mkdtemp()
    server = None
    subprocess.run(["ip", "link", "del", TAP], capture_output=True)
    try:
        argv, env = host_iperf3(tmp)
        ip("tuntap", "add", "dev", TAP, "mode", "tap")
        ip("addr", "add", HOST_IP + "/24", "dev", TAP)
        ip("link", "set", TAP, "up")
        server = subprocess.Popen(argv + ["-s", "-B", HOST_IP, "-p", str(PORT)], env=env,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        time.sleep(0.5)
        if server.poll() is not None:
            raise SystemExit("bench/net: iperf3 server: %s" % server.stderr.read().decode())
        runs = Runs([label for label, _ in CONFIGS])
        for i in range(args.runs):
            order = list(CONFIGS) if i % 2 == 0 else list(reversed(CONFIGS))
            for label, kind in order:
                t0 = time.monotonic()
                res = runs.attempt(i + 1, label, run_vm, kind, args)
                if res is None:
                    continue
                runs.add(i + 1, label, res)
                print("run %d %-6s %s [%.0fs]" % (i + 1, label, "  ".join(
                    "%s %8.1f Mbit/s" % (n, res[n]["mbps"]) for n, _ in DIRECTIONS),
                    time.monotonic() - t0), flush=True)
    finally:
        if server:
            server.terminate()
            server.wait()
        subprocess.run(["ip", "link", "del", TAP], capture_output=True)
        shutil.rmtree(tmp, ignore_errors=True)

    print()
    print("network benchmark: %d runs each, iperf3 TCP %ds per direction over tap, %s" % (
        args.runs, args.time,
        "inside the nested host" if os.environ.get("VIREO_NESTED") else "on this host's KVM"))
    print(LEGEND)
    labels = [l for l, _ in CONFIGS]

    def m(label, direction, key):
        return runs.measure(label, lambda r: r[direction][key])

    def row(what, direction, key, spec):
        v = {l: m(l, direction, key) for l in labels}
        print("%-24s %-30s %-30s %s" % (what, v["vireo"].cell(spec), v["qemu"].cell(spec),
                                         v["vireo"].over(v["qemu"]).cell()))
        return v

    print("%-24s %-30s %-30s %s" % ("", "vireo", "qemu", "vireo / qemu"))
    mbps = {}
    for name, _ in DIRECTIONS:
        v = row(name + " Mbit/s", name, "mbps", "%.0f")
        mbps[name] = v["vireo"].over(v["qemu"])
    for name, _ in DIRECTIONS:
        # KVM exits during the iperf3 run per MB through the guest's NIC.
        row(name + " exits/MB", name, "exits_per_mb", "%.1f")
        # Of which: halts, interrupts injected, exits to the VMM process.
        for key, what in (("halts_per_mb", "halts"), ("irqs_per_mb", "interrupts"),
                          ("user_per_mb", "to userspace")):
            row("  " + what + "/MB", name, key, "%.1f")
    print("ratio = vireo / qemu (higher is better for Mbit/s, lower for exits/MB)")
    print()
    for name, _ in DIRECTIONS:
        print(target_line("TCP %s vireo / qemu" % name, mbps[name], 1.0, "higher"))
    print(runs.counts_line())
    print(runs.failed_line())
    return 0


if __name__ == "__main__":
    sys.exit(main())
