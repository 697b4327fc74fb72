#!/usr/bin/env python3
"""End to end with Debian's kernel and our initramfs, on a real KVM (the
nested host on machines whose /dev/kvm cannot run Linux): vCPU and memory
counts as the guest sees them, RAM above 4 GiB holding what the guest
writes, the shell on the serial console, clock, PCI host bridge, every way
the guest can end the VM, and which way vireo loaded the kernel (the
cached vmlinux, or the bzImage the guest decompresses)."""
import hashlib
import json
import os
import re
import socket
import sys
import tempfile
import time

from vm import ROOT, VM, Suite, check

# Bytes of the PC holes the e820 map leaves out of RAM below 1 MiB: the
# EBDA (0x9fc00-0xa0000) and 0xa0000-0x100000.
LOW_HOLE = 0x100000 - 0x9FC00
MIB = 2**20
HIGH_RAM_START = 4 << 30


def low_ram_end():
    """Where vireo's RAM below 4 GiB ends (the 32-bit PCI hole begins):
    read from its source, so that the test knows how much of --memory
    lies above 4 GiB without copying the number."""
    with open(os.path.join(ROOT, "src", "arch", "x86", "layout.h")) as f:
        return int(re.search(r"#define LOW_RAM_END (0x[0-9a-fA-F]+)", f.read()).group(1), 16)


RAM_SUM = ("for d in /sys/firmware/memmap/*; do [ \"$(cat $d/type)\" = 'System RAM' ] && "
           "echo $(( $(cat $d/end) - $(cat $d/start) + 1 )); done | "
           "awk '{s+=$1} END {printf \"ram-sum=%.0f\\n\", s}'\n")

# The guest kernel's Normal zone: on x86-64 exactly the RAM above 4 GiB
# (DMA32 ends there). Its first page frame, size and free pages.
NORMAL_ZONE = ("awk '/^Node/ {z=$4} z==\"Normal\" && $1==\"pages\" && $2==\"free\" {f=$3} "
               "z==\"Normal\" && $1==\"spanned\" {s=$2} z==\"Normal\" && $1==\"start_pfn:\" {p=$2} "
               "END {print \"normal-zone=\" p \",\" s \",\" f \"-end\"}' /proc/zoneinfo\n")
NORMAL_RX = r"normal-zone=(\d*),(\d*),(\d*)-end"


def normal_zone(vm):
    m = vm.expect(NORMAL_RX, 60)
    vm.output = vm.output[m.end():]
    check(m.group(1), "the guest kernel has no Normal zone (no RAM above 4 GiB)")
    return int(m.group(1)), int(m.group(2)), int(m.group(3))


def guest_line(vm, cmd, rx, timeout):
    """Types cmd, waits for rx in the output (which the typed line itself
    must not match) and consumes the output up to it."""
    vm.send(cmd + "\n")
    m = vm.expect(rx, timeout)
    vm.output = vm.output[m.end():]
    return m


def page_pattern_md5(pages):
    """md5 of PAGE_PATTERN's output for pages pages, computed here."""
    h = hashlib.md5()
    for i in range(pages):
        h.update(b"%4095d\n" % i)
    return h.hexdigest()


# One 4 KiB line per page, holding the page's index: every page of the
# file differs from every other. (awk writes it straight into the file:
# under the nested host, /dev/urandom and pipes cost minutes for this.)
PAGE_PATTERN = "awk 'BEGIN { for (i = 0; i < %d; i++) printf \"%%4095d\\n\", i }' > /hi/f"


def check_ram_above_4g(vm, memory_mib):
    """Makes the guest store data in (nearly) all its free RAM above 4 GiB
    and read it back. The Normal zone must span exactly the RAM vireo put
    above 4 GiB (from page frame 0x100000). A tmpfs file larger than the
    zone's free memory is written, each page holding its own index; the
    page allocator serves page cache from Normal before DMA32, so the
    zone's free pages must fall to its watermark: the file then holds
    nearly every free page above 4 GiB. Its md5, read back in the guest,
    must equal the one computed here: RAM above 4 GiB that was missing,
    lost writes, or was aliased onto other guest memory (one page showing
    through another) would change it, or crash the guest."""
    high = memory_mib * MIB - low_ram_end()
    vm.send(NORMAL_ZONE)
    start, spanned, free0 = normal_zone(vm)
    check(start * 4096 == HIGH_RAM_START and spanned * 4096 == high,
          "Normal zone: pages %#x-%#x, vireo's RAM above 4 GiB: %#x-%#x" % (
              start * 4096, (start + spanned) * 4096, HIGH_RAM_START, HIGH_RAM_START + high))
    pages = free0 + 32 * MIB // 4096
    t0 = time.monotonic()
    guest_line(vm, "mkdir -p /hi && mount -t tmpfs -o size=%d tmpfs /hi && %s && echo "
               "filled-$((1+1))" % ((pages + 256) * 4096, PAGE_PATTERN % pages), r"filled-2", 900)
    t1 = time.monotonic()
    vm.send(NORMAL_ZONE)
    _, _, free1 = normal_zone(vm)
    read = guest_line(vm, "md5sum /hi/f | sed s/^/readback-/", r"readback-([0-9a-f]{32}) ",
                      900).group(1).decode()
    t2 = time.monotonic()
    used = free0 - free1
    check(used >= free0 * 0.9, "a %d MiB file took only %d of the %d free pages above 4 GiB" %
          (pages * 4096 // MIB, used, free0))
    want = page_pattern_md5(pages)
    check(read == want, "the file read back has md5 %s, expected %s" % (read, want))
    guest_line(vm, "rm /hi/f && umount /hi && echo done-$((1+1))", r"done-2", 120)
    return "Normal zone = the %d MiB above 4 GiB; a %d MiB file (each page its index) took %d of " \
           "its %d free pages and read back identical (written in %.0fs, read in %.0fs)" % (
               high // MIB, pages * 4096 // MIB, used, free0, t1 - t0, t2 - t1)


# quiet: the kernel's log through the emulated 8250 (an exit or two a
# byte) took some 13 s of each boot in the nested host; the first case
# boots without it, and checks that the whole log came through.
VERBOSE = "console=ttyS0"
QUIET = VERBOSE + " quiet"


def boot(cpus, memory_mib, extra=None, cmdline=QUIET, env=None):
    args = ["--cpus", str(cpus), "--memory", "%dM" % memory_mib, "--cmdline", cmdline]
    vm = VM(args + (extra or []), env=env)
    m = vm.expect(r"VIREO-GUEST-UP cpus=(\d+) mem_kb=(\d+) time=(\d+)\r?\n")
    return vm, m


def expected_boot_path(env):
    """The cached vmlinux, unless the kernel cache is off."""
    if (env or {}).get("VIREO_KERNEL_CACHE", os.environ.get("VIREO_KERNEL_CACHE")) == "off":
        return "bzimage"
    return "cached-vmlinux"


def test_boot(cpus, memory_mib, ending, env=None, above_4g=False, verbose=False):
    """verbose: without quiet, the kernel's whole log must come out on the
    console (through the 8250) before the guest's init says it is up."""
    with tempfile.TemporaryDirectory() as d:
        stats_path = os.path.join(d, "stats.json")
        host_time = time.time()
        vm, m = boot(cpus, memory_mib, ["--stats-json", stats_path], env=env,
                     cmdline=VERBOSE if verbose else QUIET)
        detail = ""
        try:
            if verbose:
                log = vm.output[:m.start()]
                for line in (rb"Linux version \d", rb"Memory: \d+K/\d+K available",
                             rb"Run /init as init process"):
                    check(re.search(line, log), "no %r in the kernel's log on the console "
                          "(%d bytes before VIREO-GUEST-UP)" % (line.decode(), len(log)))
                detail = "; the kernel's log on the console, %d bytes" % len(log)
            guest_cpus, guest_time = int(m.group(1)), int(m.group(3))
            check(guest_cpus == cpus, "guest sees %d CPUs, expected %d" % (guest_cpus, cpus))
            # The guest's clock comes from the host (kvmclock / CMOS).
            check(abs(guest_time - host_time) < 30 + (time.time() - host_time),
                  "guest clock %d vs host %d" % (guest_time, host_time))
            vm.send(RAM_SUM)
            ram = int(vm.expect(r"ram-sum=(\d+)\r?\n", 60).group(1))
            want = memory_mib * MIB - LOW_HOLE
            check(ram == want, "guest e820 RAM %d bytes, expected %d" % (ram, want))
            vm.send("grep -c ^processor /proc/cpuinfo | sed s/^/cpuinfo-count=/\n")
            n = int(vm.expect(r"cpuinfo-count=(\d+)\r?\n", 60).group(1))
            check(n == cpus, "/proc/cpuinfo lists %d processors" % n)
            if above_4g:
                detail += "; " + check_ram_above_4g(vm, memory_mib)
            vm.send(ending + "\n")
            status = vm.wait(120)
        finally:
            vm.kill()
        check(status == 0, "exit status %d; stderr %r" % (status, vm.stderr))
        wall_us = (time.time() - host_time) * 1e6
        want_reason = "reset" if ending.startswith("reboot") else "poweroff"
        stats = json.load(open(stats_path))
    check(stats["exit_reason"] == want_reason, "exit_reason %s" % stats["exit_reason"])
    path = expected_boot_path(env)
    # With the cache on, a bzImage boot would be a fallback (the detail
    # says why): that fails here rather than pass unnoticed.
    details = {"bzimage": ("VIREO_KERNEL_CACHE=off",),
               "cached-vmlinux": ("found in the cache", "decompressed into the cache now")}[path]
    check(stats["boot_path"] == path and stats["boot_path_detail"] in details,
          "boot_path %s (%s), expected %s (%s)" % (stats["boot_path"], stats["boot_path_detail"],
                                                  path, " or ".join(details)))
    check(len(stats["vcpus"]) == cpus, "stats for %d vCPUs" % len(stats["vcpus"]))
    check(0 < stats["startup_us"] < wall_us, "startup_us %r, the run took %.0f us" % (
        stats["startup_us"], wall_us))
    exits = sum(v["kvm"]["exits"] for v in stats["vcpus"])
    check(exits > 0 and stats["devices"]["uart8250@0x3f8"]["exits"] > 0, "no exits counted")
    return "%d vCPUs, %d MiB, '%s' -> %s, %d KVM exits; kernel: %s (%s), start-up %.0f ms%s" % (
        cpus, memory_mib, ending, want_reason, exits, stats["boot_path"],
        stats["boot_path_detail"], stats["startup_us"] / 1e3, detail)


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
    vm, _ = boot(1, 256, cmdline=QUIET + " panic=-1")
    try:
        vm.send("echo c > /proc/sysrq-trigger\n")
        vm.expect(r"Kernel panic", 60)
        status = vm.wait(120)
    finally:
        vm.kill()
    check(status == 0, "status %d; stderr %r" % (status, vm.stderr))
    check(b"guest reset" in vm.stderr, "stderr %r" % vm.stderr)
    return vm.stderr.decode().strip()


def test_demo_script(demo_dir):
    """make demo's VM, as the user gets it (scripts/demo on a terminal,
    its disk image in demo_dir): a shell, the disk, user-mode networking
    with DHCP and the forwarded port, the RNG; what the guest writes to
    /dev/vda lands in the image; poweroff ends it with 0."""
    token = "DEMO-%d-%d" % (os.getpid(), time.monotonic_ns())
    vm = VM([], tty=True, linux=False, program=os.path.join(ROOT, "scripts", "demo"),
            env={"VIREO_DEMO_DIR": demo_dir})
    try:
        vm.expect(r"demo: a shell in a Vireo VM", 30)
        net = vm.expect(r"VIREO-NET-(UP eth0 \S+|FAILED[^\r\n]*)\r?\n").group(1).decode()
        check(net == "UP eth0 10.0.2.15/24", "the demo's network: %s" % net)
        vm.expect(r"VIREO-GUEST-UP cpus=2 ")
        vm.send("echo disk-$(cat /sys/block/vda/size) rng-$(head -c 16 /dev/hwrng | wc -c) "
                "gw-$(ip route | awk '/^default/ {print $3}')-\n")
        m = vm.expect(r"disk-(\d+) rng-(\d+) gw-([\d.]*)-", 60)
        sectors, rng, gw = int(m.group(1)), int(m.group(2)), m.group(3).decode()
        check(sectors == 2 * 1024 * 1024, "/dev/vda has %d sectors, not 1 GiB's" % sectors)
        check(rng == 16, "/dev/hwrng gave %d bytes of 16" % rng)
        check(gw == "10.0.2.2", "default route via %r, not user-mode networking's 10.0.2.2" % gw)
        # The forwarded port: vireo listens on the host's 2222.
        with socket.create_connection(("127.0.0.1", 2222), timeout=10):
            pass
        vm.send("echo %s | dd of=/dev/vda conv=fsync 2>/dev/null; echo wr-$((40+2))\n" % token)
        vm.expect(r"wr-42", 60)
        vm.send("poweroff\n")
        status = vm.wait(120)
    finally:
        vm.close()
    check(status == 0, "make demo's VM ended with status %s; stderr %r" % (status, vm.stderr[-600:]))
    with open(os.path.join(demo_dir, "disk.img"), "rb") as f:
        head = f.read(len(token))
    check(head == token.encode(), "the demo's disk image begins with %r, not what the guest "
          "wrote" % head)
    return "shell, %d-sector disk, DHCP %s via %s, port 2222 forwarded, RNG; poweroff -> 0" % (
        sectors, net.split()[-1], gw)


def main():
    s = Suite()
    # The guest decompresses the bzImage itself (the kernel's own path,
    # the one without Vireo's cache); every other boot uses the cache.
    s.run("linux: 1 vCPU, 256M, bzImage decompressed by the guest (VIREO_KERNEL_CACHE=off), "
          "plain poweroff, the kernel's log on the console", test_boot, 1, 256, "poweroff",
          {"VIREO_KERNEL_CACHE": "off"}, False, True)
    s.run("linux: 2 vCPUs, 1G, plain reboot", test_boot, 2, 1024, "reboot")
    # 256 MiB above 4 GiB: all of it is written and read back, which
    # takes a while under the emulated nested host.
    high = int(os.environ.get("VIREO_E2E_HIGH_MEM_MIB", "3328"))
    above = high * MIB - low_ram_end()
    if above > 0:
        s.run("linux: 4 vCPUs, %dM (%dM of RAM above 4G, filled and read back), poweroff -f" %
              (high, above // MIB), test_boot, 4, high, "poweroff -f", None, True)
    else:
        s.run("linux: 4 vCPUs, %dM (all RAM below 4G), poweroff -f" % high, test_boot, 4, high,
              "poweroff -f")
        s.skip("linux: RAM above 4G", "VIREO_E2E_HIGH_MEM_MIB=%d puts no RAM above 4G (RAM below "
               "4G ends at %d MiB)" % (high, low_ram_end() // MIB))
    s.run("linux: shell command from stdin, PCI host bridge, RTC", test_shell_command_and_devices)
    s.run("linux: panic with panic=-1 ends the VM", test_panic_ends_vm)
    with tempfile.TemporaryDirectory(prefix="vireo-demo-") as demo_dir:
        s.run("linux: make demo's VM (scripts/demo on a terminal)", test_demo_script, demo_dir)
    return s.finish()


if __name__ == "__main__":
    sys.exit(main())
