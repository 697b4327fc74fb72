#!/usr/bin/env python3
"""Live migration with Debian's kernel on a real KVM, between two vireo
processes on loopback. The guest (2 vCPUs, a disk, user-mode networking,
an rng) runs a counter loop, a disk writer (every block fsync'ed), a
memory dirtier at a fixed rate and a heartbeat on its console; it is
migrated while they run. The heartbeat must go on at the destination
with the next number, no gap and no repeat (the console stream is one
stream across the two processes); the counter goes on; the writer
finishes and every block verifies on the host; the network (user mode:
wget from the host before and after) and the rng work at the
destination, and libslirp's DHCP lease table came along (the guest's MAC
renews to its address, another MAC is offered the next one). The
largest pause in the heartbeat is the
downtime seen from outside (guest time itself stops while the VM is
moved). Then the VM goes back and forth 10 times, and a guest that
dirties memory faster than the link carries it is migrated with
auto-converge (its vCPUs throttled until it fits)."""
import hashlib
import os
import re
import socket
import subprocess
import sys
import tempfile
import threading
import time

from qmp import QMP, fresh_socket_path
from test_migrate import free_port, wait_listening
from test_snapshot_linux import (BLOCKS, GUEST_CANDUMP, CanStream, can_received, finish_and_verify,
                                 guest_can_drops, have_vcan, shell, start_writer, vm_args)
from test_virtio import TOOLS_INITRD, HttpBlob
from vm import (BOOT_TIMEOUT, KERNEL, VM, Suite, check, counter_advances, read_counter,
                read_whole, start_counter)

SEQ = iter(range(1000))
# HB<n> every 20 ms until /tmp/hb-stop exists (guest/progs/heartbeat.c): a
# program, not a shell loop, because busybox's sh forks for every usleep,
# and under the dirty log a fork's page faults stalled the loop itself.
HEARTBEAT = "/usr/bin/vireo-heartbeat 20 /tmp/hb-stop"
# vireo-dirtier MIB RATE_MIB_S COUNTFILE (guest/progs/dirtier.c): random
# bytes, every word changed each pass, so no page is a zero page or the
# same as last time; "N N" passes in COUNTFILE.
DIRTIER = "/usr/bin/vireo-dirtier"


class Console:
    """The guest's console across processes: bytes in order, with the time
    each heartbeat line arrived."""

    def __init__(self):
        self.text = b""
        self.beats = []  # (number, arrival time)
        self.holds = []  # (start, end): the test itself kept the guest stopped

    def feed(self, vm, timeout):
        before = len(vm.output)
        vm._pump(timeout)
        data = vm.output[before:]
        if not data:
            return
        now = time.monotonic()
        start = len(self.text)
        self.text += data
        # Lines completed by this chunk (one may have begun in the last).
        line_start = self.text.rfind(b"\n", 0, start) + 1
        for m in re.finditer(rb"HB(\d+)\r?\n", self.text[line_start:]):
            self.beats.append((int(m.group(1)), now))

    def follow(self, *vms):
        """Reads the consoles in a thread of its own until stop(): the
        main thread's QMP calls block while the source is stopped, which
        must not delay the arrival times."""
        self._stop = False

        def run():
            while not self._stop:
                for vm in vms:
                    self.feed(vm, 0.005)

        self._thread = threading.Thread(target=run, daemon=True)
        self._thread.start()

    def stop(self):
        self._stop = True
        self._thread.join()

    def check_continuous(self):
        nums = [n for n, _ in self.beats]
        check(nums, "no heartbeat seen")
        bad = [(a, b) for a, b in zip(nums, nums[1:]) if b != a + 1]
        check(not bad, "heartbeat not continuous: %s (of %d..%d)" % (bad[:5], nums[0], nums[-1]))
        gaps = sorted((self.net_gap(a, b), a, b) for (_, a), (_, b) in zip(self.beats, self.beats[1:]))
        self.largest = gaps[-1]
        return gaps[-1][0], gaps[len(gaps) // 2][0]

    def largest_where(self):
        """Where the largest gap (after check_continuous) lay: around the
        switch-over (it spans a hold of the test's), or in the pre-copy
        before it or the run after it, by how far from the nearest hold."""
        _, a, b = self.largest
        if any(s < b and e > a for s, e in self.holds):
            return "at the switch-over"
        before = [s - b for s, _ in self.holds if s >= b]
        after = [a - e for _, e in self.holds if e <= a]
        if before and (not after or min(before) <= min(after)):
            return "%.1f s before a switch-over (pre-copy)" % min(before)
        return "%.1f s after a switch-over" % min(after) if after else "with no migration"

    def held(self, start, end):
        """From start to end the test kept the guest stopped itself (the
        destination waits with -S while its RAM is compared with the
        source's): not the VMM's downtime, left out of the gaps."""
        self.holds.append((start, end))

    def held_ms(self):
        return sum(e - s for s, e in self.holds) * 1000

    def net_gap(self, a, b):
        return (b - a) - sum(max(0.0, min(b, e) - max(a, s)) for s, e in self.holds)


def boot(disk, qmp):
    vm = VM(vm_args(disk, qmp), linux=False)
    vm.expect(r"VIREO-GUEST-UP[^\n]*\n", BOOT_TIMEOUT)
    check(b"VIREO-NET-UP" in vm.output, "no network: %r" % vm.output[-300:])
    vm.expect(r"vireo# ", 60)
    sh = shell(vm)
    sh.sh("stty -echo")
    return vm, sh


def same_ram(q, dq):
    """The source (stopped by the migration) and the destination (waiting,
    -S) hold the same guest RAM, 1 MiB chunk by chunk. Where they do not,
    the pages that differ, and how (QEMU's pmemsave of each side)."""
    a, b = q.cmd("query-vireo-ram-digest"), dq.cmd("query-vireo-ram-digest")
    diff = [i for i, (x, y) in enumerate(zip(a["crc32"], b["crc32"])) if x != y]
    if len(a["crc32"]) == len(b["crc32"]) and not diff:
        return
    detail = []
    for mib in diff[:2]:
        args = {"offset": mib << 20, "length": 1 << 20, "chunk-size": 4096}
        pa, pb = q.cmd("query-vireo-ram-digest", args), dq.cmd("query-vireo-ram-digest", args)
        pages = [i for i, (x, y) in enumerate(zip(pa["crc32"], pb["crc32"])) if x != y]
        for pg in pages[:3]:
            addr = (mib << 20) + pg * 4096
            fa, fb = fresh_socket_path("pa"), fresh_socket_path("pb")
            q.cmd("pmemsave", {"val": addr, "size": 4096, "filename": fa})
            dq.cmd("pmemsave", {"val": addr, "size": 4096, "filename": fb})
            with open(fa, "rb") as f:
                sa = f.read()
            with open(fb, "rb") as f:
                sb = f.read()
            os.unlink(fa)
            os.unlink(fb)
            offs = [i for i in range(4096) if sa[i] != sb[i]]
            # What the source's migration did with it: the pass that sent
            # it last, which tracker reported it for that pass.
            log = q.cmd("query-vireo-migration-pages", {"offset": addr})
            detail.append("page 0x%x: %d bytes differ at 0x%x..0x%x; source %s destination %s%s; "
                          "sent last by pass %d of %d for %s" % (
                              addr, len(offs), offs[0], offs[-1], sa[offs[0]:offs[0] + 16].hex(),
                              sb[offs[0]:offs[0] + 16].hex(),
                              " (destination page zero)" if not any(sb) else "",
                              log["pages"][0]["pass"], log["passes"],
                              log["pages"][0]["sent-for"] or "the first pass (all pages)"))
        detail.append("MiB %d: %d pages differ: %s" % (mib, len(pages), [hex((mib << 20) + p * 4096)
                                                                      for p in pages[:8]]))
    check(False, "guest RAM differs after the migration in %d MiB chunks %s: %s" % (
        len(diff), diff[:8], "; ".join(detail)))


def migrate(src, q, disk, console, params=None, during=None):
    """Migrates src to a new vireo; pumps both consoles meanwhile; calls
    during(query-migrate) while it runs. Returns (destination, its QMP
    path, query-migrate, throttle percentages seen)."""
    port = free_port()
    qpath = fresh_socket_path("mig%d" % next(SEQ))
    # -S: the destination waits after the migration, so its RAM can be
    # compared with the stopped source's before the guest runs on.
    dst = VM(vm_args(disk, qpath) + ["--incoming", "tcp:127.0.0.1:%d" % port, "-S"],
             linux=False)
    wait_listening(dst, meanwhile=lambda: console.feed(src, 0))
    if params:
        q.cmd("migrate-set-parameters", params)
    console.follow(src, dst)
    try:
        q.cmd("migrate", {"uri": "tcp:127.0.0.1:%d" % port})
        throttles = set()
        deadline = time.monotonic() + 600
        while True:
            time.sleep(0.05)
            info = q.cmd("query-migrate")
            if "cpu-throttle-percentage" in info:
                throttles.add(info["cpu-throttle-percentage"])
            if info["status"] not in ("setup", "active"):
                break
            if during:
                during(info)
            check(time.monotonic() < deadline, "migration still %r" % info)
        check(info["status"] == "completed", "query-migrate %r; source stderr %r; destination "
              "%r" % (info, src.stderr[-300:], dst.stderr[-300:]))
        held = time.monotonic()
        check(q.cmd("query-status")["status"] == "postmigrate", "source not in postmigrate")
        dq = QMP(qpath)
        same_ram(q, dq)
        dq.cmd("cont")
        # From the completion seen (up to one poll, 50 ms, after it came)
        # to the guest let go: the comparison's time, some 2 s, which the
        # heartbeat gap counted as downtime until 2026-12-05.
        console.held(held, time.monotonic())
        dq.close()
        time.sleep(2)
    finally:
        console.stop()
    return dst, qpath, info, throttles


def wget_check(sh, size, when):
    """wget fetches size random bytes from a host listener via 10.0.2.2."""
    data = os.urandom(size)
    blob = HttpBlob(data)
    try:
        sh.ok("wget -q -O /tmp/blob http://10.0.2.2:%d/blob" % blob.port, 180)
        got = sh.ok("sha256sum /tmp/blob").split()[0]
    finally:
        blob.close()
    check(got == hashlib.sha256(data).hexdigest(), "wget %s: wrong bytes" % when)


OTHER_MAC = "52:54:00:ab:cd:ef"


def leased(sh):
    """The address the DHCP server leases to eth0's MAC now; udhcpc's
    script only prints it (eth0 keeps its address)."""
    out = sh.ok("udhcpc -i eth0 -n -q -t 4 -T 1 -s /tmp/lease.sh 2>/dev/null", 60)
    m = re.search(r"LEASE (\S+)", out)
    check(m, "no DHCP lease: %r" % out[-300:])
    return m.group(1)


def dhcp_after_migration(sh):
    """libslirp's lease table came with the VM: the guest's MAC renews to
    10.0.2.15, and another MAC (eth0's changed for a moment) is offered
    10.0.2.16, where a fresh table would have given it 10.0.2.15 and the
    guest then 10.0.2.16."""
    sh.ok(r"""printf '#!/bin/sh\n[ "$1" = bound ] && echo LEASE $ip\nexit 0\n' >/tmp/lease.sh; """
          "chmod +x /tmp/lease.sh")
    mac = sh.ok("cat /sys/class/net/eth0/address").strip()
    sh.ok("ip link set eth0 address " + OTHER_MAC)
    try:
        other = leased(sh)
    finally:
        # The stack may have learnt the other MAC for 10.0.2.15: the
        # guest's next ARP request puts its own back.
        sh.ok("ip link set eth0 address %s && ip neigh flush dev eth0" % mac)
    own = leased(sh)
    check(other == "10.0.2.16" and own == "10.0.2.15",
          "after the migration another MAC was leased %s, the guest %s (want 10.0.2.16, "
          "10.0.2.15: the lease table was not carried)" % (other, own))
    addr = sh.ok("ip -4 -o addr show dev eth0")
    check("inet 10.0.2.15/" in addr, "eth0's address changed: %s" % addr)


def finish_source(src, q):
    q.cmd("quit")
    check(src.wait(60) == 0, "source exit status %s" % src.proc.returncode)
    q.close()


def test_live_migration(tmp):
    disk = os.path.join(tmp, "mig.img")
    with open(disk, "wb") as f:
        f.truncate(BLOCKS * 512)
    path = fresh_socket_path("src")
    src, sh = boot(disk, path)
    q = QMP(path)
    wget_check(sh, 64 << 10, "before the migration")
    start_counter(sh)
    start_writer(sh)
    # 16 MiB of random bytes, every word changed each pass, at 100 MiB/s:
    # a working set that fits the downtime limit. Zeros written over zeros
    # (the dd loop this was until 2026-12-07) cost a VMM nothing to send.
    sh.detach("%s 16 100 /tmp/dirtyn </dev/null >/dev/null 2>&1" % DIRTIER)
    before = read_counter(sh)
    console = Console()
    sh.detach("(%s) >/dev/ttyS0 2>&1" % HEARTBEAT)
    time.sleep(2)
    dst, qpath, info, _ = migrate(src, q, disk, console, {"downtime-limit": 300})
    q_pages = q.cmd("query-vireo-migration-pages")["last-sent-by"][1:]
    finish_source(src, q)
    gap, usual = console.check_continuous()
    sh = shell(dst)
    sh.ok("touch /tmp/hb-stop; sleep 1")
    after = counter_advances(sh, before, "across the migration")
    counter_advances(sh, after, "after the migration")
    dhcp_after_migration(sh)
    dirtied = passes_of(sh, "/tmp/dirtyn")
    check(dirtied > 0, "the dirtier never finished a pass")
    # Pages sent again after the first pass: the vCPUs' (the dirtier's)
    # through KVM's log, and the devices' (disk reads, received packets,
    # used rings) through Vireo's own marks.
    by = q_pages[1:]
    check(sum(p["kvm-dirty-log"] for p in by) > 0 and sum(p["vireo-writes"] for p in by) > 0,
          "after the first pass no page came from one of the trackers: %r" % by)
    finish_and_verify(sh, disk, "migration")  # powers the guest off
    ram = info["ram"]
    return ("downtime %d ms reported, largest heartbeat gap %.0f ms %s (median %.0f; limit 300; "
            "the %.0f ms the test held the destination for its RAM comparison left out); "
            "total %d ms, %.1f MiB sent, %d passes; the dirtier rewrote its 16 MiB %d times; "
            "pages sent last by each pass after the first (for KVM's log/Vireo's writes) %s" % (
                info["downtime"], gap * 1000, console.largest_where(), usual * 1000,
                console.held_ms(), info["total-time"], ram["transferred"] / 2**20,
                ram["dirty-sync-count"], dirtied,
                ["%d (%d/%d)" % (p["pages"], p["kvm-dirty-log"], p["vireo-writes"]) for p in by]))


def test_back_and_forth(tmp):
    disk = os.path.join(tmp, "hops.img")
    with open(disk, "wb") as f:
        f.truncate(1 << 20)
    path = fresh_socket_path("hop")
    vm, sh = boot(disk, path)
    q = QMP(path)
    console = Console()
    sh.detach("(%s) >/dev/ttyS0 2>&1" % HEARTBEAT)
    time.sleep(1)
    downtimes = []
    for hop in range(10):
        dst, qpath, info, _ = migrate(vm, q, disk, console)
        finish_source(vm, q)
        downtimes.append(info["downtime"])
        vm, q = dst, QMP(qpath)
    gap, usual = console.check_continuous()
    sh = shell(vm)
    sh.ok("touch /tmp/hb-stop; sleep 1")
    sh.ok("echo still here")
    sh.poweroff()
    return ("10 hops, downtimes %s ms, largest heartbeat gap %.0f ms %s (median %.0f; the test's "
            "holds for its RAM comparisons, %.0f ms in all, left out)" % (
                downtimes, gap * 1000, console.largest_where(), usual * 1000, console.held_ms()))


def passes_of(sh, countfile):
    """How many times a vireo-dirtier has rewritten its buffer (its count
    file read whole: see vm.start_counter)."""
    return int(sh.ok(read_whole(countfile) + '; echo $c').split()[-1])


def test_auto_converge(tmp):
    disk = os.path.join(tmp, "ac.img")
    with open(disk, "wb") as f:
        f.truncate(1 << 20)
    path = fresh_socket_path("ac")
    src, sh = boot(disk, path)
    q = QMP(path)
    # 8 MiB of random bytes rewritten as fast as the vCPU goes, far
    # faster than the 4 MiB/s the link is cut to once the first pass (the
    # whole of used RAM, at 16 MiB/s) is done: max-bandwidth changes while
    # the migration runs, as in QEMU. Until 2026-12-07 this was dd from
    # /dev/zero over a tmpfs file: zero pages, which cost nothing to send,
    # so a pass over them was short and the next sync could fit the limit
    # without any throttle (a CI run failed so: 2 passes, 7,700 pages in
    # the second, the guest's 24 MiB rewritten 71 times; the first pass
    # was slowed to 16 MiB/s after an earlier such failure, read then as
    # a starved guest). Big throttle steps, so that it converges in a few
    # passes.
    sh.detach("%s 8 100000 /tmp/hotn </dev/null >/dev/null 2>&1" % DIRTIER)
    sh.ok("sleep 2")
    passes_before = passes_of(sh, "/tmp/hotn")
    console = Console()
    cut = []

    def slow_link(info):
        if not cut and info.get("ram", {}).get("dirty-sync-count", 0) >= 1:
            q.cmd("migrate-set-parameters", {"max-bandwidth": 4 << 20})
            cut.append(True)

    dst, qpath, info, throttles = migrate(
        src, q, disk, console, {"downtime-limit": 100, "max-bandwidth": 16 << 20,
                                "cpu-throttle-initial": 60, "cpu-throttle-increment": 20},
        during=slow_link)
    finish_source(src, q)
    sh = shell(dst)
    if not throttles:
        # Say whether the premise held: a guest starved of CPU (a host
        # overloaded several times over) dirties too little to need it.
        passes = passes_of(sh, "/tmp/hotn") - passes_before
        check(False, "never throttled (link cut to 4 MiB/s after the first pass: %s; the guest "
              "rewrote its 8 MiB %d times from before the migration until now): %r" % (
                  "yes" if cut else "no, the migration ended first", passes, info))
    sh.ok("echo alive")
    dirtied = passes_of(sh, "/tmp/hotn") - passes_before
    sh.poweroff()
    return ("throttled to %s %%, %d passes, %.1f MiB sent, downtime %d ms; the guest rewrote its "
            "8 MiB %d times meanwhile" % (
                sorted(throttles), info["ram"]["dirty-sync-count"],
                info["ram"]["transferred"] / 2**20, info["downtime"], dirtied))


VCAN = "mvcan0"


def can_args(qmp):
    return ["--kernel", KERNEL, "--initrd", TOOLS_INITRD, "--cmdline", "console=ttyS0 quiet",
            "--memory", "256M", "--can", "socketcan=" + VCAN,
            "--qmp", "unix:%s,server=on,wait=off" % qmp]


def test_can_across_migration(tmp):
    """The guest receives a numbered stream from the host's vcan while it
    is migrated: the destination's own SocketCAN socket saw the stream
    (and the source guest's frames) from its start, yet the guest must get
    every number once and in order; what is missing is only what came
    while no VM was running, and the destination counted it as dropped."""
    sender = CanStream(VCAN)
    try:
        path = fresh_socket_path("can%d" % next(SEQ))
        src = VM(can_args(path), linux=False)
        src.expect(r"VIREO-GUEST-UP[^\n]*\n", BOOT_TIMEOUT)
        src.expect(r"vireo# ", 60)
        sh = shell(src)
        sh.sh("stty -echo")
        sh.sh("dmesg -n 1")
        sh.ok("/sbin/ip link set can0 up")
        sender.start()
        sh.detach(GUEST_CANDUMP)
        sh.ok("n=0; while [ ! -s /tmp/rx.txt ] && [ $n -lt 300 ]; do usleep 100000; "
              "n=$((n+1)); done; [ -s /tmp/rx.txt ]", 60)
        time.sleep(1)
        q = QMP(path)
        port = free_port()
        qpath = fresh_socket_path("candst%d" % next(SEQ))
        dst = VM(can_args(qpath) + ["--incoming", "tcp:127.0.0.1:%d" % port], linux=False)
        wait_listening(dst)
        time.sleep(1)  # the destination's socket fills with the stream meanwhile
        q.cmd("migrate", {"uri": "tcp:127.0.0.1:%d" % port})
        deadline = time.monotonic() + 300
        while True:
            info = q.cmd("query-migrate")
            if info["status"] not in ("setup", "active"):
                break
            check(time.monotonic() < deadline, "migration still %r" % info)
            time.sleep(0.05)
        check(info["status"] == "completed", "query-migrate %r" % info)
        finish_source(src, q)
        time.sleep(1)
        sender.stop()
        sh = shell(dst)
        time.sleep(1)
        got = can_received(sh)
        guest_drops = guest_can_drops(sh)
        dq = QMP(qpath)
        dropped = dq.cmd("query-vireo-stats")["devices"]["virtio-can0"]["rx_dropped"]
        dq.close()
        sh.poweroff()
    finally:
        sender.close()
    check(got, "the guest received nothing")
    repeats = [(a, b) for a, b in zip(got, got[1:]) if b <= a]
    check(not repeats, "frames again or out of order: %s" % repeats[:5])
    missing = got[-1] - got[0] + 1 - len(got)
    gaps = [(a, b) for a, b in zip(got, got[1:]) if b != a + 1]
    in_guest = sum(guest_drops)
    check(missing <= dropped + in_guest, "%d frames missing (in %d gap(s) %s), %d counted dropped "
          "by vireo, %d by the guest (its candump socket %d, can0 %d)" % (
              missing, len(gaps), gaps[:3], dropped, in_guest, guest_drops[0], guest_drops[1]))
    check(got[-1] >= len(sender.sent_at) - 10, "the last frames (%d of %d) did not arrive" %
          (got[-1], len(sender.sent_at)))
    return ("%d frames received once each, in order; %d missing in %d gap(s) %s, %d counted "
            "dropped by vireo, %d by the guest" % (len(got), missing, len(gaps), gaps[:3], dropped,
                                                  in_guest))


BRIDGE, TAPS = "mbr0", ("mtap0", "mtap1")
GUEST_MAC = "52:54:00:12:34:aa"


def ip(*args):
    r = subprocess.run(["ip"] + list(args), capture_output=True, timeout=30)
    check(r.returncode == 0, "ip %s: %s" % (" ".join(args), r.stderr.decode(errors="replace")))


def tap_args(tap, qmp):
    return ["--kernel", KERNEL, "--initrd", TOOLS_INITRD, "--cmdline",
            "console=ttyS0 quiet vireo.net=192.168.101.2/24", "--memory", "256M",
            "--net", "tap=%s,mac=%s" % (tap, GUEST_MAC),
            "--qmp", "unix:%s,server=on,wait=off" % qmp]


def test_tap_announce(tmp):
    """Source and destination on two taps of one bridge, as two hosts on
    one switch: after the switch-over the destination sends a RARP from
    the guest's MAC (the bridge moves the MAC to the new port at once),
    and the guest reaches the host through its new tap."""
    for dev in (BRIDGE,) + TAPS:
        subprocess.run(["ip", "link", "del", dev], capture_output=True)
    ip("link", "add", BRIDGE, "type", "bridge")
    try:
        ip("addr", "add", "192.168.101.1/24", "dev", BRIDGE)
        ip("link", "set", BRIDGE, "up")
        for t in TAPS:
            ip("tuntap", "add", "dev", t, "mode", "tap")
            ip("link", "set", t, "master", BRIDGE)
            ip("link", "set", t, "up")
        sniff = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x8035))
        sniff.bind((BRIDGE, 0))
        sniff.settimeout(0.2)
        path = fresh_socket_path("tap%d" % next(SEQ))
        src = VM(tap_args(TAPS[0], path), linux=False)
        src.expect(r"VIREO-GUEST-UP[^\n]*\n", BOOT_TIMEOUT)
        src.expect(r"vireo# ", 60)
        sh = shell(src)
        sh.sh("stty -echo")
        ping = sh.ok("ping -c 2 -W 5 192.168.101.1", 60)
        check(" 0% packet loss" in ping, "ping before: %s" % ping[-300:])
        q = QMP(path)
        while True:  # nothing from before the migration counts
            try:
                sniff.recv(2048)
            except socket.timeout:
                break
        port = free_port()
        qpath = fresh_socket_path("tapdst%d" % next(SEQ))
        dst = VM(tap_args(TAPS[1], qpath) + ["--incoming", "tcp:127.0.0.1:%d" % port],
                 linux=False)
        wait_listening(dst)
        q.cmd("migrate", {"uri": "tcp:127.0.0.1:%d" % port})
        rarp = None
        deadline = time.monotonic() + 60
        while rarp is None and time.monotonic() < deadline:
            try:
                f = sniff.recv(2048)
                if f[6:12] == bytes.fromhex(GUEST_MAC.replace(":", "")) and f[20:22] == b"\0\3":
                    rarp = f
            except socket.timeout:
                pass
        info = q.cmd("query-migrate")
        check(info["status"] == "completed", "query-migrate %r" % info)
        check(rarp is not None, "no RARP from %s on %s after the migration" % (GUEST_MAC, BRIDGE))
        finish_source(src, q)
        sh = shell(dst)
        ping = sh.ok("ping -c 3 -W 5 192.168.101.1", 60)
        check(" 0% packet loss" in ping, "ping after: %s" % ping[-300:])
        sh.poweroff()
        return "RARP from %s seen on the bridge; ping through the new tap" % GUEST_MAC
    finally:
        for dev in TAPS + (BRIDGE,):
            subprocess.run(["ip", "link", "del", dev], capture_output=True)


def main():
    s = Suite()
    with tempfile.TemporaryDirectory() as tmp:
        s.run("migrate (Linux, 2 vCPUs, disk, net, rng): live over TCP while a counter, a disk "
              "writer, a memory dirtier and a console heartbeat run: all go on, blocks verify, "
              "wget before and after, DHCP leases carried (libslirp's state)",
              test_live_migration, tmp)
        s.run("migrate (Linux): back and forth 10 times, the console heartbeat continuous",
              test_back_and_forth, tmp)
        s.run("migrate (Linux): a guest dirtying memory faster than the link converges by "
              "auto-converge", test_auto_converge, tmp)
        if have_vcan():
            s.run("migrate (Linux): CAN from the host's vcan across the migration: every frame "
                  "once and in order, what is missing counted as dropped",
                  test_can_across_migration, tmp)
        else:
            s.skip("migrate (Linux): CAN", "no vcan in this kernel")
        if os.geteuid() == 0 and os.path.exists("/dev/net/tun"):
            s.run("migrate (Linux): tap networking: the destination announces the guest's MAC "
                  "(RARP) and traffic goes on through its own tap", test_tap_announce, tmp)
        else:
            s.skip("migrate (Linux): tap networking", "needs root and /dev/net/tun")
    return s.finish()


if __name__ == "__main__":
    sys.exit(main())
