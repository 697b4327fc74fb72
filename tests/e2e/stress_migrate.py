#!/usr/bin/env python3
"""Not part of make check: a hunt for RAM that differs after a live
migration (a CI run of migrate-linux once found two such pages: the
destination's disk had taken a request while it waited for cont, now
mended; README, "Found: the RAM that differed once"). One
Linux guest with the migration test's workloads, made to churn: a disk
writer that never ends, the 16 MiB dirtier, a process forked every
20 ms, the zero-writing dd loop that the CI run had, the console
heartbeat; a wget at the end. It is migrated
back and forth HOPS times (default 20), each time with the two ends' RAM
compared to the byte (test_migrate_linux.same_ram, which reports each page
that differs with the source's record of the pass that sent it last and
why). Run it in a nested host, best beside another one busy with the e2e
suites, as CI runs them:

    tests/nested/run --mem 4G --timeout 3000 -- tests/e2e/stress_migrate.py [HOPS]
"""
import os
import re
import sys
import tempfile
import time

from qmp import QMP, fresh_socket_path
from test_migrate_linux import (DIRTIER, HEARTBEAT, Console, boot, finish_source, migrate,
                                wget_check)
from test_snapshot_linux import shell
from vm import Suite


def churn(sh):
    # Blocks 0..999 again and again, each synced: page-cache pages taken
    # and freed, disk reads into them (Vireo's writes), all the time.
    sh.detach("(while :; do n=0; while [ $n -lt 1000 ]; do printf 'blk-%06d' $n | "
              "dd of=/dev/vda bs=512 seek=$n conv=notrunc,fsync 2>/dev/null; n=$((n+1)); done; "
              "done) >/dev/null 2>&1")
    sh.detach("%s 16 100 /tmp/dirtyn </dev/null >/dev/null 2>&1" % DIRTIER)
    # Forks: fresh page tables and zeroed pages for each.
    sh.detach("(while :; do /bin/true; usleep 20000; done) >/dev/null 2>&1")
    # The live migration test's dirtier when CI saw the RAM differ: a dd
    # every 100 ms, each with a fresh 1 MiB buffer zeroed and filled
    # from /dev/zero, written over a tmpfs file.
    sh.detach("(while :; do dd if=/dev/zero of=/tmp/zeros bs=1M count=16 conv=notrunc "
              "2>/dev/null; usleep 100000; done) >/dev/null 2>&1")


def stress(tmp, hops):
    disk = os.path.join(tmp, "stress.img")
    with open(disk, "wb") as f:
        f.truncate(1000 * 512)
    path = fresh_socket_path("stress")
    vm, sh = boot(disk, path)
    q = QMP(path)
    churn(sh)
    console = Console()
    sh.detach("(%s) >/dev/ttyS0 2>&1" % HEARTBEAT)
    time.sleep(2)
    downtimes = []
    for hop in range(hops):
        dst, qpath, info, _ = migrate(vm, q, disk, console, {"downtime-limit": 300})
        finish_source(vm, q)
        downtimes.append(info["downtime"])
        # The source's own account of the downtime, step by step (pause,
        # last pages, disks, state, sending, the destination's word).
        steps = re.search(rb"downtime \d+ ms \(([^)]*)\)", vm.stderr)
        vm, q = dst, QMP(qpath)
        print("# hop %d: downtime %d ms (%s), %d passes, %.1f MiB" % (
            hop + 1, info["downtime"], steps.group(1).decode() if steps else "?",
            info["ram"]["dirty-sync-count"], info["ram"]["transferred"] / 2**20), flush=True)
    console.check_continuous()
    # The heartbeat shares the console with the shell: stopped first.
    sh = shell(vm)
    sh.ok("touch /tmp/hb-stop; sleep 1")
    wget_check(sh, 64 << 10, "after %d hops" % hops)
    return "%d hops, the RAM the same at each; downtimes %s ms" % (hops, downtimes)


def main():
    hops = int(sys.argv[1]) if len(sys.argv) > 1 else 20
    s = Suite()
    with tempfile.TemporaryDirectory() as tmp:
        s.run("stress: %d live migrations of a churning guest, RAM compared at each" % hops,
              stress, tmp, hops)
    return s.finish()


if __name__ == "__main__":
    sys.exit(main())
