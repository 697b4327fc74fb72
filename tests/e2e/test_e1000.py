#!/usr/bin/env python3
"""End to end tests of the emulated Intel 82540EM (--net ...,model=e1000)
with Debian's kernel and its unmodified e1000 driver, on the tools image
(test_virtio.py's guest), on a tap interface and on user-mode networking:
the same checks as virtio-net's (ping, TCP both ways with sha256 on both
sides), plus what the guest sees of the card (driver, PCI ids, link) and
the VM exits it costs per packet and per MiB, from --stats-json.

VIREO_E2E_QEMU=1 runs them against QEMU 7.2's -device e1000 instead: a
check of the tests and of the guest, not of vireo (no exit counts there)."""
import hashlib
import os
import subprocess
import sys
import tempfile
import time

import vm as vmmod
from qmp import QMP, fresh_socket_path
from vm import BOOT_TIMEOUT, KERNEL, VM, GuestShell, Suite, check
import test_virtio as tv
from test_virtio import (Guest, HttpBlob, free_port, guest_sha, ip,
                         read_forwarded, stats_now, tcp_both_ways, MIB)

TAP = "vtap1"
TAP_HOST, TAP_GUEST = "192.168.101.1", "192.168.101.2"
DEV = "e1000-0"


def card(g):
    """What the guest sees of its NIC: driver, PCI ids, link."""
    drv = g.value("echo drv=$(basename $(readlink /sys/class/net/eth0/device/driver))", "drv")
    ids = g.value("echo ids=$(cat /sys/class/net/eth0/device/vendor /sys/class/net/eth0/device/device)",
                  "ids")
    g.ok("i=0; while [ $(cat /sys/class/net/eth0/carrier) != 1 ] && [ $i -lt 100 ]; do sleep 0.1; "
         "i=$((i+1)); done", 30)
    carrier = g.value("echo carrier=$(cat /sys/class/net/eth0/carrier)", "carrier")
    speed = g.value("echo speed=$(cat /sys/class/net/eth0/speed)", "speed")
    check(drv == "e1000", "eth0's driver is %s, not e1000" % drv)
    check(ids == "0x8086 0x100e", "eth0's PCI ids: %s" % ids)
    check(carrier == "1" and speed == "1000", "link: carrier %s, speed %s" % (carrier, speed))


def dev_stats(g, path):
    if tv.QEMU:
        return None
    s = stats_now(g, path)
    check(DEV in s.get("devices", {}), "no %s in the stats: %s" % (DEV, sorted(s.get("devices", {}))))
    return dict(s["devices"][DEV], coalesced_writes=s["coalesced_writes"])


def cost(before, after, mib):
    """Exits per MiB and per packet (both directions' frames) between two
    stats snapshots, and the interrupts."""
    if before is None:
        return "exits not counted under QEMU"
    exits = after["exits"] - before["exits"]
    frames = (after["rx_frames"] - before["rx_frames"]) + (after["tx_frames"] - before["tx_frames"])
    irqs = after["interrupts"] - before["interrupts"]
    coalesced = after["coalesced_writes"] - before["coalesced_writes"]
    return "%.0f exits/MiB, %.2f exits/packet (%d packets), %.0f interrupts/MiB, " \
        "%.0f coalesced writes/MiB" % (exits / mib, exits / max(frames, 1), frames, irqs / mib,
                                      coalesced / mib)


def test_e1000_tap(stats):
    subprocess.run(["ip", "link", "del", TAP], capture_output=True)
    ip("tuntap", "add", "dev", TAP, "mode", "tap")
    try:
        ip("addr", "add", TAP_HOST + "/24", "dev", TAP)
        ip("link", "set", TAP, "up")
        g = Guest(nets=["tap=%s,mac=52:54:00:12:34:98,model=e1000" % TAP],
                  cmdline="vireo.net=%s/24" % TAP_GUEST, stats_json=stats)
        try:
            check(g.net == ("UP", "eth0 %s/24" % TAP_GUEST), "guest network: %s" % (g.net,))
            card(g)
            mac = g.value("echo mac=$(cat /sys/class/net/eth0/address)", "mac")
            ping = g.ok("ping -c 5 -W 5 %s" % TAP_HOST, 60)
            check(" 0% packet loss" in ping, "ping: %s" % ping[-300:])
            # 8 MiB each way, checksummed on both sides.
            s0, s1, s2 = tcp_both_ways(g, TAP_HOST, 8 * MIB, 300, lambda: dev_stats(g, stats))
            # The driver refills the receive ring 16 descriptors at a time
            # and tells the card by RDT, a write that waits in KVM's
            # coalesced ring (README, "Coalesced writes") for the next exit.
            if s1:
                rx = s2["rx_frames"] - s1["rx_frames"]
                refills = s2["coalesced_writes"] - s1["coalesced_writes"]
                check(refills >= rx // 32, "%d coalesced writes for %d frames received" % (
                    refills, rx))
            # The driver's own complaints (a hang it detected, a reset).
            bad = g.ok("dmesg | grep -iE 'e1000.*(hang|reset adapter|error)' || true").strip()
            check(not bad, "the e1000 driver complained: %s" % bad[-400:])
            g.poweroff()
        finally:
            g.kill()
    finally:
        subprocess.run(["ip", "link", "del", TAP], capture_output=True)
    check(mac == "52:54:00:12:34:98", "guest MAC %s, asked for 52:54:00:12:34:98" % mac)
    return "e1000 driver, link 1000; ping; 8 MiB each way over %s, sha256 match; up: %s; down: %s" % (
        TAP, cost(s0, s1, 8), cost(s1, s2, 8))


def test_e1000_user(stats):
    data = os.urandom(4 * MIB)
    blob = HttpBlob(data)
    fwd = free_port()
    try:
        g = Guest(nets=["user,hostfwd=tcp:%d-:8080,model=e1000" % fwd], cmdline="vireo.net=dhcp",
                  stats_json=stats)
        try:
            check(g.net and g.net[0] == "UP", "guest network: %s" % (g.net,))
            card(g)
            addr = g.value("echo addr=$(ip -4 -o addr show dev eth0 | awk '{print $4}')", "addr")
            ping = g.ok("ping -c 3 -W 5 10.0.2.2", 60)
            check(" 0% packet loss" in ping, "ping 10.0.2.2: %s" % ping[-300:])
            # Host -> guest: the guest fetches from a listener on 127.0.0.1.
            s0 = dev_stats(g, stats)
            g.ok("wget -q -O /tmp/blob http://10.0.2.2:%d/blob" % blob.port, 300)
            s1 = dev_stats(g, stats)
            got = guest_sha(g, "/tmp/blob")
            # Guest -> host: the host reads a guest port through hostfwd.
            g.ok("head -c 4194304 /dev/urandom > /tmp/serve")
            serve_sha = guest_sha(g, "/tmp/serve")
            g.detach("nc -l -p 8080 < /tmp/serve > /dev/null")
            time.sleep(1)
            size, sha = read_forwarded(fwd, 120)
            s2 = dev_stats(g, stats)
            g.poweroff()
        finally:
            g.kill()
    finally:
        blob.close()
    check(addr == "10.0.2.15/24", "guest address %s, expected 10.0.2.15/24 by DHCP" % addr)
    want = hashlib.sha256(data).hexdigest()
    check(got == want, "wget from the host: sha %s, served %s" % (got, want))
    check(size == 4 * MIB and sha == serve_sha,
          "hostfwd: host read %d bytes sha %s, guest served %s" % (size, sha, serve_sha))
    return "DHCP 10.0.2.15, ping 10.0.2.2, wget 4 MiB in (%s), 4 MiB out through hostfwd (%s)" % (
        cost(s0, s1, 4), cost(s1, s2, 4))


def snapshot_args(qmp):
    return ["--kernel", KERNEL, "--initrd", tv.TOOLS_INITRD, "--cmdline",
            "console=ttyS0 quiet vireo.net=dhcp", "--memory", "512M",
            "--net", "user,model=e1000", "--qmp", "unix:%s,server=on,wait=off" % qmp]


def shell(v):
    sh = GuestShell()
    sh.vm = v
    return sh


def test_e1000_snapshot(tmp):
    """Saved with QMP migrate to file: while the guest pings, the source
    killed (-9), restored with --incoming: the driver goes on with the
    card it had (no reset, no new link), and TCP works."""
    snap = os.path.join(tmp, "e1000.snap")
    path = fresh_socket_path("e1k")
    src = VM(snapshot_args(path), linux=False)
    src.expect(r"VIREO-GUEST-UP[^\n]*\n", BOOT_TIMEOUT)
    check(b"VIREO-NET-UP" in src.output, "no network: %r" % src.output[-300:])
    src.expect(r"vireo# ", 60)
    sh = shell(src)
    sh.sh("stty -echo")
    sh.ok("ping -c 2 -W 5 10.0.2.2", 60)
    resets = sh.ok("dmesg | grep -c 'Link is Up' || true").split()[-1]
    sh.detach("ping -i 0.2 10.0.2.2 > /tmp/ping.txt 2>&1")
    time.sleep(2)
    q = QMP(path)
    q.cmd("migrate", {"uri": "file:" + snap})
    info = q.cmd("query-migrate")
    check(info["status"] == "completed", "query-migrate %r" % info)
    src.kill()
    rpath = fresh_socket_path("e1k-restored")
    dst = VM(snapshot_args(rpath) + ["--incoming", "file:" + snap], linux=False)
    sh = shell(dst)
    time.sleep(3)
    sh.ok("kill %1 2>/dev/null; killall ping 2>/dev/null; true")
    data = os.urandom(2 * MIB)
    blob = HttpBlob(data)
    try:
        sh.ok("wget -q -O /tmp/blob http://10.0.2.2:%d/blob" % blob.port, 180)
        got = sh.ok("sha256sum /tmp/blob").split()[0]
    finally:
        blob.close()
    replies = int(sh.ok("grep -c 'bytes from' /tmp/ping.txt || true").split()[-1])
    resets_after = sh.ok("dmesg | grep -c 'Link is Up' || true").split()[-1]
    hang = sh.ok("dmesg | grep -c 'Tx Unit Hang' || true").split()[-1]
    sh.poweroff()
    check(got == hashlib.sha256(data).hexdigest(), "wget after the restore: wrong bytes")
    check(resets_after == resets, "the driver saw the link come up again (%s -> %s)" %
          (resets, resets_after))
    check(hang == "0", "the driver reported a Tx Unit Hang after the restore")
    return "pings before and after (%d replies), wget 2 MiB after the restore, sha256 match" % replies


def main():
    s = Suite()
    if not os.path.exists(tv.TOOLS_INITRD):
        s.skip("e1000", "%s not built (guest/build)" % tv.TOOLS_INITRD)
        return s.finish()
    print("e1000: target %s" % ("QEMU (VIREO_E2E_QEMU=1: checks the tests, not vireo)" if tv.QEMU
                                else vmmod.VIREO), flush=True)
    with tempfile.TemporaryDirectory() as d:
        stats = os.path.join(d, "stats.json")
        name = "e1000: tap, ping and TCP both ways with the e1000 driver"
        if not s.selected(name):
            pass
        elif os.geteuid() == 0 and os.path.exists("/dev/net/tun"):
            s.run(name, test_e1000_tap, stats)
        else:
            s.skip(name, "needs root and /dev/net/tun")
        name = "e1000: user mode, DHCP, ping, wget from host, hostfwd"
        if s.selected(name):
            s.run(name, test_e1000_user, stats)
        name = "e1000: snapshot while pinging, kill -9, restore, TCP goes on"
        if tv.QEMU:
            s.skip(name, "vireo's snapshots")
        elif s.selected(name):
            s.run(name, test_e1000_snapshot, d)
    return s.finish()


if __name__ == "__main__":
    sys.exit(main())
