#!/usr/bin/env python3
"""A real Debian 12 (systemd, udev, networkd) booted by vireo from a qcow2
overlay over the cached base image (guest/debian/build), on a real KVM.

The guest must reach multi-user.target with root logged in automatically
on the serial getty (ttyS0), `systemctl is-system-running` must say
"running" (no failed unit), systemd-networkd must get 10.0.2.15 by DHCP
from --net user and fetch a file from a host HTTP server through 10.0.2.2,
/dev/hwrng must be virtio-rng and give bytes. Then a file is written and
synced, `systemctl poweroff` must end vireo with status 0, `qemu-img
check` must find the overlay clean, and the file's blocks (where the guest
says they are) must be allocated in the overlay itself, with the file's
bytes there, while the base image is left untouched. The same again with
the overlay served by qemu-nbd (which reads the qcow2 chain) and vireo's
disk on NBD: the network-storage path under a whole distribution.

Skipped, visibly, when the cached image is missing or out of date:
tests/e2e/run builds it on the host before the nested hosts start
(guest/debian/build)."""
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

from test_virtio import HttpBlob
from vm import BOOT_TIMEOUT, ROOT, VM, GuestShell, Suite, check

BUILD = os.path.join(ROOT, "guest", "debian", "build")
# net.ifnames=0: the NIC stays eth0. With udev renaming it to enp0s2 while
# systemd-networkd (252, Debian 12's) starts, networkd sometimes fails the
# link ("Failed to configure DHCPv4 client: Device or resource busy", the
# link "failed", no address): systemd's issue #24201, seen here once in
# the NBD case's boot. No rename, no race.
CMDLINE = "root=/dev/vda ro console=ttyS0 quiet net.ifnames=0"
PROMPT = r"root@vireo-debian:~# "
# systemd's boot takes 30-60 s in the nested host, more with the other
# nested host busy beside it.
LOGIN_TIMEOUT = max(300.0, BOOT_TIMEOUT * 2.5)


def image_dir():
    """(directory, None) when the cached image is complete and up to date,
    else (None, why)."""
    r = subprocess.run([BUILD, "--check"], capture_output=True, text=True, timeout=60)
    out = (r.stdout or r.stderr).strip()
    return (out, None) if r.returncode == 0 else (None, out)


def vm_args(img, disk):
    return ["--kernel", os.path.join(img, "vmlinuz"), "--initrd", os.path.join(img, "initrd.img"),
            "--disk", disk, "--cmdline", CMDLINE,
            "--net", "user", "--rng", "--memory", "1G", "--cpus", "2"]


class Debian(GuestShell):
    """The image booted to root's shell on ttyS0; self.login: seconds from
    vireo's start to the getty's login prompt."""

    def __init__(self, img, disk):
        self.vm = VM(vm_args(img, disk), linux=False)
        self.vm.expect(r"vireo-debian login: ", LOGIN_TIMEOUT)
        self.login = time.monotonic() - self.vm.start
        m = self.vm.expect(r"vireo-debian login: ([^\r\n]*)\r?\n", 60)
        check(b"automatic login" in m.group(1), "the getty did not log root in: %r" % m.group(0))
        self.vm.expect(PROMPT, 120)
        # Bash on a serial line: no echo of what we type, no bracketed
        # paste sequences around its prompts.
        self.sh("stty -echo; bind 'set enable-bracketed-paste off'")

    def value(self, cmd, timeout=120):
        return self.ok(cmd, timeout).strip()


def qemu_img_json(*args):
    r = subprocess.run(["qemu-img"] + list(args) + ["--output=json"], capture_output=True,
                       text=True, timeout=120)
    check(r.returncode == 0, "qemu-img %s: %s" % (args[0], r.stderr.strip()[-300:]))
    return json.loads(r.stdout)


def extents(filefrag):
    """[(first byte, length)] on the disk from `filefrag -v` (4 KiB
    blocks, which the check below confirms)."""
    m = re.search(r"\((\d+) blocks? of (\d+) bytes\)", filefrag)
    check(m and m.group(2) == "4096", "filefrag: block size not 4096: %r" % filefrag[:200])
    out = []
    for line in filefrag.splitlines():
        e = re.match(r"\s*\d+:\s+\d+\.\.\s*\d+:\s+(\d+)\.\.\s*(\d+):\s+(\d+):", line)
        if e:
            out.append((int(e.group(1)) * 4096, int(e.group(3)) * 4096))
    check(out, "no extents in filefrag's output: %r" % filefrag[-400:])
    return out


def in_overlay(overlay, ranges):
    """The bytes of the disk ranges, read from the overlay file itself
    where qemu-img map says each cluster of them is: every one must be
    data of depth 0 (the overlay, not its backing file)."""
    table = qemu_img_json("map", "-f", "qcow2", overlay)
    data = b""
    with open(overlay, "rb") as f:
        for start, length in ranges:
            pos, end = start, start + length
            while pos < end:
                ent = next((e for e in table if e["start"] <= pos < e["start"] + e["length"]), None)
                check(ent is not None, "qemu-img map has no entry for disk offset %d" % pos)
                check(ent["depth"] == 0 and ent.get("data") and "offset" in ent,
                      "disk offset %d of the file is not data in the overlay: %s" % (pos, ent))
                n = min(end, ent["start"] + ent["length"]) - pos
                f.seek(ent["offset"] + pos - ent["start"])
                data += f.read(n)
                pos += n
    return data


def nbd_server(overlay, sock):
    """qemu-nbd serving the overlay (it reads the qcow2 and its backing
    chain; vireo sees a raw export over a Unix socket), until its one
    client goes."""
    p = subprocess.Popen(["qemu-nbd", "-k", sock, "-f", "qcow2", "--cache=writeback", overlay],
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 30
    while not os.path.exists(sock):
        check(p.poll() is None and time.monotonic() < deadline,
              "qemu-nbd did not start: %r" % (p.stderr.read() if p.poll() is not None else b""))
        time.sleep(0.05)
    return p


def test_boot(img, over_nbd=False):
    base = os.path.join(img, "base.qcow2")
    before = os.stat(base)
    d = tempfile.mkdtemp()
    httpd = nbd = None
    try:
        overlay = os.path.join(d, "overlay.qcow2")
        subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", "-b", base, "-F", "qcow2",
                        overlay], check=True, timeout=60)
        blob = os.urandom(1 << 20)
        httpd = HttpBlob(blob)
        disk = "path=%s,format=qcow2" % overlay
        if over_nbd:
            sock = os.path.join(d, "nbd.sock")
            nbd = nbd_server(overlay, sock)
            disk = "nbd=nbd+unix:///?socket=%s" % sock
        g = Debian(img, disk)
        try:
            # Boot finished, and nothing failed on the way.
            status, state = g.sh("systemctl is-system-running --wait", 300)
            state = state.strip()
            if state != "running":
                failed = g.sh("systemctl --failed --no-legend --plain; "
                              "journalctl -b -p err --no-pager | tail -n 20")[1]
                check(False, "systemctl is-system-running: %r (status %d); failed units and "
                      "errors: %s" % (state, status, failed[-1500:]))
            target = g.value("systemctl is-active multi-user.target")
            check(target == "active", "multi-user.target is %r" % target)
            # DHCP through systemd-networkd (it may still be at it).
            deadline = time.monotonic() + 90
            while True:
                addr = g.value("ip -4 -o addr show scope global | awk '{print $2, $4}'")
                if addr or time.monotonic() > deadline:
                    break
                time.sleep(2)
            if not addr:
                check(False, "no IPv4 address by DHCP within 90 s; networkctl: %s" %
                      g.sh("networkctl --no-pager; networkctl status --no-pager -n 10")[1][-1200:])
            route = g.value("ip -4 route show default | awk '{print $3}'")
            dns = g.value("resolvectl dns | awk -F': ' '/^Link/ {print $2}'")
            # A fetch from a host listener on 127.0.0.1, through libslirp.
            got = g.value("wget -q -O /tmp/blob http://10.0.2.2:%d/blob && "
                          "sha256sum /tmp/blob | cut -d' ' -f1" % httpd.port, 180)
            # Entropy from virtio-rng.
            rng = g.value("cat /sys/class/misc/hw_random/rng_current")
            a = g.value("head -c 64 /dev/hwrng | od -An -tx1 | tr -d ' \\n'", 60)
            b = g.value("head -c 64 /dev/hwrng | od -An -tx1 | tr -d ' \\n'", 60)
            # A file on the root file system, synced; where its blocks are.
            sha = g.value("head -c 262144 /dev/urandom >/root/vireo-e2e.bin && sync && "
                          "sha256sum /root/vireo-e2e.bin | cut -d' ' -f1")
            frag = g.ok("filefrag -v /root/vireo-e2e.bin")
            root_dev = g.value("findmnt -n -o SOURCE,FSTYPE /")
            t_off = time.monotonic()
            g.vm.send("systemctl poweroff\n")
            rc = g.vm.wait(180)
            t_off = time.monotonic() - t_off
            check(rc == 0, "vireo exit status %d after systemctl poweroff; stderr %r" %
                  (rc, g.vm.stderr_tail()))
        finally:
            g.vm.kill()
        if nbd:
            # Its client gone, qemu-nbd flushes the overlay and exits.
            check(nbd.wait(60) == 0, "qemu-nbd: status %s: %r" % (nbd.returncode, nbd.stderr.read()))
        check(root_dev.split() == ["/dev/vda", "ext4"], "root file system: %r" % root_dev)
        check(addr.split()[1:] == ["10.0.2.15/24"], "DHCP address: %r, expected 10.0.2.15/24" % addr)
        check(route == "10.0.2.2", "default route via %r" % route)
        check(dns == "10.0.2.3", "DNS server from DHCP: %r" % dns)
        check(got == hashlib.sha256(blob).hexdigest(), "wget from the host: sha256 %s" % got)
        check(rng.startswith("virtio_rng"), "rng_current is %r" % rng)
        check(len(a) == 128 and len(b) == 128 and a != b and a != "0" * 128,
              "/dev/hwrng reads: %r / %r" % (a, b))

        # The overlay after the guest's clean poweroff.
        r = subprocess.run(["qemu-img", "check", overlay], capture_output=True, text=True, timeout=300)
        check(r.returncode == 0 and "No errors were found" in r.stdout,
              "qemu-img check of the overlay: status %d: %s" % (r.returncode, (r.stdout + r.stderr)[-500:]))
        info = qemu_img_json("info", overlay)
        check(info.get("backing-filename") == base, "overlay's backing file: %r" % info.get("backing-filename"))
        data = in_overlay(overlay, extents(frag))
        check(len(data) >= 262144 and hashlib.sha256(data[:262144]).hexdigest() == sha,
              "the file's blocks in the overlay do not hold what the guest wrote "
              "(%d bytes read, sha256 %s, the guest's %s)" %
              (len(data), hashlib.sha256(data[:262144]).hexdigest(), sha))
        after = os.stat(base)
        check((after.st_size, after.st_mtime_ns) == (before.st_size, before.st_mtime_ns),
              "the base image changed (size or mtime)")
        used = os.stat(overlay).st_blocks * 512
    finally:
        if httpd:
            httpd.close()
        if nbd and nbd.poll() is None:
            nbd.kill()
            nbd.wait()
        shutil.rmtree(d, ignore_errors=True)
    return ("login prompt after %.1f s; %s; %s DHCP 10.0.2.15 via 10.0.2.2, wget 1 MiB from "
            "the host; %s gives bytes; 256 KiB written, poweroff in %.1f s -> 0; overlay clean, "
            "%.1f MiB, holds the file's %d extent(s)" % (
                g.login, state, addr.split()[0], rng, t_off, used / 2**20, len(extents(frag))))


def main():
    s = Suite()
    tests = (
        ("debian: Debian 12 on a qcow2 overlay: systemd to a serial login, DHCP, wget, rng, "
         "file kept in the overlay, systemctl poweroff -> 0", False),
        ("debian: the same over NBD (qemu-nbd serving the overlay): systemd to a serial "
         "login, DHCP, wget, rng, file kept in the overlay, poweroff -> 0", True),
    )
    img, why = image_dir()
    for name, over_nbd in tests:
        if img is None:
            s.skip(name, "no usable Debian image (%s): guest/debian/build makes it once per "
                   "machine; tests/e2e/run runs it before the nested hosts" % why)
        elif s.selected(name):
            s.run(name, test_boot, img, over_nbd)
    return s.finish()


if __name__ == "__main__":
    sys.exit(main())
