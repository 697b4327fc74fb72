#!/usr/bin/env python3
"""Boots Linux guests back to back on this host's KVM and counts how each
ended: the inner half of tests/nested/loop (it runs inside the nested
host), usable on any host with a KVM that runs Linux.

  boots.py --boots N [--vmm vireo|qemu] [--cpus K] [--memory MIB]
           [--streams S] [--first-alone] [--load io|none] [--timeout S] [--idle S] [--cmdline ARGS]

Each boot: start the VMM with Debian's kernel and the test initramfs,
wait for VIREO-GUEST-UP, run one shell command and check its answer,
power off, and check how the VMM ended. S streams boot in parallel (the
load that the e2e suite puts on the nested host: several guests at
once); with --first-alone the first boot runs alone, the streams after
it (to tell a nested host's first guest's failures from the others';
tests/nested/README.md found no difference). A boot that fails is
classified:

  stall-boot    the guest's console went silent (--idle seconds) before
                VIREO-GUEST-UP, the VMM still running
  stall-shell   the guest came up but its shell stopped answering
  slow          still printing, but not done within --timeout seconds
  shutdown      the VMM reported a triple fault (KVM_EXIT_SHUTDOWN)
  vmm-error     the VMM ended with another error before the guest was done
  bad-exit      the guest powered off but the VMM's status or exit reason
                was wrong

and what explains it is printed (tests/e2e/diag.py): the last 60 console
lines, the VMM's stderr with the vCPU registers (Vireo logs them on
SIGQUIT), and inside the nested host the tail of its kernel log and of
its KVM trace.
Prints one line per boot and a summary "N passed, M failed"; the status is
0 only if every boot passed."""
import argparse
import json
import os
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "e2e"))
from vm import GUEST, VM, Timeout  # noqa: E402
from diag import failure_report  # noqa: E402

KINDS = ("stall-boot", "stall-shell", "slow", "shutdown", "vmm-error", "bad-exit")
lock = threading.Lock()


def qemu_args(cpus, memory, cmdline):
    """QEMU's arguments for the guest Vireo boots, the program excluded."""
    return ["-enable-kvm", "-cpu", "host", "-smp", str(cpus),
            "-m", "%dM" % memory, "-nodefaults", "-no-user-config", "-display", "none",
            "-no-reboot", "-serial", "stdio", "-kernel", os.path.join(GUEST, "vmlinuz"),
            "-initrd", os.path.join(GUEST, "initramfs.cpio.gz"), "-append", cmdline]


class Slow(Timeout):
    pass


def expect_progress(vm, pattern, args):
    """Waits for pattern while the console keeps moving: a guest silent
    for args.idle seconds has stalled (Timeout); one still printing after
    args.timeout seconds is only slow (Slow), which a loaded host is."""
    start = last = time.monotonic()
    seen = len(vm.output)
    while True:
        try:
            return vm.expect(pattern, 10)
        except Timeout:
            if vm.proc.poll() is not None:
                raise
        now = time.monotonic()
        if len(vm.output) != seen:
            seen, last = len(vm.output), now
        if now - last > args.idle:
            raise Timeout("no console output for %.0fs, waiting for /%s/" % (now - last, pattern))
        if now - start > args.timeout:
            raise Slow("no /%s/ within %.0fs, console still moving" % (pattern, args.timeout))


def one_boot(args, n):
    """Returns (kind or None, seconds, detail)."""
    stats = tempfile.NamedTemporaryFile(suffix=".json", delete=False)
    stats.close()
    t0 = time.monotonic()
    vm = None
    kind = None
    try:
        if args.vmm == "qemu":
            vm = VM(qemu_args(args.cpus, args.memory, args.cmdline), linux=False,
                    program="qemu-system-x86_64")
        else:
            vm = VM(["--cpus", str(args.cpus), "--memory", "%dM" % args.memory,
                     "--cmdline", args.cmdline, "--stats-json", stats.name])
        stage = "boot"
        try:
            expect_progress(vm, r"VIREO-GUEST-UP cpus=%d " % args.cpus, args)
            stage = "shell"
            vm.send("echo answer-$((%d*7))\n" % n)
            expect_progress(vm, r"answer-%d\r?\n" % (n * 7), args)
            vm.send("poweroff\n")
            status = vm.wait(60)
        except Slow:
            kind = "slow"
            raise
        except Timeout:
            if vm.proc.poll() is None:
                kind = "stall-" + stage
            elif b"triple fault" in vm.stderr:
                kind = "shutdown"
            else:
                kind = "vmm-error"
            raise
        if status != 0:
            kind = "shutdown" if b"triple fault" in vm.stderr else "bad-exit"
            raise Timeout("status %d" % status)
        if args.vmm == "qemu":
            if b"reboot: Power down" not in vm.output:
                kind = "bad-exit"
                raise Timeout("QEMU ended without the guest's 'Power down'")
        else:
            reason = json.load(open(stats.name)).get("exit_reason")
            if reason != "poweroff":
                kind = "bad-exit"
                raise Timeout("exit_reason %s" % reason)
        return None, time.monotonic() - t0, ""
    except Timeout as e:
        kind = kind or "vmm-error"
        return kind, time.monotonic() - t0, "%s\n%s" % (str(e)[:300], failure_report([vm] if vm else []))
    finally:
        if vm:
            vm.close()
        os.unlink(stats.name)


def fio_load(stop):
    """A disk and CPU load beside the boots, like the e2e suite's fio runs."""
    path = os.path.join(tempfile.gettempdir(), "boots-load.bin")
    while not stop.is_set():
        with open(path, "wb") as f:
            for _ in range(64):
                f.write(os.urandom(1 << 20))
            os.fsync(f.fileno())
    os.unlink(path)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--boots", type=int, default=20)
    p.add_argument("--vmm", choices=("vireo", "qemu"), default="vireo")
    p.add_argument("--cpus", type=int, default=2)
    p.add_argument("--memory", type=int, default=512)
    p.add_argument("--streams", type=int, default=1)
    p.add_argument("--first-alone", action="store_true",
                   help="the first boot runs alone, the streams start when it is done")
    p.add_argument("--load", choices=("none", "io"), default="none")
    p.add_argument("--timeout", type=float, default=900,
                   help="a boot still printing after this is 'slow'")
    p.add_argument("--idle", type=float, default=120,
                   help="a guest console silent this long has stalled")
    p.add_argument("--cmdline", default="console=ttyS0",
                   help="the guest kernel's command line (Vireo; QEMU gets it too)")
    args = p.parse_args()

    counts = {k: 0 for k in KINDS}
    passed = [0]
    times = []
    next_boot = [0]
    t_start = time.monotonic()

    def boot_next(sid):
        """Boots the next guest, if any are left; False when none were."""
        with lock:
            if next_boot[0] >= args.boots:
                return False
            next_boot[0] += 1
            n = next_boot[0]
        kind, secs, detail = one_boot(args, n)
        beat = os.environ.get("VIREO_NESTED_HEARTBEAT")
        if beat:  # tests/nested/run's watchdog: this host still moves
            with open(beat, "w") as f:
                f.write("%d\n" % n)
        with lock:
            if kind:
                counts[kind] += 1
                print("not ok - boot %d (stream %d, %.1fs): %s\n  # %s" % (n, sid, secs, kind,
                      detail), flush=True)
            else:
                passed[0] += 1
                times.append(secs)
                print("ok - boot %d (stream %d, %.1fs)" % (n, sid, secs), flush=True)
        return True

    def stream(sid):
        while boot_next(sid):
            pass

    stop = threading.Event()
    loader = None
    if args.load == "io":
        loader = threading.Thread(target=fio_load, args=(stop,), daemon=True)
        loader.start()
    if args.first_alone:
        boot_next(0)
    threads = [threading.Thread(target=stream, args=(i,)) for i in range(args.streams)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    stop.set()
    if loader:
        loader.join(30)
    failed = sum(counts.values())
    times.sort()
    med = times[len(times) // 2] if times else 0
    print("boots: vmm=%s cpus=%d streams=%d load=%s: %d boots in %.0fs, median %.1fs; failures: %s"
          % (args.vmm, args.cpus, args.streams, args.load, passed[0] + failed,
             time.monotonic() - t_start, med,
             ", ".join("%s %d" % (k, v) for k, v in counts.items())), flush=True)
    print("%d passed, %d failed" % (passed[0], failed), flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
