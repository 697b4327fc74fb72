#!/usr/bin/env python3
"""The seed documents' comparison, reproduced: emulated real-hardware
devices against VirtIO, in Vireo and in QEMU 7.2 (KVM, and TCG: the seeds'
"pure QEMU"), on the same KVM (the nested host where this machine's own
cannot run Linux), the same kernel and tools image, configurations
alternating run by run, medians of several runs (bench/stats.py). Prints
the seeds' table beside the measured one, row by row, with the factor by
which each claim holds or not, the issue's targets, and draws the medians
as PNG charts (gnuplot).

  disk  PIIX3 IDE (Linux ata_piix, multiword DMA 2) against virtio-blk:
        vireo-ide, vireo-virtio, qemu-ide (-drive if=ide on QEMU's pc
        machine: a PIIX3 too), qemu-virtio (virtio-blk-pci), qemu-tcg-ide.
        fio in the guest, O_DIRECT on /dev/sda or /dev/vda: 4 KiB random
        reads at queue depth 1 (IOPS, completion latency median and p99)
        and 1 MiB sequential reads at depth 8 (MB/s). Every QEMU uses its
        defaults (aio=threads, no iothread) for both of its devices, so
        the two differ only in the device; the image is a raw file with
        cache=writeback (the nested host's tmpfs has no O_DIRECT).
  net   e1000 (Intel 82540EM, Linux e1000) against virtio-net, on a tap in
        the nested host: vireo-e1000, vireo-virtio, qemu-e1000,
        qemu-virtio (vhost=off: QEMU's own userspace device, as Vireo's),
        qemu-tcg-e1000. iperf3 TCP both ways, flat out and (KVM) paced at
        a fixed rate every configuration sustains (--paced-g2h, --paced-h2g:
        the same traffic per second, so exits per MB compare like for like;
        flat out, the one-vCPU guest either keeps up or polls, which sets
        its exits per MB: each run says which, see guest_polled), ping
        round trips (median, p99), and the VMM's CPU per MB less the
        guest's.
  can   QEMU's kvaser_pci (an SJA1000, Linux kvaser_pci + sja1000) under
        TCG and under KVM, Vireo's Kvaser card (--can ...,model=kvaser,
        when this build has it), and Vireo's virtio-can (our guest
        driver), all on vcan0 in the nested host: one frame's round trip
        through the guest (its kernel's cangw answers it; candump's kernel
        timestamps on vcan0: median and p99), floods of 8-byte frames both
        ways (frames/s; host -> guest counts what the guest received, an
        emulated controller's 64-byte FIFO drops the rest, said as a
        delivered fraction), host CPU per frame and the VMM process's CPU
        utilisation during the flood.

KVM exits per operation (request, MB, packet, frame), for every KVM
configuration from the same counters: KVM's debugfs for the VM (summed
over its vCPUs), all exits and those to userspace (the kvm_userspace_exit
trace event, counted per thread of the VMM process), across the
measurement, divided by the operations the guest counted meanwhile
(/sys/block/X/stat, the NIC's packet and byte counters, frames). TCG
has no KVM: no exits to count, said so in the tables.

--irq-spacing (net) also traces the NIC's interrupts in the guest (tracefs,
irq_handler_entry on the NIC's lines) during each iperf3 direction and
prints how many there were and the gaps between them by size: whether an
interrupt throttle (the e1000's ITR; QEMU's 128 us floor on it) could have
acted at all.

TCG inside the nested host is an emulator inside an emulator: its
workloads are kept tiny and its absolute figures are distorted far more
than the others (themselves those of a machine emulated by QEMU TCG:
only ratios carry over)."""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

from stats import LEGEND, Measure, Runs, target_line
import vmguest
from vmguest import (KERNEL, VIREO, BenchGuest, console_cost, delta, fio_counted, fio_numbers,
                     fmt, minus, reasons, reasons_text)
from vm import interrupt_counts

MIB = 1 << 20
HZ = os.sysconf("SC_CLK_TCK")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TCG_BOOT_TIMEOUT = 1800

# label: (kind, device, accel)
DISK = (("vireo-ide", "vireo", "ide", "kvm"),
        ("vireo-virtio", "vireo", "virtio", "kvm"),
        ("qemu-ide", "qemu", "ide", "kvm"),
        ("qemu-virtio", "qemu", "virtio", "kvm"),
        ("qemu-tcg-ide", "qemu", "ide", "tcg"))
NET = (("vireo-e1000", "vireo", "e1000", "kvm"),
       ("vireo-virtio", "vireo", "virtio", "kvm"),
       # virtio-net with the guest's ethtool -C (--coalesce): notification
       # coalescing, which QEMU 7.2's virtio-net does not have.
       ("vireo-virtio-coal", "vireo", "virtio-coal", "kvm"),
       ("qemu-e1000", "qemu", "e1000", "kvm"),
       ("qemu-virtio", "qemu", "virtio", "kvm"),
       ("qemu-tcg-e1000", "qemu", "e1000", "tcg"))
CAN = (("qemu-tcg-kvaser", "qemu", "kvaser", "tcg"),
       ("qemu-kvaser", "qemu", "kvaser", "kvm"),
       ("vireo-kvaser", "vireo", "kvaser", "kvm"),
       ("vireo-virtio", "vireo", "virtio", "kvm"))
SECTIONS = (("disk", DISK), ("net", NET), ("can", CAN))
# The pairs the targets and the seeds' ratios compare, per section:
# (emulated in vireo, emulated in QEMU KVM, VirtIO in vireo, VirtIO in QEMU).
PAIRS = {"disk": ("vireo-ide", "qemu-ide", "vireo-virtio", "qemu-virtio"),
         "net": ("vireo-e1000", "qemu-e1000", "vireo-virtio", "qemu-virtio"),
         "can": ("vireo-kvaser", "qemu-kvaser", "vireo-virtio", None)}


def per(k, keys, n):
    """Sum of counters keys in the delta k, per n operations (None when
    there is no KVM to count or nothing was done)."""
    if not k or not n:
        return None
    return sum(k.get(x, 0) for x in keys) / n


USER = ("user_exits",)  # bench/vmguest.py: returns to the VMM


def reasons_lines(label, res):
    """What --exit-reasons found in a run's results, one line per
    measurement."""
    return ["  %s %s, per %s: %s" % (label, name, r.get("per", "op"), reasons_text(r["reasons"]))
            for name, r in res.items() if isinstance(r, dict) and r.get("reasons")]


def percentile(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(len(xs) * p))] if xs else None


# ---------------------------------------------------------------- disk

def run_disk(config, img, args):
    kind, dev, accel = config
    tcg = accel == "tcg"
    g = BenchGuest(kind, disks=[(img, "writeback")], disk_if=dev, accel=accel,
                   boot_timeout=TCG_BOOT_TIMEOUT if tcg else None)
    bdev = "sda" if dev == "ide" else "vda"
    runtime = args.tcg_runtime if tcg else args.runtime
    res = {}
    try:
        if dev == "ide":
            res["xfer_mode"] = g.ok("cat /sys/class/ata_device/dev1.0/xfer_mode").strip()
        jobs = (("randread", "--rw=randread --bs=4k --iodepth=1"),
                ("seqread", "--rw=read --bs=1M --iodepth=8"))
        for name, opts in jobs:
            fio = ("fio --name=%s --filename=/dev/%s --direct=1 --ioengine=libaio --size=%dM "
                   "--runtime=%d --time_based --ramp_time=1 %s --lat_percentiles=1 --clat_percentiles=0 "
                   "--output-format=json --output=/tmp/%s.json" % (name, bdev, args.size, runtime, opts, name))
            reqs, k = fio_counted(g, bdev, fio, runtime * 60 + 300, 600 if tcg else 120)
            out = g.ok("awk '/^ *\"(read|write|trim|sync)\" : \\{/ { s = $1 } s == \"\\\"read\\\"\" && "
                       "/^ *\"(bw_bytes|iops|50\\.000000|99\\.000000)\" :/ { print $1, $3 }' "
                       "/tmp/%s.json" % name, 600 if tcg else 120)
            nums = fio_numbers(out)
            res[name] = {"mbps": nums["bw_bytes"] / 1e6, "iops": nums["iops"],
                         "mean_us": 1e6 / nums["iops"] if nums["iops"] else None,
                         "lat_us": nums.get("50.000000", 0) / 1e3 or None,
                         "p99_us": nums.get("99.000000", 0) / 1e3 or None,
                         "requests": reqs,
                         "exits": per(k, ("exits",), reqs), "uexits": per(k, USER, reqs),
                         "reasons": reasons(k, reqs), "per": "request"}
        g.poweroff(600 if tcg else 120)
    finally:
        g.close()
    return res


def disk_line(res):
    r, s = res["randread"], res["seqread"]
    return ("randread %6.0f IOPS p50 %s us %s exits/req (%s to user) | seqread %6.1f MB/s "
            "%s exits/req (%s)" % (r["iops"], fmt(r["lat_us"], "%.0f"), fmt(r["exits"], "%.2f"),
                                   fmt(r["uexits"], "%.2f"), s["mbps"], fmt(s["exits"], "%.2f"),
                                   fmt(s["uexits"], "%.2f")))


def prepare_disk(tmp, args):
    img = os.path.join(tmp, "disk.img")
    with open(img, "wb") as f:
        for _ in range(args.size):
            f.write(os.urandom(MIB))
        f.truncate((args.size + 64) * MIB)
    return (img,), None


# ---------------------------------------------------------------- net

NET_TAP = "vstap0"
NET_HOST, NET_GUEST = "192.168.102.1", "192.168.102.2"
NET_PORT = 5202
# The paced directions' names in a run's results: iperf3 -b at a fixed
# rate (--paced-g2h, --paced-h2g), below what every KVM configuration
# reaches flat out (guest -> host the e1000s' slow state: 6-37 Mbit/s), so
# that every configuration carries the same traffic per second and the
# guest never falls behind (guest_polled): exits per MB like for like.
PACED = {"guest->host": "paced guest->host", "host->guest": "paced host->guest"}


def run_net(config, args):
    kind, nic, accel = config
    tcg = accel == "tcg"
    coalesce = nic == "virtio-coal"
    if coalesce:
        nic = "virtio"
    # No IPv6 in the guest: when the link comes up its autoconfiguration
    # sends a few packets and rewrites the e1000's multicast table (128
    # register writes, each an exit) at a moment that depends on when the
    # VMM's link came up; it fell into Vireo's ping window and not QEMU's,
    # 4 exits per ping that were neither device's cost (found by tracing
    # every MMIO access by register, 2026-12-05). Everything measured here
    # is IPv4.
    g = BenchGuest(kind, tap=NET_TAP, nic=nic, accel=accel,
                   cmdline="vireo.net=%s/24 ipv6.disable=1" % NET_GUEST,
                   boot_timeout=TCG_BOOT_TIMEOUT if tcg else None)
    secs = args.tcg_time if tcg else args.time
    slow = 20 if tcg else 1
    res = {}
    try:
        res["driver"] = g.ok("basename $(readlink /sys/class/net/eth0/device/driver)").strip()
        g.ok("i=0; while [ $(cat /sys/class/net/eth0/carrier) != 1 ] && [ $i -lt 300 ]; do "
             "sleep 0.1; i=$((i+1)); done", 60 * slow)
        g.ok("ping -c 1 -W 10 %s > /dev/null || ping -c 1 -W 10 %s > /dev/null" % (
            NET_HOST, NET_HOST), 60 * slow)
        if coalesce:
            g.ok("ethtool -C eth0 %s" % args.coalesce)
        if args.irq_spacing:
            irq_trace_setup(g)
        stats = "/sys/class/net/eth0/statistics/"
        nic_cmd = "cat %srx_bytes %stx_bytes %srx_packets %stx_packets" % ((stats,) * 4)
        # The VM left idle at its prompt: its background exits and VMM CPU
        # per second (timers, the idle loop), to be taken off the paced
        # transfers', where they are a large share (at 5 Mbit/s a second
        # carries 0.6 MB).
        idle = idle_rates(g, args.idle_time)
        res["idle"] = idle

        # Round trips: ping, 0.2 s apart.
        pings = args.tcg_pings if tcg else args.pings
        # ping's output to a file: every byte on the serial console is an
        # exit (the 8250's data register), which would be counted.
        cmd = "%s > /tmp/n0; ping -c %d -i 0.2 -W 5 %s > /tmp/ping.txt; %s > /tmp/n1" % (
            nic_cmd, pings, NET_HOST, nic_cmd)
        base = console_cost(g, cmd, 60 * slow)
        before, tp = g.kvm_counters(), time.monotonic()
        g.ok(cmd, pings * 10 * slow + 60)
        after, tp = g.kvm_counters(), time.monotonic() - tp
        out = g.ok("cat /tmp/ping.txt")
        times = [float(w.split("=")[1]) * 1e3 for w in out.split() if w.startswith("time=")]
        k = minus(delta(after, before), base)
        res["ping"] = {"answered": len(times), "sent": pings,
                       "rtt_us": Measure(times).median, "p99_us": percentile(times, 0.99),
                       "exits_per_ping": per(k, ("exits",), len(times)), "seconds": tp,
                       "uexits_per_ping": per(k, USER, len(times)),
                       "reasons": reasons(k, len(times)), "per": "ping"}
        if k and times and "exits_per_s" in idle:
            res["ping"]["net_exits_per_ping"] = (k["exits"] - idle["exits_per_s"] * tp) / len(times)
        # Each direction flat out, then (KVM only) paced at a fixed rate
        # that every configuration sustains: the same work per second in
        # every VMM, for exits per MB like for like (see PACED).
        directions = [("guest->host", "", 0), ("host->guest", "-R", 0)]
        if not tcg:
            directions += [(PACED[d], flag, rate) for d, flag, rate in (
                ("guest->host", "", args.paced_g2h), ("host->guest", "-R", args.paced_h2g)) if rate]
        for name, flag, rate in directions:
            if rate:
                flag += " -b %dM" % rate
            cmd = "%s > /tmp/n0; iperf3 -c %s -p %d -t %d -O 1 %s -J > /tmp/ip.json; %s > /tmp/n1" % (
                nic_cmd, NET_HOST, NET_PORT, secs, flag, nic_cmd)
            if args.irq_spacing:
                ev = "%s/events/irq/irq_handler_entry/enable" % TRACEFS
                cmd = "echo > %s/trace; echo 1 > %s; %s; echo 0 > %s" % (TRACEFS, ev, cmd, ev)
            base = console_cost(g, cmd, 60 * slow)
            for attempt in range(3):
                # The guest's counters outside the window: ethtool -S
                # reads the e1000's statistics registers, an exit each.
                g.ok("%s > /tmp/s0" % NIC_STATS)
                before, cpu0, t0 = g.kvm_counters(), g.cpu_split(), time.monotonic()
                g.sh(cmd, secs * 10 * slow + 120)
                after, cpu1, t1 = g.kvm_counters(), g.cpu_split(), time.monotonic()
                g.ok("%s > /tmp/s1" % NIC_STATS)
                out = g.ok("awk '/\"sum_received\"/ { r = 1 } r && /\"bits_per_second\"/ "
                           "{ print $2; exit }' /tmp/ip.json", 60 * slow).strip()
                if out:
                    break
                # The server may still be closing the last test ("the
                # server is busy"): again, a little later.
                err = g.ok("grep '\"error\"' /tmp/ip.json || true").strip()
                print("  (%s: iperf3 %s: %s; again)" % (kind, name, err[:200]), flush=True)
                time.sleep(3)
            else:
                raise RuntimeError("iperf3 %s gave no result three times: %s" % (name, err[:300]))
            bps = float(out.rstrip(","))
            n = [int(x) for x in g.ok("cat /tmp/n0 /tmp/n1").split()]
            mb = (n[4] + n[5] - n[0] - n[1]) / 1e6
            packets = n[6] + n[7] - n[2] - n[3]
            k = minus(delta(after, before), base)
            res[name] = {"mbps": bps / 1e6, "mb": mb, "packets": packets,
                         "exits_per_mb": per(k, ("exits",), mb), "uexits_per_mb": per(k, USER, mb),
                         "exits_per_pkt": per(k, ("exits",), packets),
                         "uexits_per_pkt": per(k, USER, packets),
                         "reasons": reasons(k, mb), "per": "MB",
                         "vmm_ms_per_mb": (cpu1["vmm"] - cpu0["vmm"]) / HZ * 1e3 / mb,
                         "guest_ms_per_mb": (cpu1["guest"] - cpu0["guest"]) / HZ * 1e3 / mb,
                         "seconds": t1 - t0}
            net_of_idle(res[name], k, cpu1["vmm"] - cpu0["vmm"], idle)
            if args.irq_spacing:
                res[name]["irq_spacing"] = irq_gaps(g)
            ns = nic_stats(g.ok("cat /tmp/s0"), g.ok("cat /tmp/s1"))
            res[name]["polled"] = guest_polled(ns)
            if rate:
                res[name]["rate"] = rate
            if args.nic_stats:
                res[name]["nic_stats"] = ns
            if args.exit_reasons:
                # The NIC's interrupts by vector (virtio-net: receive and
                # transmit), to say which queue's they are.
                res[name]["reasons"].update((x, v / mb) for x, v in ns.items()
                                            if x.startswith("irq:"))
        g.poweroff(600 if tcg else 120)
    finally:
        g.close()
    return res


# --irq-spacing: the NIC's interrupts as the guest handles them, traced in
# the guest (tracefs, irq_handler_entry filtered on the NIC's lines: eth0's
# for the e1000, virtio-net's queue vectors), and the gaps between them
# counted by size: whether any interrupt throttle (the e1000's ITR, QEMU's
# 128 us floor on it) could have acted at all.
# The NIC's interrupt lines in /proc/interrupts, by their handlers' names:
# the e1000's one line (eth0) or virtio-net's queue vectors (virtioN-input.0,
# virtioN-output.0; not its config vector, nor other virtio devices').
# NIC_STATS (each run's interrupt count, and --exit-reasons' count per
# vector) and --irq-spacing's trace use it.
NIC_IRQ_LINES = "eth0|virtio[0-9]+-(input|output)"
TRACEFS = "/sys/kernel/tracing"
IRQ_GAP_BOUNDS_US = (64, 128, 256, 1000, 5000)
IRQ_GAPS_AWK = (
    "awk '/irq_handler_entry/ { for (i = 1; i <= NF; i++) if ($i ~ /^[0-9]+\\.[0-9]+:$/) "
    "{ t = substr($i, 1, length($i) - 1) + 0; break } "
    "if (n++) { d = (t - p) * 1e6; k = 0; "
    + "".join("if (d >= %d) k = %d; " % (b, i + 1) for i, b in enumerate(IRQ_GAP_BOUNDS_US))
    + "c[k]++ } p = t } END { printf \"IRQGAPS %d\", n; for (k = 0; k <= "
    + str(len(IRQ_GAP_BOUNDS_US))
    + "; k++) printf \" %d\", c[k]; print \"\" }' " + TRACEFS + "/trace")


def irq_trace_setup(g):
    """tracefs in the guest, its irq_handler_entry event filtered on the
    NIC's interrupt lines."""
    irqs = g.ok("awk '/%s/ { sub(\":\", \"\", $1); print $1 }' /proc/interrupts" %
                NIC_IRQ_LINES).split()
    if not irqs:
        raise RuntimeError("--irq-spacing: no NIC interrupt line in /proc/interrupts")
    g.ok("mount -t tracefs nodev %s 2>/dev/null; echo '%s' > %s/events/irq/irq_handler_entry/filter"
         " && echo 8192 > %s/buffer_size_kb" % (
             TRACEFS, " || ".join("irq == %s" % i for i in irqs), TRACEFS, TRACEFS))


def irq_gaps(g):
    """The traced interrupts' count and gaps by size (IRQ_GAP_BOUNDS_US)."""
    out = g.ok(IRQ_GAPS_AWK, 120)
    w = [l for l in out.splitlines() if l.startswith("IRQGAPS")][0].split()[1:]
    n, counts = int(w[0]), [int(x) for x in w[1:]]
    names = ["<%dus" % IRQ_GAP_BOUNDS_US[0]] + [
        "%d-%dus" % (a, b) for a, b in zip(IRQ_GAP_BOUNDS_US, IRQ_GAP_BOUNDS_US[1:])] + [
        ">=%dus" % IRQ_GAP_BOUNDS_US[-1]]
    return {"irqs": n, "gaps": dict(zip(names, counts))}


# What the guest's driver and network stack counted during each iperf3
# direction: the driver's own counters (ethtool -S: for the e1000,
# rx_no_buffer_count is the card finding the ring full), the NIC's
# interrupts, and the softirq's packets and budget exhaustions
# (/proc/net/softnet_stat, summed over CPUs). --nic-stats prints them all;
# every run says whether the guest polled (guest_polled).
NIC_STATS = ("{ ethtool -S eth0 | sed 's/^ *//'; "
             "grep -E '%s' /proc/interrupts | sed 's/^/irq /'; "
             "p=0; s=0; while read a b c r; do p=$((p + 0x$a)); s=$((s + 0x$c)); "
             "done < /proc/net/softnet_stat; "
             "echo softnet_processed: $p; echo softnet_time_squeeze: $s; }" % NIC_IRQ_LINES)


def nic_stats(before, after):
    """The counters that moved between two NIC_STATS outputs; the NIC's
    interrupts as "irq:" and the handler's name (eth0, virtio0-input.0)."""
    def parse(text):
        out, irqs = {}, []
        for line in text.splitlines():
            if line.startswith("irq "):
                irqs.append(line[4:])
                continue
            k, _, v = line.rpartition(":")
            if k and v.strip().isdigit():
                out[k.strip()] = int(v)
        out.update(("irq:" + name, n) for name, n in interrupt_counts("\n".join(irqs)).items())
        return out
    b, a = parse(before), parse(after)
    return {k: a[k] - b.get(k, 0) for k in a if a[k] != b.get(k, 0)}


def idle_rates(g, seconds):
    """KVM exits (all, and to userspace) and the VMM's CPU time (ms, not
    the guest's) per second of the VM idle at its prompt."""
    before, cpu0, t0 = g.kvm_counters(), g.cpu_split(), time.monotonic()
    time.sleep(seconds)
    after, cpu1, t1 = g.kvm_counters(), g.cpu_split(), time.monotonic()
    k, dt = delta(after, before), t1 - t0
    out = {"seconds": dt, "vmm_ms_per_s": (cpu1["vmm"] - cpu0["vmm"]) / HZ * 1e3 / dt}
    if k:
        out["exits_per_s"] = k["exits"] / dt
        out["uexits_per_s"] = k.get("user_exits", 0) / dt
    return out


def net_of_idle(r, k, vmm_ticks, idle):
    """A transfer's exits and VMM CPU per MB less what the idle VM makes in
    as long (idle_rates), into r."""
    dt, mb = r["seconds"], r["mb"]
    if not mb:
        return
    r["net_vmm_ms_per_mb"] = (vmm_ticks / HZ * 1e3 - idle["vmm_ms_per_s"] * dt) / mb
    if k and "exits_per_s" in idle:
        r["net_exits_per_mb"] = (k["exits"] - idle["exits_per_s"] * dt) / mb
        r["net_uexits_per_mb"] = (k.get("user_exits", 0) - idle["uexits_per_s"] * dt) / mb


def guest_polled(ns):
    """Whether the guest's receive ran polled rather than interrupt-driven
    in a transfer (nic_stats' counters). A flat-out TCP stream puts the
    one-vCPU guest in one of two states and keeps it there: either its
    softirq keeps up with the card, so NAPI completes and re-enables the
    card's interrupt after a few dozen frames (about 7 interrupts per MB
    host -> guest), or it does not, so every softirq run exhausts its
    budget (softnet_stat's time_squeeze), ksoftirqd polls on and the card
    interrupts a few times per second (about 2 per MB). Which one a run
    falls into depends on timing at its start, for either VMM (2026-12-07:
    Vireo's card and QEMU's both fell into each), and it sets the exits
    per MB: 81-85 polled, 131-140 on interrupts, alike for the two cards.
    Polled: time_squeeze at least half the NIC's interrupts (seen host ->
    guest: 0.74 to 1.23 polled, under 0.04 on interrupts; guest -> host,
    where the guest receives only ACKs, has no such clear split: 0.46 was
    seen)."""
    irqs = sum(v for k, v in ns.items() if k.startswith("irq:"))
    return irqs > 0 and 2 * ns.get("softnet_time_squeeze", 0) >= irqs


NET_DIRECTIONS = ("guest->host", "host->guest", PACED["guest->host"], PACED["host->guest"])


def net_line(res):
    p = res["ping"]
    dirs = [d for d in NET_DIRECTIONS if d in res]

    def one(d):
        r = res[d]
        return "%s%s %7.1f Mbit/s %s exits/MB (%s net of idle) %s exits/pkt%s, CPU/MB %s ms VMM %s ms guest" % (
            d, " at %d" % r["rate"] if r.get("rate") else "", r["mbps"],
            fmt(r["exits_per_mb"], "%.1f"), fmt(r.get("net_exits_per_mb"), "%.1f"),
            fmt(r["exits_per_pkt"], "%.2f"),
            " (guest polled)" if r.get("polled") else "", fmt(r.get("vmm_ms_per_mb"), "%.1f"),
            fmt(r.get("guest_ms_per_mb"), "%.1f"))
    line = "%-10s ping %s us (%d/%d in %.1fs) %s exits/ping; idle %s exits/s" % (
        res["driver"], fmt(p["rtt_us"], "%.0f"), p["answered"], p["sent"], p["seconds"],
        fmt(p["exits_per_ping"], "%.1f"), fmt(res.get("idle", {}).get("exits_per_s"), "%.0f"))
    for d in dirs:
        line += "\n    " + one(d)
    for d in dirs:
        sp = res[d].get("irq_spacing")
        if sp:
            line += "\n    %s: %d NIC interrupts, gaps %s" % (d, sp["irqs"], " ".join(
                "%s %d" % kv for kv in sp["gaps"].items()))
        ns = res[d].get("nic_stats")
        if ns:
            line += "\n    %s: %s" % (d, " ".join("%s %d" % kv for kv in sorted(ns.items())))
    return line


class NetHost:
    """The tap and an iperf3 server on its host side."""

    def __init__(self, tmp):
        import net as netbench
        subprocess.run(["ip", "link", "del", NET_TAP], capture_output=True)
        argv, env = netbench.host_iperf3(tmp)
        netbench.ip("tuntap", "add", "dev", NET_TAP, "mode", "tap")
        netbench.ip("addr", "add", NET_HOST + "/24", "dev", NET_TAP)
        netbench.ip("link", "set", NET_TAP, "up")
        self.server = subprocess.Popen(argv + ["-s", "-B", NET_HOST, "-p", str(NET_PORT)], env=env,
                                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        time.sleep(0.5)
        if self.server.poll() is not None:
            raise SystemExit("bench/seeds: iperf3 server: %s" % self.server.stderr.read().decode())

    def close(self):
        self.server.terminate()
        self.server.wait()
        subprocess.run(["ip", "link", "del", NET_TAP], capture_output=True)


def prepare_net(tmp, args):
    h = NetHost(tmp)
    return (), h.close


# ---------------------------------------------------------------- can

def kvaser_available():
    """Whether this vireo accepts --can ...,model=kvaser (the option is
    parsed before anything is opened: an unknown key is refused at once)."""
    try:
        r = subprocess.run([VIREO, "--kernel", KERNEL, "--can", "socketcan=vireo-none0,model=kvaser"],
                           capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return not ("unknown key 'model'" in r.stderr or "model must be" in r.stderr)


RX_ID = 0x124


def run_can(config, initrd, mods, args, tmp):
    import can as canbench
    kind, model, accel = config
    tcg = accel == "tcg"
    slow = 20 if tcg else 1
    frames = args.tcg_frames if tcg else args.frames
    pings = args.tcg_can_pings if tcg else args.can_pings
    g = canbench.CanGuest(kind, model, initrd, accel=accel,
                          boot_timeout=TCG_BOOT_TIMEOUT if tcg else None)
    hz = os.sysconf("SC_CLK_TCK")
    res = {}
    try:
        res["driver"] = canbench.can0_up(g, model, mods, 60 * slow)

        # Round trips through the guest's kernel (cangw).
        answered, rtt, k = canbench.round_trip_run(g, os.path.join(tmp, "ping-%s.log" % kind),
                                                   pings, timeout=5.0 if tcg else 1.0)
        res["answered"], res["pings"] = answered, pings
        res["rtt_us"] = Measure(rtt).median
        res["rtt_p99_us"] = percentile(rtt, 0.99)
        res["exits_per_rtt"] = per(k, ("exits",), answered)

        # Guest -> host flood.
        f = canbench.flood(g, os.path.join(tmp, "flood-%s.log" % kind), frames,
                           frames // 10 * slow + 300, 300 if tcg else 120, idle_max=30.0,
                           cost=lambda cmd: console_cost(g, cmd, 60 * slow))
        res["tx"] = {"frames": frames, "received": f["received"], "flood_s": f["flood_s"],
                     "fps": f["fps"], "cpu_pct": f["cpu_pct"], "idle_cpu_pct": f["idle_cpu_pct"],
                     "cpu_us_per_frame": f["cpu_us_per_frame"],
                     "net_cpu_us_per_frame": f["net_cpu_us_per_frame"],
                     "exits": f.get("exits_per_frame"), "uexits": f.get("uexits_per_frame")}
        if "net_exits_per_frame" in f:
            res["tx"]["net_exits"] = f["net_exits_per_frame"]
            res["tx"]["idle_exits_per_s"] = f["idle_exits_per_s"]

        # Host -> guest flood: what the guest's candump received, and when.
        g.detach("candump -L -r 16000000 can0,%X:7FF > /tmp/rx.log 2>&1" % RX_ID)
        time.sleep(2 * slow)
        before, cpu0 = g.kvm_counters(), g.cpu_ticks()
        # With local loopback (no -x): on vcan0 the VMM's socket sees
        # only what the interface loops back.
        canbench.run([canbench.tool("cangen"), canbench.VCAN, "-g", "0", "-p", "10", "-n",
                      str(frames), "-I", "%X" % RX_ID, "-L", "8", "-D", "i"])
        # Until the guest's count stops growing; the measurement ends
        # where the poll that first saw the final count began (the polls'
        # own console traffic before it is counted: at most a few).
        time.sleep(1 * slow)
        last, n, mark = -1, 0, None
        deadline = time.monotonic() + 120 * slow
        while time.monotonic() < deadline:
            now = (g.kvm_counters(), g.cpu_ticks(), time.monotonic())
            n = int(g.ok("wc -l < /tmp/rx.log").strip() or 0)
            if n != last:
                mark = now
            if n == last or n >= frames:
                break
            last = n
            time.sleep(1 * slow)
        after, cpu1, t1 = mark
        g.ok("kill $(pidof candump); true")
        out = g.ok("awk 'NR == 1 { f = $1 } { l = $1 } END { print NR, f, l }' /tmp/rx.log").split()
        n = int(out[0])
        span = float(out[2].strip("()")) - float(out[1].strip("()")) if n > 1 else 0
        k = delta(after, before)
        res["rx"] = {"frames": frames, "received": n,
                     "fps": (n - 1) / span if span > 0 else None,
                     "delivered": n / frames,
                     "exits": per(k, ("exits",), n), "uexits": per(k, USER, n),
                     "cpu_us_per_frame": (cpu1 - cpu0) / hz * 1e6 / n if n else None}
        g.poweroff(600 if tcg else 120)
    finally:
        g.close()
    return res


def can_line(res):
    t, r = res["tx"], res["rx"]
    return ("%-10s rtt %s us (%d/%d, p99 %s) | tx %s frames/s %d/%d %s exits/frame CPU %.0f %% "
            "%s us/frame | rx %s frames/s %d/%d %s exits/frame" % (
                res["driver"], fmt(res["rtt_us"], "%.0f"), res["answered"], res["pings"],
                fmt(res["rtt_p99_us"], "%.0f"), fmt(t["fps"], "%.0f"), t["received"], t["frames"],
                fmt(t["exits"], "%.2f"), t["cpu_pct"], fmt(t["cpu_us_per_frame"], "%.1f"),
                fmt(r["fps"], "%.0f"), r["received"], r["frames"], fmt(r["exits"], "%.2f")))


def prepare_can(tmp, args):
    import can as canbench
    canbench.vcan_add()
    initrd, mods = canbench.make_initrd(tmp)
    return (initrd, mods), canbench.vcan_del


# ---------------------------------------------------------------- report

def num(x):
    return "{:,.0f}".format(x) if x >= 1000 else "%.3g" % x


def rng(lo, hi):
    return num(lo) + "-" + num(hi)


def against(value, lo, hi, better):
    """How a measured value stands against a claimed range lo..hi:
    inside, or by what factor beyond it (better: "lower" or "higher" is
    the good direction for the quantity)."""
    if value is None:
        return "no data"
    if value <= 0:
        return "none measurable (nothing left once the console's share is taken off)"
    if lo <= value <= hi:
        return "within the claim"
    if value > hi:
        f = value / hi
        return "%.3gx above the claim's top (%s)" % (f, "worse" if better == "lower" else "better")
    f = lo / value if value else float("inf")
    return "%.3gx below the claim's bottom (%s)" % (f, "better" if better == "lower" else "worse")


class Report:
    def __init__(self, runs, only, unavailable=None):
        self.runs, self.only = runs, only
        self.unavailable = unavailable or {}

    def m(self, section, label, key):
        if section not in self.runs or label not in self.runs[section].labels:
            return Measure([])
        return self.runs[section].measure(label, key)

    def claim(self, what, unit, section, emul, virt, key, elo, ehi, vlo, vhi, better, spec, note=""):
        """One row of the seeds' table: the claim for emulated and VirtIO,
        each configuration's measured figure, and how the claims and
        their ratio stand."""
        print("%s (%s)" % (what, unit))
        print("  seeds: emulated %s, VirtIO %s; ratio %s %s" % (
            rng(elo, ehi), rng(vlo, vhi), "emulated/VirtIO" if better == "lower" else "VirtIO/emulated",
            rng(*sorted((elo / vhi, ehi / vlo) if better == "lower" else (vlo / ehi, vhi / elo)))))
        configs = [c[0] for c in dict(SECTIONS)[section]]
        for label in configs:
            v = self.m(section, label, key)
            if label in emul:
                lo, hi, side = elo, ehi, "emulated"
            else:
                lo, hi, side = vlo, vhi, "VirtIO"
            if (section, label) in self.unavailable:
                print("    %-16s %s" % (label, self.unavailable[section, label]))
                continue
            print("    %-16s %-34s %-9s %s" % (label, v.cell(spec) if v.n or v.failed else "not measured",
                                              side, against(v.median, lo, hi, better)
                                              if v.n or "-tcg-" not in label or "exits" not in what
                                              else "no KVM under TCG"))
        for e in emul:
            for vv in virt:
                # Like with like: the same VMM (CAN: QEMU has no virtio-can,
                # so its emulated controller is set against Vireo's).
                if section != "can" and e.split("-")[0] != vv.split("-")[0]:
                    continue
                a, b = self.m(section, e, key), self.m(section, vv, key)
                if not (a.n and b.n):
                    continue
                r = a.over(b) if better == "lower" else b.over(a)
                claim_lo, claim_hi = ((elo / vhi, ehi / vlo) if better == "lower" else (vlo / ehi, vhi / elo))
                print("    ratio %s/%s %s: %s" % (
                    e if better == "lower" else vv, vv if better == "lower" else e, r.cell("%.1f"),
                    against(r.median, claim_lo, claim_hi, "higher")))
        if note:
            print("  " + note)


def guarded(fn):
    """fn, with a bad answer from a guest tool (a field missing from its
    output) made a failed run rather than the end of the benchmark."""
    def call(*a):
        try:
            return fn(*a)
        except (ValueError, KeyError, IndexError, TypeError, ZeroDivisionError) as e:
            raise RuntimeError("%s: %s" % (type(e).__name__, e)) from e
    return call


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=int(os.environ.get("BENCH_RUNS", "3")))
    ap.add_argument("--only", default="", help="comma-separated sections (disk, net, can) and/or "
                    "configurations (e.g. disk:vireo-ide, can:qemu-kvaser); default: all")
    ap.add_argument("--quick", action="store_true",
                    help="a smoke run: 1 run each, short workloads (proves the bench works; "
                    "its figures settle nothing)")
    ap.add_argument("--no-tcg", action="store_true", help="leave out the QEMU TCG configurations")
    ap.add_argument("--runtime", type=int, default=5, help="seconds per fio job (KVM)")
    ap.add_argument("--tcg-runtime", type=int, default=3, help="seconds per fio job (TCG)")
    ap.add_argument("--size", type=int, default=256, help="MiB of the disk that fio uses")
    ap.add_argument("--time", type=int, default=5, help="seconds per iperf3 direction (KVM)")
    ap.add_argument("--tcg-time", type=int, default=3, help="seconds per iperf3 direction (TCG)")
    ap.add_argument("--pings", type=int, default=50, help="pings per VM (KVM)")
    ap.add_argument("--tcg-pings", type=int, default=10)
    ap.add_argument("--frames", type=int, default=10000, help="CAN frames per flood (KVM)")
    ap.add_argument("--tcg-frames", type=int, default=300)
    ap.add_argument("--can-pings", type=int, default=300, help="CAN round trips per VM (KVM)")
    ap.add_argument("--tcg-can-pings", type=int, default=30)
    ap.add_argument("--coalesce", default="rx-usecs 200 rx-frames 32 tx-usecs 200 tx-frames 32",
                    help="the guest's ethtool -C settings for vireo-virtio-coal (default: "
                    "%(default)s)")
    ap.add_argument("--exit-reasons", action="store_true",
                    help="also break every KVM exit count down by exit reason and MSR (trace "
                    "histograms: a little slower, for finding what an exit count is made of)")
    ap.add_argument("--irq-spacing", action="store_true",
                    help="net: also trace the NIC's interrupts in the guest and count the gaps "
                    "between them by size (could an interrupt throttle have acted?)")
    ap.add_argument("--paced-g2h", type=int, default=5, metavar="MBIT",
                    help="net: the paced guest -> host transfer's rate (KVM; 0: none)")
    ap.add_argument("--paced-h2g", type=int, default=100, metavar="MBIT",
                    help="net: the paced host -> guest transfer's rate (KVM; 0: none)")
    ap.add_argument("--idle-time", type=float, default=5, metavar="S",
                    help="net: seconds the VM is left idle to measure its background exits")
    ap.add_argument("--nic-stats", action="store_true",
                    help="net: also print what the guest counted per iperf3 direction (its "
                    "driver's ethtool -S, the NIC's interrupts, softnet_stat)")
    ap.add_argument("--charts", default=os.path.join(ROOT, "bench", "results"),
                    help="directory for the PNG charts and seeds.json")
    args = ap.parse_args()
    vmguest.EXIT_REASONS = args.exit_reasons
    if args.quick:
        args.runs = 1
        args.runtime, args.tcg_runtime, args.size = 2, 2, 64
        args.time, args.tcg_time, args.pings, args.tcg_pings = 2, 2, 10, 5
        args.idle_time = 2
        args.frames, args.tcg_frames, args.can_pings, args.tcg_can_pings = 2000, 100, 50, 10
    if os.geteuid() != 0:
        raise SystemExit("bench/seeds: needs root (tap, vcan)")
    only = [x for x in args.only.split(",") if x]
    known = {s for s, _ in SECTIONS} | {"%s:%s" % (s, c[0]) for s, cs in SECTIONS for c in cs}
    for x in only:
        if x not in known:
            raise SystemExit("bench/seeds: --only %s: not one of %s" % (x, ", ".join(sorted(known))))

    def wanted(section, label):
        if args.no_tcg and "-tcg-" in label:
            return False
        return not only or section in only or "%s:%s" % (section, label) in only

    kvaser = kvaser_available()
    where = "inside the nested host" if os.environ.get("VIREO_NESTED") else "on this host's KVM"
    load0 = open("/proc/loadavg").read().split()[:3]
    runs, unavailable = {}, {}
    funcs = {"disk": (prepare_disk, run_disk, disk_line),
             "net": (prepare_net, run_net, net_line),
             "can": (prepare_can, run_can, can_line)}
    tmp = tempfile.mkdtemp()
    try:
        for section, configs in SECTIONS:
            todo = [c for c in configs if wanted(section, c[0])]
            if not todo:
                continue
            if section == "can" and not kvaser:
                for c in todo:
                    if c[0] == "vireo-kvaser":
                        unavailable[section, c[0]] = "not available in this build (vireo refuses " \
                                                     "--can ...,model=kvaser)"
                todo = [c for c in todo if c[0] != "vireo-kvaser"]
            prepare, run, line = funcs[section]
            extra, cleanup = prepare(tmp, args)
            r = runs[section] = Runs([c[0] for c in configs])
            try:
                for i in range(args.runs):
                    order = todo if i % 2 == 0 else list(reversed(todo))
                    for label, *config in order:
                        t0 = time.monotonic()
                        res = r.attempt(i + 1, label, guarded(run), config, *extra, args,
                                        *((tmp,) if section == "can" else ()))
                        if res is None:
                            continue
                        if section == "can" and (res["tx"]["received"] != res["tx"]["frames"] or
                                                 res["answered"] != res["pings"]):
                            r.fail(i + 1, label, "host received %d of %d flood frames; %d of %d round "
                                   "trips answered" % (res["tx"]["received"], res["tx"]["frames"],
                                                       res["answered"], res["pings"]))
                            continue
                        r.add(i + 1, label, res)
                        print("%s run %d %-16s %s [%.0fs]" % (section, i + 1, label, line(res),
                                                              time.monotonic() - t0), flush=True)
                        for text in reasons_lines(label, res):
                            print(text, flush=True)
            finally:
                if cleanup:
                    cleanup()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    load1 = open("/proc/loadavg").read().split()[:3]

    print()
    print("bench/seeds: %d run%s per configuration%s, %s (load average %s before, %s after)" % (
        args.runs, "" if args.runs == 1 else "s", " (--quick: a smoke run, short workloads)"
        if args.quick else "", where, " ".join(load0), " ".join(load1)))
    print(LEGEND)
    print("Where this runs: %s. Every VM is an emulated machine's guest (the nested host is QEMU "
          "TCG with nested SVM): absolute times and rates are several times those of real "
          "hardware; exits per operation and ratios between configurations carry over. QEMU TCG "
          "runs inside that emulation (TCG in TCG), so its absolute figures are distorted far "
          "more, and it has no KVM exits to count (shown as '-')." % where)
    rep = Report(runs, only, unavailable)
    tables(rep, args, unavailable)
    seeds_table(rep)
    targets(rep, args)
    for section in runs:
        print(runs[section].counts_line().replace("runs per", "%s: runs per" % section))
        print(runs[section].failed_line().replace("runs that", "%s: runs that" % section))
    for (section, label), why in unavailable.items():
        print("%s: %s: %s" % (section, label, why))
    charts(rep, args, unavailable)
    return 0


def table(rep, section, rows, unavailable):
    labels = [c[0] for c in dict(SECTIONS)[section]]
    print()
    print("%-34s %s" % (section, "  ".join("%-26s" % l for l in labels)))
    for what, key, spec in rows:
        cells = []
        for l in labels:
            if (section, l) in unavailable:
                cells.append("not available")
                continue
            v = rep.m(section, l, key)
            if spec == "of n":  # a yes/no per run: how many of the runs
                cells.append("%d of %d" % (sum(v.values), v.n) if v.n else "-")
                continue
            cells.append(v.cell(spec) if (v.n or v.failed) else "-")
        print("%-34s %s" % (what, "  ".join("%-26s" % c for c in cells)))


def g(*path):
    """A key function reaching into a run's result."""
    def key(r):
        for p in path:
            if r is None:
                return None
            r = r.get(p)
        return r
    return key


def polled(direction):
    """A key function: 1 if the guest polled in that direction
    (guest_polled), 0 if not, None if not measured."""
    def key(r):
        d = (r or {}).get(direction) or {}
        return None if "polled" not in d else int(d["polled"])
    return key


def tables(rep, args, unavailable):
    if "disk" in rep.runs:
        table(rep, "disk", (
            ("4K random read (QD1), IOPS", g("randread", "iops"), "%.0f"),
            ("  mean latency (1/IOPS), us", g("randread", "mean_us"), "%.0f"),
            ("  latency p50, us", g("randread", "lat_us"), "%.0f"),
            ("  latency p99, us", g("randread", "p99_us"), "%.0f"),
            ("  KVM exits/request", g("randread", "exits"), "%.2f"),
            ("    of which to userspace", g("randread", "uexits"), "%.2f"),
            ("1M sequential read (QD8), MB/s", g("seqread", "mbps"), "%.1f"),
            ("  KVM exits/request", g("seqread", "exits"), "%.2f"),
            ("    of which to userspace", g("seqread", "uexits"), "%.2f")), unavailable)
    if "net" in rep.runs:
        table(rep, "net", (
            ("ping round trip p50, us", g("ping", "rtt_us"), "%.0f"),
            ("ping round trip p99, us", g("ping", "p99_us"), "%.0f"),
            ("  KVM exits/ping", g("ping", "exits_per_ping"), "%.1f"),
            ("    net of the idle VM", g("ping", "net_exits_per_ping"), "%.1f"),
            ("TCP guest->host, Mbit/s", g("guest->host", "mbps"), "%.0f"),
            ("  KVM exits/MB", g("guest->host", "exits_per_mb"), "%.1f"),
            ("    of which to userspace", g("guest->host", "uexits_per_mb"), "%.1f"),
            ("  KVM exits/packet", g("guest->host", "exits_per_pkt"), "%.2f"),
            ("  VMM CPU/MB, ms (not the guest's)", g("guest->host", "vmm_ms_per_mb"), "%.1f"),
            ("  runs with the guest polling", polled("guest->host"), "of n"),
            ("TCP host->guest, Mbit/s", g("host->guest", "mbps"), "%.0f"),
            ("  KVM exits/MB", g("host->guest", "exits_per_mb"), "%.1f"),
            ("    of which to userspace", g("host->guest", "uexits_per_mb"), "%.1f"),
            ("  KVM exits/packet", g("host->guest", "exits_per_pkt"), "%.2f"),
            ("  VMM CPU/MB, ms (not the guest's)", g("host->guest", "vmm_ms_per_mb"), "%.1f"),
            ("  runs with the guest polling", polled("host->guest"), "of n"),
            ("TCP guest->host at %d Mbit/s" % args.paced_g2h, g(PACED["guest->host"], "mbps"), "%.1f"),
            ("  KVM exits/MB", g(PACED["guest->host"], "exits_per_mb"), "%.1f"),
            ("    net of the idle VM", g(PACED["guest->host"], "net_exits_per_mb"), "%.1f"),
            ("    to userspace, net of idle", g(PACED["guest->host"], "net_uexits_per_mb"), "%.1f"),
            ("  VMM CPU/MB net of idle, ms", g(PACED["guest->host"], "net_vmm_ms_per_mb"), "%.1f"),
            ("TCP host->guest at %d Mbit/s" % args.paced_h2g, g(PACED["host->guest"], "mbps"), "%.1f"),
            ("  KVM exits/MB", g(PACED["host->guest"], "exits_per_mb"), "%.1f"),
            ("    net of the idle VM", g(PACED["host->guest"], "net_exits_per_mb"), "%.1f"),
            ("    to userspace, net of idle", g(PACED["host->guest"], "net_uexits_per_mb"), "%.1f"),
            ("  VMM CPU/MB net of idle, ms", g(PACED["host->guest"], "net_vmm_ms_per_mb"), "%.1f"),
            ("  runs with the guest polling", polled(PACED["host->guest"]), "of n"),
            ("idle VM: KVM exits/s", g("idle", "exits_per_s"), "%.0f"),
            ("idle VM: VMM CPU, ms/s", g("idle", "vmm_ms_per_s"), "%.1f")), unavailable)
    if "can" in rep.runs:
        table(rep, "can", (
            ("round trip p50, us", g("rtt_us"), "%.0f"),
            ("round trip p99, us", g("rtt_p99_us"), "%.0f"),
            ("  KVM exits/round trip", g("exits_per_rtt"), "%.1f"),
            ("guest->host frames/s", g("tx", "fps"), "%.0f"),
            ("  KVM exits/frame", g("tx", "exits"), "%.2f"),
            ("    net of the idle VM", g("tx", "net_exits"), "%.2f"),
            ("    to userspace", g("tx", "uexits"), "%.2f"),
            ("  VMM CPU during flood, % of a CPU", g("tx", "cpu_pct"), "%.0f"),
            ("  host CPU/frame, us", g("tx", "cpu_us_per_frame"), "%.1f"),
            ("    net of the idle VM", g("tx", "net_cpu_us_per_frame"), "%.1f"),
            ("host->guest frames/s received", g("rx", "fps"), "%.0f"),
            ("  delivered fraction", g("rx", "delivered"), "%.3f"),
            ("  KVM exits/frame received", g("rx", "exits"), "%.2f"),
            ("idle VM: CPU %", g("tx", "idle_cpu_pct"), "%.1f"),
            ("idle VM: KVM exits/s", g("tx", "idle_exits_per_s"), "%.0f")), unavailable)


def seeds_table(rep):
    print()
    print("The seeds' claims beside the measured figures (medians). 'ratio' rows compare like with "
          "like in one VMM and carry over to real hardware; absolute rows do not (see above).")
    if "can" in rep.runs:
        emul = ("qemu-tcg-kvaser", "qemu-kvaser", "vireo-kvaser")
        virt = ("vireo-virtio",)
        print()
        rep.claim("CAN send latency: one frame's round trip through the guest, p50", "us", "can",
                  emul, virt, g("rtt_us"), 500, 1000, 10, 50, "lower", "%.0f",
                  "(the seeds' figure is one way; a round trip crosses the device twice, so the "
                  "claim is generous to it)")
        rep.claim("CAN frames per second, guest -> host flood", "frames/s", "can", emul, virt,
                  g("tx", "fps"), 1000, 5000, 100000, 500000, "higher", "%.0f")
        rep.claim("CAN KVM exits per frame (guest -> host flood, all exits)", "exits", "can", emul,
                  virt, g("tx", "exits"), 20, 30, 1, 2, "lower", "%.2f",
                  "(TCG: no KVM, so '-')")
        rep.claim("CAN VMM CPU utilisation during the flood", "%", "can", emul, virt,
                  g("tx", "cpu_pct"), 80, 100, 5, 15, "lower", "%.0f",
                  "(the VMM process, all its threads, in % of one CPU, at each configuration's own "
                  "flood rate: per frame, see host CPU/frame above)")
    for section, what, opkey in (("disk", "disk KVM exits per request, 4K random read", ("randread", "exits")),
                                  ("disk", "disk KVM exits to userspace (the VMM) per request, 4K random read",
                                   ("randread", "uexits")),
                                  ("disk", "disk KVM exits per request, 1M sequential read", ("seqread", "exits")),
                                  ("net", "network KVM exits per packet, TCP guest -> host", ("guest->host", "exits_per_pkt")),
                                  ("net", "network KVM exits to userspace per packet, TCP guest -> host",
                                   ("guest->host", "uexits_per_pkt")),
                                  ("net", "network KVM exits per packet, TCP host -> guest", ("host->guest", "exits_per_pkt")),
                                  ("net", "network KVM exits per ping (a request and its reply)",
                                   ("ping", "exits_per_ping"))):
        if section not in rep.runs:
            continue
        e1, e2, v1, v2 = PAIRS[section]
        emul = [c[0] for c in dict(SECTIONS)[section] if "virtio" not in c[0]]
        print()
        rep.claim(what, "exits", section, emul, (v1, v2), g(*opkey), 24, 99, 1, 2, "lower", "%.2f",
                  "(the seeds say 'dozens' for emulated devices, read here as 24-99, and '1-2' for "
                  "VirtIO; TCG: no KVM)")


def targets(rep, args):
    print()
    ops = {"disk": (("4K random read, exits/request", g("randread", "exits")),
                    ("1M sequential read, exits/request", g("seqread", "exits"))),
           "net": (("TCP guest->host, exits/MB", g("guest->host", "exits_per_mb")),
                   ("TCP host->guest, exits/MB", g("host->guest", "exits_per_mb")),
                   ("TCP guest->host at %d Mbit/s, exits/MB net of the idle VM" % args.paced_g2h,
                    g(PACED["guest->host"], "net_exits_per_mb")),
                   ("TCP host->guest at %d Mbit/s, exits/MB net of the idle VM" % args.paced_h2g,
                    g(PACED["host->guest"], "net_exits_per_mb"))),
           "can": (("guest->host flood, exits/frame", g("tx", "exits")),
                   ("round trip, exits/round trip", g("exits_per_rtt")))}
    for section in ("disk", "net", "can"):
        if section not in rep.runs:
            continue
        ve, qe, vv, _ = PAIRS[section]
        for what, key in ops[section]:
            if (section, ve) in rep.unavailable:
                print("target %s %s: %s: %s (its targets are not measured)" % (
                    section, what, ve, rep.unavailable[section, ve]))
                continue
            a, b = rep.m(section, ve, key), rep.m(section, qe, key)
            print(target_line("%s %s: %s / %s (no more exits than QEMU's emulation)" % (
                section, what, ve, qe), a.over(b), 1.0, "lower"))
            if section == "net" and " at " not in what:
                print(polled_split(rep, what, ve, qe, key))
            print(target_line("%s %s: %s / %s (VirtIO >= 10x fewer exits)" % (
                section, what, ve, vv), a.over(rep.m(section, vv, key)), 10.0, "higher", "%.1f"))
            if section == "net" and rep.m(section, "vireo-virtio-coal", key).n:
                print(target_line("%s %s: %s / %s (the same, the guest's ethtool -C coalescing)" % (
                    section, what, ve, "vireo-virtio-coal"),
                    a.over(rep.m(section, "vireo-virtio-coal", key)), 10.0, "higher", "%.1f"))


def polled_split(rep, what, ve, qe, key):
    """A flat-out direction's exits per MB, the two emulated cards' runs
    split by the guest's state (guest_polled): like with like where the
    two cards' runs fell into the same one."""
    direction = what.split(",")[0].split()[-1]
    parts = []
    for state, want in (("guest polling", 1), ("on interrupts", 0)):
        ms = []
        for label in (ve, qe):
            runs = rep.runs["net"].ok[label]
            ms.append(Measure([key(r) for r in runs if polled(direction)(r) == want]))
        cells = " against ".join("%s %s" % (l, m.cell("%.1f") if m.n else "no run")
                                 for l, m in zip((ve, qe), ms))
        ratio = " (%s)" % ms[0].over(ms[1]).cell() if ms[0].n and ms[1].n else ""
        parts.append("%s: %s%s" % (state, cells, ratio))
    return "  %s, by the guest's state: %s" % (what, "; ".join(parts))


def charts(rep, args, unavailable):
    """PNG bar charts of the medians (gnuplot), and the medians as JSON,
    into args.charts."""
    os.makedirs(args.charts, exist_ok=True)
    data = {}
    panels = {
        "disk": (("KVM exits per 4K random read", g("randread", "exits"), True),
                 ("4K random read IOPS (QD1)", g("randread", "iops"), False),
                 ("1M sequential read MB/s", g("seqread", "mbps"), False)),
        "net": (("KVM exits per packet, guest->host", g("guest->host", "exits_per_pkt"), True),
                ("KVM exits per MB, host->guest", g("host->guest", "exits_per_mb"), True),
                ("KVM exits per MB net of idle, guest->host at %d Mbit/s" % args.paced_g2h,
                 g(PACED["guest->host"], "net_exits_per_mb"), True),
                ("KVM exits per MB net of idle, host->guest at %d Mbit/s" % args.paced_h2g,
                 g(PACED["host->guest"], "net_exits_per_mb"), True),
                ("TCP guest->host Mbit/s", g("guest->host", "mbps"), False),
                ("ping round trip p50, us", g("ping", "rtt_us"), False)),
        "can": (("KVM exits per frame (flood)", g("tx", "exits"), True),
                ("guest->host frames/s", g("tx", "fps"), True),
                ("round trip p50, us", g("rtt_us"), True),
                ("host CPU us per frame", g("tx", "cpu_us_per_frame"), True))}
    gp = shutil.which("gnuplot")
    for section in rep.runs:
        labels = [c[0] for c in dict(SECTIONS)[section]]
        data[section] = {}
        script = ["set terminal pngcairo size 1200,%d font 'sans,9'" % (330 * ((len(panels[section]) + 1) // 2)),
                  "set output '%s'" % os.path.join(args.charts, "seeds-%s.png" % section),
                  "set multiplot layout %d,2 title 'bench/seeds %s: %s, %s (red: emulated device, green: VirtIO)' noenhanced" % (
                      (len(panels[section]) + 1) // 2, section, time.strftime("%Y-%m-%d"),
                      "smoke run (--quick), not results" if args.quick else
                      "medians of %d runs" % args.runs),
                  "set style fill solid 0.6 border -1", "set boxwidth 0.6", "set grid y",
                  "set xtics rotate by -20 noenhanced", "unset key", "set yrange [0:*]"]
        script.append("set xtics (%s)" % ", ".join('"%s" %d' % (l, i) for i, l in enumerate(labels)))
        for title, key, log in panels[section]:
            rows, missing = [], []
            for i, l in enumerate(labels):
                v = rep.m(section, l, key)
                data[section].setdefault(l, {})[title] = {"median": v.median, "min": v.lo,
                                                          "max": v.hi, "n": v.n, "failed": v.failed}
                if v.median:
                    # Colour: 1 emulated device, 2 VirtIO.
                    rows.append("%d %s %g %g %g %d" % (i, l, v.median, v.lo, v.hi,
                                                       2 if "virtio" in l else 1))
                else:
                    missing.append((i, "not available" if (section, l) in unavailable else
                                    "no KVM (TCG)" if "-tcg-" in l and "exits" in title else "no data"))
            if not rows:
                continue
            script.append("unset label")
            for i, why in missing:
                script.append("set label '%s' at %d, graph 0.06 center noenhanced" % (why, i))
            dat = os.path.join(args.charts, ".seeds-%s-%d.dat" % (section, len(script)))
            with open(dat, "w") as f:
                f.write("\n".join(rows) + "\n")
            script += ["set title '%s%s' noenhanced" % (title, " (log scale)" if log else ""),
                       "set logscale y" if log else "unset logscale y",
                       "set yrange [%s:*]" % ("*" if log else "0"),
                       "set xrange [-0.5:%g]" % (len(labels) - 0.5),
                       "plot '%s' using 1:3:($6 == 1 ? 0xd9534f : 0x5cb85c) with boxes lc rgb variable, "
                       "'' using 1:3:4:5 with yerrorbars lc rgb 'black' pt 0" % dat]
        script.append("unset multiplot")
        if gp:
            r = subprocess.run([gp], input="\n".join(script) + "\n", capture_output=True, text=True)
            if r.returncode:
                print("bench/seeds: gnuplot (%s): %s" % (section, r.stderr.strip()[-400:]))
            else:
                print("chart: %s" % os.path.join(args.charts, "seeds-%s.png" % section))
        for f in os.listdir(args.charts):
            if f.startswith(".seeds-%s-" % section):
                os.unlink(os.path.join(args.charts, f))
    if not gp:
        print("bench/seeds: no gnuplot (apt-get install gnuplot-nox; bench/seeds installs it): no charts")
    data["unavailable"] = {"%s:%s" % k: v for k, v in unavailable.items()}
    data["when"] = time.strftime("%Y-%m-%d %H:%M")
    data["quick"] = args.quick
    data["runs"] = args.runs
    with open(os.path.join(args.charts, "seeds.json"), "w") as f:
        json.dump(data, f, indent=1, sort_keys=True)


if __name__ == "__main__":
    sys.exit(main())
