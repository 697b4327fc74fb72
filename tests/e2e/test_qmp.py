#!/usr/bin/env python3
"""The QMP control socket with the tiny guests (any KVM, this machine's
PVM included): stop/cont with the guest's console held and released,
twenty pauses in a row, system_reset (running and paused: the guest
starts again from its first instruction), --reboot reset (a guest's reboot
resets it in place), quit, wait=on, the query
commands, and clients
that misbehave (garbage, a 1 MiB line, unknown commands, a disconnect
mid-request) while the VM goes on. socat drives one of them."""
import os
import subprocess
import sys
import time

from qmp import QMP, fresh_socket_path, reset_while_paused
from test_tiny import tiny
from vm import Suite, check


def start(mode, *args, wait="off"):
    path = fresh_socket_path(mode)
    vm = tiny(mode, "--qmp", "unix:%s,server=on,wait=%s" % (path, wait), *args)
    return vm, path


def echo_round(vm, token, timeout=30):
    vm.send(token)
    vm.expect(token, timeout)


def test_stop_holds_the_guest_cont_releases_it():
    vm, path = start("echo")
    q = QMP(path)
    echo_round(vm, "before-pause")
    check(q.cmd("query-status")["status"] == "running", "not running at first")
    check(q.execute("stop", id="s1") == {"return": {}, "id": "s1"}, "stop reply")
    q.event("STOP")
    st = q.cmd("query-status")
    check(st["status"] == "paused" and st["running"] is False, "status after stop: %r" % st)
    # While paused the vCPU runs no instruction: input is not echoed.
    vm.send("while-paused")
    time.sleep(1.5)
    vm._pump(0)
    check(b"while-paused" not in vm.output, "the paused guest echoed: %r" % vm.output[-80:])
    q.cmd("cont")
    q.event("RESUME")
    vm.expect("while-paused", 30)  # nothing typed meanwhile was lost
    check(q.cmd("query-status")["status"] == "running", "status after cont")
    vm.send("q")
    check(vm.wait(30) == 0, "exit status")
    ev = q.event("SHUTDOWN")
    check(ev["data"] == {"guest": True, "reason": "guest-shutdown"}, "SHUTDOWN %r" % ev)
    check(not os.path.exists(path), "socket left behind")


def test_twenty_pauses():
    vm, path = start("echo")
    q = QMP(path)
    for i in range(20):
        q.cmd("stop")
        check(q.cmd("query-status")["status"] == "paused", "round %d: not paused" % i)
        q.cmd("cont")
        echo_round(vm, "<round-%02d>" % i)
    names = [e["event"] for e in q.events]
    check(names == ["STOP", "RESUME"] * 20, "events out of order: %s" % names[:8])
    stamps = [e["timestamp"]["seconds"] * 10**6 + e["timestamp"]["microseconds"] for e in q.events]
    check(stamps == sorted(stamps), "event timestamps go backwards")
    q.cmd("quit")
    check(vm.wait(30) == 0, "exit status after quit")
    ev = q.event("SHUTDOWN")
    check(ev["data"] == {"guest": False, "reason": "host-qmp-quit"}, "SHUTDOWN %r" % ev)
    check(b"stopped by QMP quit" in vm.stderr, "stderr: %r" % vm.stderr[-200:])


def test_system_reset():
    vm, path = start("echo")
    q = QMP(path)
    vm.expect("tiny echo up", 30)
    echo_round(vm, "before-reset")
    q.cmd("system_reset")
    ev = q.event("RESET")
    check(ev["data"] == {"guest": False, "reason": "host-qmp-system-reset"}, "RESET %r" % ev)
    vm.expect("tiny echo up", 30)  # from its first instruction again
    echo_round(vm, "after-reset")
    # Paused: reset, and nothing runs until cont.
    reset_while_paused(q, vm, b"tiny echo up")
    vm.expect("tiny echo up", 30)
    echo_round(vm, "after-second-reset")
    check(q.cmd("query-vireo-stats")["system_resets"] == 2, "system_resets")
    vm.send("q")
    check(vm.wait(30) == 0, "exit status")


def test_guest_reboot_resets_in_place():
    # The reset guest prints, then pulses the i8042 reset line: with
    # --reboot reset every pulse resets the machine and it starts again.
    vm, path = start("reset", "--reboot", "reset")
    q = QMP(path)
    vm.expect(r"(hello from tiny guest\n[^h]*){3}", 30)
    ev = q.event("RESET")
    check(ev["data"] == {"guest": True, "reason": "guest-reset"}, "RESET %r" % ev)
    check(q.cmd("query-status")["status"] == "running", "not running between reboots")
    check(q.cmd("query-vireo-stats")["system_resets"] >= 2, "system_resets")
    q.cmd("quit")  # never lost to a reboot in progress
    check(vm.wait(30) == 0, "exit status after quit")
    check(b"stopped by QMP quit" in vm.stderr, "stderr %r" % vm.stderr[-200:])
    ev = q.event("SHUTDOWN")
    check(ev["data"]["reason"] == "host-qmp-quit", "SHUTDOWN %r" % ev)


def test_start_paused_startup_counts_the_wait():
    """-S: no guest instruction runs before cont, so Vireo's start-up
    (--stats-json's startup_us, up to the guest's first KVM_RUN) is not
    reported yet, and once cont came it includes the wait."""
    vm, path = start("echo", "-S")
    q = QMP(path)
    check(q.cmd("query-status")["status"] == "prelaunch", "not in prelaunch")
    time.sleep(1.0)
    startup = q.cmd("query-vireo-stats")["startup_us"]
    check(startup == 0, "startup_us %r before the guest ran" % startup)
    q.cmd("cont")
    echo_round(vm, "after-cont")
    startup = q.cmd("query-vireo-stats")["startup_us"]
    check(startup >= 1000000, "startup_us %r: the 1 s before cont left out" % startup)
    vm.send("q")
    check(vm.wait(30) == 0, "exit status")
    return "start-up %.2f s with the wait" % (startup / 1e6)


def test_quit_while_paused():
    vm, path = start("spin", "--cpus", "2")
    q = QMP(path)
    q.cmd("stop")
    q.cmd("quit")
    check(vm.wait(30) == 0, "exit status")
    q.event("SHUTDOWN")


def test_wait_on_holds_the_start():
    vm, path = start("hello", wait="on")
    time.sleep(1.5)
    vm._pump(0)
    check(vm.output == b"", "the guest ran before a client came: %r" % vm.output)
    # The greeting only: the guest prints and powers off at once, so
    # vireo may be gone before a qmp_capabilities could be answered.
    q = QMP(path, negotiate=False)
    check("QMP" in q.greeting, "greeting %r" % q.greeting)
    check(vm.wait(30) == 0, "exit status")
    check(vm.output == b"hello from tiny guest\n", "console %r" % vm.output)
    q.close()


def test_queries(tmp):
    disk = os.path.join(tmp, "disk.img")
    with open(disk, "wb") as f:
        f.truncate(1 << 20)
    vm, path = start("spin", "--cpus", "2", "--disk", "path=%s,readonly=on" % disk)
    q = QMP(path)
    cpus = q.cmd("query-cpus-fast")
    check([c["cpu-index"] for c in cpus] == [0, 1], "cpus %r" % cpus)
    tids = {c["thread-id"] for c in cpus}
    threads = set(int(t) for t in os.listdir("/proc/%d/task" % vm.proc.pid))
    check(len(tids) == 2 and tids <= threads, "thread ids %s not vireo's %s" % (tids, threads))
    block = q.cmd("query-block")
    check(len(block) == 1 and block[0]["device"] == "virtio-blk0" and
          block[0]["inserted"]["file"] == disk and block[0]["inserted"]["ro"] is True,
          "query-block %r" % block)
    pci = q.cmd("query-pci")[0]["devices"]
    ids = [(d["slot"], d["id"]["vendor"], d["id"]["device"]) for d in pci]
    check(ids == [(0, 0x1b36, 0x0008), (1, 0x1af4, 0x1042)], "query-pci %r" % ids)
    bar = pci[1]["regions"][0]
    check(bar["type"] == "memory" and bar["address"] >= 0xc0000000 and bar["size"] == 0x8000,
          "virtio-blk BAR %r" % bar)
    st = q.cmd("query-vireo-stats")
    check(st["vcpus_count"] == 2 and st["exit_reason"] == "running" and
          "virtio-blk0" in st["devices"], "stats %r" % list(st))
    names = {c["name"] for c in q.cmd("query-commands")}
    for c in ("stop", "cont", "quit", "query-status", "system_powerdown", "query-pci"):
        check(c in names, "query-commands lacks %s" % c)
    q.cmd("quit")
    check(vm.wait(30) == 0, "exit status")


def test_bad_clients():
    vm, path = start("echo")
    # A client that goes away in the middle of a request.
    q = QMP(path)
    q.send_raw('{"execute": "query-st')
    q.close()
    # One that sends garbage, a 1 MiB line, unknown commands, wrong types.
    q = QMP(path)
    q.send_raw("garbage here\n")
    check("JSON parse error" in q.reply()["error"]["desc"], "garbage")
    q.send_raw('"' + "x" * (1 << 20) + '"\n')
    r = q.reply()
    check(r["error"]["desc"].startswith("QMP input exceeds"), "oversized: %r" % r)
    r = q.execute("no-such-command")
    check(r["error"]["class"] == "CommandNotFound", "unknown: %r" % r)
    r = q.execute("stop", {"now": True})
    check(r["error"]["desc"] == "Parameter 'now' is unexpected", "extra argument: %r" % r)
    q.send_raw('{"execute": ["stop"]}\n')
    check("must be a string" in q.reply()["error"]["desc"], "execute not a string")
    check(q.cmd("query-status")["status"] == "running", "the VM was disturbed")
    # A flood: 500 commands in one write, 500 answers in order.
    q.send_raw("".join('{"execute":"query-status","id":%d}' % i for i in range(500)))
    got = [q.reply()["id"] for _ in range(500)]
    check(got == list(range(500)), "flood answered out of order")
    q.close()
    echo_round(vm, "still-alive")
    # socat, as a user would drive it.
    out = subprocess.run(["socat", "-t", "2", "-", "UNIX-CONNECT:" + path],
                         input=b'{"execute":"qmp_capabilities"}\n{"execute":"query-status"}\n',
                         capture_output=True, timeout=30).stdout.decode()
    check('"status":"running"' in out and out.count("\n") >= 3, "socat session: %r" % out)
    q = QMP(path)
    q.cmd("quit")
    check(vm.wait(30) == 0, "exit status")


def test_ctl():
    from vm import VIREO
    vm, path = start("echo")

    def ctl(*args):
        r = subprocess.run([VIREO, "ctl", path] + list(args), capture_output=True, timeout=30)
        return r.returncode, r.stdout.decode(), r.stderr.decode()

    # vireo creates the socket before it starts the guest; ctl does not
    # wait for it (a user runs it against a VM that is up).
    deadline = time.monotonic() + 30
    while not os.path.exists(path) and time.monotonic() < deadline:
        time.sleep(0.05)
    rc, out, err = ctl("stop")
    check(rc == 0 and out.strip() == "{}", "ctl stop: %d %r %r" % (rc, out, err))
    rc, out, _ = ctl("query-status")
    check(rc == 0 and '"status": "paused"' in out, "ctl query-status: %r" % out)
    rc, out, err = ctl("query-status", '{"verbose": true}')
    check(rc == 1 and err == "vireo: error: query-status: Parameter 'verbose' is unexpected\n",
          "ctl with a bad argument: %d %r" % (rc, err))
    rc, _, err = ctl("query-status", "[1]")
    check(rc == 2 and "not a JSON object" in err and err.count("\n") == 1, "ctl bad JSON: %r" % err)
    rc, out, _ = ctl("cont")
    check(rc == 0, "ctl cont")
    echo_round(vm, "after-ctl")
    rc, _, err = ctl("quit")
    check(rc == 0, "ctl quit: %r" % err)
    check(vm.wait(30) == 0, "exit status")
    r = subprocess.run([VIREO, "ctl", path, "query-status"], capture_output=True, timeout=30)
    check(r.returncode == 2 and b"cannot connect" in r.stderr and r.stderr.count(b"\n") == 1,
          "ctl to a VM that is gone: %d %r" % (r.returncode, r.stderr))


def main():
    import tempfile
    s = Suite()
    with tempfile.TemporaryDirectory() as tmp:
        s.run("qmp: stop holds the guest (input kept), cont releases it", test_stop_holds_the_guest_cont_releases_it)
        s.run("qmp: 20 stop/cont in a row, events in order, quit", test_twenty_pauses)
        s.run("qmp: system_reset, running and paused -> the guest starts again",
              test_system_reset)
        s.run("qmp: --reboot reset: the guest's reboots reset it in place, quit still ends it",
              test_guest_reboot_resets_in_place)
        s.run("qmp: quit while paused (2 vCPUs)", test_quit_while_paused)
        s.run("qmp: -S: start-up reported once the guest ran, the wait included",
              test_start_paused_startup_counts_the_wait)
        s.run("qmp: wait=on starts the guest when a client connects", test_wait_on_holds_the_start)
        s.run("qmp: query-cpus-fast/-block/-pci/-commands/-vireo-stats", test_queries, tmp)
        s.run("qmp: misbehaving clients, a flood, socat; the VM goes on", test_bad_clients)
        s.run("qmp: vireo ctl stop/query-status/cont/quit, its errors", test_ctl)
    return s.finish()


if __name__ == "__main__":
    sys.exit(main())
