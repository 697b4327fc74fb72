#!/usr/bin/env python3
"""Snapshots with the tiny guests (any KVM, this machine's PVM included).
The count guest keeps a counter in RAM and prints it for each byte typed:
a VM saved after 3 and restored must print 4, from RAM, registers and the
UART as they were. QMP migrate to file: leaves the VM paused
(postmigrate) until cont; vireo ctl snapshot lets it run on; one snapshot
restored twice gives two clones; a VM of another shape and damaged or
foreign files are refused with one line and a non-zero status, never a
crash (this runs under ASan/UBSan); a migrate that fails leaves the VM
running and no file behind."""
import json
import os
import subprocess
import sys
import time

from qmp import QMP, fresh_socket_path
from test_tiny import tiny
from vm import VIREO, Suite, check


def start(mode, *args):
    path = fresh_socket_path(mode)
    vm = tiny(mode, "--qmp", "unix:%s,server=on,wait=off" % path, *args)
    return vm, path, QMP(path)


def count_to(vm, n, last):
    """Types n bytes; the guest's counter must go from last to last + n."""
    vm.send("n" * n)
    vm.expect("%04X\n" % (last + n), 30)


def restore(snap, *args):
    return tiny("count", "--incoming", "file:" + snap, *args)


def refused(args, words):
    r = subprocess.run([VIREO] + args, capture_output=True, timeout=60, stdin=subprocess.DEVNULL)
    lines = r.stderr.decode(errors="replace").strip().splitlines()
    check(r.returncode != 0, "%s: exit status 0" % args)
    check(len(lines) == 1, "%s: not one line: %r" % (args, lines))
    for w in words:
        check(w in lines[0], "%s: %r lacks %r" % (args, lines[0], w))
    check(b"Sanitizer" not in r.stderr and r.returncode < 128, "crashed: %r" % r.stderr[-300:])


def test_migrate_and_restore(tmp):
    snap = os.path.join(tmp, "count.snap")
    vm, path, q = start("count")
    vm.expect("tiny count up", 30)
    count_to(vm, 3, 0)
    check(q.cmd("query-migrate") == {}, "query-migrate before any")
    q.cmd("migrate", {"uri": "file:" + snap})
    names = [e["event"] for e in q.events]
    check(names == ["STOP", "MIGRATION", "MIGRATION", "MIGRATION"], "events %s" % names)
    check([e["data"]["status"] for e in q.events[1:]] == ["setup", "active", "completed"],
          "MIGRATION statuses")
    check(q.cmd("query-status")["status"] == "postmigrate", "status after migrate")
    digest = q.cmd("query-vireo-ram-digest")
    info = q.cmd("query-migrate")
    check(info["status"] == "completed" and info["ram"]["total"] == 32 << 20, "query-migrate %r" % info)
    # Paused: input waits; cont runs the source on from where it was.
    vm.send("n")
    time.sleep(1)
    vm._pump(0)
    check(b"0004" not in vm.output, "the guest ran after migrate")
    q.cmd("cont")
    vm.expect("0004\n", 30)
    q.cmd("quit")
    check(vm.wait(30) == 0, "source exit status")
    check(not [f for f in os.listdir(tmp) if ".tmp-" in f], "temporary file left")
    st = os.stat(snap)
    check(st.st_mode & 0o777 == 0o600, "snapshot mode %o (it holds guest memory)" % st.st_mode)
    check(st.st_blocks * 512 < st.st_size // 4, "untouched RAM was written, not left as holes")
    # The restored VM is the one saved: its RAM to the byte (the file's
    # pages, its holes reading as zeroes), and its next count is 4 again.
    rpath = fresh_socket_path("restored")
    r = restore(snap, "-S", "--qmp", "unix:%s,server=on,wait=off" % rpath)
    rq = QMP(rpath)
    check(rq.cmd("query-vireo-ram-digest") == digest, "restored RAM differs from the saved VM's")
    rq.cmd("cont")
    count_to(r, 1, 3)
    count_to(r, 2, 4)
    r.send("q")
    check(r.wait(30) == 0, "restored VM's exit status")
    check(b"restored from" in r.stderr, "stderr %r" % r.stderr[-200:])


def test_reset_after_restore(tmp):
    """A restored VM has not loaded its kernel (the snapshot's RAM replaces
    it): a system reset must load it and enter it afresh, and --stats-json
    says how it came."""
    snap = os.path.join(tmp, "reset.snap")
    vm, path, q = start("count", "--cpus", "2")
    vm.expect("tiny count up", 30)
    count_to(vm, 3, 0)
    q.cmd("migrate", {"uri": "file:" + snap})
    q.cmd("quit")
    check(vm.wait(30) == 0, "source exit status")
    stats = os.path.join(tmp, "reset-stats.json")
    rpath = fresh_socket_path("restored")
    r = restore(snap, "--cpus", "2", "--qmp", "unix:%s,server=on,wait=off" % rpath,
                "--stats-json", stats)
    count_to(r, 1, 3)
    q2 = QMP(rpath)
    q2.cmd("system_reset")
    r.expect("tiny count up", 30)
    count_to(r, 2, 0)  # a new boot counts from zero
    q2.cmd("system_reset")  # and again, from the image loaded by the first
    r.expect(r"(?s)tiny count up.*tiny count up", 30)
    r.send("q")
    check(r.wait(30) == 0, "exit status after the resets")
    with open(stats) as f:
        st = json.load(f)
    check(st["system_resets"] == 2, "system_resets %r" % st.get("system_resets"))
    check(st["boot_path"] == "bzimage", "boot_path after a reset %r" % st["boot_path"])


def test_ctl_snapshot_runs_on_and_clones(tmp):
    snap = os.path.join(tmp, "ctl.snap")
    vm, path, q = start("count", "--cpus", "2", "--rng")
    vm.expect("tiny count up", 30)
    count_to(vm, 5, 0)
    q.close()  # the socket serves one client at a time
    r = subprocess.run([VIREO, "ctl", path, "snapshot", snap], capture_output=True, timeout=60)
    check(r.returncode == 0, "ctl snapshot: %r" % r.stderr)
    q = QMP(path)
    check(q.cmd("query-status")["status"] == "running", "not running after ctl snapshot")
    count_to(vm, 1, 5)  # the source goes on
    q.cmd("quit")
    check(vm.wait(30) == 0, "exit status")
    # Two clones of one snapshot, side by side: each goes on from 5.
    a = restore(snap, "--cpus", "2", "--rng")
    b = restore(snap, "--cpus", "2", "--rng")
    count_to(a, 1, 5)
    count_to(b, 3, 5)
    count_to(a, 1, 6)
    for c in (a, b):
        c.send("q")
        check(c.wait(30) == 0, "clone exit status")
    # Another machine refuses it, saying how to start the right one.
    kernel = restore_kernel()
    refused(["--kernel", kernel, "--memory", "32M", "--cpus", "1", "--rng", "--incoming",
             "file:" + snap], ["2 vCPUs", "--cpus 2"])
    refused(["--kernel", kernel, "--memory", "64M", "--cpus", "2", "--rng", "--incoming",
             "file:" + snap], ["32M", "--memory 32M"])
    refused(["--kernel", kernel, "--memory", "32M", "--cpus", "2", "--incoming",
             "file:" + snap], ["same device options"])


def restore_kernel():
    from test_tiny import TINY
    return os.path.join(TINY, "count.bzImage")


def test_damaged_files(tmp):
    snap = os.path.join(tmp, "good.snap")
    vm, path, q = start("count")
    vm.expect("tiny count up", 30)
    q.cmd("migrate", {"uri": "file:" + snap})
    q.cmd("quit")
    vm.wait(30)
    data = open(snap, "rb").read()
    kernel = restore_kernel()

    def with_bytes(name, content, words):
        p = os.path.join(tmp, name)
        with open(p, "wb") as f:
            f.write(content)
        refused(["--kernel", kernel, "--memory", "32M", "--incoming", "file:" + p], words)

    with_bytes("empty", b"", ["not a Vireo snapshot"])
    with_bytes("text", b"hello\n" * 1000, ["not a Vireo snapshot"])
    with_bytes("truncated", data[:len(data) // 2], ["truncated"])
    with_bytes("header-flip", data[:20] + bytes([data[20] ^ 1]) + data[21:], ["damaged"])
    # A byte inside the first section (the machine's), past the header.
    with_bytes("section-flip", data[:4096] + bytes([data[4096] ^ 0x40]) + data[4097:],
               ["checksum"])
    newer = bytearray(data)
    newer[8] = 99
    with_bytes("version", bytes(newer), ["version 99"])
    refused(["--kernel", kernel, "--incoming", "file:" + os.path.join(tmp, "nonexistent")],
            ["cannot open"])
    refused(["--kernel", kernel, "--incoming", "udp:localhost:4444"], ["file:PATH", "tcp:ADDR:PORT"])
    refused(["--kernel", kernel, "--incoming", "file:"], ["file:PATH"])


def test_failed_migrate_keeps_running(tmp):
    vm, path, q = start("count")
    vm.expect("tiny count up", 30)
    count_to(vm, 1, 0)
    bad = os.path.join(tmp, "no-such-dir", "x.snap")
    reply = q.execute("migrate", {"uri": "file:" + bad})
    check("error" in reply and "no-such-dir" in reply["error"]["desc"], "reply %r" % reply)
    check(q.cmd("query-status")["status"] == "running", "not running after a failed migrate")
    check(q.cmd("query-migrate")["status"] == "failed", "query-migrate after failure")
    names = [e["event"] for e in q.events]
    check(names[-1] == "RESUME" and "failed" in [e["data"].get("status") for e in q.events
                                                   if e["event"] == "MIGRATION"], "events %s" % names)
    reply = q.execute("migrate", {"uri": "tcp:127.0.0.1:4444"})
    check("error" in reply, "tcp: accepted")
    count_to(vm, 1, 1)
    vm.send("q")
    check(vm.wait(30) == 0, "exit status")


def main():
    import tempfile
    s = Suite()
    with tempfile.TemporaryDirectory() as tmp:
        s.run("snapshot: migrate to file:, postmigrate until cont, restore goes on from the "
              "saved count", test_migrate_and_restore, tmp)
        s.run("snapshot: a restored VM's system_reset loads and boots its kernel afresh",
              test_reset_after_restore, tmp)
        s.run("snapshot: vireo ctl snapshot (2 vCPUs, rng) runs on; two clones; other "
              "machines refused", test_ctl_snapshot_runs_on_and_clones, tmp)
        s.run("snapshot: damaged, truncated, foreign files refused with one line",
              test_damaged_files, tmp)
        s.run("snapshot: a failed migrate leaves the VM running, no file", test_failed_migrate_keeps_running,
              tmp)
    return s.finish()


if __name__ == "__main__":
    sys.exit(main())
