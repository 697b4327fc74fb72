#!/usr/bin/env python3
"""QMP with Debian's kernel on a real KVM: a guest running a counter loop
and a disk writer is paused for 2 s and resumed 20 times (the counter
never goes backwards, guest time does not count the pauses, every block
written verifies); system_powerdown presses the ACPI power button and the
guest shuts down cleanly; system_reset reboots the machine in place
(running and paused: the kernel boots again with both vCPUs, the disk keeps
what was written, RESET events); with --reboot reset the guest's own
reboot resets the machine in place; and the same scripted QMP session runs against
QEMU 7.2 and against Vireo, whose replies and events must have QEMU's
structure (every key Vireo sends is one QEMU sends, with the same type)."""
import os
import shutil
import subprocess
import sys
import tempfile
import time

from qmp import QMP, fresh_socket_path, reset_while_paused, shape, shape_missing
from vm import (BOOT_TIMEOUT, GUEST, VM, GuestShell, Suite, check, counter_advances,
                read_counter, start_counter)

PAUSES = 20
BLOCKS = 1500


def boot(tag, *args):
    path = fresh_socket_path(tag)
    # quiet: the kernel's log through the emulated 8250, an exit or two a
    # byte, took some 13 s of each boot in the nested host (test_linux
    # keeps one boot that prints it all).
    vm = VM(["--cpus", "2", "--memory", "512M", "--qmp", "unix:%s,server=on,wait=off" % path,
             "--cmdline", "console=ttyS0 quiet"] + list(args))
    vm.expect(r"VIREO-GUEST-UP[^\n]*\n", BOOT_TIMEOUT)
    vm.expect(r"vireo# ", 60)  # type only once the shell reads
    sh = GuestShell()
    sh.vm = vm
    sh.sh("stty -echo")
    return vm, sh, QMP(path)


def test_pause_resume_under_load(tmp):
    disk = os.path.join(tmp, "pause.img")
    with open(disk, "wb") as f:
        f.truncate(BLOCKS * 512)
    vm, sh, q = boot("pause", "--disk", "path=%s" % disk)
    clocksource = sh.ok("cat /sys/devices/system/clocksource/clocksource0/current_clocksource").strip()
    start_counter(sh)
    sh.detach("(n=0; while [ $n -lt %d ]; do printf 'blk-%%06d' $n | dd of=/dev/vda bs=512 seek=$n "
          "conv=notrunc,fsync 2>/dev/null; n=$((n+1)); done; echo WRITER-DONE) >/tmp/w 2>&1"
          % BLOCKS)
    # Each round's lag: how much more the host's time went on than the
    # guest's, from the end of one round's read of the counter and the
    # guest's uptime (one shell round trip) to the next's.
    lags = []
    last, up0 = counter_advances(sh, read_counter(sh), "before the pauses", uptime=True)
    t0 = time.monotonic()
    for i in range(PAUSES):
        q.cmd("stop")
        check(q.cmd("query-status")["status"] == "paused", "round %d: not paused" % i)
        time.sleep(2)
        q.cmd("cont")
        last, up1 = counter_advances(sh, last, "across pause %d" % i, uptime=True)
        t1 = time.monotonic()
        lags.append((t1 - t0) - (up1 - up0))
        t0, up0 = t1, up1
    names = [e["event"] for e in q.events]
    check(names == ["STOP", "RESUME"] * PAUSES, "events: %s" % names[:6])
    # kvmclock stops while paused (QEMU's rule): the guest's uptime grows
    # by about 2 s less than the host's time over each round.
    if clocksource == "kvm-clock":
        check(min(lags) > 1.5, "guest time ran on while paused: lags %s" %
              ["%.2f" % x for x in lags[:5]])
    sh.ok("while ! grep -q WRITER-DONE /tmp/w; do sleep 1; done", timeout=600)
    sh.poweroff()
    q.event("SHUTDOWN")
    with open(disk, "rb") as f:
        data = f.read()
    bad = [n for n in range(BLOCKS) if data[n * 512:n * 512 + 10] != b"blk-%06d" % n]
    check(not bad, "%d of %d blocks wrong, first %s" % (len(bad), BLOCKS, bad[:5]))
    return "clocksource %s, guest time behind by %.2f-%.2f s per 2 s pause" % (
        clocksource, min(lags), max(lags))


def test_system_powerdown():
    vm, sh, q = boot("powerdown")
    sh.ok("true")
    q.cmd("system_powerdown")
    q.event("POWERDOWN")
    vm.expect("VIREO-POWER-BUTTON", 120)
    status = vm.wait(120)
    check(status == 0, "exit status %d; stderr %r" % (status, vm.stderr[-300:]))
    check(b"guest powered off" in vm.stderr, "stderr %r" % vm.stderr[-300:])
    ev = q.event("SHUTDOWN")
    check(ev["data"] == {"guest": True, "reason": "guest-shutdown"}, "SHUTDOWN %r" % ev)


def reboot_seen(vm, sh):
    vm.expect(r"VIREO-GUEST-UP[^\n]*\n", BOOT_TIMEOUT)
    vm.expect(r"vireo# ", 60)
    sh.sh("stty -echo")


def test_system_reset(tmp):
    disk = os.path.join(tmp, "reset.img")
    with open(disk, "wb") as f:
        f.truncate(1 << 20)
    vm, sh, q = boot("reset", "--disk", "path=%s" % disk)
    sh.ok("printf reset-marker | dd of=/dev/vda conv=notrunc,fsync 2>/dev/null")
    sh.ok("echo first-boot > /tmp/boot")
    q.cmd("system_reset")
    ev = q.event("RESET")
    check(ev["data"] == {"guest": False, "reason": "host-qmp-system-reset"}, "RESET %r" % ev)
    t0 = time.monotonic()
    reboot_seen(vm, sh)
    up = float(sh.ok("cut -d' ' -f1 /proc/uptime"))
    check(up < time.monotonic() - t0 + 5, "uptime %.1f s: the kernel did not start again" % up)
    check(sh.sh("cat /tmp/boot")[0] != 0, "/tmp survived the reset: no new boot")
    check(sh.ok("nproc").strip() == "2", "vCPUs after reset: %s" % sh.ok("nproc"))
    marker = sh.ok("head -c 12 /dev/vda; echo").strip()
    check(marker == "reset-marker", "disk after reset: %r" % marker)
    sh.ok("printf second-write | dd of=/dev/vda bs=512 seek=1 conv=notrunc,fsync 2>/dev/null")

    # Reset while paused: the machine is reset and stays paused until cont.
    reset_while_paused(q, vm, b"VIREO-GUEST-UP")
    reboot_seen(vm, sh)
    check(sh.ok("nproc").strip() == "2", "vCPUs after the second reset")
    stats = q.cmd("query-vireo-stats")
    check(stats["system_resets"] == 2, "system_resets %r" % stats.get("system_resets"))
    sh.poweroff()
    q.event("SHUTDOWN")
    with open(disk, "rb") as f:
        data = f.read(1024)
    check(data[:12] == b"reset-marker" and data[512:524] == b"second-write",
          "disk: %r %r" % (data[:12], data[512:524]))
    return "2 resets (running, paused): kernel booted again with 2 vCPUs, disk intact"


def test_guest_reboot_in_place():
    vm, sh, q = boot("reboot", "--reboot", "reset")
    sh.ok("echo first-boot > /tmp/boot")
    vm.output = b""
    vm.send("reboot -f\n")  # the guest's own reboot: its shell never answers
    reboot_seen(vm, sh)
    ev = q.event("RESET")
    check(ev["data"] == {"guest": True, "reason": "guest-reset"}, "RESET %r" % ev)
    check(sh.sh("cat /tmp/boot")[0] != 0, "/tmp survived the reboot: no new boot")
    check(sh.ok("nproc").strip() == "2", "vCPUs after the reboot: %s" % sh.ok("nproc"))
    check(q.cmd("query-status")["status"] == "running", "status after the reboot")
    sh.poweroff()
    ev = q.event("SHUTDOWN")
    check(ev["data"] == {"guest": True, "reason": "guest-shutdown"}, "SHUTDOWN %r" % ev)
    return "rebooted in place with 2 vCPUs, then powered off"


SESSION = [
    ("query-version", None),
    ("query-status", None),
    ("stop", None),
    ("query-status", None),
    ("cont", None),
    ("system_reset", None),
    ("query-cpus-fast", None),
    ("query-block", None),
    ("query-pci", None),
    ("no-such-command", None),
    ("query-status", {"bogus": 1}),
]


def session(path):
    """The scripted session: greeting, replies and events, in order."""
    q = QMP(path, negotiate=False)
    out = [("greeting", q.greeting), ("qmp_capabilities", q.execute("qmp_capabilities"))]
    for name, args in SESSION:
        out.append((name, q.execute(name, args)))
        if name in ("stop", "cont", "system_reset"):
            ev = q.event({"stop": "STOP", "cont": "RESUME", "system_reset": "RESET"}[name])
            out.append((ev["event"], ev))
    out.append(("quit", q.execute("quit")))
    ev = q.event("SHUTDOWN")
    out.append(("SHUTDOWN", ev))
    return out


def test_same_structure_as_qemu(tmp):
    qemu = shutil.which("qemu-system-x86_64")
    check(qemu, "no qemu-system-x86_64 (scripts/deps installs it)")
    disk = os.path.join(tmp, "conf.img")
    with open(disk, "wb") as f:
        f.truncate(1 << 20)
    qpath = fresh_socket_path("qemu")
    qproc = subprocess.Popen(
        [qemu, "-enable-kvm", "-cpu", "host", "-smp", "2", "-m", "512M", "-nodefaults",
         "-no-user-config", "-display", "none", "-serial", "null",
         "-kernel", os.path.join(GUEST, "vmlinuz"), "-initrd",
         os.path.join(GUEST, "initramfs.cpio.gz"), "-append", "console=ttyS0 quiet",
         "-drive", "file=%s,if=virtio,format=raw" % disk,
         "-qmp", "unix:%s,server=on,wait=off" % qpath],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        theirs = session(qpath)
        qproc.wait(60)
    finally:
        if qproc.poll() is None:
            qproc.kill()
    vpath = fresh_socket_path("conf")
    vm = VM(["--cpus", "2", "--memory", "512M", "--disk", "path=%s" % disk,
             "--qmp", "unix:%s,server=on,wait=off" % vpath])
    ours = session(vpath)
    check(vm.wait(60) == 0, "vireo exit status after quit")
    check([n for n, _ in ours] == [n for n, _ in theirs], "different sequences: %s vs %s" %
          ([n for n, _ in ours], [n for n, _ in theirs]))
    diffs = []
    for (name, mine), (_, ref) in zip(ours, theirs):
        for d in shape_missing(shape(mine), shape(ref)):
            diffs.append("%s: %s" % (name, d))
        kinds = [k for k in ("return", "error", "event", "QMP") if k in mine]
        rkinds = [k for k in ("return", "error", "event", "QMP") if k in ref]
        if kinds != rkinds:
            diffs.append("%s: Vireo answered %s, QEMU %s" % (name, kinds, rkinds))
        if "error" in mine and mine["error"]["class"] != ref["error"]["class"]:
            diffs.append("%s: error class %s vs QEMU's %s" %
                         (name, mine["error"]["class"], ref["error"]["class"]))
    check(not diffs, "; ".join(diffs[:8]))
    return "%d messages, same structure" % len(ours)


def main():
    s = Suite()
    with tempfile.TemporaryDirectory() as tmp:
        s.run("qmp-linux: %d x stop 2 s / cont under a counter and a disk writer" % PAUSES,
              test_pause_resume_under_load, tmp)
        s.run("qmp-linux: system_powerdown -> ACPI power button -> clean poweroff",
              test_system_powerdown)
        s.run("qmp-linux: system_reset, running and paused -> the guest boots again",
              test_system_reset, tmp)
        s.run("qmp-linux: --reboot reset: the guest's reboot boots it again in place",
              test_guest_reboot_in_place)
        s.run("qmp-linux: one QMP session against QEMU 7.2 and Vireo: same structure",
              test_same_structure_as_qemu, tmp)
    return s.finish()


if __name__ == "__main__":
    sys.exit(main())
