#!/usr/bin/env python3
"""A real Debian 12 (systemd, udev, networkd) booted by vireo from the
cached base image (guest/debian/build), on a real KVM, three times: from a
qcow2 overlay over the base, from the same overlay served by qemu-nbd
(which reads the qcow2 chain; vireo's disk on NBD), and from Ceph RBD (the
base `qemu-img convert`ed into an image of a throwaway single-node cluster,
tests/rbd/cluster; vireo's disk on that image as client.vireo): the
network-storage paths under a whole distribution.

Each time the guest must reach multi-user.target with root logged in
automatically on the serial getty (ttyS0), `systemctl is-system-running`
must say "running" (no failed unit), systemd-networkd must get 10.0.2.15
by DHCP from --net user and fetch a file from a host HTTP server through
10.0.2.2, /dev/hwrng must be virtio-rng and give bytes. Then a file is
written and synced, `systemctl poweroff` must end vireo with status 0, and
the file's blocks (where the guest's filefrag says they are) must hold
its bytes on the storage: for the overlay (file or NBD), `qemu-img check`
must find it clean and the blocks must be allocated in the overlay itself;
for RBD, the image must still be the base's size and those offsets, read
from the cluster through librbd, must hold the bytes. The base image is left untouched.

Skipped, visibly, when the cached image is missing or out of date:
tests/e2e/run builds it on the host before the nested hosts start
(guest/debian/build); the RBD case also when Ceph or QEMU's rbd driver
(qemu-block-extra) is not installed (scripts/deps)."""
import contextlib
import hashlib
import json
import os
import re
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import time

from test_virtio import HttpBlob, ceph_missing, must_run, rbd_cluster
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
# The file the guest writes and syncs, then looked for on the storage.
FILE_BYTES = 256 << 10


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


def holds(data, sha, where):
    check(len(data) >= FILE_BYTES and hashlib.sha256(data[:FILE_BYTES]).hexdigest() == sha,
          "the file's blocks in %s do not hold what the guest wrote (%d bytes read, sha256 %s, "
          "the guest's %s)" % (where, len(data), hashlib.sha256(data[:FILE_BYTES]).hexdigest(), sha))


class Overlay:
    """The disk is a fresh qcow2 overlay over the base, a file. Each kind
    of storage: open() makes it and gives vireo's --disk, check() looks at
    it on the host after the guest's poweroff (the file's disk ranges,
    their sha256) and says what it found, close() undoes open()."""

    def open(self, base, d):
        self.base = base
        self.overlay = os.path.join(d, "overlay.qcow2")
        subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", "-b", base, "-F", "qcow2",
                        self.overlay], check=True, timeout=60)
        return "path=%s,format=qcow2" % self.overlay

    def check(self, ranges, sha):
        r = subprocess.run(["qemu-img", "check", self.overlay], capture_output=True, text=True,
                           timeout=300)
        check(r.returncode == 0 and "No errors were found" in r.stdout,
              "qemu-img check of the overlay: status %d: %s" % (r.returncode, (r.stdout + r.stderr)[-500:]))
        info = qemu_img_json("info", self.overlay)
        check(info.get("backing-filename") == self.base,
              "overlay's backing file: %r" % info.get("backing-filename"))
        holds(in_overlay(self.overlay, ranges), sha, "the overlay")
        return "overlay clean, %.1f MiB, holds the file's %d extent(s)" % (
            os.stat(self.overlay).st_blocks * 512 / 2**20, len(ranges))

    def close(self):
        pass


class OverNbd(Overlay):
    """The overlay served by qemu-nbd (it reads the qcow2 and its backing
    chain; vireo sees a raw export over a Unix socket), until its one
    client goes."""

    nbd = None

    def open(self, base, d):
        super().open(base, d)
        sock = os.path.join(d, "nbd.sock")
        self.nbd = subprocess.Popen(["qemu-nbd", "-k", sock, "-f", "qcow2", "--cache=writeback",
                                     self.overlay], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 30
        while not os.path.exists(sock):
            check(self.nbd.poll() is None and time.monotonic() < deadline, "qemu-nbd did not start: %r" %
                  (self.nbd.stderr.read() if self.nbd.poll() is not None else b""))
            time.sleep(0.05)
        return "nbd=nbd+unix:///?socket=%s" % sock

    def check(self, ranges, sha):
        # Its client gone, qemu-nbd flushes the overlay and exits.
        check(self.nbd.wait(60) == 0, "qemu-nbd: status %s: %r" %
              (self.nbd.returncode, self.nbd.stderr.read()))
        return super().check(ranges, sha)

    def close(self):
        if self.nbd and self.nbd.poll() is None:
            self.nbd.kill()
            self.nbd.wait()


def qemu_rbd_missing():
    """Why qemu-img cannot write to RBD here, or None. Debian's qemu-img
    lists rbd among its formats with or without the driver module
    (qemu-block-extra); only opening an rbd: name tells."""
    if not shutil.which("qemu-img"):
        return "qemu-img is not installed (qemu-utils; scripts/deps)"
    r = subprocess.run(["qemu-img", "info", "rbd:rbd/none:conf=/nonexistent/ceph.conf"],
                       capture_output=True, text=True, timeout=60)
    return ("QEMU has no rbd driver (qemu-block-extra; scripts/deps): %s" % r.stderr.strip()
            if "Unknown protocol" in r.stderr else None)


class Rbd:
    """The base converted into an RBD image (`qemu-img convert -f qcow2 -O
    raw` into rbd:rbd/debian as client.admin) of a throwaway single-node
    cluster; vireo's disk is that image, as client.vireo. The image must
    fit the memstore OSD's 2 GiB of RAM: qemu-img writes only the base's
    data (about 600 MiB of the 2 GiB; the boot adds some 15), not its
    holes. The file the guest wrote is read back from the cluster, range by
    range, through librbd's Python binding: exporting the whole image took
    half a minute in the nested host."""

    def __init__(self):
        self.stack = contextlib.ExitStack()

    def open(self, base, d):
        self.d = d
        self.cdir = os.path.join(d, "ceph")
        t = time.monotonic()
        self.conf = self.stack.enter_context(rbd_cluster(self.cdir))
        self.t_cluster = time.monotonic() - t
        t = time.monotonic()
        must_run(["qemu-img", "convert", "-f", "qcow2", "-O", "raw", base,
                  "rbd:rbd/debian:conf=%s" % self.conf], "qemu-img convert into rbd", 900)
        self.t_convert = time.monotonic() - t
        self.size = qemu_img_json("info", base)["virtual-size"]
        self.used_before = self.store_used()
        return "rbd=rbd/debian,conf=%s,id=vireo" % self.conf

    def store_used(self):
        """Bytes in the memstore OSD (its statfs) and its capacity, from
        its admin socket's `perf dump`, asked here: the `ceph` command
        would start a Python of its own, about 4 s in the nested host.
        The socket's protocol: the command as JSON and a NUL; the answer
        is a 32-bit big-endian length and that much JSON."""
        with socket.socket(socket.AF_UNIX) as s:
            s.settimeout(60)
            s.connect(os.path.join(self.cdir, "run", "osd.0.asok"))
            s.sendall(json.dumps({"prefix": "perf dump"}).encode() + b"\0")
            head = s.recv(4, socket.MSG_WAITALL)
            check(len(head) == 4, "osd.0's admin socket closed without an answer")
            n, = struct.unpack(">I", head)
            body = b""
            while len(body) < n:
                chunk = s.recv(n - len(body))
                check(chunk, "osd.0's admin socket closed after %d of %d bytes" % (len(body), n))
                body += chunk
        osd = json.loads(body)["osd"]
        return osd["stat_bytes_used"], osd["stat_bytes"]

    def read_back(self, ranges):
        """The size of rbd/debian and the bytes of its ranges, read through
        librbd (its Python binding) as client.admin: not through vireo."""
        import rados
        import rbd
        with rados.Rados(conffile=self.conf, name="client.admin") as cluster, \
                cluster.open_ioctx("rbd") as ioctx, \
                rbd.Image(ioctx, "debian", read_only=True) as image:
            return image.size(), b"".join(image.read(start, length) for start, length in ranges)

    def check(self, ranges, sha):
        size, data = self.read_back(ranges)
        check(size == self.size, "rbd/debian is %d bytes, the base %d" % (size, self.size))
        holds(data, sha, "rbd/debian")
        used, total = self.store_used()
        return ("cluster up in %.1f s, qemu-img convert into RBD in %.1f s; the file's %d "
                "extent(s) read back from the cluster by librbd hold it; memstore %.0f MiB "
                "before the boot, %.0f after, of %.0f" % (
                    self.t_cluster, self.t_convert, len(ranges), self.used_before[0] / 2**20,
                    used / 2**20, total / 2**20))

    def close(self):
        self.stack.close()


def test_boot(img, storage):
    """Boots the image with its disk on storage (Overlay, OverNbd, Rbd),
    checks the guest, powers it off, then has storage check what the
    guest wrote; the base image must be left as it was."""
    base = os.path.join(img, "base.qcow2")
    before = os.stat(base)
    d = tempfile.mkdtemp()
    httpd = None
    try:
        disk = storage.open(base, d)
        blob = os.urandom(1 << 20)
        httpd = HttpBlob(blob)
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
            sha = g.value("head -c %d /dev/urandom >/root/vireo-e2e.bin && sync && "
                          "sha256sum /root/vireo-e2e.bin | cut -d' ' -f1" % FILE_BYTES)
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
        check(root_dev.split() == ["/dev/vda", "ext4"], "root file system: %r" % root_dev)
        check(addr.split()[1:] == ["10.0.2.15/24"], "DHCP address: %r, expected 10.0.2.15/24" % addr)
        check(route == "10.0.2.2", "default route via %r" % route)
        check(dns == "10.0.2.3", "DNS server from DHCP: %r" % dns)
        check(got == hashlib.sha256(blob).hexdigest(), "wget from the host: sha256 %s" % got)
        check(rng.startswith("virtio_rng"), "rng_current is %r" % rng)
        check(len(a) == 128 and len(b) == 128 and a != b and a != "0" * 128,
              "/dev/hwrng reads: %r / %r" % (a, b))

        how = storage.check(extents(frag), sha)
        after = os.stat(base)
        check((after.st_size, after.st_mtime_ns) == (before.st_size, before.st_mtime_ns),
              "the base image changed (size or mtime)")
    finally:
        if httpd:
            httpd.close()
        storage.close()
        shutil.rmtree(d, ignore_errors=True)
    return ("login prompt after %.1f s; %s; %s DHCP 10.0.2.15 via 10.0.2.2, wget 1 MiB from "
            "the host; %s gives bytes; 256 KiB written, poweroff in %.1f s -> 0; %s" % (
                g.login, state, addr.split()[0], rng, t_off, how))


def main():
    s = Suite()
    tests = (
        ("debian: Debian 12 on a qcow2 overlay: systemd to a serial login, DHCP, wget, rng, "
         "file kept in the overlay, systemctl poweroff -> 0", Overlay, None),
        ("debian: the same over NBD (qemu-nbd serving the overlay): systemd to a serial "
         "login, DHCP, wget, rng, file kept in the overlay, poweroff -> 0", OverNbd, None),
        ("debian: the same on Ceph RBD (qemu-img convert of the base into a single-node "
         "cluster, client.vireo): systemd to a serial login, DHCP, wget, rng, file in the "
         "image (read back through librbd), poweroff -> 0", Rbd, lambda: ceph_missing() or qemu_rbd_missing()),
    )
    img, why = image_dir()
    for name, storage, missing in tests:
        if img is None:
            why_not = ("no usable Debian image (%s): guest/debian/build makes it once per "
                       "machine; tests/e2e/run runs it before the nested hosts" % why)
        else:
            why_not = missing and missing()
        if why_not:
            s.skip(name, why_not)
        elif s.selected(name):
            s.run(name, test_boot, img, storage())
    return s.finish()


if __name__ == "__main__":
    sys.exit(main())
