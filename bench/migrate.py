#!/usr/bin/env python3
"""Snapshot, restore and live-migration benchmark: the same guest (Debian's
kernel, the tools image, 2 vCPUs, its shell on the serial console) under
vireo and under QEMU on the same KVM, the same QMP client on each VMM's
socket, alternating (the order flips every run), several runs; medians with
runs and spread, ratios vireo/QEMU, and the targets.

  snapshot   a guest idle at its prompt (256 MiB, 512 MiB, 1 GiB) writes a
             marker into /tmp (RAM) and is saved: vireo `migrate file:PATH`
             (it pauses the VM and writes it; the command returns when
             done), QEMU `stop` then `migrate exec:cat > PATH` (QEMU 7.2 has
             no file: URI; a running VM would be pre-copied live instead),
             waited for until its MIGRATION event says completed (the
             "events" capability on for both; polling query-migrate, as
             this bench did until 2026-12-06, slowed QEMU). Save time: from
             the first QMP command to that event. The file is measured
             once the source has quit: on disk (st_blocks * 512) and
             apparent size. max-bandwidth is set to 1 PiB/s on both for the
             save, as libvirt's `virsh save` does for QEMU: vireo's file:
             has no rate limit, QEMU's migration has one whatever the URI.
  restore    a new VMM with the same options and the file as its incoming
             migration (vireo --incoming file:PATH, QEMU -incoming
             "exec:cat PATH"), timed from starting the process: to QMP
             query-status "running" (polled every 2 ms), then to the guest
             answering `cat /tmp/mark` on its console with the marker (the
             same guest, not a new boot). The command is typed only once
             the VM runs: bytes typed earlier could reach the UART before its
             saved state is loaded over it (QEMU reads its stdin while the
             incoming migration loads). QEMU's
             restored VM is paused (the source was stopped when it was
             saved, and QEMU restores that run state), so the bench sends
             `cont` as soon as query-status says "paused", as libvirt's
             `virsh restore` does; that is inside the measured time. The
             first command's own time (running to answer) is printed apart:
             vireo maps the file's RAM and faults it in as the guest touches
             it, QEMU has read it all before it runs; the next command's
             time is printed per run for comparison.
  live       a 512 MiB guest migrated over TCP on loopback to a new VMM of
             the same options (--incoming / -incoming tcp:127.0.0.1:PORT,
             started once it listens), downtime-limit 300 ms, max-bandwidth
             128 MiB/s and auto-converge on for both (vireo's defaults;
             QEMU's but for auto-converge, off by default there), idle (a
             console heartbeat only) and while the guest rewrites a 16 MiB
             buffer of random bytes at 100 MiB/s, paced every 10 ms
             (guest/progs/dirtier.c: random, not zeros, which both VMMs would
             send as zero-page markers, and changed every pass; the rate the
             guest got is measured over 3 s before the migration). The guest
             prints HB<n> to its console every 20 ms (guest/progs/heartbeat.c;
             neither program forks: busybox's sh forked for every usleep and
             dd of the shell loops these replaced, a burst of page faults
             each under the dirty log, so their gaps could measure the shell
             as much as the VMM); a thread timestamps each line as it
             arrives from either process (tests/e2e/test_migrate_linux.py's
             Console), and the beats must be continuous (no number lost or
             repeated). The downtime seen from outside (guest clocks stop
             while the VM is moved) is the gap from the source's last beat
             to the destination's first; the pre-copy stall is the source's
             largest gap between the migrate command and that last beat
             (how long the migration froze the guest before the switchover).
             Gaps before the migrate command are the host's, not the
             migration's (starting the destination VMM can stall the guest
             for half a second on this 2-CPU nested host) and are left out:
             the largest gap overall (tests/e2e's measure) is printed per run
             only. Also each VMM's own query-migrate figures: total-time,
             downtime, ram.transferred, dirty-sync-count. Their reported
             downtimes are not defined alike: vireo's runs until the
             destination's reply (state loaded, about to run), QEMU 7.2's
             ends when the source has sent the last bytes; the heartbeat's
             switchover gap is the like-for-like figure.

Any failure (a migration that does not complete, a guest that does not
answer, a VMM that exits with an error) costs that run of that scenario
and is counted; its evidence (query-migrate, consoles, stderr, the nested
host's log) is printed in full where it happens. Exit status 1 when any run
failed."""
import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time

from stats import LEGEND, Measure, Runs, target_line
from vmguest import BenchGuest, QEMU, ROOT

sys.path.insert(0, os.path.join(ROOT, "tests", "e2e"))
import diag  # noqa: E402
import vm as vmmod  # noqa: E402
from qmp import QMP, QMPError  # noqa: E402
from test_migrate_linux import HEARTBEAT, Console, free_port  # noqa: E402

MIB = 1 << 20
LIVE_MEMORY = "512M"
DOWNTIME_LIMIT = 300       # ms: QEMU's default, and vireo's
MAX_BANDWIDTH = 128 * MIB  # bytes/s: the same
UNLIMITED = 1 << 50        # bytes/s: "no limit" for a save to a file
LIVE_TIMEOUT = 240         # s: a live migration that has not completed by then failed
SNAP_SIZES = (("256M", 256), ("512M", 512), ("1G", 1024))
# s between query-status while a restore loads: polled, not waited for as
# an event, as QEMU loads -incoming before QMP could turn its events on;
# this costs it nothing measurable (2026-12-06, 3 restores of 256 MiB each:
# to answering 3.2-3.5 s polled every 2 ms, 3.2-3.6 s every 50 ms).
RESTORE_POLL = 0.002
DIRTY_MIB, DIRTY_RATE = 16, 100  # MiB rewritten, MiB/s
DIRTY_CMD = "/usr/bin/vireo-dirtier %d %d /tmp/dn </dev/null >/dev/null 2>/tmp/dirtier.err" % (
    DIRTY_MIB, DIRTY_RATE)
# --shell-workload: the shell loops the programs replaced, kept because a
# guest that forks is a workload too, and the pre-copy stall depends on it
# (README, Snapshots and live migration): a beat forks usleep, a pass forks
# dd and usleep (about 75 MiB/s here, at whatever rate the shell gets).
SHELL_HEARTBEAT = "i=0; while [ ! -e /tmp/hb-stop ]; do i=$((i+1)); echo HB$i; usleep 20000; done"
SHELL_DIRTY_CMD = ("(dd if=/dev/urandom of=/tmp/pattern bs=1M count=%d 2>/dev/null; n=0; "
                   "while :; do dd if=/tmp/pattern of=/tmp/dirty bs=1M count=%d conv=notrunc "
                   "2>/dev/null; n=$((n+1)); echo $n $n >/tmp/dn; "
                   "usleep 100000; done) </dev/null >/dev/null 2>/tmp/dirtier.err" % (
                       DIRTY_MIB, DIRTY_MIB))


def qmp_path(tmp, tag):
    path = os.path.join(tmp, "%s.sock" % tag)
    if os.path.exists(path):
        os.unlink(path)
    return path


def qmp_connect(path, g, timeout=60):
    """QMP on path as soon as the VMM has made its socket: looked for every
    millisecond (QMP() alone retries every 50 ms, too coarse for a restore
    timed in milliseconds)."""
    deadline = time.monotonic() + timeout
    while not os.path.exists(path):
        if g.vm.proc.poll() is not None:
            raise RuntimeError("%s exited (%s) before making its QMP socket; stderr %r" % (
                g.kind, g.vm.proc.returncode, g.vm.stderr_tail(400)))
        if time.monotonic() > deadline:
            raise RuntimeError("no QMP socket %s within %ds" % (path, timeout))
        time.sleep(0.001)
    return QMP(path, timeout=timeout)


def wait_migration(q, timeout, sample=0.25):
    """Waits for the migration's end, told by the MIGRATION event (the
    "events" capability on: events_on()); returns query-migrate's reply
    once the VMM has settled, what was seen meanwhile (the highest throttle
    percentage, from a query-migrate every `sample` seconds) and when the
    end was told (time.monotonic()). Until 2026-12-06 this polled
    query-migrate every 10 ms (2 ms for a save), and the polling cost QEMU,
    whose main loop answers it under its big lock, about a quarter of its
    migration's time (idle total 6.1-7.7 s polled every 10 ms, 4.8-5.0 s
    every 200 ms; vireo's unchanged): the tables before that date are
    QEMU's handicapped figures."""
    deadline = time.monotonic() + timeout
    seen = {"throttle": 0}
    over = ("completed", "failed", "cancelled")
    next_sample = time.monotonic()
    saved_timeout = q.sock.gettimeout()
    while True:
        now = time.monotonic()
        if now >= next_sample:
            info = q.cmd("query-migrate")
            seen["throttle"] = max(seen["throttle"], info.get("cpu-throttle-percentage", 0))
            if info.get("status") in over:
                return settled(q, info), seen, now
            next_sample = now + sample
        if now > deadline:
            try:
                q.cmd("migrate_cancel")
            except QMPError:
                pass
            raise RuntimeError("migration not over after %ds: query-migrate %s" % (
                timeout, json.dumps(info)))
        try:
            e = q.event("MIGRATION", max(0.001, min(next_sample, deadline) - now))
        except (QMPError, OSError):
            e = None  # none before the next sample
        finally:
            q.sock.settimeout(saved_timeout)
        if e and e.get("data", {}).get("status") in over:
            return settled(q, None), seen, time.monotonic()


def settled(q, info):
    """query-migrate once the source has left "finish-migrate": QEMU 7.2
    tells "completed" before it has computed its total time and set its
    run state to postmigrate (its reply until then says total-time 0)."""
    deadline = time.monotonic() + 30
    while q.cmd("query-status")["status"] == "finish-migrate" and time.monotonic() < deadline:
        time.sleep(0.01)
    return q.cmd("query-migrate") if info is None or info.get("status") == "completed" else info


def events_on(q):
    """MIGRATION events, which wait_migration() waits for: QEMU's "events"
    capability (off by default there, on in Vireo)."""
    q.cmd("migrate-set-capabilities", {"capabilities": [{"capability": "events", "state": True}]})


def quit_vmm(g, q, what):
    """QMP quit; the VMM must exit with status 0."""
    q.cmd("quit")
    status = g.vm.wait(60)
    q.close()
    if status != 0:
        raise RuntimeError("%s %s: exit status %s after quit; stderr %r" % (
            what, g.kind, status, g.vm.stderr_tail(600)))


def listening(port):
    """A TCP socket in LISTEN on port (/proc/net/tcp{,6}): how the bench
    knows the destination waits, without connecting to it (QEMU would take
    a connection for the migration)."""
    for path in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(path) as f:
                lines = f.read().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:
                return True
    return False


def snapshot_run(kind, tmp, memory):
    """Boot, save, quit, restore: the save's and the restore's figures."""
    sock, sock2 = qmp_path(tmp, "snap-src"), qmp_path(tmp, "snap-dst")
    path = os.path.join(tmp, "%s-%s.snap" % (kind, memory))
    try:
        g = BenchGuest(kind, memory=memory, cpus=2, qmp=sock)
        q = QMP(sock)
        token = "SAVED-%d-%s" % (os.getpid(), time.monotonic_ns())
        g.ok("echo %s >/tmp/mark" % token)
        q.cmd("migrate-set-parameters", {"max-bandwidth": UNLIMITED})
        events_on(q)
        t0 = time.monotonic()
        if kind == "qemu":
            q.cmd("stop")
            q.cmd("migrate", {"uri": "exec:cat > %s" % path})
        else:
            q.cmd("migrate", {"uri": "file:" + path})
        info, _, t_end = wait_migration(q, 300)
        save = t_end - t0
        if info["status"] != "completed":
            raise RuntimeError("save: query-migrate %s" % json.dumps(info))
        st = q.cmd("query-status")["status"]
        if st != "postmigrate":
            raise RuntimeError("save: the source is %r, not postmigrate" % st)
        quit_vmm(g, q, "saved source")
        s = os.stat(path)

        incoming = "exec:cat %s" % path if kind == "qemu" else "file:" + path
        r = BenchGuest(kind, memory=memory, cpus=2, qmp=sock2, incoming=incoming)
        q2 = qmp_connect(sock2, r)
        deadline = time.monotonic() + 120
        cont = False
        while True:
            st = q2.cmd("query-status")["status"]
            if st == "running":
                t_run = time.monotonic() - r.vm.start
                break
            if st == "paused" and not cont:
                q2.cmd("cont")
                cont = True
                continue
            if st not in ("inmigrate", "prelaunch", "paused", "restore-vm"):
                raise RuntimeError("restore: status %r; stderr %r" % (st, r.vm.stderr_tail(600)))
            if time.monotonic() > deadline:
                raise RuntimeError("restore: still %r after 120 s" % st)
            time.sleep(RESTORE_POLL)
        out = r.ok("cat /tmp/mark", 120)
        t_answer = time.monotonic() - r.vm.start
        if token not in out:
            raise RuntimeError("restore: /tmp/mark says %r, not %r (a new boot?)" % (out, token))
        t1 = time.monotonic()
        r.ok("true")  # the next command: the guest's steady pace, for comparison
        t_next = time.monotonic() - t1
        quit_vmm(r, q2, "restored")
        return {"save_ms": save * 1e3, "vmm_total_ms": info.get("total-time"),
                "disk_mib": s.st_blocks * 512 / MIB, "size_mib": s.st_size / MIB,
                "run_ms": t_run * 1e3, "answer_ms": t_answer * 1e3,
                "first_ms": (t_answer - t_run) * 1e3, "next_ms": t_next * 1e3, "cont": cont}
    finally:
        if os.path.exists(path):
            os.unlink(path)


class TaggedConsole(Console):
    """tests/e2e's Console, each beat's process kept too (self.tags)."""

    def __init__(self):
        Console.__init__(self)
        self.tags = []

    def feed(self, vm, timeout):
        n = len(self.beats)
        Console.feed(self, vm, timeout)
        self.tags += [vm] * (len(self.beats) - n)


def dirty_passes(g):
    """How many times the dirtier has rewritten its buffer, and when."""
    # The program renames a whole "N N" line into place; the shell loop
    # rewrites the file, which a read can catch half written: a line is
    # whole when its two fields agree. Waited for 30 s at most in the
    # guest: three times the shell loop never wrote its first count in 60
    # s, a vCPU idle, and no evidence was left; now the guest says what it
    # had (its processes, the dirtier's errors).
    out = g.ok("w=0; while { ! read -r c d </tmp/dn || [ \"$c\" != \"$d\" ]; } 2>/dev/null && "
               "[ $w -lt 3000 ]; do w=$((w+1)); usleep 10000; done; "
               "if [ -n \"$c\" ] && [ \"$c\" = \"$d\" ]; then echo DN=$c; "
               "else echo DIRTIER-SILENT; ps; "
               "cat /tmp/dirtier.err /proc/loadavg; ls -l /tmp; fi", 60)
    m = re.search(r"DN=(\d+)", out)
    if not m:
        raise RuntimeError("the dirtier wrote no count in 30 s; the guest: %r" % out[-3000:])
    return int(m.group(1)), time.monotonic()


def live_run(kind, tmp, dirty):
    """A live migration over loopback, with the heartbeat: the figures."""
    sock, sock2 = qmp_path(tmp, "live-src"), qmp_path(tmp, "live-dst")
    g = BenchGuest(kind, memory=LIVE_MEMORY, cpus=2, qmp=sock)
    q = QMP(sock)
    rate = None
    if dirty:
        g.detach(DIRTY_CMD)
        # The guest's own rate, over 3 s before the heartbeat starts (the
        # shell's output would take beats from the console's record).
        n0, t_n0 = dirty_passes(g)
        time.sleep(3)
        n1, t_n1 = dirty_passes(g)
        if n1 <= n0:
            raise RuntimeError("the dirtier did not run: %d passes before, %d after" % (n0, n1))
        rate = (n1 - n0) * DIRTY_MIB / (t_n1 - t_n0)
    console = TaggedConsole()
    g.detach("(%s) >/dev/ttyS0 2>&1" % HEARTBEAT)
    until = time.monotonic() + 2
    while time.monotonic() < until:
        console.feed(g.vm, 0.05)
    port = free_port()
    d = BenchGuest(kind, memory=LIVE_MEMORY, cpus=2, qmp=sock2,
                   incoming="tcp:127.0.0.1:%d" % port)
    deadline = time.monotonic() + 60
    while not listening(port):
        if d.vm.proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError("destination not listening on %d: status %s, stderr %r" % (
                port, d.vm.proc.poll(), d.vm.stderr_tail(400)))
        console.feed(g.vm, 0.01)
        d.vm._pump(0)
    q.cmd("migrate-set-capabilities",
          {"capabilities": [{"capability": "auto-converge", "state": True}]})
    events_on(q)
    q.cmd("migrate-set-parameters",
          {"downtime-limit": DOWNTIME_LIMIT, "max-bandwidth": MAX_BANDWIDTH})
    console.follow(g.vm, d.vm)
    try:
        t0 = time.monotonic()
        q.cmd("migrate", {"uri": "tcp:127.0.0.1:%d" % port})
        info, seen, t_end = wait_migration(q, LIVE_TIMEOUT)
        wall = t_end - t0
        if info["status"] != "completed":
            raise RuntimeError("query-migrate %s; source stderr %r; destination stderr %r" % (
                json.dumps(info), g.vm.stderr[-400:], d.vm.stderr[-400:]))
        time.sleep(1.5)  # beats from the destination
    finally:
        console.stop()
    st = q.cmd("query-status")["status"]
    if st != "postmigrate":
        raise RuntimeError("the source is %r after the migration, not postmigrate" % st)
    gap, usual = console.check_continuous()
    # The beats as each process gave them: the switchover is the gap from
    # the source's last to the destination's first; before it, the source's
    # largest gap since the migrate command is how long the pre-copy
    # stalled the guest at most. Gaps before the migrate command are not
    # the migration's (starting the destination's VMM can stall the guest
    # on a 2-CPU host) and are left out of both.
    src = [t for (_, t), v in zip(console.beats, console.tags) if v is g.vm]
    dst = [t for (_, t), v in zip(console.beats, console.tags) if v is d.vm]
    if not src or not dst:
        raise RuntimeError("heartbeat: %d beats from the source, %d from the destination" % (
            len(src), len(dst)))
    switch = dst[0] - src[-1]
    stalls = [(b - max(a, t0), max(a, t0) - t0) for a, b in zip(src, src[1:]) if b > t0]
    stall, stall_at = max(stalls or [(0, 0)])
    gap_at = (src[-1] - t0, dst[0] - t0)
    quit_vmm(g, q, "migrated source")
    # vireo logs where its downtime went (pause, last pages, disks, state,
    # sending, the destination's word): kept with the run, so that an
    # outlier explains itself.
    log = g.vm.stderr.decode(errors="replace") if isinstance(g.vm.stderr, bytes) else g.vm.stderr
    steps = re.search(r"downtime \d+ ms \(([^)]*)\)", log)
    # And when its pre-copy passes ended (ms from the start, +the dirty
    # log's sync): a pre-copy stall of the guest set beside them.
    passes = re.search(r"passes ended at \(ms, \+sync\) ([^;]*);", log)
    d.ok("touch /tmp/hb-stop; sleep 0.2; echo answering")
    q2 = QMP(sock2)
    st = q2.cmd("query-status")["status"]
    if st != "running":
        raise RuntimeError("the destination is %r, not running" % st)
    quit_vmm(d, q2, "destination")
    ram = info.get("ram", {})
    return {"total_ms": info.get("total-time"), "downtime_ms": info.get("downtime"),
            "setup_ms": info.get("setup-time"), "wall_ms": wall * 1e3,
            "hb_switch_ms": switch * 1e3, "hb_stall_ms": stall * 1e3, "stall_at": stall_at,
            "hb_largest_ms": gap * 1e3,
            "hb_usual_ms": usual * 1e3, "gap_at": gap_at,
            "sent_mib": ram.get("transferred", 0) / MIB, "passes": ram.get("dirty-sync-count"),
            "throttle": seen["throttle"], "guest_rate": rate,
            "downtime_steps": steps.group(1) if steps else None,
            "passes_at": passes.group(1) if passes else None}


def guarded(title, fn, *args):
    """fn(*args); on any failure, the whole evidence printed here (Runs
    keeps 300 characters of the reason), then a RuntimeError naming the
    scenario for Runs to count. Every VM the run started is closed."""
    first = len(vmmod._live)
    try:
        return fn(*args)
    except Exception as e:
        why = "%s: %s: %s" % (title, type(e).__name__, e)
        print("FAILED %s\n  evidence:\n%s" % (why, diag.failure_report(vmmod._live[first:])),
              flush=True)
        raise RuntimeError(why) from e
    finally:
        for v in vmmod._live[first:]:
            v.close()
        del vmmod._live[first:]


def snap_line(r):
    return ("save %.0f ms (VMM %s ms), file %.1f MiB on disk of %.1f; restore: running %.0f ms, "
            "answers %.0f ms (first command %.0f ms, the next %.0f ms)%s" % (
                r["save_ms"], r["vmm_total_ms"], r["disk_mib"], r["size_mib"], r["run_ms"],
                r["answer_ms"], r["first_ms"], r["next_ms"], ", cont sent" if r["cont"] else ""))


def live_line(r):
    return ("total %s ms (seen complete at %.2f s), downtime %s ms reported; heartbeat: switchover "
            "%.0f ms (%.2f to %.2f s), largest source gap during pre-copy %.0f ms (from %.2f s), "
            "largest of all %.0f ms, usual %.0f ms; %.1f MiB sent, %s passes, throttle %s %%%s" % (
                r["total_ms"], r["wall_ms"] / 1e3, r["downtime_ms"], r["hb_switch_ms"],
                r["gap_at"][0], r["gap_at"][1], r["hb_stall_ms"], r["stall_at"],
                r["hb_largest_ms"], r["hb_usual_ms"], r["sent_mib"], r["passes"], r["throttle"],
                ", guest dirtying %.1f MiB/s" % r["guest_rate"]
                if r["guest_rate"] is not None else "") +
            ("; downtime's steps (ms): %s" % r["downtime_steps"] if r.get("downtime_steps") else "") +
            ("; passes ended at (ms, +sync): %s" % r["passes_at"] if r.get("passes_at") else ""))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=int(os.environ.get("BENCH_RUNS", "3")))
    ap.add_argument("--only", default="",
                    help="comma-separated scenarios: snap256, snap512, snap1g, idle, dirty "
                         "(default: all)")
    ap.add_argument("--shell-workload", action="store_true",
                    help="live migration: the guest's heartbeat and dirtier as shell loops "
                         "that fork (busybox usleep, dd) instead of guest/progs' programs")
    args = ap.parse_args()
    global HEARTBEAT, DIRTY_CMD
    if args.shell_workload:
        HEARTBEAT, DIRTY_CMD = SHELL_HEARTBEAT, SHELL_DIRTY_CMD
    labels = ["vireo", "qemu"]
    scenarios = [("snap%s" % ("1g" if mib == 1024 else mib),
                  "snapshot+restore %s" % ("1 GiB" if mib == 1024 else "%d MiB" % mib),
                  snapshot_run, (mem,), snap_line) for mem, mib in SNAP_SIZES]
    scenarios += [("idle", "live migration, idle", live_run, (False,), live_line),
                  ("dirty", "live migration, dirtying", live_run, (True,), live_line)]
    only = [s for s in args.only.split(",") if s]
    unknown = set(only) - {s[0] for s in scenarios}
    if unknown:
        ap.error("unknown scenario(s): %s" % ", ".join(sorted(unknown)))
    if only:
        scenarios = [s for s in scenarios if s[0] in only]
    runs = {s[0]: Runs(labels) for s in scenarios}
    t_start = time.monotonic()
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.runs):
            order = labels if i % 2 == 0 else labels[::-1]
            for key, title, fn, fargs, line in scenarios:
                for label in order:
                    r = runs[key].attempt(i + 1, label, guarded, title, fn, label, tmp, *fargs)
                    if r:
                        runs[key].add(i + 1, label, r)
                        print("run %d %s %s: %s" % (i + 1, label, title, line(r)), flush=True)

    def m(key, label, field, scale=1.0):
        if key not in runs:
            return Measure([])
        return runs[key].measure(label, lambda r: None if r[field] is None else r[field] * scale)

    def row(what, key, field, spec="%.1f"):
        if key in runs:
            print("%-42s %-36s %s" % (what, m(key, "vireo", field).cell(spec),
                                      m(key, "qemu", field).cell(spec)))

    def ratio(key, field):
        return m(key, "vireo", field).over(m(key, "qemu", field))

    def ratio_row(what, key, field):
        if key in runs:
            print("%-48s %s" % ("ratio vireo/qemu " + what, ratio(key, field).cell()))

    qemu_version = subprocess.run([QEMU, "--version"], capture_output=True,
                                  text=True).stdout.split("\n")[0]
    print("\nmigration benchmark: %d runs each (order flipped every run), %s, %s; %.0f s" % (
        args.runs, "inside the nested host" if os.environ.get("VIREO_NESTED")
        else "on this host's KVM", qemu_version, time.monotonic() - t_start))
    print("live migration's guest workload: %s" % (
        "shell loops that fork (--shell-workload)" if args.shell_workload
        else "guest/progs' heartbeat and dirtier (%d MiB at %d MiB/s), no fork" % (
            DIRTY_MIB, DIRTY_RATE)))
    print(LEGEND)
    head = "%-42s %-36s %s" % ("", "vireo", "qemu")

    print("\nSnapshot of a guest idle at its prompt (2 vCPUs; vireo migrate file:, QEMU stop + "
          "migrate exec:cat >FILE; both unthrottled)")
    print(head)
    for key, size in (("snap512", "512 MiB"), ("snap256", "256 MiB"), ("snap1g", "1 GiB")):
        row("%s: save time, ms" % size, key, "save_ms", "%.0f")
    for key, size in (("snap512", "512 MiB"), ("snap256", "256 MiB"), ("snap1g", "1 GiB")):
        row("%s: file on disk, MiB" % size, key, "disk_mib")
        row("%s: file apparent size, MiB" % size, key, "size_mib")
    ratio_row("save time, 512 MiB", "snap512", "save_ms")
    ratio_row("file on disk, 512 MiB", "snap512", "disk_mib")

    print("\nRestore to running (from starting the VMM with the file; QEMU's restored VM paused "
          "until the bench's cont)")
    print(head)
    for key, size in (("snap256", "256 MiB"), ("snap1g", "1 GiB"), ("snap512", "512 MiB")):
        row("%s: QMP says running, ms" % size, key, "run_ms", "%.0f")
        row("%s: guest answers, ms" % size, key, "answer_ms", "%.0f")
        row("%s: of which the first command, ms" % size, key, "first_ms", "%.0f")
    for key, size in (("snap256", "256 MiB"), ("snap1g", "1 GiB"), ("snap512", "512 MiB")):
        ratio_row("running, %s" % size, key, "run_ms")
        ratio_row("guest answers, %s" % size, key, "answer_ms")
    # The target is restore to running (QMP's run state, the VM's
    # vCPUs executing); to the guest answering is the stricter figure,
    # which also pays for faulting in what the first command touches.
    for key, size in (("snap256", "256 MiB"), ("snap1g", "1 GiB")):
        if key in runs:
            print(target_line("restore to running vireo/qemu, %s" % size,
                              ratio(key, "run_ms"), 0.2, "lower"))
            print(target_line("restore to answering vireo/qemu, %s" % size,
                              ratio(key, "answer_ms"), 0.2, "lower"))
    print("(the issue's bar: Firecracker restores a snapshot in a few milliseconds; everything "
          "here runs under the nested host's emulation)")

    print("\nLive migration over loopback TCP (%s, 2 vCPUs; downtime-limit %d ms, max-bandwidth "
          "%d MiB/s, auto-converge on, both)" % (LIVE_MEMORY, DOWNTIME_LIMIT, MAX_BANDWIDTH // MIB))
    print(head)
    for key, what in (("idle", "idle"), ("dirty", "dirtying")):
        row("%s: total time (VMM), ms" % what, key, "total_ms", "%.0f")
        row("%s: downtime reported, ms" % what, key, "downtime_ms", "%.0f")
        row("%s: downtime, heartbeat, ms" % what, key, "hb_switch_ms", "%.0f")
        row("%s: pre-copy stall, heartbeat, ms" % what, key, "hb_stall_ms", "%.0f")
        row("%s: usual heartbeat gap, ms" % what, key, "hb_usual_ms", "%.0f")
        row("%s: RAM sent, MiB" % what, key, "sent_mib")
        row("%s: passes (dirty-sync-count)" % what, key, "passes", "%.0f")
        row("%s: throttle reached, %%" % what, key, "throttle", "%.0f")
        if key == "dirty":
            row("dirtying: guest's rate before, MiB/s", key, "guest_rate")
    for key, what in (("idle", "idle"), ("dirty", "dirtying")):
        ratio_row("%s total time" % what, key, "total_ms")
        ratio_row("%s downtime, heartbeat" % what, key, "hb_switch_ms")
        ratio_row("%s pre-copy stall, heartbeat" % what, key, "hb_stall_ms")
        ratio_row("%s downtime, reported" % what, key, "downtime_ms")
        ratio_row("%s RAM sent" % what, key, "sent_mib")
    for key, what in (("idle", "idle"), ("dirty", "dirtying")):
        if key in runs:
            print(target_line("%s downtime (heartbeat) vireo/qemu" % what,
                              ratio(key, "hb_switch_ms"), 1.0, "lower"))
            print(target_line("%s total time vireo/qemu" % what, ratio(key, "total_ms"),
                              1.0, "lower"))

    print()
    for key, title, _, _, _ in scenarios:
        print("%s: %s" % (title, runs[key].counts_line()))
    for key, title, _, _, _ in scenarios:
        print("%s: %s" % (title, runs[key].failed_line()))
    return 1 if any(runs[k].bad[l] for k in runs for l in labels) else 0


if __name__ == "__main__":
    sys.exit(main())
