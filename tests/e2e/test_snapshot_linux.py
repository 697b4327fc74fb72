#!/usr/bin/env python3
"""Snapshot and restore with Debian's kernel on a real KVM. A guest with
2 vCPUs, a disk, user-mode networking (DHCP) and an rng runs a counter
loop and a disk writer (every block fsync'ed); it is saved with QMP
migrate to file:, the source is killed (-9), and a new vireo started with
--incoming goes on: no new boot (uptime continues, and did not count the
time the VM spent saved), the counter goes on from where it was, the
writer finishes and every block verifies, the network fetches a file
from the host, the rng gives bytes."""
import hashlib
import http.server
import os
import socketserver
import sys
import tempfile
import threading
import time

from qmp import QMP, fresh_socket_path
from test_virtio import TOOLS_INITRD
from vm import BOOT_TIMEOUT, KERNEL, VM, GuestShell, Suite, check

BLOCKS = 1000


def vm_args(disk, qmp):
    return ["--kernel", KERNEL, "--initrd", TOOLS_INITRD, "--cmdline",
            "console=ttyS0 quiet vireo.net=dhcp", "--memory", "512M", "--cpus", "2",
            "--disk", "path=%s" % disk, "--net", "user", "--rng",
            "--qmp", "unix:%s,server=on,wait=off" % qmp]


def shell(vm):
    sh = GuestShell()
    sh.vm = vm
    return sh


def counter(sh):
    # The loop rewrites the file: read until there is a value.
    return int(sh.ok('c=; while [ -z "$c" ]; do read -r c </tmp/c; done; echo $c').split()[-1])


def uptime(sh):
    return float(sh.ok("cut -d' ' -f1 /proc/uptime").split()[-1])


def serve(data):
    d = tempfile.mkdtemp()
    with open(os.path.join(d, "blob"), "wb") as f:
        f.write(data)

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *a, **kw):
            super().__init__(*a, directory=d, **kw)

        def log_message(self, *a):
            pass

    httpd = socketserver.TCPServer(("127.0.0.1", 0), Quiet)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    return httpd


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
    httpd = serve(data)
    try:
        sh.ok("wget -q -O /tmp/blob http://10.0.2.2:%d/blob" % httpd.server_address[1], 180)
        got = sh.ok("sha256sum /tmp/blob").split()[0]
    finally:
        httpd.shutdown()
        httpd.server_close()
    check(got == hashlib.sha256(data).hexdigest(), "wget after the %s: wrong bytes" % after)
    sh.ok("dd if=/dev/hwrng of=/dev/null bs=64 count=4 2>/dev/null", 60)
    sh.poweroff()
    with open(disk, "rb") as f:
        img = f.read()
    bad = [n for n in range(BLOCKS) if img[n * 512:n * 512 + 10] != b"blk-%06d" % n]
    check(not bad, "%d of %d blocks wrong, first %s" % (len(bad), BLOCKS, bad[:5]))


def test_snapshot_kill_restore(tmp):
    disk = os.path.join(tmp, "snap.img")
    snap = os.path.join(tmp, "vm.snap")
    with open(disk, "wb") as f:
        f.truncate(BLOCKS * 512)
    path = fresh_socket_path("snap")
    src = VM(vm_args(disk, path), linux=False)
    src.expect(r"VIREO-GUEST-UP[^\n]*\n", BOOT_TIMEOUT)
    check(b"VIREO-NET-UP" in src.output, "no network: %r" % src.output[-300:])
    src.expect(r"vireo# ", 60)
    sh = shell(src)
    sh.sh("stty -echo")
    q = QMP(path)
    sh.detach("(i=0; while :; do i=$((i+1)); echo $i >/tmp/c; done) >/dev/null 2>&1")
    start_writer(sh)
    time.sleep(3)
    before, up_before = counter(sh), uptime(sh)
    t0 = time.monotonic()
    q.cmd("migrate", {"uri": "file:" + snap})
    info = q.cmd("query-migrate")
    check(info["status"] == "completed", "query-migrate %r" % info)
    src.kill()  # -9: nothing of the source survives but the file and the disk
    time.sleep(2)

    dst = VM(vm_args(disk, fresh_socket_path("restored")) + ["--incoming", "file:" + snap],
             linux=False)
    sh = shell(dst)
    after, up_after = counter(sh), uptime(sh)
    wall = time.monotonic() - t0
    check(after >= before, "counter went back from %d to %d" % (before, after))
    check(counter(sh) > after, "the counter loop does not run after the restore")
    check(up_after >= up_before, "uptime went back: %.2f -> %.2f (a new boot?)" % (up_before, up_after))
    # kvmclock carried over, stopped while saved: the guest lost about
    # the 2 s the VM spent as a file, not gained them.
    check(up_after - up_before < wall - 1.5, "guest time ran on while saved: %.2f s in %.2f s" %
          (up_after - up_before, wall))
    finish_and_verify(sh, disk, "restore")
    size = os.stat(snap)
    return "counter %d -> %d, uptime %.1f -> %.1f s over %.1f s; snapshot %.0f MiB on disk of %.0f" % (
        before, after, up_before, up_after, wall, size.st_blocks * 512 / 2**20, size.st_size / 2**20)


def main():
    s = Suite()
    with tempfile.TemporaryDirectory() as tmp:
        s.run("snapshot (Linux, 2 vCPUs, disk, net, rng): migrate to file, kill -9, restore: "
              "counter, disk writer, network and rng go on", test_snapshot_kill_restore, tmp)
    return s.finish()


if __name__ == "__main__":
    sys.exit(main())
