#!/usr/bin/env python3
"""CAN benchmark: Vireo's virtio-can (--can socketcan=vcan0, our guest
driver virtio_can) and Vireo's emulated Kvaser PCI card (--can
socketcan=vcan0,model=kvaser: an SJA1000, Linux's kvaser_pci driver)
against QEMU's emulated Kvaser PCI controller (the same card and driver)
bridged to the same vcan0 (-object can-host-socketcan), on the same KVM,
same kernel, same initramfs, alternating, several runs. Prints medians with their runs and
spread, and vireo/QEMU ratios. A run whose flood lost frames, or whose
guest stopped answering, is a failed run: reported, counted, not in the
medians.

  frames/s         the guest floods (cangen -g 0 -p 10, 8-byte frames,
                   a counter as data); candump on vcan0 on the host side
                   counts them and its kernel timestamps give the rate
                   (first to last frame). All must arrive.
  round trip       the host sends a frame on vcan0 and waits for the
                   answer, the next one 2 ms later; in the guest, the kernel
                   CAN gateway (cangw) sends every such frame straight back
                   with a new id. The time from request to answer on vcan0
                   (candump's kernel timestamps): median and 90th percentile.
  exits/frame      KVM exits of the VM during the flood (debugfs, summed
                   over vCPUs: the same counters for both VMMs) per frame,
                   and those that reached userspace (io + mmio); first all
                   of them, then net of the VM's idle cost: the same VM
                   left idle at its shell prompt right after the flood, for
                   as long as the flood took, gives exits per second, and
                   that rate times the flood's duration is subtracted.
                   (A flood that lasts 22x longer under QEMU otherwise
                   charges its frames 22x the timer ticks and halts of an
                   idle guest.) For vireo
                   also from --stats-json, over the VM's whole life (boot
                   included, so an upper bound): KVM exits summed over vCPUs
                   per frame the device moved (tx_frames + rx_frames), and
                   the device's own MMIO exits, queue notifications and
                   interrupts per frame. (Subtracting a boot-only VM does not
                   work here: boots differ by more exits than a flood takes.)
  host CPU/frame   the VMM process's utime + stime (/proc/PID/stat, all its
                   threads, guest time included) during the flood, per
                   frame: all of it, and net of the idle VM's CPU per second
                   over the flood's duration, as for exits.

The image is the tools initramfs plus the kvaser_pci and sja1000 modules
from the cached kernel package (appended as a second cpio archive), so
that both VMMs boot exactly the same files."""
import argparse
import json
import os
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import time

from stats import LEGEND, Measure, Runs, target_line
from vmguest import (BenchGuest, GUEST, INITRD, KERNEL, QEMU, VIREO, delta, fmt, minus, stats_exits,
                     vmmod)

VCAN = "vcan0"
CONFIGS = (("vireo", "vireo"), ("qemu", "qemu"), ("kvaser", "vireo-kvaser"))
# kind: the VMM and its CAN controller (CanGuest)
KINDS = {"vireo": ("vireo", "virtio"), "qemu": ("qemu", "kvaser"), "vireo-kvaser": ("vireo", "kvaser")}
FLOOD_ID, PING_ID, PONG_ID, SENTINEL_ID = 0x123, 0x100, 0x101, 0x7fe
CACHE = os.environ.get("VIREO_CACHE", os.path.expanduser("~/.cache/vireo"))
CAN_EFF_MASK = 0x1fffffff


def tool(name):
    exe = shutil.which(name) or os.path.join(CACHE, "can", "root", "usr", "bin", name)
    if not os.access(exe, os.X_OK):
        raise SystemExit("bench/can: no %s on this host (apt-get install can-utils)" % name)
    return exe


def vcan_add():
    """vcan0 anew, up."""
    vcan_del()
    run(["ip", "link", "add", "dev", VCAN, "type", "vcan"])
    run(["ip", "link", "set", VCAN, "up"])


def vcan_del():
    subprocess.run(["ip", "link", "del", VCAN], capture_output=True)


def run(cmd, **kw):
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=120, **kw)
    if r.returncode:
        raise SystemExit("bench/can: %s: %s" % (" ".join(cmd), (r.stdout + r.stderr).strip()))
    return r.stdout


def make_initrd(tmp):
    """The tools initramfs with kvaser_pci.ko and sja1000.ko appended."""
    kver = open(os.path.join(GUEST, "kver")).read().strip()
    rel = os.path.join("lib", "modules", kver, "kernel", "drivers", "net", "can", "sja1000")
    src = os.path.join(CACHE, "root", rel)
    stage = os.path.join(tmp, "stage")
    os.makedirs(os.path.join(stage, rel))
    for m in ("sja1000.ko", "kvaser_pci.ko"):
        p = os.path.join(src, m)
        if not os.path.exists(p):
            raise SystemExit("bench/can: %s missing (the kernel package cache: guest/fetch)" % p)
        shutil.copy(p, os.path.join(stage, rel, m))
    names = "\n".join(["lib", "lib/modules", "lib/modules/" + kver] +
                      ["/".join(rel.split(os.sep)[:i]) for i in range(4, len(rel.split(os.sep)) + 1)] +
                      [os.path.join(rel, m) for m in ("sja1000.ko", "kvaser_pci.ko")]) + "\n"
    extra = subprocess.run("cpio -o -H newc --quiet -R 0:0 | gzip -9", shell=True, cwd=stage,
                           input=names.encode(), capture_output=True, check=True).stdout
    out = os.path.join(tmp, "initramfs-can.cpio.gz")
    with open(out, "wb") as f, open(INITRD, "rb") as base:
        shutil.copyfileobj(base, f)
        f.write(extra)
    return out, "/" + rel


class CanGuest(BenchGuest):
    """BenchGuest with a CAN controller on vcan0: kind "vireo" with
    virtio-can (model "virtio", our guest driver) or its Kvaser card (model
    "kvaser"), or kind "qemu" with its kvaser_pci, under KVM or (accel
    "tcg") QEMU's TCG; boot_timeout is how long the boot may take."""

    def __init__(self, kind, model, initrd, stats_json=None, accel="kvm", boot_timeout=None):
        self.kind = kind
        append = "console=ttyS0 quiet"
        if kind == "vireo":
            args = [VIREO, "--kernel", KERNEL, "--initrd", initrd, "--cmdline", append,
                    "--memory", "512M", "--cpus", "1", "--can", "socketcan=" + VCAN +
                    (",model=kvaser" if model == "kvaser" else "")]
            if stats_json:
                args += ["--stats-json", stats_json]
        else:
            accel_args = ["-accel", "tcg"] if accel == "tcg" else ["-enable-kvm", "-cpu", "host"]
            args = [QEMU] + accel_args + [
                "-m", "512M", "-smp", "1", "-nodefaults", "-no-user-config", "-display", "none",
                "-serial", "stdio", "-kernel", KERNEL, "-initrd", initrd, "-append", append,
                "-object", "can-bus,id=canbus0",
                "-object", "can-host-socketcan,id=canhost0,if=%s,canbus=canbus0" % VCAN,
                "-device", "kvaser_pci,canbus=canbus0"]
        saved = vmmod.VIREO
        vmmod.VIREO = args[0]
        try:
            self.vm = vmmod.VM(args[1:], linux=False)
        finally:
            vmmod.VIREO = saved
        self._kvm_dir = None
        self.vm.expect(r"VIREO-GUEST-UP[^\n]*\n", boot_timeout or vmmod.BOOT_TIMEOUT)
        self.vm.expect(r"vireo# ", 60)
        self.ok("stty -echo")
        self.ok("dmesg -n 1")


class HostDump:
    """candump -L on vcan0 into a file, shown to receive before use."""

    def __init__(self, path):
        self.path = path
        self.f = open(path, "wb")
        self.p = subprocess.Popen([tool("candump"), "-L", "-r", "16000000", VCAN], stdout=self.f,
                                  stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while b"%03X#" % SENTINEL_ID not in open(path, "rb").read():
            if time.monotonic() > deadline or self.p.poll() is not None:
                raise SystemExit("bench/can: host candump on %s does not receive" % VCAN)
            run([tool("cansend"), VCAN, "%03X#5E" % SENTINEL_ID])
            time.sleep(0.3)

    def frames(self, can_id):
        """[(timestamp, data hex)] of the frames with can_id, in order."""
        out = []
        prefix = "%03X#" % can_id
        with open(self.path, errors="replace") as f:
            for line in f:
                parts = line.split()
                if len(parts) == 3 and parts[2].startswith(prefix):
                    out.append((float(parts[0].strip("()")), parts[2][len(prefix):]))
        return out

    def wait(self, can_id, count, timeout):
        deadline = time.monotonic() + timeout
        n = -1
        while time.monotonic() < deadline:
            got = len(self.frames(can_id))
            if got >= count or (got == n and got > 0):
                return got
            n = got
            time.sleep(1 if got else 0.3)
        return len(self.frames(can_id))

    def stop(self):
        self.p.terminate()
        self.p.wait(10)
        self.f.close()


def ping(pings, gap=0.002, timeout=1.0):
    """Sends PING_ID frames with a counter, each after the answer to the
    last (or timeout); returns how many were answered."""
    s = socket.socket(socket.AF_CAN, socket.SOCK_RAW, socket.CAN_RAW)
    s.setsockopt(socket.SOL_CAN_RAW, socket.CAN_RAW_FILTER, struct.pack("=II", PONG_ID, 0x7ff | 0xc0000000))
    s.bind((VCAN,))
    s.settimeout(timeout)
    answered = 0
    try:
        for i in range(pings):
            s.send(struct.pack("=IB3x8s", PING_ID, 4, struct.pack(">I", i)))
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                try:
                    b = s.recv(16)
                except socket.timeout:
                    break
                if b[8:12] == struct.pack(">I", i):
                    answered += 1
                    break
            time.sleep(gap)
    finally:
        s.close()
    return answered


def median(xs):
    return Measure(xs).median


def round_trips(dump):
    """Request-to-answer times (µs) on vcan0, from candump's timestamps."""
    sent = {d: t for t, d in dump.frames(PING_ID)}
    return sorted((t - sent[d]) * 1e6 for t, d in dump.frames(PONG_ID) if d in sent)


def percentile(xs, p):
    return xs[min(len(xs) - 1, int(len(xs) * p))] if xs else None


def can0_up(g, model, mods, timeout=300):
    """can0 up in the guest g (a Kvaser card's drivers loaded from mods,
    unless the image did, and its bitrate set); returns can0's driver."""
    if model == "kvaser":
        # The tools image loads them itself since it carries the drivers
        # for vireo's own emulated Kvaser card (guest/build).
        g.ok("[ -d /sys/module/kvaser_pci ] || { insmod %s/sja1000.ko && insmod %s/kvaser_pci.ko; }"
             % (mods, mods), timeout)
        g.ok("/sbin/ip link set can0 type can bitrate 500000")
    g.ok("/sbin/ip link set can0 up")
    return g.ok("basename $(readlink /sys/class/net/can0/device/driver)").strip()


def round_trip_run(g, log, pings, timeout=1.0):
    """pings round trips (ping()) through the guest's kernel, whose CAN
    gateway answers PING_ID with PONG_ID, a host candump into log timing
    them. Returns how many were answered, the round trips (µs, sorted),
    and the VM's KVM counters over the pings (delta)."""
    g.ok("modprobe can-gw 2>/dev/null; cangw -A -s can0 -d can0 -i -f %X:C00007FF "
         "-m SET:I:%X.0.0000000000000000" % (PING_ID, PONG_ID))
    dump = HostDump(log)
    try:
        before = g.kvm_counters()
        answered = ping(pings, timeout=timeout)
        after = g.kvm_counters()
        time.sleep(0.5)
    finally:
        dump.stop()
    g.ok("cangw -F")
    return answered, round_trips(dump), delta(after, before)


def flood(g, log, frames, timeout, wait=120, idle_max=None, cost=None):
    """The guest floods vcan0 with frames 8-byte FLOOD_ID frames (cangen,
    timeout its command's), a host candump into log counting them (waiting
    up to wait s); then the VM left idle at its prompt for as long (at
    least 2 s for the CPU clock's ticks, at most idle_max s) gives its
    background exits and CPU per second, to be taken off. cost(cmd), when
    given, is KVM counters to take off the flood's: what typing cmd on the
    console costs. Returns the figures, per frame received where it says
    so."""
    hz = os.sysconf("SC_CLK_TCK")
    dump = HostDump(log)
    cmd = "cangen can0 -g 0 -p 10 -n %d -I %X -L 8 -D i -x" % (frames, FLOOD_ID)
    base = cost(cmd) if cost else None
    try:
        before, cpu0, t0 = g.kvm_counters(), g.cpu_ticks(), time.monotonic()
        g.ok(cmd, timeout)
        got = dump.wait(FLOOD_ID, frames, wait)
        after, cpu1, t1 = g.kvm_counters(), g.cpu_ticks(), time.monotonic()
    finally:
        dump.stop()
    seen = dump.frames(FLOOD_ID)
    k = minus(delta(after, before), base)
    flood_s = t1 - t0
    idle_s = max(flood_s if idle_max is None else min(flood_s, idle_max), 2.0)
    before_i, cpu0_i, t0_i = g.kvm_counters(), g.cpu_ticks(), time.monotonic()
    time.sleep(idle_s)
    after_i, cpu1_i, t1_i = g.kvm_counters(), g.cpu_ticks(), time.monotonic()
    ki = delta(after_i, before_i)
    idle_s = t1_i - t0_i
    cpu_s = (cpu1 - cpu0) / hz
    idle_cpu_s = (cpu1_i - cpu0_i) / hz  # over idle_s
    res = {"received": got, "flood_s": flood_s,
           "fps": (len(seen) - 1) / (seen[-1][0] - seen[0][0]) if len(seen) > 1 else None,
           "cpu_pct": 100.0 * cpu_s / flood_s,
           "idle_cpu_pct": 100.0 * idle_cpu_s / idle_s,
           "idle_cpu_ms_per_s": idle_cpu_s * 1e3 / idle_s,
           "cpu_us_per_frame": cpu_s * 1e6 / got if got else None,
           "net_cpu_us_per_frame": (cpu_s - idle_cpu_s / idle_s * flood_s) * 1e6 / got
           if got else None}
    if k and got:
        user = k.get("user_exits", 0)  # bench/vmguest.py: returns to the VMM
        res["exits_per_frame"] = k["exits"] / got
        res["uexits_per_frame"] = user / got
        if ki:
            user_idle = ki.get("user_exits", 0) / idle_s * flood_s
            res["net_exits_per_frame"] = (k["exits"] - ki["exits"] / idle_s * flood_s) / got
            res["net_uexits_per_frame"] = (user - user_idle) / got
            res["idle_exits_per_s"] = ki["exits"] / idle_s
    return res


def run_vm(kind, initrd, mods, args, tmp, frames, stats_json=None):
    vmm, model = KINDS[kind]
    g = CanGuest(vmm, model, initrd, stats_json)
    res = {}
    try:
        res["driver"] = can0_up(g, model, mods)

        answered, rtt, k = round_trip_run(g, os.path.join(tmp, "ping-%s.log" % kind), args.pings)
        res["answered"] = answered
        res["rtt_median"] = median(rtt)
        res["rtt_p90"] = percentile(rtt, 0.9)
        res["exits_per_rtt"] = k["exits"] / answered if k and answered else None

        res.update(flood(g, os.path.join(tmp, "flood-%s.log" % kind), frames, frames // 100 + 300))
        stat = g.ok("cat /sys/class/net/can0/statistics/tx_packets "
                    "/sys/class/net/can0/statistics/tx_errors "
                    "/sys/class/net/can0/statistics/tx_dropped").split()
        res["guest_tx"] = [int(x) for x in stat]
        g.poweroff()
    finally:
        g.close()
    return res


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=int(os.environ.get("BENCH_RUNS", "3")))
    ap.add_argument("--frames", type=int, default=10000, help="frames per flood")
    ap.add_argument("--pings", type=int, default=300, help="round trips per VM")
    args = ap.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("bench/can: needs root (vcan)")
    tmp = tempfile.mkdtemp()
    try:
        vcan_add()
        initrd, mods = make_initrd(tmp)
        stats = os.path.join(tmp, "stats.json")
        load0 = open("/proc/loadavg").read().split()[:3]

        runs = Runs([label for label, _ in CONFIGS])
        whole, devices = [], {}
        for i in range(args.runs):
            order = list(CONFIGS) if i % 2 == 0 else list(reversed(CONFIGS))
            for label, kind in order:
                if os.path.exists(stats):
                    os.unlink(stats)
                t0 = time.monotonic()
                res = runs.attempt(i + 1, label, run_vm, kind, initrd, mods, args, tmp, args.frames,
                                   stats if kind == "vireo" else None)
                if res is None:
                    continue
                line = "run %d %-6s %-11s %8s frames/s  rtt %6s us (p90 %6s)  %6s exits/frame " \
                       "(%s net of idle)  %6s us CPU/frame (%s net)  flood %.1fs" % (
                           i + 1, label, res["driver"], fmt(res["fps"], "%.0f"),
                           fmt(res["rtt_median"], "%.0f"), fmt(res["rtt_p90"], "%.0f"),
                           fmt(res.get("exits_per_frame"), "%.2f"),
                           fmt(res.get("net_exits_per_frame"), "%.2f"),
                           fmt(res["cpu_us_per_frame"], "%.1f"),
                           fmt(res["net_cpu_us_per_frame"], "%.1f"), res["flood_s"])
                if kind == "vireo":
                    exits, devices = stats_exits(stats)
                    dev = devices.get("virtio-can0", {})
                    moved = dev.get("tx_frames", 0) + dev.get("rx_frames", 0)
                    if moved:
                        w = {"exits": exits / moved}
                        for key in ("exits", "queue_notifications", "interrupts"):
                            w["dev_" + key] = dev.get(key, 0) / moved
                        whole.append(w)
                        line += " | stats-json: %.2f exits/frame (whole VM), device %.3f" % (
                            w["exits"], w["dev_exits"])
                print(line + " [%.0fs]" % (time.monotonic() - t0), flush=True)
                if res["received"] != args.frames or res["answered"] != args.pings:
                    runs.fail(i + 1, label, "host received %d of %d flood frames (guest "
                              "tx_packets, tx_errors, tx_dropped: %s); %d of %d round trips "
                              "answered" % (res["received"], args.frames, res["guest_tx"],
                                            res["answered"], args.pings))
                else:
                    runs.add(i + 1, label, res)
        load1 = open("/proc/loadavg").read().split()[:3]
    finally:
        vcan_del()
        shutil.rmtree(tmp, ignore_errors=True)

    print()
    print("CAN benchmark: %d runs each; flood of %d 8-byte frames guest -> host, %d round trips; "
          "%s (load average %s before, %s after)" % (
              args.runs, args.frames, args.pings,
              "inside the nested host" if os.environ.get("VIREO_NESTED") else "on this host's KVM",
              " ".join(load0), " ".join(load1)))
    print("vireo: virtio-can (virtio_can) on --can socketcan=%s; qemu: kvaser_pci (sja1000) with "
          "can-host-socketcan on %s; kvaser: vireo's Kvaser card (kvaser_pci, sja1000) on --can "
          "socketcan=%s,model=kvaser" % (VCAN, VCAN, VCAN))
    print(LEGEND)
    labels = [l for l, _ in CONFIGS]
    print("%-30s %-30s %-30s %-30s %-22s %s" % ("", "vireo", "qemu", "kvaser", "vireo / qemu",
                                                "kvaser / qemu"))
    rows = (("guest->host frames/s", "fps", "%.0f"),
            ("round trip median, us", "rtt_median", "%.0f"),
            ("round trip p90, us", "rtt_p90", "%.0f"),
            ("KVM exits/frame, all (flood)", "exits_per_frame", "%.2f"),
            ("  net of idle", "net_exits_per_frame", "%.2f"),
            ("  to userspace, all", "uexits_per_frame", "%.2f"),
            ("  to userspace, net of idle", "net_uexits_per_frame", "%.2f"),
            ("KVM exits/round trip", "exits_per_rtt", "%.2f"),
            ("host CPU us/frame, all", "cpu_us_per_frame", "%.1f"),
            ("  net of idle", "net_cpu_us_per_frame", "%.1f"),
            ("flood duration, s", "flood_s", "%.2f"),
            ("idle VM: KVM exits/s", "idle_exits_per_s", "%.0f"),
            ("idle VM: CPU ms/s", "idle_cpu_ms_per_s", "%.1f"))
    ms = {}
    for name, key, spec in rows:
        v = {l: runs.measure(l, lambda r, key=key: r.get(key)) for l in labels}
        ms[key] = v
        print("%-30s %-30s %-30s %-30s %-22s %s" % (
            name, v["vireo"].cell(spec), v["qemu"].cell(spec), v["kvaser"].cell(spec),
            v["vireo"].over(v["qemu"]).cell(), v["kvaser"].over(v["qemu"]).cell()))
    if whole:
        print("vireo --stats-json, per frame the device moved over the VM's life (boot included; "
              "median of %d VMs): %s KVM exits summed over vCPUs; virtio-can0's own: %s MMIO "
              "exits, %s queue notifications, %s interrupts" % (
                  len(whole), fmt(median(w["exits"] for w in whole), "%.2f"),
                  fmt(median(w["dev_exits"] for w in whole), "%.4f"),
                  fmt(median(w["dev_queue_notifications"] for w in whole), "%.4f"),
                  fmt(median(w["dev_interrupts"] for w in whole), "%.4f")))
        print("vireo device counters of the last VM: %s" % json.dumps(
            {k: v for k, v in devices.items() if "can" in k}, sort_keys=True))
    print("ratio = vireo / qemu and kvaser / qemu (higher is better for frames/s, lower for the "
          "rest)")
    print()
    print(target_line("KVM exits/frame during the flood, every exit, vireo",
                      ms["exits_per_frame"]["vireo"], 2.0, "lower"))
    print(target_line("KVM exits/frame net of idle, qemu / vireo",
                      ms["net_exits_per_frame"]["qemu"].over(ms["net_exits_per_frame"]["vireo"]),
                      10.0, "higher", "%.1f"))
    # Issue 12: an emulated device needs no more exits per operation than
    # QEMU's emulation of the same device, and virtio 10x fewer than it.
    print(target_line("KVM exits/frame net of idle, qemu / kvaser (the same card)",
                      ms["net_exits_per_frame"]["qemu"].over(ms["net_exits_per_frame"]["kvaser"]),
                      1.0, "higher", "%.2f"))
    print(target_line("KVM exits/frame net of idle, kvaser / vireo (emulated / virtio)",
                      ms["net_exits_per_frame"]["kvaser"].over(ms["net_exits_per_frame"]["vireo"]),
                      10.0, "higher", "%.1f"))
    print(target_line("frames/s, vireo (a target for real hardware)", ms["fps"]["vireo"],
                      100000, "higher", "%.0f"))
    print(target_line("round trip median us, vireo (a target for real hardware)",
                      ms["rtt_median"]["vireo"], 50, "lower", "%.0f"))
    print(runs.counts_line())
    print(runs.failed_line())
    return 0


if __name__ == "__main__":
    sys.exit(main())
