#!/usr/bin/env python3
"""End to end tests of the emulated Kvaser PCI card (--can ...,model=kvaser:
an SJA1000 CAN controller behind PCI I/O BARs and INTx) with Linux's own
kvaser_pci and sja1000 drivers (Debian's kernel, the tools image with
can-utils), on SocketCAN: vcan0 on the host (the nested host where
/dev/kvm cannot run Linux). Needs root and the vcan module (a skip line
says so otherwise).

As in test_can.py, sequences of frames are compared whole (count, order,
contents: sha256 of the canonical candump text on both sides, the first
difference shown when they disagree).

  driver        can0 is bound to kvaser_pci (Xilinx version 14, one
                channel), "ip link set can0 up type can bitrate 500000" makes it
                ERROR-ACTIVE
  guest -> host 10,000 frames (cangen: standard, extended, RTR, 0-8 bytes)
                against host candump on vcan0
  host -> guest 10,000 frames from a raw socket (at most 1,000 ahead of
                what the guest's candump has, so that no queue on the way,
                the guest kernel's backlog above all, can overflow) against
                guest candump
  bus-off       an error frame with CAN_ERR_BUSOFF on vcan0: BUS-OFF (and
                QMP VIREO_CAN_BUS_OFF); "ip link set can0 type can restart":
                ERROR-ACTIVE (VIREO_CAN_RESTART), frames pass both ways
  tx errors     vcan0 down on the host: the guest's frame is refused at
                every attempt, the transmit error counter climbs by 8 a
                try: error warning, error passive, bus-off, each seen by the
                driver (its error-warn, error-pass, bus-off counters);
                vcan0 up, restart: frames pass
  stats         kvaser-pci0 in QMP query-vireo-stats: frames both ways equal
                to the guest's counters, nothing lost; exits and interrupts
                per frame
  snapshot      QMP migrate to a file with the guest's candump running,
                kill -9, a new vireo with --incoming: can0 still
                ERROR-ACTIVE, frames pass both ways through the restored
                card (to the candump from before the snapshot too);
                poweroff
  bus           the card on a Vireo CAN bus (vireo canbus) with a member
                written here in Python (canbus.HubMember): 250 frames
                each way (fewer than the hub queues for a member, so a
                slow receiver loses none), compared whole; vireo canbus
                --inject-busoff: BUS-OFF, restart, frames pass"""
import os
import re
import sys
import time

import canbus as cb
import vm as vmmod
from canbus import VCAN, CanGuest, Frame, HostDump, HostSender, compare, detach, host
from qmp import QMP
from vm import check

N_FRAMES = 10000
DEV = "kvaser-pci0"
GEN = (
    (3000, "-I r -L i -D r"),     # standard ids, data 0-8 bytes
    (3000, "-e -I r -L i -D r"),  # extended ids
    (2000, "-R -I r -L i"),       # RTR, requested length 0-8
    (2000, "-R -e -I r -L i"),    # extended RTR
)


class Rig(cb.VcanRig):
    """vcan0 (classic CAN), a host candump on it, and one VM with the
    Kvaser card on it."""

    def __init__(self, d):
        self.stats_json = os.path.join(d, "stats.json")
        self.qmp_path = os.path.join(d, "qmp.sock")
        super().__init__(d)

    def start(self):
        self.g = detach(CanGuest(["socketcan=%s,model=kvaser" % VCAN],
                                 stats_json=self.stats_json, qmp=self.qmp_path))
        self.qmp = QMP(self.qmp_path)

    def dev_stats(self):
        return self.qmp.cmd("query-vireo-stats")["devices"][DEV]


def t_driver(r):
    g = r.g
    drv = g.ok("basename $(readlink /sys/class/net/can0/device/driver)").strip()
    check(drv == "kvaser_pci", "can0's driver is %r" % drv)
    ids = g.ok("cat /sys/class/net/can0/device/vendor /sys/class/net/can0/device/device").split()
    check(ids == ["0x10e8", "0x8406"], "can0's PCI ids %s" % ids)
    log = g.ok("dmesg | grep -i 'xilinx version' || true")
    # (The driver counts only the channels after the first in that line.)
    check("xilinx version=14" in log, "kvaser_pci's probe said %r" % log)
    names = g.ok("ls /sys/class/net | grep '^can' || true").split()
    check(names == ["can0"], "the guest's CAN interfaces: %s" % names)
    r.g.up_bitrate()
    return "can0 on kvaser_pci (10e8:8406, Xilinx version 14), one channel; bitrate 500000: " \
           "ERROR-ACTIVE"


def t_guest_to_host(r):
    n, dt, kinds = r.guest_to_host(GEN)
    return "%d frames in %.1fs (%.0f/s; %s), same sequence on both sides" % (
        n, dt, n / dt, ", ".join("%s %d" % kv for kv in kinds.items()))


def t_host_to_guest(r):
    g = r.g
    frames = cb.frame_list(N_FRAMES, fd=False, seed=37)

    def send(path):
        # Every frame the emulated controller takes costs the guest a dozen
        # trapped register accesses in its interrupt handler (tens of us
        # each in the nested host), and the sja1000 driver hands frames to
        # the kernel's backlog (1,000 frames), which a guest busy in its
        # handler cannot drain: frames the guest has not yet shown to
        # candump are kept under 1,000, so that no queue on the way can
        # overflow.
        chunk, window = 250, 1000
        sent = 0
        while sent < len(frames):
            deadline = time.monotonic() + 120
            while sent - g.count_frames(path) > window - chunk:
                check(time.monotonic() < deadline, "the guest's candump took no frame for 120 s "
                      "(device: %s)" % r.dev_stats())
                time.sleep(0.2)
            r.sender.send(frames[sent:sent + chunk], rate=2000)
            sent += len(frames[sent:sent + chunk])

    _, dt = r.host_to_guest(frames, send)
    return "%d frames (%d RTR, %d extended) in %.1fs (%.0f/s); guest candump got exactly them, " \
           "in order" % (len(frames), sum(f.rtr for f in frames), sum(f.ext for f in frames),
                         dt, len(frames) / dt)


def pass_both_ways(r, tag):
    """After a restart: a guest frame reaches vcan0, then a host frame the
    guest."""
    g = r.g
    since = r.dump.mark()
    path = g.dump_start(r.probe)
    r.send_then_answer(since, "%s1#11" % tag, Frame(int(tag + "2", 16), length=1, data=b"\x22"))
    compare(g.dump_frames(path, 2), ["%s1#11" % tag, "%s2#22" % tag],
            "guest candump after restart (its own frame's echo, then the host's)")


def t_busoff(r):
    g = r.g
    before = g.stats()
    r.busoff()
    ev = r.qmp.event("VIREO_CAN_BUS_OFF", 30)
    check(ev["data"] == {"device": DEV}, "QMP bus-off event %r" % ev)
    # A bus-off controller hears nothing.
    r.sender.send([Frame(0x332, length=1, data=b"\x32")])
    time.sleep(1)
    mid = g.stats()
    check(mid["rx_packets"] == before["rx_packets"],
          "the guest received while bus-off: rx_packets %d -> %d" % (before["rx_packets"],
                                                                    mid["rx_packets"]))
    g.restart()
    ev = r.qmp.event("VIREO_CAN_RESTART", 30)
    check(ev["data"] == {"device": DEV}, "QMP restart event %r" % ev)
    pass_both_ways(r, "33")
    return "BUS-OFF after the error frame (QMP VIREO_CAN_BUS_OFF); a host frame meanwhile not " \
           "received; restart: ERROR-ACTIVE (VIREO_CAN_RESTART), frames pass both ways"


def can_stats(g):
    """The driver's error state counters (ip -details -statistics)."""
    out = g.ok("/sbin/ip -details -statistics link show can0")
    m = re.search(r"re-started\s+bus-errors\s+arbit-lost\s+error-warn\s+error-pass\s+bus-off\s*\n"
                  r"\s*(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)", out)
    check(m, "no CAN statistics in %r" % out[-400:])
    keys = ("restarts", "bus_errors", "arbitration_lost", "error_warning", "error_passive",
            "bus_off")
    return dict(zip(keys, map(int, m.groups())))


def t_tx_errors(r):
    g = r.g
    before = can_stats(g)
    host(["ip", "link", "set", VCAN, "down"])
    try:
        # The driver takes the frame; every attempt the device makes is
        # refused (ENETDOWN): +8 on the transmit error counter each.
        g.ok("cansend can0 4E1#0E")
        st = g.wait_state("BUS-OFF", 30)
        after = can_stats(g)
    finally:
        host(["ip", "link", "set", VCAN, "up"])
        # Taking vcan0 down ended the host's candump and left an error on
        # the sender's socket: both anew.
        r.dump.stop()
        r.sender.close()
        r.dump = HostDump(VCAN)
        r.sender = HostSender(VCAN)
    check(st == "BUS-OFF", "with %s down, can0 is %s after a frame" % (VCAN, st))
    d = {k: after[k] - before[k] for k in after}
    check(d["error_warning"] == 1 and d["error_passive"] == 1 and d["bus_off"] == 1,
          "the driver saw error-warn +%d, error-pass +%d, bus-off +%d (1 each expected)" %
          (d["error_warning"], d["error_passive"], d["bus_off"]))
    r.qmp.event("VIREO_CAN_BUS_OFF", 30)
    g.restart()
    r.qmp.event("VIREO_CAN_RESTART", 30)
    pass_both_ways(r, "4E")
    return "%s down: error warning, error passive, bus-off, one each (%s); up and restart: " \
           "frames pass both ways" % (VCAN, ", ".join("%s +%d" % kv for kv in d.items() if kv[1]))


def t_stats(r):
    g = r.g
    gstats = g.stats()
    dev = r.dev_stats()
    check(dev["tx_frames"] == r.guest_tx == gstats["tx_packets"],
          "tx_frames %d, guest tx_packets %d, frames the guest was made to send %d" %
          (dev["tx_frames"], gstats["tx_packets"], r.guest_tx))
    check(dev["rx_frames"] == gstats["rx_packets"],
          "rx_frames %d, guest rx_packets %d" % (dev["rx_frames"], gstats["rx_packets"]))
    check(dev["rx_lost"] == 0 and dev["rx_overruns"] == 0,
          "rx_lost %d, rx_overruns %d" % (dev["rx_lost"], dev["rx_overruns"]))
    frames = dev["tx_frames"] + dev["rx_frames"]
    # The transmit buffer's writes come through KVM's coalesced ring
    # (README, "Coalesced writes"): at least the frame information and
    # two identifier bytes of every frame sent, none of them an exit to
    # userspace.
    whole = r.qmp.cmd("query-vireo-stats")
    coalesced = whole["coalesced_writes"]
    user_io = sum(v["userspace_io_exits"] for v in whole["vcpus"])
    check(coalesced >= 3 * dev["tx_frames"],
          "coalesced_writes %d for %d frames sent (at least 3 each)" % (coalesced, dev["tx_frames"]))
    check(user_io + coalesced >= dev["exits"],
          "userspace port exits %d + coalesced writes %d < the card's %d accesses" %
          (user_io, coalesced, dev["exits"]))
    return "tx_frames %d, rx_frames %d (= the guest's), rx_dropped %d, tx_errors %d, bus_offs %d; " \
           "%.1f register accesses, %.1f of them coalesced, and %.2f interrupts per frame" % (
               dev["tx_frames"], dev["rx_frames"], dev["rx_dropped"], dev["tx_errors"],
               dev["bus_offs"], dev["exits"] / frames, coalesced / frames,
               dev["interrupts"] / frames)


def t_snapshot(r):
    g = r.g
    path = g.dump_start(r.probe)  # a candump across the snapshot
    snap = os.path.join(r.d, "kvaser.snap")
    r.qmp.cmd("migrate", {"uri": "file:" + snap})
    info = r.qmp.cmd("query-migrate")
    check(info["status"] == "completed", "query-migrate %r" % info)
    r.qmp.close()
    r.qmp = None
    g.vm.kill()  # -9: only the file survives
    qmp2 = r.qmp_path + ".restored"  # the old socket's file stays after -9
    args = [qmp2 if a == r.qmp_path else a.replace(r.qmp_path, qmp2) for a in g.vm.cmd[1:]]
    g.vm.close()
    g.vm = vmmod.VM(args + ["--incoming", "file:" + snap], linux=False)
    if g.vm in vmmod._live:
        vmmod._live.remove(g.vm)
    r.qmp = QMP(qmp2, timeout=60)
    st = g.state()
    check(st == "ERROR-ACTIVE", "after the restore, can0 is %s" % st)
    r.send_then_answer(r.dump.mark(), "5A1#A1", Frame(0x5a2, length=1, data=b"\x22"),
                       "the restored guest's")
    compare(g.dump_frames(path, 2), ["5A1#A1", "5A2#22"],
            "the candump started before the snapshot, after the restore")
    pass_both_ways(r, "5B")
    dev = r.dev_stats()
    check(dev["tx_frames"] == 2 and dev["rx_frames"] >= 2,
          "the restored card: tx_frames %d, rx_frames %d" % (dev["tx_frames"], dev["rx_frames"]))
    r.powered_off = True
    g.poweroff()
    return "snapshot %.0f MiB on disk; restored: ERROR-ACTIVE, frames pass both ways (the candump " \
           "from before the snapshot got them too); poweroff exit 0" % (
               os.stat(snap).st_blocks * 512 / 2**20)


CASES = (
    ("can0 on kvaser_pci, up at 500 kbit/s", t_driver),
    ("guest -> host, %d frames (std, ext, RTR, 0-8 B)" % N_FRAMES, t_guest_to_host),
    ("host -> guest, %d frames (std, ext, RTR, 0-8 B)" % N_FRAMES, t_host_to_guest),
    ("bus-off from vcan0, restart", t_busoff),
    ("transmit errors: warning, passive, bus-off; restart", t_tx_errors),
    ("device counters (QMP query-vireo-stats)", t_stats),
    ("snapshot to a file, kill -9, restore: frames pass both ways", t_snapshot),
)


class BusRig(cb.HubRig):
    """A vireo canbus hub, a Python member watching it, and one VM with the
    Kvaser card on the bus."""

    member = "test_kvaser.py"

    def __init__(self, d):
        self.qmp_path = os.path.join(d, "qmp.sock")
        self.g = None
        super().__init__(d)

    def start(self):
        self.g = detach(CanGuest(["bus=%s,model=kvaser" % self.path], qmp=self.qmp_path))
        self.qmp = QMP(self.qmp_path)
        self.g.ok("/sbin/ip link set can0 up type can bitrate 500000")

    def vms(self):
        return [self.g] if self.g else []


BUS_GEN = ((100, "-I r -L i -D r"), (100, "-e -I r -L i -D r"), (50, "-R -I r -L i"))


def b_both_ways(r):
    g = r.g
    since = r.watch.mark()
    n = cb.guest_cangen(g, BUS_GEN, "/tmp/bus.txt")
    got = r.watch.wait(since, n, 60)
    g.check_file("/tmp/bus.txt", got, "guest cangen record vs the bus member")
    frames = cb.frame_list(250, fd=False, seed=38)
    path = g.dump_start(r.probe)
    for f in frames:
        r.watch.send(f)
    g.wait_frames(path, len(frames), 60)
    g.dump_stop(path)
    g.check_file(g.canon_dump(path), [f.text() for f in frames], "bus member -> guest candump")
    return "%d frames guest -> bus, %d bus -> guest (standard, extended, RTR), same sequences" % (
        n, len(frames))


def b_busoff(r):
    g = r.g
    host([vmmod.VIREO, "canbus", r.path, "--inject-busoff"])
    st = g.wait_state("BUS-OFF", 20)
    check(st == "BUS-OFF", "after --inject-busoff, can0 is %s" % st)
    ev = r.qmp.event("VIREO_CAN_BUS_OFF", 30)
    check(ev["data"] == {"device": DEV}, "QMP bus-off event %r" % ev)
    g.restart()
    r.qmp.event("VIREO_CAN_RESTART", 30)
    since = r.watch.mark()
    path = g.dump_start(r.probe)
    g.ok("cansend can0 6C1#C1")
    compare([f for f in r.watch.wait(since, 1, 30) if f != cb.SENTINEL], ["6C1#C1"],
            "the bus after the restart")
    r.watch.send(Frame(0x6c2, length=1, data=b"\xc2"))
    g.wait_frames(path, 2, 30)
    g.dump_stop(path)
    compare(g.lines(g.canon_dump(path)), ["6C1#C1", "6C2#C2"], "guest candump after the restart")
    r.off.append(g)
    g.poweroff()
    return "BUS-OFF (QMP VIREO_CAN_BUS_OFF), restart: ERROR-ACTIVE, frames pass both ways; " \
           "poweroff exit 0"


BUS_CASES = (
    ("250 frames each way with a bus member", b_both_ways),
    ("--inject-busoff, restart", b_busoff),
)


def run_parts(s):
    cb.run_cases(s, "kvaser socketcan", Rig, CASES, cb.vcan_unavailable())
    cb.run_cases(s, "kvaser bus", BusRig, BUS_CASES)


if __name__ == "__main__":
    sys.exit(cb.suite_main("kvaser", run_parts))
