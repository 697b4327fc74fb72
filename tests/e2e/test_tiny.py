#!/usr/bin/env python3
"""Exit paths with the tiny hand-written guests of tests/tiny: they run on
any KVM, including this machine's PVM, in milliseconds. Covers COM1 output
and input, ACPI poweroff, i8042 reset, triple fault, CMOS time, signals,
the terminal's raw mode and --stats-json."""
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import termios
import time

from test_virtio import stats_now
from vm import ROOT, VM, Suite, check

TINY = os.path.join(ROOT, "build", "tiny")


def tiny(mode, *args, **kw):
    return VM(["--kernel", os.path.join(TINY, mode + ".bzImage"), "--memory", "32M"] + list(args),
              linux=False, **kw)


def test_hello_poweroff():
    vm = tiny("hello")
    status = vm.wait(30)
    check(vm.output == b"hello from tiny guest\n", "console: %r" % vm.output)
    check(status == 0, "status %d" % status)
    check(b"guest powered off" in vm.stderr, "stderr: %r" % vm.stderr)


def test_echo_input():
    vm = tiny("echo")
    vm.send("typed on stdin")
    vm.expect("typed on stdin", 30)
    vm.send("q")
    status = vm.wait(30)
    check(status == 0, "status %d" % status)


def test_large_input_not_lost():
    # More than the UART's 4 KiB buffer: vireo must hold back, not drop.
    # ('q' would end the echo guest, so the pattern avoids it.)
    # The data is periodic, so it ends with a marker that occurs nowhere
    # else: only its echo proves that every byte came back. Each byte costs
    # several exits, which takes a while under the emulated nested host.
    data = "".join("abcdefghijklmnop0123456789"[i % 26] for i in range(20000)) + "<END>"
    vm = tiny("echo")
    m = vm.expect("tiny echo up\n", 30)  # its banner, before it echoes
    vm.output = vm.output[m.end():]
    vm.send(data)
    vm.expect("<END>", 300)
    vm.send("q")
    check(vm.wait(30) == 0, "status")
    check(vm.output == data.encode(), "echoed %d of %d bytes" % (len(vm.output), len(data)))


def test_reset_ends_vm():
    vm = tiny("reset")
    status = vm.wait(30)
    check(status == 0, "status %d" % status)
    check(b"guest reset (i8042" in vm.stderr, "stderr: %r" % vm.stderr)


def test_triple_fault_is_an_error():
    vm = tiny("crash")
    status = vm.wait(30)
    check(status == 1, "status %d" % status)
    err = vm.stderr.decode()
    check("vireo: error: vCPU 0: triple fault" in err, err)
    check("RIP=" in err and "CR3=" in err, "no register dump: " + err)


def test_cmos_time():
    before = time.gmtime()
    vm = tiny("cmos")
    check(vm.wait(30) == 0, "status")
    line = vm.output.decode().splitlines()[-1]
    guest = int(line[0:2]) * 3600 + int(line[2:4]) * 60 + int(line[4:6])
    host = before.tm_hour * 3600 + before.tm_min * 60 + before.tm_sec
    delta = (guest - host) % 86400
    check(delta <= 5, "guest CMOS %s, host %02d:%02d:%02d" %
          (line, before.tm_hour, before.tm_min, before.tm_sec))


def test_sigterm_stops_cleanly(sig):
    vm = tiny("spin", "--cpus", "2")
    time.sleep(0.5)
    check(vm.proc.poll() is None, "exited early: %r" % vm.stderr)
    vm.signal(sig)
    status = vm.wait(30)
    check(status == 0, "status %d" % status)
    name = signal.Signals(sig).name
    check(("stopped by " + name).encode() in vm.stderr, "stderr: %r" % vm.stderr)


def test_signals_with_disk_threads(d):
    """Backends are opened before the VM and its signal handling: a qcow2
    image's workers and the threads engine start then. SIGUSR2 (stats
    now) and SIGTERM must still reach the event loop, whichever thread
    the kernel hands them to, not end vireo by their default action."""
    img, raw, snap = (os.path.join(d, n) for n in ("a.qcow2", "b.raw", "c.raw"))
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", img, "16M"], check=True)
    for path in (raw, snap):
        with open(path, "wb") as f:
            f.truncate(16 << 20)
    stats = os.path.join(d, "stats.json")
    vm = tiny("spin", "--cpus", "2", "--disk", "path=%s,format=qcow2" % img,
              "--disk", "path=%s,format=raw,engine=threads" % raw,
              "--disk", "path=%s,format=raw,snapshot=on" % snap, "--stats-json", stats,
              env={"TMPDIR": d})
    time.sleep(0.5)
    for _ in range(5):
        stats_now(vm, stats, 20)
    vm.signal(signal.SIGTERM)
    status = vm.wait(30)
    check(status == 0, "status %d after SIGTERM: %r" % (status, vm.stderr[-300:]))
    check(b"stopped by SIGTERM" in vm.stderr, "stderr: %r" % vm.stderr[-300:])
    return "5 x SIGUSR2 answered with stats, SIGTERM stopped it cleanly"


def lflag_names(attrs):
    return "+".join(n for n in ("ICANON", "ECHO", "ISIG", "IEXTEN") if attrs[3] & getattr(termios, n)) \
        or "-"


def check_restored(vm, when):
    """The terminal settings after vireo exited must equal those read
    before it was started (vm.py reads both on the pty's slave side)."""
    before, after = vm.tty_before, vm.tty_after
    check(after is not None, "terminal settings not read after exit")
    names = ("iflag", "oflag", "cflag", "lflag", "ispeed", "ospeed", "cc")
    diff = [n for n, a, b in zip(names, before, after) if a != b]
    check(not diff, "terminal settings %s differ %s: %s" % (
        ", ".join(diff), when, "; ".join("%s %r -> %r" % (n, before[i], after[i])
                                         for i, n in enumerate(names) if n in diff)))


def test_sigquit_logs_state():
    """SIGQUIT makes every vCPU log its registers and run state, and the VM
    goes on (what a failed e2e test prints for a guest that stalled)."""
    vm = tiny("spin", "--cpus", "2")
    time.sleep(0.5)
    vm.signal(signal.SIGQUIT)
    deadline = time.monotonic() + 20
    while vm.stderr.count(b"mp_state") < 2 and time.monotonic() < deadline:
        vm._pump(0.2)
    check(vm.stderr.count(b"mp_state") == 2, "stderr after SIGQUIT: %r" % vm.stderr)
    for cpu in (0, 1):
        check(b"vCPU %d: RIP=" % cpu in vm.stderr, "no registers of vCPU %d: %r" % (cpu, vm.stderr))
    # vCPU 0 spins in long mode; it was not stopped by the dump.
    check(re.search(rb"vCPU 0: CS=0010\(base 0, l=1\)", vm.stderr), "vCPU 0 state: %r" % vm.stderr)
    time.sleep(0.3)
    check(vm.proc.poll() is None, "vireo exited after SIGQUIT: %r" % vm.stderr)
    vm.signal(signal.SIGTERM)
    status = vm.wait(30)
    check(status == 0, "status %d after SIGTERM" % status)
    check(b"stopped by SIGTERM" in vm.stderr, "stderr: %r" % vm.stderr)


def test_terminal_raw_and_restored():
    vm = tiny("echo", tty=True)
    # A fresh pty is in canonical mode with echo: otherwise raw mode
    # during the run would prove nothing.
    check(vm.tty_before[3] & termios.ICANON and vm.tty_before[3] & termios.ECHO,
          "the pty was not cooked before vireo started: lflag %#x" % vm.tty_before[3])
    # The pty echoes by itself until vireo turns echo off; wait for that.
    for _ in range(100):
        if not termios.tcgetattr(vm.slave)[3] & termios.ECHO:
            break
        time.sleep(0.05)
    # Canonical mode would hold "x1" back until a newline: the echo
    # proves vireo put the terminal in raw mode (and the guest got it).
    vm.send("x1")
    vm.expect("x1", 30)
    during = termios.tcgetattr(vm.slave)
    check(not during[3] & termios.ICANON and not during[3] & termios.ECHO,
          "terminal not in raw mode while running")
    vm.send(b"\x01x")  # Ctrl-A x
    status = vm.wait(30)
    check(status == 0, "status %d, stderr %r" % (status, vm.stderr))
    check(b"Ctrl-A x" in vm.stderr, "stderr: %r" % vm.stderr)
    check_restored(vm, "after Ctrl-A x")
    return "lflag %s -> %s -> %s" % (lflag_names(vm.tty_before), lflag_names(during),
                                     lflag_names(vm.tty_after))


def test_terminal_restored_after_crash():
    vm = tiny("crash", tty=True)
    status = vm.wait(30)
    check(status == 1, "status %d, stderr %r" % (status, vm.stderr))
    check(b"triple fault" in vm.stderr, "stderr: %r" % vm.stderr)
    check_restored(vm, "after a guest crash")
    return "lflag %s before and after" % lflag_names(vm.tty_after)


def test_stats_json():
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "stats.json")
        t0 = time.monotonic()
        vm = tiny("hello", "--stats-json", path)
        check(vm.wait(30) == 0, "status")
        wall_us = (time.monotonic() - t0) * 1e6
        stats = json.load(open(path))
    check(stats["exit_reason"] == "poweroff", stats["exit_reason"])
    check(len(stats["vcpus"]) == 1, "vcpus")
    uart = stats["devices"]["uart8250@0x3f8"]["exits"]
    # 22 characters of "hello from tiny guest\n", one exit each.
    check(uart == 22, "uart exits %d" % uart)
    check(stats["devices"]["acpi-pm@0x600"]["exits"] == 1, "acpi-pm exits")
    check(stats["vcpus"][0]["userspace_io_exits"] == 23, "io exits")
    # The tiny bzImage has no compressed payload: the kernel cache cannot
    # hold it, and vireo says it loaded the bzImage as it is.
    check(stats["boot_path"] == "bzimage" and "no compressed payload" in stats["boot_path_detail"],
          "boot_path %r (%r)" % (stats["boot_path"], stats["boot_path_detail"]))
    kvm = stats["vcpus"][0].get("kvm", {})
    check("exits" in kvm, "no KVM binary stats: %r" % list(kvm)[:10])
    # Vireo's own start-up (set-up to the first KVM_RUN): it happened,
    # within the process's life.
    check(0 < stats["startup_us"] < wall_us, "startup_us %r, the run took %.0f us" % (
        stats["startup_us"], wall_us))
    return "kvm vcpu exits=%d io_exits=%d, start-up %.1f ms" % (
        kvm["exits"], kvm.get("io_exits", -1), stats["startup_us"] / 1e3)


def main():
    s = Suite()
    s.run("tiny: hello on COM1, ACPI S5 poweroff -> 0", test_hello_poweroff)
    s.run("tiny: stdin reaches the guest UART", test_echo_input)
    s.run("tiny: 20000 bytes of input, none lost", test_large_input_not_lost)
    s.run("tiny: i8042 reset -> 0", test_reset_ends_vm)
    s.run("tiny: triple fault -> 1 with registers", test_triple_fault_is_an_error)
    s.run("tiny: CMOS RTC shows host UTC time", test_cmos_time)
    s.run("tiny: SIGTERM stops 2 vCPUs cleanly", test_sigterm_stops_cleanly, signal.SIGTERM)
    s.run("tiny: SIGINT stops cleanly", test_sigterm_stops_cleanly, signal.SIGINT)
    s.run("tiny: SIGQUIT logs every vCPU's state, the VM goes on", test_sigquit_logs_state)
    with tempfile.TemporaryDirectory() as d:
        s.run("tiny: SIGUSR2 and SIGTERM with disks whose backends run threads",
              test_signals_with_disk_threads, d)
    s.run("tiny: raw terminal, Ctrl-A x, restored", test_terminal_raw_and_restored)
    s.run("tiny: terminal restored after guest crash", test_terminal_restored_after_crash)
    s.run("tiny: --stats-json counts exits", test_stats_json)
    return s.finish()


if __name__ == "__main__":
    sys.exit(main())
