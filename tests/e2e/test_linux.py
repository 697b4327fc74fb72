#!/usr/bin/env python3
"""End to end with Debian's kernel and our initramfs, on a real KVM (the
nested host on machines whose /dev/kvm cannot run Linux): vCPU and memory
counts as the guest sees them, the shell on the serial console, clock,
PCI host bridge, and every way the guest can end the VM."""
import json
import os
import re
import sys
import tempfile
import time

from vm import VM, Suite, check

# Bytes of the PC holes the e820 map leaves out of RAM below 1 MiB: the
# EBDA (0x9fc00-0xa0000) and 0xa0000-0x100000.
LOW_HOLE = 0x100000 - 0x9FC00

RAM_SUM = ("for d in /sys/firmware/memmap/*; do [ \"$(cat $d/type)\" = 'System RAM' ] && "
           "echo $(( $(cat $d/end) - $(cat $d/start) + 1 )); done | "
           "awk '{s+=$1} END {printf \"ram-sum=%.0f\\n\", s}'\n")


def boot(cpus, memory_mib, extra=None, cmdline="console=ttyS0"):
    args = ["--cpus", str(cpus), "--memory", "%dM" % memory_mib, "--cmdline", cmdline]
    vm = VM(args + (extra or []))
    m = vm.expect(r"VIREO-GUEST-UP cpus=(\d+) mem_kb=(\d+) time=(\d+)\r?\n")
    return vm, m


def test_boot(cpus, memory_mib, ending):
    with tempfile.TemporaryDirectory() as d:
        stats_path = os.path.join(d, "stats.json")
        host_time = time.time()
        vm, m = boot(cpus, memory_mib, ["--stats-json", stats_path])
        try:
            guest_cpus, guest_time = int(m.group(1)), int(m.group(3))
            check(guest_cpus == cpus, "guest sees %d CPUs, expected %d" % (guest_cpus, cpus))
            # The guest's clock comes from the host (kvmclock / CMOS).
            check(abs(guest_time - host_time) < 30 + (time.time() - host_time),
                  "guest clock %d vs host %d" % (guest_time, host_time))
            vm.send(RAM_SUM)
            ram = int(vm.expect(r"ram-sum=(\d+)\r?\n", 60).group(1))
            want = memory_mib * 2**20 - LOW_HOLE
            check(ram == want, "guest e820 RAM %d bytes, expected %d" % (ram, want))
            vm.send("grep -c ^processor /proc/cpuinfo | sed s/^/cpuinfo-count=/\n")
            n = int(vm.expect(r"cpuinfo-count=(\d+)\r?\n", 60).group(1))
            check(n == cpus, "/proc/cpuinfo lists %d processors" % n)
            vm.send(ending + "\n")
            status = vm.wait(120)
        finally:
            vm.kill()
        check(status == 0, "exit status %d; stderr %r" % (status, vm.stderr))
        want_reason = "reset" if ending.startswith("reboot") else "poweroff"
        stats = json.load(open(stats_path))
    check(stats["exit_reason"] == want_reason, "exit_reason %s" % stats["exit_reason"])
    check(len(stats["vcpus"]) == cpus, "stats for %d vCPUs" % len(stats["vcpus"]))
    exits = sum(v["kvm"]["exits"] for v in stats["vcpus"])
    check(exits > 0 and stats["devices"]["uart8250@0x3f8"]["exits"] > 0, "no exits counted")
    return "%d vCPUs, %d MiB, '%s' -> %s, %d KVM exits" % (cpus, memory_mib, ending,
                                                           want_reason, exits)


def test_shell_command_and_devices():
    vm, _ = boot(1, 256)
    try:
        vm.send("echo answer-$((6*7))\n")
        vm.expect(r"answer-42", 60)
        vm.send("echo vendor-$(cat /sys/bus/pci/devices/0000:00:00.0/vendor)\n")
        vm.expect(r"vendor-0x1b36", 60)
        vm.send("echo clocksource-$(cat /sys/devices/system/clocksource/clocksource0/current_clocksource)\n")
        cs = vm.expect(r"clocksource-([\w-]+)\r?\n", 60).group(1).decode()
        check(cs == "kvm-clock", "guest clocksource is %s, not kvm-clock" % cs)
        vm.send("echo rtc-$(cat /sys/class/rtc/rtc0/since_epoch)\n")
        rtc = int(vm.expect(r"rtc-(\d+)\r?\n", 60).group(1))
        check(abs(rtc - time.time()) < 30, "guest RTC %d vs host %d" % (rtc, time.time()))
        vm.send("poweroff -f\n")
        status = vm.wait(120)
    finally:
        vm.kill()
    check(status == 0, "status %d" % status)
    return "clocksource %s" % cs


def test_panic_ends_vm():
    vm, _ = boot(1, 256, cmdline="console=ttyS0 panic=-1")
    try:
        vm.send("echo c > /proc/sysrq-trigger\n")
        vm.expect(r"Kernel panic", 60)
        status = vm.wait(120)
    finally:
        vm.kill()
    check(status == 0, "status %d; stderr %r" % (status, vm.stderr))
    check(b"guest reset" in vm.stderr, "stderr %r" % vm.stderr)
    return vm.stderr.decode().strip()


def main():
    s = Suite()
    s.run("linux: 1 vCPU, 256M, plain poweroff", test_boot, 1, 256, "poweroff")
    s.run("linux: 2 vCPUs, 1G, plain reboot", test_boot, 2, 1024, "reboot")
    high = int(os.environ.get("VIREO_E2E_HIGH_MEM_MIB", "4608"))
    s.run("linux: 4 vCPUs, %dM (RAM above 4G), poweroff -f" % high, test_boot, 4, high,
          "poweroff -f")
    s.run("linux: shell command from stdin, PCI host bridge, RTC", test_shell_command_and_devices)
    s.run("linux: panic with panic=-1 ends the VM", test_panic_ends_vm)
    return s.finish()


if __name__ == "__main__":
    sys.exit(main())
