#!/usr/bin/env python3
"""Snapshot and restore with Debian's kernel on a real KVM. A guest with
2 vCPUs, a disk, user-mode networking (DHCP) and an rng runs a counter
loop and a disk writer (every block fsync'ed); it is saved with QMP
migrate to file:, the source is killed (-9), and a new vireo started with
--incoming goes on: no new boot (uptime continues, and did not count the
time the VM spent saved), the counter goes on from where it was, the
writer finishes and every block verifies, the network fetches a file
from the host, the rng gives bytes. Where the kernel has vcan, the same
guest also receives a numbered CAN stream from the host throughout: each
frame arrives once and in order, and every frame missing was sent while
no VM was attached to the bus (from the snapshot until the restored
vireo had opened its socket) or was counted lost."""
import hashlib
import os
import re
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time

from qmp import QMP, fresh_socket_path
from test_virtio import TOOLS_INITRD, HttpBlob
from vm import (BOOT_TIMEOUT, KERNEL, VM, GuestShell, Suite, check, counter_advances,
                read_counter, start_counter)

BLOCKS = 1000


VCAN = "svcan0"


def vm_args(disk, qmp, can=False):
    return ["--kernel", KERNEL, "--initrd", TOOLS_INITRD, "--cmdline",
            "console=ttyS0 quiet vireo.net=dhcp", "--memory", "512M", "--cpus", "2",
            "--disk", "path=%s" % disk, "--net", "user", "--rng",
            "--qmp", "unix:%s,server=on,wait=off" % qmp] + (
                ["--can", "socketcan=" + VCAN] if can else [])


def have_vcan():
    # modprobe fails where vcan is there already (the nested host loads
    # it at its start).
    return hasattr(socket, "AF_CAN") and (subprocess.run(
        ["modprobe", "vcan"], capture_output=True).returncode == 0 or
        os.path.isdir("/sys/module/vcan"))


class CanStream(threading.Thread):
    """Frames with a 32-bit sequence number on the host's vcan, one every
    2 ms until stopped; self.sent_at[n]: when frame n was sent."""

    def __init__(self, dev=VCAN):
        super().__init__(daemon=True)
        self.dev = dev
        subprocess.run(["ip", "link", "del", dev], capture_output=True)
        for cmd in (["add", "dev", dev, "type", "vcan"], ["set", dev, "up"]):
            subprocess.run(["ip", "link"] + cmd, check=True, capture_output=True)
        self.sock = socket.socket(socket.AF_CAN, socket.SOCK_RAW, socket.CAN_RAW)
        self.sock.bind((dev,))
        self.sent_at = []
        self.stopped = False

    def run(self):
        while not self.stopped:
            self.sock.send(struct.pack("=IB3x8s", 0x123, 4, struct.pack(">I", len(self.sent_at))))
            self.sent_at.append(time.monotonic())
            time.sleep(0.002)

    def stop(self):
        """No more frames (the vcan stays, with the VMs on it)."""
        self.stopped = True
        if self.is_alive():
            self.join()

    def close(self):
        self.stop()
        self.sock.close()
        subprocess.run(["ip", "link", "del", self.dev], capture_output=True)


# The guest's candump: -d reports frames its socket dropped ("DROPCOUNT:
# ... (total drops N)"), which the test must tell from frames the device
# lost; -r, a receive buffer large enough that it should not.
GUEST_CANDUMP = "candump -d -r 16000000 -L can0 > /tmp/rx.txt 2>&1"


def guest_can_drops(sh):
    """Frames the guest lost after the device had given them to it: its
    candump socket's drops and can0's rx_dropped (candump stopped)."""
    out = sh.ok("grep -o 'total drops [0-9]*' /tmp/rx.txt | tail -n 1; "
                "cat /sys/class/net/can0/statistics/rx_dropped").split()
    return (int(out[2]) if len(out) == 4 else 0), int(out[-1])


def can_received(sh):
    """Stops the guest's candump; the sequence numbers it received."""
    sh.ok("p=$(pidof candump); kill $p; while [ -e /proc/$p ] && "
          "! grep -q '^State:.*Z' /proc/$p/status 2>/dev/null; do usleep 10000; done; true")
    return [int(m.group(1), 16) for m in (re.search(r" can0 123#([0-9A-F]{8})", l)
                                          for l in sh.ok("cat /tmp/rx.txt").split("\n")) if m]


def check_can(got, stream, detached, attached, lost, guest_drops):
    """Once each, in order; every frame missing was sent while no VM was
    on the bus ([detached, attached]) or was counted lost: by Vireo (lost)
    or by the guest itself (guest_drops: guest_can_drops())."""
    check(got, "the guest received no CAN frame")
    repeats = [(a, b) for a, b in zip(got, got[1:]) if b <= a]
    check(not repeats, "CAN frames again or out of order: %s" % repeats[:5])
    have = set(got)
    missing = [n for n in range(got[0], got[-1] + 1) if n not in have]
    outside = [n for n in missing if not detached <= stream.sent_at[n] <= attached]
    in_guest = sum(guest_drops)
    check(len(outside) <= lost + in_guest,
          "%d CAN frames missing while a VM was attached (first %s, sent %s ms from the "
          "snapshot; the restored VM attached at %.0f ms), %d counted lost by vireo, %d by the "
          "guest (its candump socket %d, can0 %d)" % (
              len(outside), outside[:5],
              ["%.0f" % ((stream.sent_at[n] - detached) * 1e3) for n in outside[:5]],
              (attached - detached) * 1e3, lost, in_guest, guest_drops[0], guest_drops[1]))
    check(got[-1] >= len(stream.sent_at) - 10, "the last CAN frames (%d of %d) did not arrive" %
          (got[-1], len(stream.sent_at)))
    return ("CAN: %d frames once each, in order; %d missing: %d sent while no VM was attached, "
            "%d later but counted (%d lost or dropped by vireo, %d by the guest)" % (
                len(got), len(missing), len(missing) - len(outside), len(outside), lost,
                in_guest))


def shell(vm):
    sh = GuestShell()
    sh.vm = vm
    return sh


def uptime(sh):
    return float(sh.ok("cut -d' ' -f1 /proc/uptime").split()[-1])


def start_writer(sh):
    """The disk writer: BLOCKS blocks, each fsync'ed, then WRITER-DONE
    in /tmp/w."""
    sh.detach("(n=0; while [ $n -lt %d ]; do printf 'blk-%%06d' $n | dd of=/dev/vda bs=512 seek=$n "
              "conv=notrunc,fsync 2>/dev/null; n=$((n+1)); done; echo WRITER-DONE) >/tmp/w 2>&1"
              % BLOCKS)


def finish_and_verify(sh, disk, after):
    """After a restore or a migration: the writer finishes, wget fetches
    1 MiB from a host listener with the right sha256, the rng gives bytes,
    the guest powers off, and every block of the disk verifies."""
    sh.ok("while ! grep -q WRITER-DONE /tmp/w; do sleep 1; done", timeout=900)
    data = os.urandom(1 << 20)
    blob = HttpBlob(data)
    try:
        sh.ok("wget -q -O /tmp/blob http://10.0.2.2:%d/blob" % blob.port, 180)
        got = sh.ok("sha256sum /tmp/blob").split()[0]
    finally:
        blob.close()
    check(got == hashlib.sha256(data).hexdigest(), "wget after the %s: wrong bytes" % after)
    sh.ok("dd if=/dev/hwrng of=/dev/null bs=64 count=4 2>/dev/null", 60)
    sh.poweroff()
    with open(disk, "rb") as f:
        img = f.read()
    bad = [n for n in range(BLOCKS) if img[n * 512:n * 512 + 10] != b"blk-%06d" % n]
    check(not bad, "%d of %d blocks wrong, first %s" % (len(bad), BLOCKS, bad[:5]))


def test_snapshot_kill_restore(tmp, can):
    disk = os.path.join(tmp, "snap.img")
    snap = os.path.join(tmp, "vm.snap")
    with open(disk, "wb") as f:
        f.truncate(BLOCKS * 512)
    path = fresh_socket_path("snap")
    stream = CanStream() if can else None
    try:
        return snapshot_kill_restore(disk, snap, path, stream)
    finally:
        if stream:
            stream.close()


def snapshot_kill_restore(disk, snap, path, stream):
    src = VM(vm_args(disk, path, stream), linux=False)
    src.expect(r"VIREO-GUEST-UP[^\n]*\n", BOOT_TIMEOUT)
    check(b"VIREO-NET-UP" in src.output, "no network: %r" % src.output[-300:])
    src.expect(r"vireo# ", 60)
    sh = shell(src)
    sh.sh("stty -echo")
    q = QMP(path)
    if stream:
        sh.sh("dmesg -n 1")
        sh.ok("/sbin/ip link set can0 up")
        stream.start()
        sh.detach(GUEST_CANDUMP)
        sh.ok("n=0; while [ ! -s /tmp/rx.txt ] && [ $n -lt 300 ]; do usleep 100000; "
              "n=$((n+1)); done; [ -s /tmp/rx.txt ]", 60)
    start_counter(sh)
    start_writer(sh)
    time.sleep(3)
    before, up_before = read_counter(sh), uptime(sh)
    lost = q.cmd("query-vireo-stats")["devices"]["virtio-can0"]["rx_lost"] if stream else 0
    t0 = time.monotonic()
    q.cmd("migrate", {"uri": "file:" + snap})
    info = q.cmd("query-migrate")
    check(info["status"] == "completed", "query-migrate %r" % info)
    src.kill()  # -9: nothing of the source survives but the file and the disk
    time.sleep(2)

    rpath = fresh_socket_path("restored")
    dst = VM(vm_args(disk, rpath, stream) + ["--incoming", "file:" + snap], linux=False)
    # Its QMP socket opens after its backends: from then on its SocketCAN
    # socket hears the bus.
    deadline = time.monotonic() + 60
    while not os.path.exists(rpath):
        check(time.monotonic() < deadline and dst.proc.poll() is None,
              "the restored vireo never opened its QMP socket: %r" % dst.stderr[-300:])
        time.sleep(0.005)
    attached = time.monotonic()
    sh = shell(dst)
    after, up_after = read_counter(sh), uptime(sh)
    wall = time.monotonic() - t0
    check(after >= before, "counter went back from %d to %d" % (before, after))
    counter_advances(sh, after, "after the restore")
    check(up_after >= up_before, "uptime went back: %.2f -> %.2f (a new boot?)" % (up_before, up_after))
    # kvmclock carried over, stopped while saved: the guest lost about
    # the 2 s the VM spent as a file, not gained them.
    check(up_after - up_before < wall - 1.5, "guest time ran on while saved: %.2f s in %.2f s" %
          (up_after - up_before, wall))
    can_note = ""
    if stream:
        time.sleep(2)  # the stream goes on into the restored guest
        stream.stop()
        time.sleep(0.5)
        got = can_received(sh)
        guest_drops = guest_can_drops(sh)
        q2 = QMP(rpath)
        st = q2.cmd("query-vireo-stats")["devices"]["virtio-can0"]
        # Lost in the kernel's queue, or dropped by the restored device at
        # its activation (what it heard before then, as after a live
        # migration where the source guest had those frames).
        lost += st["rx_lost"] + st["rx_dropped"]
        q2.close()
        can_note = "; " + check_can(got, stream, t0, attached, lost, guest_drops)
    finish_and_verify(sh, disk, "restore")
    size = os.stat(snap)
    return ("counter %d -> %d, uptime %.1f -> %.1f s over %.1f s; snapshot %.0f MiB on disk of %.0f%s"
            % (before, after, up_before, up_after, wall, size.st_blocks * 512 / 2**20,
               size.st_size / 2**20, can_note))


def main():
    s = Suite()
    with tempfile.TemporaryDirectory() as tmp:
        can = have_vcan()
        s.run("snapshot (Linux, 2 vCPUs, disk, net, rng%s): migrate to file, kill -9, restore: "
              "counter, disk writer, network%s and rng go on" % (
                  ", CAN" if can else "", ", CAN stream" if can else ""),
              test_snapshot_kill_restore, tmp, can)
        if not can:
            s.skip("snapshot (Linux): the CAN stream across the snapshot", "no vcan in this kernel")
    return s.finish()


if __name__ == "__main__":
    sys.exit(main())
