#!/usr/bin/env python3
"""The emulated IDE disk (--disk ...,if=ide: a PIIX3 IDE controller) with
Debian's unmodified ata_piix driver: the same data-integrity tests as
virtio-blk's — ext4 with a checksummed file that the host and a second VM
read back, fsync'd data surviving kill -9 — in bus-master DMA, and a raw
round trip in PIO (libata.dma=0), each proven by the controller's own
counters."""
import os
import re
import tempfile
import time

from qmp import QMP, fresh_socket_path
from test_virtio import (MIB, QEMU, TOOLS_INITRD, Guest, check_after_kill, guest_sha, host_extract,
                         qemu_img, random_file, second_vm_reads, sha256_file, start_qemu_nbd,
                         stats_now)
from vm import BOOT_TIMEOUT, KERNEL, VM, GuestShell, Suite, check

SNAP_BLOCKS = 400


def ide_stats(s):
    devs = s.get("devices", {})
    check("piix3-ide" in devs, "no piix3-ide in the stats' devices: %s" % sorted(devs))
    return devs["piix3-ide"]


def test_ext4_roundtrip(d):
    img = os.path.join(d, "ide.img")
    with open(img, "wb") as f:
        f.truncate(256 * MIB)
    stats = os.path.join(d, "stats.json")
    g = Guest(disks=["path=%s,if=ide,serial=vireo-ide" % img], stats_json=stats)
    try:
        size = int(g.value("echo size=$(cat /sys/block/sda/size)", "size"))
        check(size * 512 == 256 * MIB, "guest sees sda of %d sectors, image is 256 MiB" % size)
        model = g.value("echo model=$(cat /sys/block/sda/device/model)", "model")
        check(model.startswith("VIREO HARDDISK"), "sda model %r" % model)
        # libata's transfer mode for the disk (ata1, device 0).
        mode = g.value("echo mode=$(cat /sys/class/ata_device/dev1.0/xfer_mode)", "mode")
        check(mode == "XFER_MW_DMA_2", "libata chose %r, not multiword DMA 2" % mode)
        g.ok("mkfs.ext4 -q -F /dev/sda && mount /dev/sda /mnt", 300)
        g.ok("dd if=/dev/urandom of=/mnt/data bs=1M count=64 2>/dev/null", 600)
        sha = guest_sha(g, "/mnt/data")
        g.ok("echo %s > /mnt/data.sha256 && sync && umount /mnt" % sha, 300)
        # Read it all back through the disk, not the page cache.
        g.ok("echo 3 > /proc/sys/vm/drop_caches; mount /dev/sda /mnt", 120)
        again = guest_sha(g, "/mnt/data")
        g.ok("umount /mnt")
        st = ide_stats(stats_now(g, stats))["ide0"]
        g.poweroff()
    finally:
        g.kill()
    check(again == sha, "read back after drop_caches: %s, written %s" % (again, sha))
    check(st["dma_requests"] > 0 and st["dma_bytes"] >= 128 * MIB,
          "64 MiB written and read back, but the controller moved %d bytes by DMA" % st["dma_bytes"])
    check(st["errors"] == 0, "the controller reported errors: %s" % st)
    out = os.path.join(d, "data.out")
    how = host_extract(img, "/data", out)
    host_sha = sha256_file(out)
    check(host_sha == sha, "host (%s) sha256 %s, guest wrote %s" % (how, host_sha, sha))
    second_vm_reads(["path=%s,if=ide" % img], "/dev/sda", sha)
    return ("%s: 64 MiB on ext4; guest, host (%s) and a second VM agree on sha256 %s...; "
            "%d commands, %d DMA requests (%d MiB), %d interrupts" % (
                mode, how, sha[:12], st["commands"], st["dma_requests"], st["dma_bytes"] // MIB,
                st["interrupts"]))


def test_pio(d):
    """libata.dma=0: PIO, one interrupt per sector. Under KVM each REP
    OUTSW of a sector's 256 words is 256 exits to the VMM (the instruction
    emulator does OUTS one element at a time; INS it reads ahead), so the
    amount is small: 512 KiB written and read back raw."""
    img = os.path.join(d, "pio.img")
    with open(img, "wb") as f:
        f.truncate(16 * MIB)
    stats = os.path.join(d, "stats.json")
    g = Guest(disks=["path=%s,if=ide" % img], cmdline="libata.dma=0", stats_json=stats)
    try:
        mode = g.value("echo mode=$(cat /sys/class/ata_device/dev1.0/xfer_mode)", "mode")
        check(mode.startswith("XFER_PIO"), "libata.dma=0, but libata chose %r" % mode)
        g.ok("head -c 524288 /dev/urandom > /tmp/blob")
        sha = guest_sha(g, "/tmp/blob")
        g.ok("dd if=/tmp/blob of=/dev/sda bs=64k seek=16 oflag=direct conv=fsync 2>&1", 300)
        g.ok("dd if=/dev/sda of=/tmp/back bs=64k skip=16 count=8 iflag=direct 2>&1", 300)
        back = guest_sha(g, "/tmp/back")
        st = ide_stats(stats_now(g, stats))["ide0"]
        g.poweroff()
    finally:
        g.kill()
    check(back == sha, "read back %s, written %s" % (back, sha))
    host = sha256_file(img, MIB, 512 << 10)
    check(host == sha, "the image holds %s at 1 MiB, the guest wrote %s" % (host, sha))
    check(st["dma_requests"] == 0 and st["pio_sectors"] >= 2048, "PIO run: %s" % st)
    check(st["errors"] == 0, "the controller reported errors: %s" % st)
    return "%s: 512 KiB written and read back raw, the image agrees; %d PIO sectors, %d " \
           "interrupts, no DMA" % (mode, st["pio_sectors"], st["interrupts"])


def test_kill9_after_fsync(d):
    """4 MiB written with conv=fsync to each of three IDE disks (primary
    master and slave, secondary master: both channels, IRQs 14 and 15),
    then SIGKILL: the data is in every image, and each FLUSH CACHE reached
    the host as an fdatasync first."""
    imgs = [os.path.join(d, "k%d.img" % i) for i in range(3)]
    for img in imgs:
        with open(img, "wb") as f:
            f.truncate(64 * MIB)
    stats = os.path.join(d, "stats.json")
    g = Guest(disks=["path=%s,if=ide" % i for i in imgs], stats_json=stats)
    try:
        g.ok("head -c 4194304 /dev/urandom > /tmp/blob")
        sha = guest_sha(g, "/tmp/blob")
        before = stats_now(g, stats)
        for dev in "abc":
            g.ok("dd if=/tmp/blob of=/dev/sd%s bs=1M seek=8 conv=fsync 2>&1" % dev, 300)
        after = stats_now(g, stats)
        irqs = g.ok("grep -E ' (14|15): ' /proc/interrupts")
        g.vm.proc.kill()
        g.vm.proc.wait(30)
    finally:
        g.kill()
    check(g.vm.proc.returncode == -9, "vireo status %s" % g.vm.proc.returncode)
    for img in imgs:
        got = sha256_file(img, 8 * MIB, 4 * MIB)
        check(got == sha, "%s holds %s at 8 MiB, the guest fsync'd %s" % (img, got, sha))
    b, a = ide_stats(before), ide_stats(after)
    flushes = sum(a[c]["flushes"] - b[c]["flushes"] for c in ("ide0", "ide1"))
    syncs = [a["disk%d" % i]["fdatasyncs"] - b["disk%d" % i]["fdatasyncs"] for i in range(3)]
    check(all(n >= 1 for n in syncs), "fdatasyncs per disk during the writes: %s" % syncs)
    check(flushes == sum(syncs), "%d FLUSH CACHE answered, %d fdatasyncs" % (flushes, sum(syncs)))
    check(re.search(r" 14: ", irqs) and re.search(r" 15: ", irqs), "IRQs: %r" % irqs)
    return "3 disks (primary master/slave, secondary master): data there after kill -9; " \
           "FLUSH CACHE %d = fdatasyncs %s; %s" % (flushes, syncs, " ".join(irqs.split()))


def test_formats(d):
    """The IDE disk on the block layer's other backends, one of each: a
    qcow2 overlay over a raw base (primary master), a qemu-nbd export
    (primary slave) and a raw file with snapshot=on (secondary master).
    The guest reads the base through the overlay, writes 4 MiB to each
    with conv=fsync and reads them back past its page cache; then vireo
    dies by SIGKILL. The overlay passes qemu-img check (leaks allowed)
    and holds the base's data and the guest's, the base is untouched, the
    export's file holds the guest's data, the snapshot=on file is as it
    was, and its temporary overlay (in $TMPDIR: the nested host's
    /var/tmp is read-only) left nothing behind."""
    base, top = os.path.join(d, "base.raw"), os.path.join(d, "top.qcow2")
    export, sock = os.path.join(d, "export.img"), os.path.join(d, "nbd.sock")
    snap = os.path.join(d, "snap.raw")
    random_file(base, 8 * MIB)
    with open(base, "r+b") as f:
        f.truncate(48 * MIB)
    qemu_img("create", "-q", "-f", "qcow2", "-b", base, "-F", "raw", top, "64M")
    with open(export, "wb") as f:
        f.truncate(64 * MIB)
    random_file(snap, 32 * MIB)
    base_sha, base_all, snap_all = (sha256_file(base, 0, 8 * MIB), sha256_file(base),
                                    sha256_file(snap))
    stats = os.path.join(d, "stats.json")
    srv = start_qemu_nbd(export, sock)
    try:
        g = Guest(disks=["path=%s,format=qcow2,if=ide" % top,
                         "nbd=nbd+unix:///?socket=%s,if=ide" % sock,
                         "path=%s,format=raw,snapshot=on,if=ide" % snap], stats_json=stats,
                  env={"TMPDIR": d})
        try:
            sizes = [int(g.value("echo size=$(cat /sys/block/sd%s/size)" % dev, "size"))
                     for dev in "abc"]
            check(sizes == [64 * MIB // 512, 64 * MIB // 512, 32 * MIB // 512],
                  "the guest sees sda, sdb, sdc of %s sectors" % sizes)
            got = g.value("echo sha=$(dd if=/dev/sda bs=1M count=8 iflag=direct 2>/dev/null | "
                          "sha256sum | cut -d' ' -f1)", "sha")
            check(got == base_sha, "through the overlay the base reads %s, it holds %s" %
                  (got, base_sha))
            g.ok("head -c 4194304 /dev/urandom > /tmp/blob")
            sha = guest_sha(g, "/tmp/blob")
            back = {}
            for dev in "abc":
                g.ok("dd if=/tmp/blob of=/dev/sd%s bs=1M seek=16 conv=fsync 2>&1" % dev, 300)
                back[dev] = g.value("echo sha=$(dd if=/dev/sd%s bs=1M skip=16 count=4 iflag=direct "
                                    "2>/dev/null | sha256sum | cut -d' ' -f1)" % dev, "sha")
            st = ide_stats(stats_now(g, stats))
            g.vm.proc.kill()  # SIGKILL after the fsyncs
            g.vm.proc.wait(30)
        finally:
            g.kill()
    finally:
        srv.kill()
        srv.wait(30)
    check(back == {dev: sha for dev in "abc"}, "read back %s, the guest wrote %s" % (back, sha))
    for ch in ("ide0", "ide1"):
        check(st[ch]["dma_requests"] > 0 and st[ch]["errors"] == 0, "%s: %s" % (ch, st[ch]))
    top_check = check_after_kill(top)
    out = os.path.join(d, "top-out.raw")
    qemu_img("convert", "-O", "raw", top, out)
    check(sha256_file(out, 16 * MIB, 4 * MIB) == sha, "the guest's 4 MiB are not in the overlay")
    check(sha256_file(out, 0, 8 * MIB) == base_sha, "the base's data does not read through the overlay")
    check(sha256_file(base) == base_all, "the base file changed under its overlay")
    check(sha256_file(export, 16 * MIB, 4 * MIB) == sha, "the export lacks what the guest flushed")
    check(sha256_file(snap) == snap_all, "snapshot=on, but the file changed")
    left = sorted(set(os.listdir(d)) - {"base.raw", "top.qcow2", "export.img", "nbd.sock",
                                          "snap.raw", "stats.json", "top-out.raw"})
    check(not left, "after kill -9, %s in TMPDIR besides the test's own files" % left)
    return "qcow2 overlay (qemu-img check %s), qemu-nbd and snapshot=on as IDE disks: 4 MiB " \
           "fsync'd to each and read back, kill -9: each file as it must be; %d + %d DMA " \
           "requests" % (top_check, st["ide0"]["dma_requests"], st["ide1"]["dma_requests"])


def snap_vm(disk, qmp, *extra):
    vm = VM(["--kernel", KERNEL, "--initrd", TOOLS_INITRD, "--cmdline", "console=ttyS0 quiet",
             "--memory", "256M", "--disk", "path=%s,if=ide" % disk,
             "--qmp", "unix:%s,server=on,wait=off" % qmp] + list(extra), linux=False)
    sh = GuestShell()
    sh.vm = vm
    return vm, sh


def test_snapshot_restore(d):
    """The IDE controller's state across a snapshot: a writer fsyncs
    numbered blocks to the IDE disk (DMA, an interrupt each), the VM is
    saved with QMP migrate to file: and killed -9, a new vireo restores it
    and the writer finishes: every block is in the image, in order."""
    disk, snap = os.path.join(d, "snap.img"), os.path.join(d, "vm.snap")
    with open(disk, "wb") as f:
        f.truncate(SNAP_BLOCKS * 512)
    path = fresh_socket_path("ide-snap")
    src, sh = snap_vm(disk, path)
    src.expect(r"VIREO-GUEST-UP[^\n]*\n", BOOT_TIMEOUT)
    src.expect(r"vireo# ", 60)
    sh.sh("stty -echo")
    sh.detach("(n=0; while [ $n -lt %d ]; do printf 'ide-%%06d' $n | dd of=/dev/sda bs=512 seek=$n "
              "conv=notrunc,fsync 2>/dev/null; n=$((n+1)); done; echo WRITER-DONE) >/tmp/w 2>&1"
              % SNAP_BLOCKS)
    time.sleep(2)
    q = QMP(path)
    q.cmd("migrate", {"uri": "file:" + snap})
    info = q.cmd("query-migrate")
    check(info["status"] == "completed", "query-migrate %r" % info)
    q.close()
    src.kill()
    rpath = fresh_socket_path("ide-restored")
    dst, sh = snap_vm(disk, rpath, "--incoming", "file:" + snap)
    try:
        sh.ok("while ! grep -q WRITER-DONE /tmp/w; do sleep 1; done", 600)
        sh.ok("dd if=/dev/sda of=/tmp/back bs=512 count=%d iflag=direct 2>/dev/null" % SNAP_BLOCKS)
        guest_bad = sh.ok("n=0; bad=0; while [ $n -lt %d ]; do "
                          "[ \"$(dd if=/tmp/back bs=512 skip=$n count=1 2>/dev/null | head -c 10)\" = "
                          "\"$(printf 'ide-%%06d' $n)\" ] || bad=$((bad+1)); n=$((n+1)); done; "
                          "echo BAD=$bad" % SNAP_BLOCKS, 300)
        sh.poweroff()
    finally:
        dst.kill()
    with open(disk, "rb") as f:
        img = f.read()
    bad = [n for n in range(SNAP_BLOCKS) if img[n * 512:n * 512 + 10] != b"ide-%06d" % n]
    check(not bad, "%d of %d blocks wrong in the image, first %s" % (len(bad), SNAP_BLOCKS, bad[:5]))
    check("BAD=0" in guest_bad, "the restored guest reads back wrong blocks: %s" % guest_bad[-200:])
    return "%d blocks fsync'd across migrate to file, kill -9 and restore: all in the image " \
           "and read back by the restored guest" % SNAP_BLOCKS


def main():
    s = Suite()
    if not os.path.exists(TOOLS_INITRD):
        s.skip("ide", "%s not built (guest/build)" % TOOLS_INITRD)
        return s.finish()
    if QEMU:
        s.skip("ide", "VIREO_E2E_QEMU: the IDE tests read vireo's own counters")
        return s.finish()

    def run(name, fn, *args):
        if s.selected(name):
            with tempfile.TemporaryDirectory() as d:
                s.run(name, fn, d, *args)

    run("ide: bus-master DMA: mkfs.ext4, 64 MiB + sha256, read back, host and second VM agree",
        test_ext4_roundtrip)
    run("ide: PIO (libata.dma=0): 512 KiB written and read back, the image agrees", test_pio)
    run("ide: fsync'd data on three disks survives kill -9: FLUSH CACHE -> fdatasync",
        test_kill9_after_fsync)
    run("ide: snapshot to file, kill -9, restore: a block writer goes on, every block lands",
        test_snapshot_restore)
    run("ide: on a qcow2 overlay, an NBD export and snapshot=on: fsync'd data, kill -9, "
        "qemu-img check", test_formats)
    return s.finish()


if __name__ == "__main__":
    raise SystemExit(main())
