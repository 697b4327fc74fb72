#!/usr/bin/env python3
"""Live migration over TCP with the tiny guests (any KVM, this machine's
PVM included; run under ASan/UBSan). The count guest keeps a counter in
RAM and prints it for each byte typed: after a migration the destination
must go on from the source's count. Then what must not lose the VM: the
destination killed mid-stream, the connection cut, a byte flipped on the
way, a destination of another shape, migrate_cancel — each time the
source runs on (query-migrate says why) and the destination exits with
one line. A destination fed garbage, a cut or a foreign stream directly
refuses it with one line and never crashes."""
import os
import socket
import struct
import sys
import threading
import time

from qmp import QMP, fresh_socket_path
from test_snapshot import count_to, start
from test_tiny import tiny
from vm import Suite, check


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def destination(*args):
    """A vireo waiting for a migration on a free port: (vm, port)."""
    port = free_port()
    vm = tiny("count", "--incoming", "tcp:127.0.0.1:%d" % port, *args)
    wait_listening(vm)
    return vm, port


def wait_listening(vm, timeout=60, meanwhile=None):
    """Until a vireo started with --incoming tcp: says it listens; calls
    meanwhile() as it waits."""
    deadline = time.monotonic() + timeout
    while b"waiting for the migration" not in vm.stderr:
        check(time.monotonic() < deadline and vm.proc.poll() is None,
              "destination not listening: %r" % vm.stderr[-300:])
        vm._pump(0.1)
        if meanwhile:
            meanwhile()


def wait_migration(q, timeout=60):
    deadline = time.monotonic() + timeout
    while True:
        info = q.cmd("query-migrate")
        if info.get("status") not in ("setup", "active", "cancelling"):
            return info
        check(time.monotonic() < deadline, "migration still %s after %ds" % (info, timeout))
        time.sleep(0.05)


def one_line_exit(vm, words, timeout=60):
    """The destination ended with a non-zero status and its last stderr
    line names the problem."""
    status = vm.wait(timeout)
    lines = [l for l in vm.stderr.decode(errors="replace").strip().splitlines()
             if "waiting for the migration" not in l]
    check(status not in (0,) and status < 128, "destination exit status %s" % status)
    check(b"Sanitizer" not in vm.stderr, "destination crashed: %r" % vm.stderr[-400:])
    check(len(lines) == 1, "destination: not one line: %r" % lines)
    for w in words:
        check(w in lines[0], "destination: %r lacks %r" % (lines[0], w))
    return lines[0]


def source_runs_on(vm, q, last, why):
    info = q.cmd("query-migrate")
    check(info["status"] in why, "query-migrate %r" % info)
    check(q.cmd("query-status")["status"] == "running", "source not running after %s" % info)
    count_to(vm, 1, last)
    return info


def test_migrate_goes_on(tmp):
    src, path, q = start("count", "--cpus", "2", "--rng")
    src.expect("tiny count up", 30)
    count_to(src, 3, 0)
    dpath = fresh_socket_path("dst")
    dst, port = destination("--cpus", "2", "--rng", "--qmp", "unix:%s,server=on,wait=off" % dpath,
                            "-S")
    q.cmd("migrate-set-parameters", {"downtime-limit": 100})
    check(q.cmd("query-migrate-parameters")["downtime-limit"] == 100, "downtime-limit")
    q.cmd("migrate", {"uri": "tcp:127.0.0.1:%d" % port})
    info = wait_migration(q)
    check(info["status"] == "completed", "query-migrate %r" % info)
    for k in ("total-time", "downtime", "setup-time"):
        check(isinstance(info.get(k), int), "query-migrate lacks %s: %r" % (k, info))
    ram = info["ram"]
    check(ram["total"] == 32 << 20 and ram["transferred"] > ram["normal-bytes"] > 0 and
          ram["duplicate"] > 0 and ram["dirty-sync-count"] >= 1, "ram %r" % ram)
    statuses = [e["data"]["status"] for e in q.events if e["event"] == "MIGRATION"]
    check(statuses == ["setup", "active", "completed"], "MIGRATION events %s" % statuses)
    check(q.cmd("query-status")["status"] == "postmigrate", "source not postmigrate")
    # The destination waits (-S) with the source's RAM, to the byte.
    dq = QMP(dpath)
    check(dq.cmd("query-status")["status"] == "prelaunch", "destination not waiting under -S")
    a, b = q.cmd("query-vireo-ram-digest"), dq.cmd("query-vireo-ram-digest")
    check(a["crc32"] == b["crc32"], "guest RAM differs after the migration")
    pages_note = check_page_log(q, dq, ram)
    dq.cmd("cont")
    refused = dq.execute("query-vireo-ram-digest").get("error", {}).get("desc", "")
    check("running" in refused, "a digest of a running VM: %r" % refused)
    # The destination goes on from 3; the source, paused, prints nothing.
    count_to(dst, 2, 3)
    src.send("n")
    time.sleep(0.5)
    src._pump(0)
    check(b"0004" not in src.output, "the source ran after the migration")
    q.cmd("quit")
    check(src.wait(30) == 0, "source exit status")
    # The destination never loaded the kernel (the stream brought its
    # RAM): a reset loads it and boots afresh, counting from zero.
    dq.cmd("system_reset")
    dst.expect("tiny count up", 30)
    count_to(dst, 1, 0)
    dst.send("q")
    check(dst.wait(30) == 0, "destination exit status")
    return "downtime %d ms, total %d ms, %d bytes; %s" % (info["downtime"], info["total-time"],
                                                         ram["transferred"], pages_note)


def check_page_log(q, dq, ram):
    """query-vireo-migration-pages on the source: every page sent by some
    pass, one pass per dirty sync and one more (the first), every page
    sent after the first pass reported by one tracker at least, and the
    summary per pass counting the same. The destination ran no
    migration: refused."""
    refused = dq.execute("query-vireo-migration-pages", {"offset": 0}).get("error", {})
    check("no live migration" in refused.get("desc", ""), "destination's page log: %r" % refused)
    bad = q.execute("query-vireo-migration-pages", {"offset": 4095}).get("error", {})
    check("page-aligned" in bad.get("desc", ""), "unaligned offset: %r" % bad)
    pages, passes = [], None
    for mib in range(ram["total"] >> 20):
        r = q.cmd("query-vireo-migration-pages", {"offset": mib << 20, "length": 1 << 20})
        passes = r["passes"]
        pages += r["pages"]
    check(len(pages) == ram["total"] >> 12, "%d pages listed of %d" % (len(pages), ram["total"] >> 12))
    check(passes == ram["dirty-sync-count"] + 1, "%d passes for %d dirty syncs" % (
        passes, ram["dirty-sync-count"]))
    check(all(1 <= p["pass"] <= passes for p in pages), "a page no pass sent")
    later = [p for p in pages if p["pass"] > 1]
    check(all(p["sent-for"] for p in later), "a page sent again for no reason: %r" % [
        p for p in later if not p["sent-for"]][:3])
    # The summary counts the same.
    summary = q.cmd("query-vireo-migration-pages")["last-sent-by"]
    check([s["pages"] for s in summary] == [sum(p["pass"] == i for p in pages)
                                            for i in range(passes + 1)], "summary %r" % summary)
    return "page log: %d passes, pages sent last by each %s" % (passes, [s["pages"] for s in summary])


def test_disk_handover(tmp):
    disk = os.path.join(tmp, "shared.img")
    with open(disk, "wb") as f:
        f.truncate(1 << 20)
    src, path, q = start("count", "--disk", "path=" + disk)
    src.expect("tiny count up", 30)
    count_to(src, 1, 0)
    # The destination opens the image the source holds, and waits.
    dst, port = destination("--disk", "path=" + disk)
    # And QEMU's "events" capability (libvirt sets it): on by default here,
    # off in QEMU; off, the migration sends no MIGRATION event.
    caps = {c["capability"]: c["state"] for c in q.cmd("query-migrate-capabilities")}
    check(caps == {"auto-converge": True, "events": True}, "capabilities %r" % caps)
    q.cmd("migrate-set-capabilities", {"capabilities": [{"capability": "events", "state": False}]})
    caps = {c["capability"]: c["state"] for c in q.cmd("query-migrate-capabilities")}
    check(caps == {"auto-converge": True, "events": False}, "capabilities %r" % caps)
    q.cmd("migrate", {"uri": "tcp:127.0.0.1:%d" % port})
    info = wait_migration(q)
    check(info["status"] == "completed", "query-migrate %r" % info)
    check(not [e for e in q.events if e["event"] == "MIGRATION"],
          "MIGRATION events with the capability off: %r" % q.events)
    count_to(dst, 1, 1)
    # The image is the destination's now: the source may not run on it.
    reply = q.execute("cont")
    check("in use by another process" in reply.get("error", {}).get("desc", ""),
          "cont on the source while the destination runs: %r" % reply)
    check(q.cmd("query-status")["status"] == "postmigrate", "source ran")
    dst.send("q")
    check(dst.wait(30) == 0, "destination exit status")
    q.cmd("cont")  # the image is free again
    count_to(src, 1, 1)
    q.cmd("quit")
    check(src.wait(30) == 0, "source exit status")


def test_back_and_forth(tmp):
    vm, path, q = start("count")
    vm.expect("tiny count up", 30)
    count = 0
    downtimes = []
    for hop in range(10):
        count_to(vm, 1, count)
        count += 1
        qpath = fresh_socket_path("hop%d" % hop)
        dst, port = destination("--qmp", "unix:%s,server=on,wait=off" % qpath)
        q.cmd("migrate", {"uri": "tcp:127.0.0.1:%d" % port})
        info = wait_migration(q)
        check(info["status"] == "completed", "hop %d: %r" % (hop, info))
        downtimes.append(info["downtime"])
        q.cmd("quit")
        check(vm.wait(30) == 0, "hop %d: source exit status" % hop)
        vm, q = dst, QMP(qpath)
    count_to(vm, 1, count)
    vm.send("q")
    check(vm.wait(30) == 0, "last exit status")
    return "10 hops, downtime %s ms" % downtimes


class Proxy:
    """Forwards one connection to port; cut=N closes both sides after N
    bytes from the source; flip=N flips bit 0 of byte N."""

    def __init__(self, port, cut=None, flip=None):
        self.lsock = socket.socket()
        self.lsock.bind(("127.0.0.1", 0))
        self.lsock.listen(1)
        self.port = self.lsock.getsockname()[1]
        self.target, self.cut, self.flip = port, cut, flip
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self):
        try:
            self._forward()
        except OSError:
            pass  # the destination hung up: what some cases are about

    def _forward(self):
        a, _ = self.lsock.accept()
        b = socket.create_connection(("127.0.0.1", self.target))
        threading.Thread(target=self._back, args=(b, a), daemon=True).start()
        seen = 0
        while True:
            data = a.recv(65536)
            if not data:
                break
            if self.flip is not None and seen <= self.flip < seen + len(data):
                i = self.flip - seen
                data = data[:i] + bytes([data[i] ^ 1]) + data[i + 1:]
            if self.cut is not None and seen + len(data) >= self.cut:
                b.sendall(data[:self.cut - seen])
                break
            b.sendall(data)
            seen += len(data)
        for s in (a, b):
            s.shutdown(socket.SHUT_RDWR)
            s.close()

    def _back(self, b, a):
        try:
            while True:
                data = b.recv(65536)
                if not data:
                    break
                a.sendall(data)
        except OSError:
            pass


def slow_source():
    """The count guest at 1, its migrations limited to 20 kB/s: one takes
    seconds, time to break it."""
    vm, path, q = start("count")
    vm.expect("tiny count up", 30)
    count_to(vm, 1, 0)
    q.cmd("migrate-set-parameters", {"max-bandwidth": 20000})
    return vm, q


def test_destination_killed(tmp):
    vm, q = slow_source()
    dst, port = destination()
    q.cmd("migrate", {"uri": "tcp:127.0.0.1:%d" % port})
    time.sleep(0.7)
    check(q.cmd("query-migrate")["status"] == "active", "not active while sending")
    dst.kill()
    info = wait_migration(q)
    source_runs_on(vm, q, 1, ("failed",))
    check("error-desc" in info, "no error-desc: %r" % info)
    vm.send("q")
    check(vm.wait(30) == 0, "exit status")
    return info["error-desc"]


def test_connection_cut(tmp):
    vm, q = slow_source()
    dst, port = destination()
    proxy = Proxy(port, cut=30000)
    q.cmd("migrate", {"uri": "tcp:127.0.0.1:%d" % proxy.port})
    info = wait_migration(q)
    source_runs_on(vm, q, 1, ("failed",))
    line = one_line_exit(dst, ["incoming migration", "ended"])
    vm.send("q")
    check(vm.wait(30) == 0, "exit status")
    return "source: %s; destination: %s" % (info["error-desc"], line)


def test_flipped_byte(tmp):
    vm, path, q = start("count")
    vm.expect("tiny count up", 30)
    count_to(vm, 2, 0)
    dst, port = destination()
    # Byte 32 + 17 + 100: inside the first page run's data.
    proxy = Proxy(port, flip=149)
    q.cmd("migrate", {"uri": "tcp:127.0.0.1:%d" % proxy.port})
    info = wait_migration(q)
    source_runs_on(vm, q, 2, ("failed",))
    check("refused" in info["error-desc"] and "checksum" in info["error-desc"],
          "error-desc %r" % info["error-desc"])
    one_line_exit(dst, ["damaged (checksum)"])
    vm.send("q")
    check(vm.wait(30) == 0, "exit status")
    return info["error-desc"]


def test_other_machine(tmp):
    vm, path, q = start("count", "--cpus", "2")
    vm.expect("tiny count up", 30)
    count_to(vm, 1, 0)
    dst, port = destination("--cpus", "1")
    q.cmd("migrate", {"uri": "tcp:127.0.0.1:%d" % port})
    info = wait_migration(q)
    source_runs_on(vm, q, 1, ("failed",))
    line = one_line_exit(dst, ["2 vCPUs", "--cpus 2"])
    check("refused" in info["error-desc"] and "--cpus 2" in info["error-desc"],
          "the source does not say why: %r" % info["error-desc"])
    # The same shape, another device set: refused after the RAM, by the
    # device check.
    dst, port = destination("--cpus", "2", "--rng")
    q.cmd("migrate", {"uri": "tcp:127.0.0.1:%d" % port})
    info = wait_migration(q)
    source_runs_on(vm, q, 2, ("failed",))
    one_line_exit(dst, ["incoming migration", "4 devices", "same device options"])
    vm.send("q")
    check(vm.wait(30) == 0, "exit status")
    return line


def test_net_user(tmp):
    """--net user: libslirp's state goes with the VM. A destination on a
    tap (as root) refuses it by name, and the source runs on; one on --net
    user takes it and goes on."""
    src, path, q = start("count", "--net", "user")
    src.expect("tiny count up", 30)
    count_to(src, 1, 0)
    count = 1
    line = "tap destination not tried (needs root and /dev/net/tun)"
    if os.geteuid() == 0 and os.path.exists("/dev/net/tun"):
        dst, port = destination("--net", "tap=vireomt%d" % (os.getpid() % 100000))
        q.cmd("migrate", {"uri": "tcp:127.0.0.1:%d" % port})
        wait_migration(q)
        info = source_runs_on(src, q, 1, ("failed",))
        count = 2
        line = one_line_exit(dst, ["virtio-net0: the saved VM's network is --net user, this "
                                   "one's --net tap: start it with the same --net options"])
        check("--net user" in info["error-desc"], "the source does not say why: %r" %
              info["error-desc"])
    dst, port = destination("--net", "user")
    q.cmd("migrate", {"uri": "tcp:127.0.0.1:%d" % port})
    info = wait_migration(q)
    check(info["status"] == "completed", "query-migrate %r; destination %r" % (
        info, dst.stderr[-300:]))
    count_to(dst, 1, count)
    q.cmd("quit")
    check(src.wait(30) == 0, "source exit status")
    dst.send("q")
    check(dst.wait(30) == 0, "destination exit status")
    return line


def test_cancel(tmp):
    vm, q = slow_source()
    dst, port = destination()
    q.cmd("migrate", {"uri": "tcp:127.0.0.1:%d" % port})
    time.sleep(0.5)
    reply = q.execute("migrate", {"uri": "tcp:127.0.0.1:%d" % port})
    check("in progress" in reply.get("error", {}).get("desc", ""), "second migrate: %r" % reply)
    q.cmd("migrate_cancel")
    wait_migration(q)
    source_runs_on(vm, q, 1, ("cancelled",))
    statuses = [e["data"]["status"] for e in q.events if e["event"] == "MIGRATION"]
    check(statuses[-2:] == ["cancelling", "cancelled"], "MIGRATION events %s" % statuses)
    one_line_exit(dst, ["incoming migration"])
    vm.send("q")
    check(vm.wait(30) == 0, "exit status")


def test_hostile_streams(tmp):
    header = b"VIREOMIG" + struct.pack("<IIQQ", 2, 1, 32 << 20, 32 << 20)
    cases = [
        (b"", ["ended before its header"]),
        (b"GET / HTTP/1.0\r\n\r\n" * 3, ["not a Vireo migration stream"]),
        (header[:20], ["ended before its header"]),
        (b"VIREOMIG" + struct.pack("<IIQQ", 7, 1, 32 << 20, 32 << 20), ["version 7"]),
        (b"VIREOMIG" + struct.pack("<IIQQ", 1, 1, 32 << 20, 32 << 20), ["version 1"]),
        (b"VIREOMIG" + struct.pack("<IIQQ", 2, 1, 64 << 20, 64 << 20), ["--memory 64M"]),
        (header + b"X", ["unknown record"]),
        (header + b"P" + struct.pack("<QIQ", 1 << 40, 1, 0), ["not in guest RAM"]),
        (header + b"P" + struct.pack("<QIQ", 8191, 2, 0), ["not in guest RAM"]),
        (header + b"Z" + struct.pack("<QI", 0, 0), ["not in guest RAM"]),
        (header + b"P" + struct.pack("<QIQ", 0, 1, 0) + b"\0" * 100, ["ended inside"]),
        (header + b"P" + struct.pack("<QIQ", 0, 1, 1234) + b"\0" * 4096, ["checksum"]),
        (header + b"S" + struct.pack("<IIIQ", 1, 0, 1 << 30, 0), ["section of"]),
        (header + b"E", ["saved state lacks a section"]),
    ]
    for data, words in cases:
        dst, port = destination()
        with socket.create_connection(("127.0.0.1", port)) as c:
            c.sendall(data)
            c.shutdown(socket.SHUT_WR)
            reply = c.recv(4096)
        one_line_exit(dst, words)
        if data:
            check(reply.startswith(b"VIREOACK") and struct.unpack("<I", reply[8:12])[0] != 0,
                  "%r: reply %r" % (data[:20], reply[:40]))
    return "%d streams refused" % len(cases)


def main():
    import tempfile
    s = Suite()
    with tempfile.TemporaryDirectory() as tmp:
        s.run("migrate: tcp: live migration, the destination goes on from the source's count; "
              "query-migrate and events as QEMU's", test_migrate_goes_on, tmp)
        s.run("migrate: the disk image is handed over: the destination opens it while the "
              "source holds it, and the source cannot run on it after", test_disk_handover, tmp)
        s.run("migrate: back and forth 10 times", test_back_and_forth, tmp)
        s.run("migrate: destination killed mid-stream: the source runs on",
              test_destination_killed, tmp)
        s.run("migrate: connection cut mid-stream: the source runs on, the destination says "
              "so in one line", test_connection_cut, tmp)
        s.run("migrate: a byte flipped on the way: refused by checksum, the source runs on",
              test_flipped_byte, tmp)
        s.run("migrate: a destination of another shape refuses, the source runs on",
              test_other_machine, tmp)
        s.run("migrate: --net user carried over; a destination on a tap refuses it by name, the "
              "source runs on", test_net_user, tmp)
        s.run("migrate: migrate_cancel: the source runs on", test_cancel, tmp)
        s.run("migrate: hostile streams refused with one line, no crash", test_hostile_streams,
              tmp)
    return s.finish()


if __name__ == "__main__":
    sys.exit(main())
