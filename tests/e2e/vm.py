"""Drives a vireo process for the end-to-end tests: start it with pipes or
a pseudo-terminal, wait for console output, type into it, wait for it to
exit. Plain standard library so it runs in the nested host's chroot."""
import os
import pty
import re
import select
import subprocess
import termios
import time

import diag

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
VIREO = os.environ.get("VIREO", os.path.join(ROOT, "build", "vireo"))
GUEST = os.environ.get("VIREO_GUEST_DIR", os.path.join(ROOT, "build", "guest"))
KERNEL = os.path.join(GUEST, "vmlinuz")
INITRD = os.path.join(GUEST, "initramfs.cpio.gz")
# Generous: under the nested host a Linux boot takes several seconds.
BOOT_TIMEOUT = float(os.environ.get("VIREO_BOOT_TIMEOUT", "120"))


class Timeout(Exception):
    pass


# Every VM started, so a failing test cannot leave one running.
_live = []


class VM:
    def __init__(self, args, tty=False, linux=True, program=None, env=None):
        """env: variables added to this process's environment for vireo."""
        cmd = [program or VIREO]
        if linux:
            cmd += ["--kernel", KERNEL, "--initrd", INITRD]
        cmd += args
        self.cmd = cmd
        self.output = b""
        self.stderr = b""
        self.tty = tty
        self.tty_before = self.tty_after = None
        self.start = time.monotonic()
        full_env = dict(os.environ, **env) if env else None
        if tty:
            self.master, slave = pty.openpty()
            self.slave = slave
            # The terminal as vireo finds it, read before it can change it.
            self.tty_before = termios.tcgetattr(slave)
            self.proc = subprocess.Popen(cmd, stdin=slave, stdout=slave, stderr=subprocess.PIPE,
                                         start_new_session=True, env=full_env)
            self.out_fd = self.master
            self.in_fd = self.master
        else:
            self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                         stderr=subprocess.PIPE, env=full_env)
            self.out_fd = self.proc.stdout.fileno()
            self.in_fd = self.proc.stdin.fileno()
        self.err_fd = self.proc.stderr.fileno()
        _live.append(self)

    def _pump(self, timeout):
        fds = [self.out_fd, self.err_fd]
        ready, _, _ = select.select(fds, [], [], timeout)
        got = False
        for fd in ready:
            try:
                data = os.read(fd, 65536)
            except OSError:
                data = b""
            if fd == self.err_fd:
                self.stderr += data
            else:
                self.output += data
            got = got or bool(data)
        return got

    def expect(self, pattern, timeout=BOOT_TIMEOUT):
        """Waits until the console output matches pattern; returns the match."""
        rx = re.compile(pattern.encode() if isinstance(pattern, str) else pattern)
        deadline = time.monotonic() + timeout
        while True:
            m = rx.search(self.output)
            if m:
                return m
            left = deadline - time.monotonic()
            if left <= 0:
                raise Timeout("no /%s/ within %ss; console tail: %r; stderr: %r" %
                              (rx.pattern.decode(), timeout, self.output[-600:], self.stderr[-600:]))
            if not self._pump(min(left, 0.5)) and self.proc.poll() is not None:
                self._pump(0)
                if not rx.search(self.output):
                    raise Timeout("vireo exited (%s) before /%s/; console tail: %r; stderr: %r" %
                                  (self.proc.returncode, rx.pattern.decode(), self.output[-600:],
                                   self.stderr[-600:]))

    def send(self, text):
        os.write(self.in_fd, text.encode() if isinstance(text, str) else text)

    def wait(self, timeout=60):
        """Waits for exit; returns the exit status."""
        deadline = time.monotonic() + timeout
        while self.proc.poll() is None:
            if time.monotonic() > deadline:
                self.kill()
                raise Timeout("vireo did not exit within %ss; console tail: %r" %
                              (timeout, self.output[-600:]))
            self._pump(0.2)
        while self._pump(0.05):
            pass
        if self.tty and self.slave is not None:
            # The terminal as vireo left it, read while our end is open.
            self.tty_after = termios.tcgetattr(self.slave)
            os.close(self.slave)
            self.slave = None
        return self.proc.returncode

    def stderr_tail(self, n=600):
        """The last n bytes vireo wrote on stderr, all of it read if it
        has exited (nothing else may be reading then)."""
        if self.proc.poll() is not None:
            while self._pump(0.05):
                pass
        return self.stderr[-n:]

    def signal(self, sig):
        self.proc.send_signal(sig)

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                # Unkillable (stuck in the kernel): report it rather than
                # hang the whole suite.
                raise Timeout("vireo did not die within 30 s of SIGKILL")

    def close(self):
        self.kill()
        if self.tty:
            for fd in (self.master, self.slave):
                if fd is not None:
                    try:
                        os.close(fd)
                    except OSError:
                        pass


def beat():
    """Tells tests/nested/run's watchdog that this nested host still moves
    (VIREO_NESTED_HEARTBEAT: a file in its writable share, whose age the
    watchdog reads against VIREO_NESTED_HEARTBEAT_S): at every case's start
    and end, so that the limit is on one case's time, whatever the load of
    the machine makes of the whole suite's."""
    path = os.environ.get("VIREO_NESTED_HEARTBEAT")
    if path:
        with open(path, "w") as f:
            f.write("%.0f\n" % time.time())


class Suite:
    def __init__(self):
        self.passed = self.failed = self.skipped = 0
        self.only = os.environ.get("VIREO_E2E_ONLY")

    def run(self, name, fn, *args):
        """Runs one case; True when it passed."""
        t0 = time.monotonic()
        beat()
        try:
            detail = fn(*args)
        except Exception as e:  # a failed assertion or a timeout
            self.fail(name, "%s: %s" % (type(e).__name__, e))
            # What explains it, while the VMs are still there: consoles,
            # vCPU registers, the nested host's log and KVM trace.
            print(diag.failure_report(list(_live)), flush=True)
            return False
        finally:
            while _live:
                _live.pop().close()
            beat()
        self.passed += 1
        print("ok - %s (%.1fs)%s" % (name, time.monotonic() - t0,
                                     ": " + detail if detail else ""), flush=True)
        return True

    def fail(self, name, why):
        self.failed += 1
        print("not ok - %s: %s" % (name, why), flush=True)

    def skip(self, name, why):
        self.skipped += 1
        print("skip - %s: %s" % (name, why), flush=True)

    def selected(self, name, key=None):
        """False, with a skip line for name, when VIREO_E2E_ONLY is set and
        is not part of key (default: the name): a case left out is said."""
        if self.only and self.only not in (name if key is None else key):
            self.skip(name, "not selected by VIREO_E2E_ONLY=%s" % self.only)
            return False
        return True

    def finish(self):
        print("%d passed, %d failed, %d skipped" % (self.passed, self.failed, self.skipped),
              flush=True)
        return 1 if self.failed else 0


def check(cond, message):
    if not cond:
        raise AssertionError(message)


class GuestShell:
    """The shell of a VM booted from the tools image (guest/guest.sh),
    driven over its console: one command at a time, its output and exit
    status found between markers. Users set self.vm."""
    _seq = 1000

    def sh(self, cmd, timeout=120):
        """Runs cmd (one line) in the guest shell; returns (status, output)."""
        cmd = cmd.rstrip()
        # Busybox's line editor, with echo off (stty -echo, as the tests
        # set it), reads the line with fgets(), which fails on EINTR: the
        # SIGCHLD of a background job of this shell ending while it waits
        # at its prompt ends the shell as if ^D had been typed. Background
        # work goes through detach(), whose processes are not its children.
        check(not cmd.endswith("&") or cmd.endswith("&&"),
              "test bug: '%s' makes a job of the console shell; use detach()" % cmd)
        GuestShell._seq += 1
        n = GuestShell._seq
        # The markers are computed by the guest, so the typed line itself
        # (echoed until stty -echo takes effect) never matches them.
        self.vm.send("echo B-$((%d+0)); %s; echo E-$((%d+0))-$?\n" % (n, cmd, n))
        m = self.vm.expect(r"E-%d-(\d+)\r?\n" % n, timeout)
        text = self.vm.output[:m.start()]
        begin = text.rfind(b"B-%d\r\n" % n)
        if begin < 0:
            begin = text.rfind(b"B-%d\n" % n)
        text = text[begin:].split(b"\n", 1)[1] if begin >= 0 else text
        self.vm.output = self.vm.output[m.end():]
        return int(m.group(1)), text.replace(b"\r", b"").decode(errors="replace")

    def detach(self, cmd, timeout=120):
        """Starts cmd in the background, as a child of init rather than of
        the shell (see sh()); its output goes where cmd redirects it."""
        return self.ok("(%s &)" % cmd, timeout)

    def ok(self, cmd, timeout=120):
        """Runs cmd, which must succeed; returns its output."""
        status, out = self.sh(cmd, timeout)
        check(status == 0, "guest: '%s' failed with status %d: %s" % (cmd, status, out[-800:]))
        return out

    def poweroff(self, timeout=120):
        self.vm.send("poweroff\n")
        status = self.vm.wait(timeout)
        check(status == 0, "exit status %d after poweroff; stderr %r" % (status, self.vm.stderr[-600:]))


def interrupt_counts(text):
    """Lines of a guest's /proc/interrupts (all of it or grepped) as {the
    handler's name (its last column: eth0, virtio0-input.0): interrupts
    over all CPUs}."""
    counts = {}
    for line in text.splitlines():
        w = line.split()
        if len(w) > 2 and w[0].endswith(":"):
            counts[w[-1]] = sum(int(x) for x in w[1:-1] if x.isdigit())
    return counts


def start_counter(sh):
    """A counter loop in the guest: /tmp/c holds "N N", N counting up.
    The number is written twice because the reader (busybox's read, which
    reads one byte at a time) can race the loop's truncate-and-write and
    get a prefix of the line: "7" of "7483". Only a line whose two fields
    agree is whole."""
    sh.detach("(i=0; while :; do i=$((i+1)); echo $i $i >/tmp/c; done) >/dev/null 2>&1")


def read_whole(path):
    """Shell code leaving in $c the number of a line "N N" at path (as
    start_counter() writes /tmp/c), read whole: until both fields agree,
    waiting for a file not there yet."""
    return ('c=; d=-; while [ -z "$c" ] || [ "$c" != "$d" ]; do read -r c d <%s 2>/dev/null '
            '|| usleep 10000; done' % path)


def read_counter(sh):
    """The counter of start_counter(), read whole (see there)."""
    return int(sh.ok(read_whole("/tmp/c") + '; echo $c').split()[-1])


def counter_advances(sh, past, when, timeout=20, uptime=False):
    """The counter of start_counter() once it is past past (a value read
    before), waiting up to timeout seconds for it in the guest, with the
    reading shell asleep in between; with uptime, (counter, the guest's
    /proc/uptime read right after it), in the same round trip. Two reads back to back are no test:
    with the writer, the memory dirtier and the nested host's steal (a
    guest vCPU gets half of one emulated CPU or less), a CPU-bound loop
    can go without the CPU for a whole console round trip, before a
    migration as after it (measured: 6 of 120 back-to-back pairs before
    a migration, 4 of 120 after, 2026-12-06). Fails, with what the guest
    says, when the loop has not moved in timeout seconds: each running
    task's CPU time, context switches and system calls twice a second
    apart (a loop that runs but does nothing visible, or one that does
    not run), the CPUs' times, the run queues, the kernel's last lines."""
    out = sh.ok('end=$(($(cut -d. -f1 /proc/uptime) + %d)); while :; do %s; '
                '[ "$c" -gt %d ] || [ "$(cut -d. -f1 /proc/uptime)" -ge $end ] && break; '
                'usleep 200000; done; echo $c $(cut -d" " -f1 /proc/uptime)'
                % (timeout, read_whole("/tmp/c"), past), timeout + 60).split()
    now = int(out[-2])
    if now > past:
        return (now, float(out[-1])) if uptime else now
    running = ("for p in /proc/[0-9]*; do grep -q '^State:.R' $p/status 2>/dev/null && "
               "echo \"$p $(cat $p/comm) stat $(cut -d' ' -f14,15,39 $p/stat) "
               "$(grep -h -E 'ctxt|^sysc|^w' $p/status $p/io | tr -s '\\t\\n ' ' ')\"; "
               "done; grep '^cpu' /proc/stat; ")
    try:
        report = sh.ok(
            "cat /proc/loadavg /tmp/c; " + running + "sleep 1; " + running +
            "for p in /proc/[0-9]*; do grep -q '^State:.R' $p/status 2>/dev/null && "
            "{ echo \"== $p $(cat $p/comm) $(cat $p/schedstat)\"; cat $p/stack; }; done; "
            "mount -t debugfs none /sys/kernel/debug 2>/dev/null; "
            "grep -E '^cpu#|\\.nr_running|\\.curr->pid|\\.clock |^ *>?R ' "
            "/sys/kernel/debug/sched/debug; dmesg | tail -n 20", 120)
    except Exception as e:  # the shell gone too: say so
        report = "(the guest's shell did not answer: %s)" % e
    check(False, "the counter loop did not move %s in %d s (at %d); the guest:\n%s" % (
        when, timeout, now, report))
