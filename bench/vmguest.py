"""The guest side of the device benchmarks (bench/blk.py, bench/net.py):
boots the tools image (build/guest/initramfs-tools.cpio.gz: fio, iperf3)
under vireo or under QEMU with the same kernel, initramfs and virtio-pci
devices, drives its shell over the serial console (tests/e2e/vm.py), and
reads KVM's counters for the VM while it runs (debugfs: the same counters
as KVM's binary statistics, which vireo's --stats-json reports at exit)."""
import atexit
import glob
import json
import os
import re
import shutil
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "e2e"))
import vm as vmmod  # noqa: E402

GUEST = vmmod.GUEST
KERNEL = vmmod.KERNEL
INITRD = os.path.join(GUEST, "initramfs-tools.cpio.gz")
VIREO = os.path.join(ROOT, "build", "vireo")
QEMU = shutil.which("qemu-system-x86_64") or "qemu-system-x86_64"
DEBUGFS_KVM = "/sys/kernel/debug/kvm"
TRACEFS = "/sys/kernel/tracing"


@atexit.register
def _kill_all():
    """No VM outlives the benchmark, whatever went wrong."""
    while vmmod._live:
        vmmod._live.pop().close()


def debugfs_kvm():
    """KVM's debugfs directory, mounting debugfs if needed (root); None
    when unavailable."""
    if not os.path.isdir(DEBUGFS_KVM):
        subprocess.run(["mount", "-t", "debugfs", "none", "/sys/kernel/debug"],
                       capture_output=True)
    return DEBUGFS_KVM if os.path.isdir(DEBUGFS_KVM) else None


def userspace_exit_counts():
    """KVM's returns to userspace so far, by thread id: a histogram
    trigger on the kvm_userspace_exit trace event, set up at the first
    call (root, CONFIG_HIST_TRIGGERS). KVM's own io_exits counter counts
    every port I/O exit, those it handles itself too (coalesced writes,
    the PIT, the PIC), so it cannot say how many reached the VMM; this
    does, for any VMM alike. None when unavailable."""
    rows = hist_rows("kvm/kvm_userspace_exit", "common_pid", keep=True)
    return None if rows is None else {r.get("common_pid"): n for r, n in rows}


# KVM's exit reasons by name (the kvm_exit event's exit_reason): SVM's exit
# codes (AMD APM vol. 2, appendix C) and VMX's basic reasons (Intel SDM
# vol. 3, appendix C), the ones a Linux guest doing I/O meets.
SVM_EXITS = {0x60: "intr", 0x61: "nmi", 0x62: "smi", 0x63: "init", 0x64: "vintr",
             0x65: "cr0_sel_write", 0x6e: "rdtsc", 0x72: "cpuid", 0x76: "iret", 0x78: "hlt",
             0x79: "invlpg", 0x7b: "ioio", 0x7c: "msr", 0x7f: "shutdown", 0x80: "vmrun",
             0x81: "vmmcall", 0x87: "rdtscp", 0x8b: "pause", 0x400: "npf",
             0x401: "avic_incomplete_ipi", 0x402: "avic_unaccelerated_access"}
VMX_EXITS = {0: "exception_nmi", 1: "external_interrupt", 2: "triple_fault", 7: "interrupt_window",
             8: "nmi_window", 10: "cpuid", 12: "hlt", 30: "io", 31: "rdmsr", 32: "wrmsr",
             40: "pause", 44: "apic_access", 45: "eoi_induced", 48: "ept_violation",
             49: "ept_misconfig", 52: "preemption_timer", 56: "apic_write"}
# The MSRs whose accesses a Linux guest's interrupts and timers make (x2APIC).
MSR_NAMES = {0x80b: "x2apic_eoi", 0x830: "x2apic_icr", 0x838: "x2apic_tmict", 0x6e0: "tsc_deadline",
             0x832: "x2apic_lvtt", 0x4b564d02: "kvm_steal_time", 0x4b564d04: "kvm_pv_eoi"}
_reason_triggers = []
# Set by a benchmark's --exit-reasons: kvm_counters() adds the breakdown.
EXIT_REASONS = False


def hist_rows(event, keys, keep=False):
    """[({key: int}, hitcount)] of a histogram trigger on the trace event's
    keys (comma-separated), armed at the first call (root,
    CONFIG_HIST_TRIGGERS) and, unless keep, disarmed at exit; None when
    tracing is unavailable."""
    path = os.path.join(TRACEFS, "events", event)
    if not os.path.isdir(path):
        subprocess.run(["mount", "-t", "tracefs", "none", TRACEFS], capture_output=True)
    trigger = "hist:keys=%s:vals=hitcount:size=8192" % keys
    try:
        with open(os.path.join(path, "trigger")) as f:
            armed = ("hist:keys=" + keys + ":") in f.read()
        if not armed:
            with open(os.path.join(path, "trigger"), "w") as f:
                f.write(trigger)
            if not keep:
                _reason_triggers.append((path, trigger))
        with open(os.path.join(path, "hist")) as f:
            text = f.read()
    except OSError:
        return None
    rows = []
    # "{ common_pid:  583, exit_reason: 124 } hitcount: 7" (a pid may be
    # shown as "comm [583]")
    for m in re.finditer(r"\{([^}]*)\}\s*hitcount:\s*(\d+)", text):
        row = {}
        for kv in m.group(1).split(","):
            k, _, v = kv.partition(":")
            num = re.search(r"(\d+)\]?\s*$", v)
            if num:
                row[k.strip()] = int(num.group(1))
        rows.append((row, int(m.group(2))))
    return rows


@atexit.register
def _disarm():
    """The exit-reason triggers cost every exit a little: off when done."""
    for path, trigger in _reason_triggers:
        try:
            with open(os.path.join(path, "trigger"), "w") as f:
                f.write("!" + trigger)
        except OSError:
            pass


def exit_reason_counts():
    """KVM exits so far by thread id and reason ("exit:NAME"), MSR accesses
    by thread id, MSR and direction ("msr:NAME:w"): histogram triggers on
    the kvm_exit and kvm_msr trace events; {} when unavailable. What a
    per-MB or per-request exit count is made of (bench/seeds
    --exit-reasons)."""
    def exit_key(r):
        names = SVM_EXITS if r.get("isa") == 2 else VMX_EXITS
        reason = r.get("exit_reason", -1)
        return "exit:" + names.get(reason, "%#x" % reason)

    def msr_key(r):
        ecx = r.get("ecx", -1)
        return "msr:%s:%s" % (MSR_NAMES.get(ecx, "%#x" % ecx), "w" if r.get("write") else "r")

    out = {}
    for event, keys, key_of in (("kvm/kvm_exit", "common_pid,exit_reason,isa", exit_key),
                                ("kvm/kvm_msr", "common_pid,ecx,write", msr_key)):
        for r, n in hist_rows(event, keys) or ():
            tid, key = out.setdefault(r.get("common_pid"), {}), key_of(r)
            tid[key] = tid.get(key, 0) + n
    return out


class BenchGuest(vmmod.GuestShell):
    """kind: "vireo" or "qemu". disks: [(path, cache)] or [(path, cache,
    format)], format "raw" (default) or "qcow2", path an image file, an
    NBD URI (nbd+unix:// or nbd://) or an RBD image in QEMU's syntax
    (rbd:POOL/IMAGE:conf=FILE:id=USER). tap: interface name
    of a virtio-net NIC. The guest's console is its serial port. qmp: a
    path for a QMP control socket (both VMMs: the same syntax).
    qemu_aio: QEMU's block backend ("threads", its default, or "io_uring",
    vireo's); qemu_iothread: QEMU's virtio-blk in an iothread of its own
    (vireo always has its own I/O thread; QEMU needs ioeventfd for it).
    incoming: a migration source for the VM (vireo --incoming, QEMU
    -incoming: "tcp:ADDR:PORT", vireo's "file:PATH", QEMU's "exec:CMD"); the
    guest is then not booted, and nothing is waited for: its shell is the
    one that was migrated (bench/migrate.py).
    The emulated devices (bench/seeds.py): disk_if "ide" puts the disks on
    the PIIX3 IDE controller (vireo if=ide, QEMU -drive if=ide on its pc
    machine: PIIX3 too), nic "e1000" makes the NIC an Intel 82540EM (vireo
    model=e1000, QEMU -device e1000); accel "tcg" runs QEMU without KVM
    (its default CPU model), and boot_timeout is how long the boot may take
    (TCG inside the nested host: minutes)."""

    def __init__(self, kind, memory="512M", cpus=1, disks=(), tap=None, cmdline="",
                 no_ioeventfd=False, stats_json=None, env=None, qemu_aio=None,
                 qemu_iothread=False, qmp=None, incoming=None, disk_if="virtio",
                 nic="virtio", accel="kvm", boot_timeout=None):
        self.kind = kind
        append = ("console=ttyS0 quiet " + cmdline).strip()
        if kind == "vireo":
            args = [VIREO, "--kernel", KERNEL, "--initrd", INITRD, "--cmdline", append,
                    "--memory", memory, "--cpus", str(cpus)]
            for disk in disks:
                path, cache, fmt = (tuple(disk) + ("raw",))[:3]
                if path.startswith("rbd:"):  # QEMU's name: rbd:POOL/IMAGE:conf=FILE:id=USER
                    where = "rbd=" + ",".join(path[4:].split(":"))
                elif path.startswith("nbd"):
                    where = "nbd=%s" % path
                else:
                    where = "path=%s,cache=%s" % (path, cache)
                args += ["--disk", "%s,format=%s%s" % (where, fmt,
                                                        ",if=ide" if disk_if == "ide" else "")]
            if tap:
                args += ["--net", "tap=%s%s" % (tap, ",model=e1000" if nic == "e1000" else "")]
            if no_ioeventfd:
                args.append("--no-ioeventfd")
            if stats_json:
                args += ["--stats-json", stats_json]
            if qmp:
                args += ["--qmp", "unix:%s,server=on,wait=off" % qmp]
            if incoming:
                args += ["--incoming", incoming]
        else:
            accel_args = ["-accel", "tcg"] if accel == "tcg" else ["-enable-kvm", "-cpu", "host"]
            args = [QEMU] + accel_args + ["-m", memory, "-smp", str(cpus),
                    "-nodefaults", "-no-user-config", "-display", "none", "-serial", "stdio",
                    "-kernel", KERNEL, "-initrd", INITRD, "-append", append]
            if qemu_iothread:
                args += ["-object", "iothread,id=io0"]
            for i, disk in enumerate(disks):
                path, cache, fmt = (tuple(disk) + ("raw",))[:3]
                drive = "file=%s,if=%s,id=d%d,format=%s,cache=%s" % (
                    path, "ide" if disk_if == "ide" else "none", i, fmt, cache)
                if qemu_aio:
                    drive += ",aio=" + qemu_aio
                dev = "virtio-blk-pci,drive=d%d" % i
                if qemu_iothread:
                    dev += ",iothread=io0"
                args += ["-drive", drive] + (["-device", dev] if disk_if != "ide" else [])
            if tap:
                args += ["-netdev", "tap,id=n0,ifname=%s,script=no,downscript=no,vhost=off" % tap,
                         "-device", "%s,netdev=n0" % ("e1000" if nic == "e1000" else "virtio-net-pci")]
            if qmp:
                args += ["-qmp", "unix:%s,server=on,wait=off" % qmp]
            if no_ioeventfd:
                args += ["-global", "virtio-blk-pci.ioeventfd=off",
                         "-global", "virtio-net-pci.ioeventfd=off"]
            if incoming:
                args += ["-incoming", incoming]
        saved = vmmod.VIREO
        vmmod.VIREO = args[0]
        try:
            if env is not None:
                old_env = dict(os.environ)
                os.environ.update(env)
            try:
                self.vm = vmmod.VM(args[1:], linux=False)
            finally:
                if env is not None:
                    os.environ.clear()
                    os.environ.update(old_env)
        finally:
            vmmod.VIREO = saved
        self._kvm_dir = None
        if incoming:
            return
        self.vm.expect(r"VIREO-GUEST-UP[^\n]*\n", boot_timeout or vmmod.BOOT_TIMEOUT)
        self.vm.expect(r"vireo# ", 60)  # the shell is reading (see tests/e2e/test_virtio.py)
        self.ok("stty -echo")

    # Benchmarks run long commands (fio, iperf3): a longer default wait.
    def sh(self, cmd, timeout=300):
        return vmmod.GuestShell.sh(self, cmd, timeout)

    def ok(self, cmd, timeout=300):
        return vmmod.GuestShell.ok(self, cmd, timeout)

    def kvm_counters(self):
        """KVM's counters of this VM, summed over its vCPUs (debugfs), or
        None."""
        if self._kvm_dir is None:
            base = debugfs_kvm()
            dirs = glob.glob(os.path.join(base, "%d-*" % self.vm.proc.pid)) if base else []
            self._kvm_dir = dirs[0] if len(dirs) == 1 else ""
        if not self._kvm_dir:
            return None
        out = {}
        for name in ("exits", "io_exits", "mmio_exits", "irq_injections", "halt_exits"):
            try:
                with open(os.path.join(self._kvm_dir, name)) as f:
                    out[name] = int(f.read())
            except OSError:
                pass
        try:
            tids = [int(t) for t in os.listdir("/proc/%d/task" % self.vm.proc.pid)]
        except OSError:
            tids = []
        counts = userspace_exit_counts()
        if counts is not None:
            out["user_exits"] = sum(counts.get(t, 0) for t in tids)
        elif "io_exits" in out:
            # No tracing: an upper bound (in-kernel port I/O counted too).
            out["user_exits"] = out["io_exits"] + out.get("mmio_exits", 0)
        if EXIT_REASONS:
            for tid, reasons in exit_reason_counts().items():
                if tid in tids:
                    for key, n in reasons.items():
                        out[key] = out.get(key, 0) + n
        return out

    def _stat_ticks(self):
        """utime, stime and guest_time of the VMM process, all threads, in
        clock ticks (fields 14, 15 and 43 of proc(5))."""
        with open("/proc/%d/stat" % self.vm.proc.pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()  # fields[0] is field 3
        return int(fields[11]), int(fields[12]), int(fields[40])

    def cpu_ticks(self):
        """The VMM process's CPU time in clock ticks, all threads, the
        time they ran the guest included."""
        utime, stime, _ = self._stat_ticks()
        return utime + stime

    def cpu_split(self):
        """cpu_ticks() in two: "guest" the time the vCPU threads ran the
        guest (guest_time), "vmm" the rest (the VMM's own work and KVM's
        on its behalf)."""
        utime, stime, guest = self._stat_ticks()
        return {"vmm": utime + stime - guest, "guest": guest}

    def close(self):
        self.vm.close()


def disk_requests(stat_line):
    """Completed requests in a /sys/block/X/stat line: reads, writes,
    discards, flushes."""
    f = [int(x) for x in stat_line.split()]
    return f[0] + f[4] + (f[11] if len(f) > 11 else 0) + (f[15] if len(f) > 15 else 0)


def fio_numbers(out):
    """The "key" : value lines an awk over fio's JSON printed, as floats by
    key (the first of each key wins)."""
    nums = {}
    for line in out.splitlines():
        key, val = line.split()
        nums.setdefault(key.strip('"'), float(val.rstrip(",")))
    return nums


def fio_rates(g, name, opts):
    """bw_bytes and iops of fio job name (its options opts: the side, read
    or write, follows --rw), from the guest's /tmp/NAME.json. Only these
    numbers cross the console: its output costs exits too (one per byte
    on the 8250)."""
    side = "write" if "write" in opts.split()[0] else "read"
    return fio_numbers(g.ok("awk '/^ *\"[a-z]+\" : \\{/ { s = $1 } s == \"\\\"%s\\\"\" && "
                            "/^ *\"(bw_bytes|iops)\" :/ { print $1, $3 }' /tmp/%s.json" % (side, name)))


def stats_exits(path):
    """vireo --stats-json: KVM exits summed over the vCPUs, and the
    per-device counters."""
    with open(path) as f:
        s = json.load(f)
    return sum(v["kvm"]["exits"] for v in s["vcpus"]), s.get("devices", {})


def delta(after, before):
    if after is None or before is None:
        return None
    return {k: after[k] - before.get(k, 0) for k in after}


def minus(k, base):
    """Counters k less base (None stays None)."""
    if not k or not base:
        return k
    # Clamped: the no-op's count has its own noise of a few exits.
    return {x: max(0, k[x] - base.get(x, 0)) for x in k}


def reasons(k, n):
    """The exits in the counters k by reason and the MSR accesses (with
    EXIT_REASONS), per n operations, largest first ({} without them)."""
    if not k or not n:
        return {}
    return dict(sorted(((x, v / n) for x, v in k.items() if x.startswith(("exit:", "msr:")) and v),
                       key=lambda kv: -kv[1]))


def reasons_text(r):
    """reasons() as one line, largest first: the exit reasons and the MSRs
    (each access one of the "msr" exits) above 2 % of all the exits."""
    total = sum(v for x, v in r.items() if x.startswith("exit:"))
    return ", ".join("%s %.2f" % (x[5:] if x.startswith("exit:") else x, v)
                     for x, v in r.items() if v >= 0.02 * total)


def console_cost(g, cmd, timeout=120):
    """KVM's counters for a no-op command as long as cmd: what typing a
    command and reading its end markers over the serial console costs (an
    8250: every byte is several exits), to be taken off what cmd's
    measurement counted. A command of a few hundred bytes costs about a
    thousand exits, as much as hundreds of disk requests at queue depth 1."""
    before = g.kvm_counters()
    g.ok(": " + "x" * max(0, len(cmd) - 2), timeout)
    return delta(g.kvm_counters(), before)


def fio_counted(g, bdev, fio, timeout, cost_timeout=120):
    """Runs the command line fio in the guest with /sys/block/BDEV/stat
    read just before and after it: (the disk requests it completed, KVM's
    counters for it net of what typing it on the console cost)."""
    cmd = "cat /sys/block/%s/stat > /tmp/s0; %s; cat /sys/block/%s/stat > /tmp/s1" % (
        bdev, fio, bdev)
    base = console_cost(g, cmd, cost_timeout)
    before = g.kvm_counters()
    g.ok(cmd, timeout)
    after = g.kvm_counters()
    stat = g.ok("cat /tmp/s0 /tmp/s1", cost_timeout).strip().splitlines()
    return disk_requests(stat[1]) - disk_requests(stat[0]), minus(delta(after, before), base)


def fmt(x, spec="%.1f"):
    return "-" if x is None else spec % x

