#!/usr/bin/env python3
"""End to end tests of virtio-can (--can) with Debian's kernel, our guest
driver (guest/can) and the tools image (build/guest/initramfs-tools.cpio.gz:
virtio_can, can-utils, iproute2's ip), on a real KVM (the nested host on
machines whose /dev/kvm cannot run Linux). The socketcan part needs root
and the vcan module; the bus part neither (each case that cannot run says
so with its own skip line). A VM or hub that dies is a failure.

What is checked is what the guest and the host observe, frame by frame:
sequences of frames are compared whole (count, order and contents, through
sha256 of the canonical candump text on both sides, and the first
difference when they disagree), never only counted.

  socketcan  one VM on "--can socketcan=vcan0,fd=on,log=FILE": 10,000
             frames guest -> host (cangen: standard, extended, RTR, 0-8
             bytes, CAN FD up to 64 bytes; cangen -v is the sender's record,
             host candump on vcan0 the receiver's) and 10,000 host -> guest
             (a generated list sent from a raw socket, guest candump);
             cansend while can0 is down (refused by the guest's netdev;
             the device's own rule is in the unit tests); bus-off from an
             error frame on vcan0, and "ip link set can0 type can
             restart"; vireo's --stats-json; the log file against host
             candump.
  bus        two VMs on "vireo canbus": frames both ways; a third VM
             joining later gets only new traffic (its candump, and its
             device's counters in --stats-json for what arrived while its
             controller was stopped); STOP (ip link set can0 down) while
             frames are pending on a stalled bus; bus-off for all (vireo
             canbus --inject-busoff) and restart; one VM with two
             controllers (vcan0 and the bus). A member written here in
             Python (the hub's protocol, canbus_proto.h) watches the bus
             from the host.

The host side needs can-utils (candump, cansend: scripts/deps installs
them; else the guest's copy in the cache, guest/can/fetch).
VIREO_E2E_ONLY=socketcan or bus runs one part (the other part's cases are
listed as skipped)."""
import json
import os
import re
import signal
import sys
import time

import canbus
from canbus import (SENTINEL, VCAN, CanGuest, Frame, HostDump, HubRig, VcanRig, compare, detach,
                    frame_list, guest_cangen, host, note, run_cases)
import vm as vmmod
from qmp import QMP
from vm import check

N_FRAMES = 10000


# Guest -> host traffic, one cangen run per kind (guest_cangen).
GEN_CLASSIC = (
    (2000, "-I r -L i -D r"),          # standard ids, data 0-8 bytes
    (2000, "-e -I r -L i -D r"),       # extended ids
    (1000, "-R -I r -L i"),            # RTR, requested length 0-8
    (1000, "-R -e -I r -L i"),         # extended RTR
)
GEN_FD = (
    (2000, "-f -I r -L i -D r"),       # CAN FD, every length up to 64
    (2000, "-f -e -I r -L i -D r"),    # CAN FD, extended ids
)


# --- socketcan ---------------------------------------------------------------

class SocketcanRig(VcanRig):
    """vcan0 (CAN FD), a host candump on it from before the VM starts until
    after it ends, and one VM on "--can socketcan=vcan0,fd=on,log=FILE"."""

    mtu = 72

    def __init__(self, d):
        self.t_end = None
        self.rx_dropped = 0  # frames sent while the controller was stopped
        self.log = os.path.join(d, "can.log")
        self.stats_json = os.path.join(d, "stats.json")
        super().__init__(d)

    def start(self):
        self.t_start = time.time()
        self.g = detach(CanGuest(["socketcan=%s,fd=on,log=%s" % (VCAN, self.log)],
                                 stats_json=self.stats_json))
        self.g.up(fd=True)

    def finish(self):
        """Powers the VM off (vireo writes --stats-json and closes the log)."""
        if not self.powered_off:
            self.powered_off = True
            self.g.poweroff()
            self.t_end = time.time()
            time.sleep(0.5)
            self.dump.stop()


def sc_guest_to_host(r):
    n, dt, kinds = r.guest_to_host(GEN_CLASSIC + GEN_FD, fd=True)
    return "%d frames in %.1fs (%s), same sequence on both sides" % (n, dt, ", ".join(
        "%s %d" % kv for kv in kinds.items()))


def sc_host_to_guest(r):
    frames = frame_list(N_FRAMES, fd=True)
    # About what a CAN bus carries (a 500 kbit/s bus: ~4,000 frames/s).
    rate = float(os.environ.get("VIREO_CAN_RATE", "4000"))
    n, dt = r.host_to_guest(frames, lambda path: r.sender.send(frames, rate=rate))
    return "%d frames (%d FD up to 64 bytes, %d RTR) sent at %.0f/s in %.1fs; guest candump got " \
           "exactly them, in order" % (n, sum(f.fd for f in frames), sum(f.rtr for f in frames), rate,
                                        dt)


def sc_tx_down(r):
    g = r.g
    g.ok("/sbin/ip link set can0 down")
    since = r.dump.mark()
    st, out = g.sh("cansend can0 321#0102030405060708 2>&1")
    st2, out2 = g.sh("cansend can0 12345678##1" + "AB" * 64 + " 2>&1")
    # A frame from the host meanwhile: the stopped controller drops it.
    r.sender.send([Frame(0x222, length=2, data=b"\x22\x22")])
    r.rx_dropped += 1
    g.up(fd=True)
    # Then something that does pass, to show the bus was listened to.
    g.ok("cansend can0 323#0A0B")
    r.guest_tx += 1
    got = r.dump.wait(since, 2, 30)
    check(st != 0 and st2 != 0, "cansend on a down can0: status %d (%s), %d (%s)" %
          (st, out.strip(), st2, out2.strip()))
    check("down" in (out + out2).lower(), "cansend's error is not 'Network is down': %r %r" %
          (out, out2))
    compare(got, ["222#2222", "323#0A0B"], "%s while can0 was down, then a frame after up" % VCAN)
    # The guest's netdev refuses before the device sees the frame (the
    # device's tx_refused stays 0, checked with --stats-json below); the
    # device's own rule, TX refused while stopped, is unit-tested
    # (tests/unit/test_virtio_can.c, test_controller_rules).
    return "cansend: %s (the guest's netdev refused it; the device rule is unit-tested); nothing " \
           "reached %s" % (out.strip().splitlines()[-1], VCAN)


def sc_busoff(r):
    g = r.g
    before = g.stats()
    since = r.dump.mark()
    r.busoff()
    # A bus-off controller hears nothing.
    r.sender.send([Frame(0x332, length=1, data=b"\x32")])
    r.rx_dropped += 1
    mid = g.stats()
    time.sleep(1)
    g.restart()
    # Frames pass again, both ways.
    path = g.dump_start(r.probe)
    r.send_then_answer(since, "333#33", Frame(0x334, length=1, data=b"\x34"))
    got_guest = g.dump_frames(path, 2)
    got_host = [f for f in r.dump.wait(since, 3, 30) if f != SENTINEL]
    after = g.stats()
    compare(got_host, ["332#32", "333#33", "334#34"], "%s from the bus-off on" % VCAN)
    # The guest sees its own frame (echo) and the host's.
    compare(got_guest, ["333#33", "334#34"], "guest candump after restart")
    check(mid["rx_packets"] == before["rx_packets"],
          "the guest received while bus-off: rx_packets %d -> %d" % (before["rx_packets"],
                                                                    mid["rx_packets"]))
    return "BUS-OFF after the error frame; a frame from the host meanwhile not received; " \
           "restart: ERROR-ACTIVE, frames pass both ways (rx_packets %d -> %d)" % (
               before["rx_packets"], after["rx_packets"])


def sc_stats_and_log(r):
    g = r.g
    gstats = g.stats()
    r.finish()
    s = json.load(open(r.stats_json))
    dev = s.get("devices", {}).get("virtio-can0")
    check(dev, "no virtio-can0 in --stats-json devices: %s" % sorted(s.get("devices", {})))
    # Each counter against the guest's and against what the test sent.
    check(dev["tx_frames"] == r.guest_tx == gstats["tx_packets"],
          "tx_frames %d, guest tx_packets %d, frames the guest was made to send %d" %
          (dev["tx_frames"], gstats["tx_packets"], r.guest_tx))
    check(dev["rx_frames"] == r.guest_rx == gstats["rx_packets"],
          "rx_frames %d, guest rx_packets %d, frames sent to the listening guest %d" %
          (dev["rx_frames"], gstats["rx_packets"], r.guest_rx))
    check(dev["rx_dropped"] == r.rx_dropped and dev["tx_refused"] == 0,
          "rx_dropped %d (frames sent while can0 was down or bus-off: %d), tx_refused %d" %
          (dev["rx_dropped"], r.rx_dropped, dev["tx_refused"]))
    # The guest got every frame sent to it (host -> guest compared them),
    # so the host kernel lost none before vireo read its socket.
    check(dev.get("rx_lost") == 0, "rx_lost %s, though the guest got every frame" %
          dev.get("rx_lost"))
    check(dev["queue_notifications"] > 0 and dev["interrupts"] > 0, "stats: %s" % dev)
    # The log: candump -L lines, the frames host candump saw (from the
    # VM's start: before it only the sentinels), in the same order.
    with open(r.log) as f:
        log = f.read().splitlines()
    bad = [l for l in log if not re.match(r"^\((\d+)\.(\d{6})\) %s [0-9A-F]{3}(?:[0-9A-F]{5})?#"
                                          r"(?:R[0-9A-F]?|#[0-9A-F](?:[0-9A-F]{2})*|(?:[0-9A-F]{2})*)$"
                                          % VCAN, l)]
    check(not bad, "log lines not in candump -L format: %s" % bad[:3])
    stamps = [float(l[1:l.index(")")]) for l in log]
    check(stamps == sorted(stamps), "log timestamps go backwards")
    check(stamps and r.t_start - 1 <= stamps[0] and stamps[-1] <= r.t_end + 1,
          "log timestamps %s..%s outside the test's %s..%s" % (stamps[:1], stamps[-1:],
                                                               r.t_start, r.t_end))
    seen = [l.split(None, 1)[1] for l in r.dump.lines[r.dump.start:]]
    logged = [l.split(None, 1)[1] for l in log]
    compare(logged, seen, "log file vs host candump -L on %s (interface, id, data)" % VCAN)
    return "stats: tx_frames %d rx_frames %d tx_refused %d rx_dropped %d, %d MMIO exits, %d " \
           "notifications, %d interrupts; log: %d lines, the same as candump's" % (
               dev["tx_frames"], dev["rx_frames"], dev["tx_refused"], dev["rx_dropped"], dev["exits"],
               dev["queue_notifications"], dev["interrupts"], len(log))


# --- the Vireo CAN bus -------------------------------------------------------

class BusRig(HubRig):
    """Two VMs on a Vireo CAN bus (A with a QMP socket), a third (C) for
    bus_late_joiner, and the host's member watching the bus."""

    def __init__(self, d):
        self.c_stats = os.path.join(d, "c-stats.json")
        self.a_qmp = os.path.join(d, "a-qmp.sock")
        self.a = self.b = self.c = None
        super().__init__(d)

    def start(self):
        self.a = detach(CanGuest(["bus=" + self.path], qmp=self.a_qmp))
        self.qmp = QMP(self.a_qmp)
        self.b = detach(CanGuest(["bus=" + self.path]))
        for g in (self.a, self.b):
            g.up()

    def vms(self):
        return [g for g in (self.a, self.b, self.c) if g]


BUS_GEN = ((200, "-I r -L i -D r"), (150, "-e -I r -L i -D r"), (150, "-R -I r -L i"))


def bus_two_vms(r):
    detail = []
    for src, dst, name in ((r.a, r.b, "A->B"), (r.b, r.a, "B->A")):
        path = dst.dump_start(r.probe)
        since = r.watch.mark()
        # 1 ms apart: a receiver that falls behind loses frames on a
        # CAN bus, as on real ones; this is about contents and order.
        n = guest_cangen(src, BUS_GEN, "/tmp/bus.txt", gap=1)
        dst.wait_frames(path, n, 60)
        dst.dump_stop(path)
        # Three records of the same traffic, compared whole: the sender's
        # (cangen -v), the receiving VM's (candump) and the host's member.
        watched = r.watch.wait(since, n, 30)
        src.check_file("/tmp/bus.txt", watched, "%s: sender cangen vs the host's bus member" % name)
        dst.check_file(dst.canon_dump(path), watched, "%s: receiver candump vs the host's bus member"
                       % name)
        detail.append("%s %d" % (name, n))
    return ", ".join(detail) + " frames (standard, extended, RTR): identical sequences on both VMs " \
                               "and the host's bus member"


def bus_late_joiner(r):
    """A VM that joins the bus later gets none of the traffic from before.
    A replay of old frames would reach C's device at once, while its
    controller is still stopped (before the driver runs, or before "ip
    link set can0 up"), where no candump could ever show it: what C's
    device received is therefore read from its --stats-json (rx_dropped:
    frames that arrived while stopped). K frames are sent on the bus
    while C runs with can0 down, so rx_dropped must be exactly K: that
    shows that such frames are counted, and that no others came."""
    old = ["100#%02X" % i for i in range(20)]
    since = r.watch.mark()
    r.a.ok("for i in $(seq 0 19); do cansend can0 100#$(printf %02X $i); done")
    compare(r.watch.wait(since, 20, 30), old, "A's frames before C joined, on the bus")
    r.c = detach(CanGuest(["bus=" + r.path], stats_json=r.c_stats))
    while_down = 5
    b_rx = r.b.stats()["rx_packets"]
    for i in range(while_down):
        r.watch.send(Frame(0x0d0, length=1, data=bytes([i])))
    # B got them: the hub has passed them on to every member, C too.
    deadline = time.monotonic() + 30
    while r.b.stats()["rx_packets"] < b_rx + while_down:
        check(time.monotonic() < deadline, "B did not receive the %d frames from the bus" %
              while_down)
        time.sleep(0.3)
    time.sleep(1)
    r.c.up()
    path_c = r.c.dump_start(r.probe)
    path_b = r.b.dump_start(r.probe)
    new = ["200#%02X" % i for i in range(20)]
    r.a.ok("for i in $(seq 0 19); do cansend can0 200#$(printf %02X $i); done")
    r.c.wait_frames(path_c, 20, 30)
    r.b.wait_frames(path_b, 20, 30)
    for g, p in ((r.c, path_c), (r.b, path_b)):
        g.dump_stop(p)
    got_c = r.c.lines(r.c.canon_dump(path_c))
    got_b = r.b.lines(r.b.canon_dump(path_b))
    compare(got_c, new, "C (joined after A's first 20 frames) saw")
    compare(got_b, new, "B saw, meanwhile")
    # And C's frames reach the others.
    path_a = r.a.dump_start(r.probe)
    r.c.ok("cansend can0 0C0#C0FFEE")
    r.a.wait_frames(path_a, 1, 30)
    r.a.dump_stop(path_a)
    compare(r.a.lines(r.a.canon_dump(path_a)), ["0C0#C0FFEE"], "A saw from C")
    # C's device counters, written when C powers off.
    gstats = r.c.stats()
    r.off.append(r.c)
    r.c.poweroff()
    dev = json.load(open(r.c_stats))["devices"]["virtio-can0"]
    check(dev["rx_dropped"] == while_down,
          "C's device dropped %d frames while its controller was stopped; %d were sent on the bus "
          "then (more: frames from before C joined reached it)" % (dev["rx_dropped"], while_down))
    check(dev["rx_frames"] == gstats["rx_packets"] and dev["tx_frames"] == 1,
          "C's device: rx_frames %d (guest rx_packets %d), tx_frames %d (C sent 1)" % (
              dev["rx_frames"], gstats["rx_packets"], dev["tx_frames"]))
    return "C's candump saw exactly A's 20 new frames; C's device: rx_dropped %d = the %d frames sent " \
           "while its can0 was down, none from before it joined; rx_frames %d = guest rx_packets; " \
           "C -> A passes" % (dev["rx_dropped"], while_down, dev["rx_frames"])


def bus_stop_pending(r):
    """Frames pending when the controller stops are cancelled. The hub is
    stopped (SIGSTOP): nothing A sends is taken by the bus or confirmed.
    A queues frames until its queues are full (cangen without -p stops at
    the first ENOBUFS); then "ip link set can0 down" (STOP) and up again
    (START), and only then the hub goes on (SIGCONT). No frame pending at
    the STOP may appear on the bus, ever, and the guest counts them as not
    sent; a frame sent after the restart passes."""
    a = r.a
    before = a.stats()
    since = r.watch.mark()
    os.kill(r.hub.pid, signal.SIGSTOP)
    try:
        # -v prints a frame before writing it: all lines but a last one
        # that failed were accepted.
        out = a.ok("cangen can0 -g 0 -n 400 -I 6AA -L 8 -D i -v > /tmp/stop.v 2>/tmp/stop.err; "
                   "echo rc=$? lines=$(wc -l < /tmp/stop.v); cat /tmp/stop.err")
        m = re.search(r"rc=(\d+) lines=(\d+)", out)
        check(m and m.group(1) != "0" and "No buffer space" in out,
              "cangen did not stop at ENOBUFS on a stalled bus: %s" % out.strip()[-300:])
        sent = int(m.group(2)) - 1
        pending = a.stats()
        a.ok("/sbin/ip link set can0 down")
        stopped = a.stats()
        a.up()
    finally:
        os.kill(r.hub.pid, signal.SIGCONT)
    time.sleep(2)
    a.ok("cansend can0 6AB#FF")
    seen = r.watch.wait(since, 1, 30, quiet=2)
    after = a.stats()
    check(pending["tx_packets"] == before["tx_packets"],
          "frames confirmed while the hub was stopped: tx_packets %d -> %d" %
          (before["tx_packets"], pending["tx_packets"]))
    errors = stopped["tx_errors"] - before["tx_errors"]
    dropped = stopped["tx_dropped"] - before["tx_dropped"]
    late = [f for f in seen if f.startswith("6AA#")]
    check(not late, "%d of the %d frames pending at the STOP reached the bus afterwards (%s ... %s), "
          "%d of them counted as failed by the guest (tx_errors +%d, tx_dropped +%d)" %
          (len(late), sent, late[0] if late else "", late[-1] if late else "",
           min(len(late), errors + dropped), errors, dropped))
    compare(seen, ["6AB#FF"], "the bus after STOP, START and the hub going on")
    check(errors + dropped > 0, "STOP with %d frames pending: tx_errors/tx_dropped did not move" % sent)
    check(after["tx_packets"] == before["tx_packets"] + 1,
          "tx_packets %d -> %d: only 6AB#FF went out" % (before["tx_packets"], after["tx_packets"]))
    return "%d frames queued on the stalled bus; STOP: tx_errors +%d, tx_dropped +%d; none of them " \
           "on the bus afterwards; a new frame passes" % (sent, errors, dropped)


def bus_busoff(r):
    guests = [g for g in r.vms() if g not in r.off]
    busoffs = r.watch.busoffs
    note("inject-busoff")
    host([vmmod.VIREO, "canbus", r.path, "--inject-busoff"])
    note("injected")
    deadline = time.monotonic() + 20
    states = [g.state() for g in guests]
    while any(s != "BUS-OFF" for s in states) and time.monotonic() < deadline:
        time.sleep(0.3)
        states = [g.state() for g in guests]
    check(all(s == "BUS-OFF" for s in states), "after --inject-busoff: %s" % states)
    if r.a in guests:
        ev = r.qmp.event("VIREO_CAN_BUS_OFF", 30)
        check(ev["data"] == {"device": "virtio-can0"}, "QMP bus-off event %r" % ev)
    check(r.watch.busoffs == busoffs + 1, "the host's member got %d bus-offs" %
          (r.watch.busoffs - busoffs))
    since = r.watch.mark()
    for g in guests:
        g.ok("/sbin/ip link set can0 type can restart")
    states = [g.state() for g in guests]
    check(all(s == "ERROR-ACTIVE" for s in states), "after restart: %s" % states)
    if r.a in guests:
        r.qmp.event("VIREO_CAN_RESTART", 30)
    path = r.b.dump_start(r.probe)
    r.a.ok("cansend can0 3A1#02")
    r.b.wait_frames(path, 1, 30)
    r.b.dump_stop(path)
    compare(r.b.lines(r.b.canon_dump(path)), ["3A1#02"], "B after restart")
    compare([f for f in r.watch.wait(since, 1, 30) if f != SENTINEL], ["3A1#02"],
            "the bus from the bus-off on")
    return "%d VMs BUS-OFF, restart: ERROR-ACTIVE, frames pass%s" % (
        len(guests), "; QMP events VIREO_CAN_BUS_OFF, VIREO_CAN_RESTART" if r.a in guests else "")


def bus_two_controllers(r):
    """--can given twice: one VM with a controller on vcan0 and one on the
    bus gets two interfaces, each bridged to its own side only."""
    canbus.vcan_add()
    dump = g = None
    try:
        dump = HostDump(VCAN)
        g = CanGuest(["socketcan=" + VCAN, "bus=" + r.path])
        names = g.ok("ls /sys/class/net | grep '^can' || true").split()
        check(names == ["can0", "can1"], "the guest's CAN interfaces: %s" % names)
        g.ok("/sbin/ip link set can0 up && /sbin/ip link set can1 up")
        since_bus, since_vcan = r.watch.mark(), dump.mark()
        g.ok("cansend can0 111#01 && cansend can1 222#02")
        on_vcan = [f for f in dump.wait(since_vcan, 1, 30) if f != SENTINEL]
        on_bus = [f for f in r.watch.wait(since_bus, 1, 30) if f != SENTINEL]
        check(sorted([on_vcan, on_bus]) == [["111#01"], ["222#02"]],
              "can0 sent 111#01, can1 222#02; %s got %s, the bus %s" % (VCAN, on_vcan, on_bus))
        g.poweroff()
    finally:
        if g:
            g.close()
        if dump:
            dump.stop()
        canbus.vcan_del()
    side = VCAN if on_vcan == ["111#01"] else "the bus"
    return "can0 and can1; can0's frame only on %s, can1's only on the other" % side


def bus_poweroff(r):
    for g in r.vms():
        if g not in r.off:
            r.off.append(g)
            g.poweroff()
    return "all VMs exit 0"


SOCKETCAN_CASES = (
    ("guest -> host, %d frames (std, ext, RTR, 0-8 B, FD to 64 B)" % N_FRAMES, sc_guest_to_host),
    ("host -> guest, %d frames (std, ext, RTR, 0-8 B, FD to 64 B)" % N_FRAMES, sc_host_to_guest),
    ("cansend on a down can0 is refused by the guest's netdev, nothing on vcan0", sc_tx_down),
    ("bus-off from vcan0, restart", sc_busoff),
    ("--stats-json counters; log=FILE equals host candump -L", sc_stats_and_log),
)
BUS_CASES = (
    ("two VMs, frames both ways", bus_two_vms),
    ("a third VM joining later gets only new traffic (its candump and device counters)",
     bus_late_joiner),
    ("STOP with frames pending cancels them", bus_stop_pending),
    ("--inject-busoff reaches every VM, restart", bus_busoff),
    ("one VM, two controllers: vcan0 and the bus", bus_two_controllers),
    ("poweroff", bus_poweroff),
)


def run_parts(s):
    # vcan0 is created here (ip link add): that needs root. The bus part
    # needs only a Unix socket, and runs without root.
    no_vcan = canbus.vcan_unavailable()
    run_cases(s, "virtio-can socketcan", SocketcanRig, SOCKETCAN_CASES, no_vcan)
    run_cases(s, "virtio-can bus", BusRig,
              [(n, no_vcan if fn is bus_two_controllers and no_vcan else fn)
               for n, fn in BUS_CASES])


if __name__ == "__main__":
    sys.exit(canbus.suite_main("virtio-can", run_parts))
