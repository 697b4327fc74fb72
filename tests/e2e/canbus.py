"""The CAN harness of the end to end tests (test_can.py: virtio-can,
test_kvaser.py: the emulated Kvaser PCI card): frames as text and as raw
SocketCAN frames, the host side (vcan0, candump on it, a raw socket that
sends, a member of a Vireo CAN bus written here in Python, the canbus
hub), the guest side (a VM booted from the tools image with --can devices,
its candump, cangen and counters), the comparisons (sequences of frames
whole: count, order, contents through sha256 of the canonical candump
text, the first difference shown) and the runner that steps a rig through
its cases.

The host side needs can-utils (candump, cansend: scripts/deps installs
them; else the guest's copy in the cache, guest/can/fetch): find_tools()
looks for them, and vcan_unavailable() says why vcan0 cannot be had."""
import atexit
import hashlib
import os
import random
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time

import vm as vmmod
from vm import VM, GuestShell, Suite, check

TOOLS_INITRD = os.path.join(vmmod.GUEST, "initramfs-tools.cpio.gz")
VCAN = "vcan0"
# The guest's readiness probe on vcan0, an id nothing else here uses.
SENTINEL = "7FE#5E"
CACHE_CANBIN = os.path.join(os.environ.get("VIREO_CACHE", os.path.expanduser("~/.cache/vireo")),
                            "can", "root", "usr", "bin")


T0 = time.monotonic()


def note(msg):
    """Progress on stderr with VIREO_CAN_DEBUG=1."""
    if os.environ.get("VIREO_CAN_DEBUG"):
        print("# %7.1fs %s" % (time.monotonic() - T0, msg), file=sys.stderr, flush=True)


def host_tool(name):
    """can-utils on this host (Debian's package), else the guest's copy
    from the cache (guest/can/fetch): the same package, plain libc."""
    exe = shutil.which(name)
    if exe:
        return exe
    exe = os.path.join(CACHE_CANBIN, name)
    return exe if os.access(exe, os.X_OK) else None


def host(cmd, timeout=60):
    r = subprocess.run(cmd, shell=isinstance(cmd, str), capture_output=True, text=True,
                       timeout=timeout)
    check(r.returncode == 0, "host: %r: status %d: %s" % (cmd, r.returncode,
                                                         (r.stdout + r.stderr).strip()[-400:]))
    return r.stdout


def sha(lines):
    return hashlib.sha256("".join(l + "\n" for l in lines).encode()).hexdigest()


# --- frames as text ---------------------------------------------------------

def canon(text):
    """A frame in candump's compact form (ID#DATA, ID#R[LEN], ID##FLAGSDATA)
    made comparable: upper case, no '.' between bytes (cangen -v), and an FD
    frame's flags nibble without CANFD_FDF (4), which the kernel adds to FD
    frames on its own; BRS (1) and ESI (2) stay."""
    s = text.strip().replace(".", "").upper()
    i = s.find("##")
    if i >= 0 and len(s) > i + 2:
        s = s[:i + 2] + "%X" % (int(s[i + 2], 16) & 3) + s[i + 3:]
    return s


# The same in the guest (busybox sed), on a stream of compact frames.
GUEST_CANON = ("sed -e 's/\\.//g' -e 's/##4/##0/' -e 's/##5/##1/' -e 's/##6/##2/' "
               "-e 's/##7/##3/'")

CAN_EFF_FLAG, CAN_RTR_FLAG = 0x80000000, 0x40000000
FD_LENS = (0, 1, 2, 3, 4, 5, 6, 7, 8, 12, 16, 20, 24, 32, 48, 64)


class Frame:
    __slots__ = ("id", "ext", "rtr", "fd", "len", "data")

    def __init__(self, id_, ext=False, rtr=False, fd=False, length=0, data=b""):
        self.id, self.ext, self.rtr, self.fd, self.len = id_, ext, rtr, fd, length
        self.data = b"" if rtr else bytes(data[:length])

    def text(self):
        s = ("%08X" if self.ext else "%03X") % self.id + "#"
        if self.fd:
            return s + "#0" + self.data.hex().upper()
        if self.rtr:
            return s + "R" + ("%X" % self.len if self.len else "")
        return s + self.data.hex().upper()

    def raw(self):
        can_id = self.id | (CAN_EFF_FLAG if self.ext else 0) | (CAN_RTR_FLAG if self.rtr else 0)
        if self.fd:
            return struct.pack("=IBBBB64s", can_id, self.len, 0, 0, 0, self.data)
        return struct.pack("=IB3x8s", can_id, self.len, self.data)


def frame_list(n, fd=True, seed=36):
    """n frames cycling through every kind: standard and extended ids, data
    of every classic length (0-8), RTR with every requested length, and
    with fd CAN FD frames of every FD length (up to 64). Ids stay clear of
    the sentinel's."""
    rnd = random.Random(seed)
    kinds = ["std", "ext", "std", "ext", "rtr", "ertr"] + (["fd", "efd"] if fd else [])
    out = []
    for i in range(n):
        kind = kinds[i % len(kinds)]
        ext = kind in ("ext", "ertr", "efd")
        id_ = rnd.randrange(0x1ffffff0) if ext else rnd.randrange(0x7f0)
        if kind in ("fd", "efd"):
            length = FD_LENS[(i // len(kinds)) % len(FD_LENS)]
            out.append(Frame(id_, ext, fd=True, length=length, data=rnd.randbytes(length)))
        else:
            length = (i // len(kinds)) % 9
            out.append(Frame(id_, ext, rtr=kind in ("rtr", "ertr"), length=length,
                             data=rnd.randbytes(length)))
    return out


def first_difference(got, want):
    for i, (a, b) in enumerate(zip(got, want)):
        if a != b:
            return i
    return min(len(got), len(want))


def compare(got, want, what):
    """Two lists of canonical frames must be equal; says where not."""
    if got == want:
        return
    i = first_difference(got, want)
    raise AssertionError("%s: %d frames, expected %d; first difference at frame %d: got %s, "
                         "expected %s" % (what, len(got), len(want), i, got[i:i + 3], want[i:i + 3]))


# --- the host side ----------------------------------------------------------

def wait_quiet(lines, since, count, timeout, quiet):
    """Waits until the list lines (that a reader thread appends to) holds
    count more than since, then until it grows no more for quiet seconds;
    timeout bounds both."""
    deadline = time.monotonic() + timeout
    while len(lines) - since < count and time.monotonic() < deadline:
        time.sleep(0.1)
    n = -1
    while n != len(lines) and time.monotonic() < deadline:
        n = len(lines)
        time.sleep(quiet)


def end(p):
    """Ends the process p if it runs: SIGTERM, SIGKILL after 10 s."""
    if p.poll() is None:
        p.terminate()
        try:
            p.wait(10)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


# The readiness probe as a frame.
SENTINEL_FRAME = Frame(0x7fe, length=1, data=b"\x5e")
CANDUMP = CANSEND = None  # find_tools()


def find_tools():
    """can-utils' candump and cansend for the host side (host_tool)."""
    global CANDUMP, CANSEND
    CANDUMP, CANSEND = host_tool("candump"), host_tool("cansend")


def vcan_unavailable():
    """Why vcan0 cannot be had here, or None: it is created here (ip link
    add), which needs root, and the vcan module; the host side needs
    can-utils (find_tools() first)."""
    if os.geteuid() != 0:
        return "needs root (creates vcan0)"
    if not CANDUMP or not CANSEND:
        return "no candump/cansend on this host (apt-get install can-utils)"
    if subprocess.run(["modprobe", "vcan"], capture_output=True).returncode != 0 and \
            not os.path.isdir("/sys/module/vcan"):
        return "no vcan module"
    return None


def vcan_add(mtu=None):
    """vcan0 anew, up (mtu 72: CAN FD)."""
    vcan_del()
    host(["ip", "link", "add", "dev", VCAN, "type", "vcan"])
    if mtu:
        host(["ip", "link", "set", VCAN, "mtu", str(mtu)])
    host(["ip", "link", "set", VCAN, "up"])


def vcan_del():
    subprocess.run(["ip", "link", "del", VCAN], capture_output=True)


class HostDump:
    """candump -L on a host interface, read by a thread, shown to receive
    (a sentinel frame is sent until it comes out: under the nested host a
    fresh candump can take a while to bind its socket). Lines are kept
    whole; mark() and frames(since) cut them into phases."""

    def __init__(self, iface=VCAN):
        self.lines = []
        self.p = subprocess.Popen([CANDUMP, "-L", "-r", "8000000", iface],
                                  stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        self.t = threading.Thread(target=self._read, daemon=True)
        self.t.start()
        deadline = time.monotonic() + 30
        while not any(SENTINEL in l for l in self.lines):
            check(time.monotonic() < deadline and self.p.poll() is None,
                  "host candump on %s does not receive: %r" % (iface, self.lines[-3:]))
            host([CANSEND, iface, SENTINEL])
            time.sleep(0.3)
        time.sleep(0.3)  # any sentinel still on its way
        self.start = len(self.lines)

    def _read(self):
        for line in self.p.stdout:
            self.lines.append(line.decode(errors="replace").rstrip("\n"))

    def mark(self):
        return len(self.lines)

    def frames(self, since):
        return [canon(l.split()[2]) for l in self.lines[since:] if len(l.split()) >= 3]

    def wait(self, since, count, timeout=60, quiet=1.0):
        """Waits for count frames after since, then for quiet seconds of no
        more (so that extra frames are seen too); returns them."""
        wait_quiet(self.lines, since, count, timeout, quiet)
        return self.frames(since)

    def stop(self):
        end(self.p)
        self.t.join(10)


class HostSender:
    """A CAN_RAW socket on a host interface that sends and never receives."""

    def __init__(self, iface=VCAN):
        self.s = socket.socket(socket.AF_CAN, socket.SOCK_RAW, socket.CAN_RAW)
        self.s.setsockopt(socket.SOL_CAN_RAW, socket.CAN_RAW_FD_FRAMES, 1)
        self.s.setsockopt(socket.SOL_CAN_RAW, socket.CAN_RAW_FILTER, b"")
        self.s.bind((iface,))

    def send(self, frames, rate=None, burst=16):
        """Sends frames in order, at about rate frames/s (bursts of burst);
        ENOBUFS (the interface queue is full) is waited out, never skipped."""
        t0 = time.monotonic()
        for i, f in enumerate(frames):
            raw = f.raw()
            deadline = time.monotonic() + 10
            while True:
                try:
                    self.s.send(raw)
                    break
                except OSError as e:
                    if e.errno != 105 or time.monotonic() > deadline:  # ENOBUFS
                        raise
                    time.sleep(0.001)
            if rate and (i + 1) % burst == 0:
                ahead = t0 + (i + 1) / rate - time.monotonic()
                if ahead > 0:
                    time.sleep(ahead)

    def close(self):
        self.s.close()


# The Vireo CAN bus protocol (src/can/canbus_proto.h), for a member of our own.
CANBUS_MAGIC, CANBUS_VERSION = 0x4356, 1
CANBUS_HELLO, CANBUS_FRAME, CANBUS_TX_ACK, CANBUS_BUSOFF = 1, 2, 3, 4
MSG_EXT, MSG_RTR, MSG_FD, MSG_BRS, MSG_ESI = 0x01, 0x02, 0x04, 0x08, 0x10
CANBUS_FMT = "<HBBIIBBH64s"


class HubMember:
    """A member of a Vireo CAN bus that records every frame (and bus-off)
    it receives, and can send frames."""

    def __init__(self, path, name="test_can.py"):
        self.s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self.s.settimeout(10)
        self.s.connect(path)
        nm = name.encode()
        self.s.send(struct.pack(CANBUS_FMT, CANBUS_MAGIC, CANBUS_VERSION, CANBUS_HELLO, 0, 0, 0,
                                len(nm), 0, nm))
        m = struct.unpack(CANBUS_FMT, self.s.recv(81))
        check(m[0] == CANBUS_MAGIC and m[2] == CANBUS_HELLO, "hub answered %r" % (m,))
        self.frames = []
        self.busoffs = 0
        self.seq = 0
        self.lock = threading.Lock()
        self.s.settimeout(None)
        self.t = threading.Thread(target=self._read, daemon=True)
        self.t.start()

    def _read(self):
        while True:
            try:
                b = self.s.recv(81)
            except OSError:
                return
            if len(b) != 80:
                return
            _, _, typ, _, id_, flags, length, _, data = struct.unpack(CANBUS_FMT, b)
            if typ == CANBUS_FRAME:
                f = Frame(id_, bool(flags & MSG_EXT), bool(flags & MSG_RTR), bool(flags & MSG_FD),
                          length, data)
                text = f.text()
                if f.fd:  # the flags nibble: BRS 1, ESI 2
                    i = text.index("##") + 2
                    nibble = (1 if flags & MSG_BRS else 0) | (2 if flags & MSG_ESI else 0)
                    text = text[:i] + "%X" % nibble + text[i + 1:]
                self.frames.append(text)
            elif typ == CANBUS_BUSOFF:
                self.busoffs += 1

    def send(self, f):
        flags = (MSG_EXT if f.ext else 0) | (MSG_RTR if f.rtr else 0) | (MSG_FD if f.fd else 0)
        with self.lock:
            self.seq += 1
            self.s.send(struct.pack(CANBUS_FMT, CANBUS_MAGIC, CANBUS_VERSION, CANBUS_FRAME,
                                    self.seq, f.id, flags, f.len, 0, f.data))

    def mark(self):
        return len(self.frames)

    def wait(self, since, count, timeout=60, quiet=1.0):
        """As HostDump.wait."""
        wait_quiet(self.frames, since, count, timeout, quiet)
        return self.frames[since:]

    def close(self):
        try:
            self.s.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.s.close()
        self.t.join(5)


def hub_start(path):
    """A Vireo CAN bus hub (vireo canbus) on the socket path, returned once
    the socket is there."""
    hub = subprocess.Popen([vmmod.VIREO, "canbus", path], stdout=subprocess.DEVNULL,
                           stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 20
        while not os.path.exists(path):
            check(time.monotonic() < deadline and hub.poll() is None,
                  "no canbus hub at %s: %r" % (path, hub.stderr.read()
                                               if hub.poll() is not None else ""))
            time.sleep(0.1)
    except BaseException:
        hub_stop(hub)
        raise
    return hub


def hub_stop(hub):
    """Ends the hub, also when it was stopped (SIGSTOP)."""
    if hub.poll() is None:
        os.kill(hub.pid, signal.SIGCONT)
        end(hub)


def hub_death(hub):
    """None while the hub runs; else how it ended."""
    if hub.poll() is None:
        return None
    return "the canbus hub exited with status %s; stderr tail: %r" % (
        hub.returncode, hub.stderr.read()[-400:])


# --- the guest --------------------------------------------------------------

_guests = []


@atexit.register
def _kill_all():
    """No VM outlives the suite, whatever went wrong."""
    for g in _guests:
        g.close()


class CanGuest(GuestShell):
    """A VM booted from the tools image with --can devices, its shell driven
    over the serial console."""

    def __init__(self, cans, stats_json=None, memory="384M", qmp=None):
        args = ["--kernel", vmmod.KERNEL, "--initrd", TOOLS_INITRD,
                "--cmdline", "console=ttyS0 quiet", "--memory", memory]
        for c in cans:
            args += ["--can", c]
        if stats_json:
            args += ["--stats-json", stats_json]
        if qmp:
            args += ["--qmp", "unix:%s,server=on,wait=off" % qmp]
        self.stats_json = stats_json
        self.vm = VM(args, linux=False)
        _guests.append(self)
        self.vm.expect(r"VIREO-GUEST-UP[^\n]*\n")
        self.vm.expect(r"vireo# ", 60)  # type only once the shell reads
        self.sh("stty -echo")
        # Kernel messages on the console would mix with command output.
        self.sh("dmesg -n 1")
        self.dumps = 0

    def sh(self, cmd, timeout=120):
        note("guest %d: %s" % (self.vm.proc.pid, cmd[:100]))
        return GuestShell.sh(self, cmd, timeout)

    def stats(self):
        """can0's counters in the guest."""
        names = ("tx_packets", "tx_errors", "tx_dropped", "rx_packets", "rx_dropped", "rx_errors",
                 "rx_over_errors")
        out = self.ok("cd /sys/class/net/can0/statistics && for f in %s; do echo $f=$(cat $f); done; "
                      "cd /" % " ".join(names))
        return {k: int(v) for k, v in (l.split("=") for l in out.split() if "=" in l)}

    def state(self):
        out = self.ok("/sbin/ip -details link show can0")
        m = re.search(r"can (?:<[^>]*> )?state (\S+)", out)
        return m.group(1) if m else "?(%s)" % out.strip()[-200:]

    def wait_state(self, want, timeout=20):
        """Polls can0's state until it is want (or timeout); returns the
        last state seen."""
        deadline = time.monotonic() + timeout
        st = self.state()
        while st != want and time.monotonic() < deadline:
            time.sleep(0.3)
            st = self.state()
        return st

    def restart(self):
        """"ip link set can0 type can restart": ERROR-ACTIVE again."""
        self.ok("/sbin/ip link set can0 type can restart")
        st = self.state()
        check(st == "ERROR-ACTIVE", "after restart, can0 is %s" % st)

    def up(self, fd=False):
        if fd:
            self.ok("/sbin/ip link set can0 type can bitrate 500000 dbitrate 2000000 fd on && "
                    "/sbin/ip link set can0 up")
        else:
            self.ok("/sbin/ip link set can0 up")
        st = self.state()
        check(st == "ERROR-ACTIVE", "can0 up, state %s" % st)

    def up_bitrate(self, bitrate=500000):
        """can0 up at bitrate, classic CAN (an SJA1000 needs one set)."""
        self.ok("/sbin/ip link set can0 up type can bitrate %d" % bitrate)
        st = self.state()
        check(st == "ERROR-ACTIVE", "can0 up, state %s" % st)

    def dump_start(self, probe):
        """Starts candump -L on can0 into a new file, and returns its path
        once it is shown to receive: probe() sends the sentinel frame from
        outside until it is in the file."""
        self.dumps += 1
        path = "/tmp/dump%d.txt" % self.dumps
        # A socket buffer for all of a test's frames: a busy nested host
        # may not run candump for a while, and frames the guest kernel
        # drops from candump's socket are not the device's doing.
        # In ( ): candump is init's child, not the shell's (GuestShell.sh).
        self.ok("(candump -r 16000000 -L can0 > %s 2>&1 & echo $! > %s.pid)" % (path, path))
        deadline = time.monotonic() + 30
        while True:
            probe()
            time.sleep(0.2)
            if self.ok("grep -c '%s$' %s || true" % (SENTINEL, path)).strip() not in ("", "0"):
                return path
            check(time.monotonic() < deadline, "guest candump does not receive: %s" %
                  self.ok("cat %s; /sbin/ip -details -s link show can0" % path)[-600:])

    def dump_stop(self, path):
        # Not the shell's child: wait for it to be gone (or a zombie).
        self.ok("p=$(cat %s.pid); kill $p; while [ -e /proc/$p ] && "
                "! grep -q '^State:.*Z' /proc/$p/status 2>/dev/null; do usleep 10000; done; true"
                % path)

    def dump_frames(self, path, count, timeout=30):
        """Waits for count frames in the dump at path (wait_frames), stops
        it, and returns its frames, canonical."""
        self.wait_frames(path, count, timeout)
        self.dump_stop(path)
        return self.lines(self.canon_dump(path))

    def count_frames(self, path):
        return int(self.ok("grep -v ' %s$' %s | wc -l" % (SENTINEL, path)).strip())

    def wait_frames(self, path, count, timeout=120):
        """Waits until the dump holds count frames (sentinels aside)."""
        deadline = time.monotonic() + timeout
        n = self.count_frames(path)
        while n < count and time.monotonic() < deadline:
            time.sleep(0.5)
            n = self.count_frames(path)
        time.sleep(0.5)
        return self.count_frames(path)

    def canon_dump(self, path):
        """The dump's frames (sentinels aside) in canonical form, in a file."""
        out = path + ".c"
        self.ok("awk '$3 != \"%s\" { print $3 }' %s | %s > %s" % (SENTINEL, path, GUEST_CANON, out))
        return out

    def check_file(self, path, want, what):
        """The guest file path (canonical frames, one a line) must hold
        exactly the list want: compared by count and sha256, and when they
        differ the first difference is found (bisecting on prefix hashes)
        and shown."""
        out = self.ok("echo n=$(wc -l < %s) sha=$(sha256sum < %s | cut -d' ' -f1)" % (path, path))
        m = re.search(r"n=(\d+) sha=([0-9a-f]+)", out)
        check(m, "guest: no count/sha256 for %s: %r" % (path, out))
        n, got = int(m.group(1)), m.group(2)
        if n == len(want) and got == sha(want):
            return
        lo, hi = 0, min(n, len(want))
        while lo < hi:  # the first lo lines agree
            mid = (lo + hi + 1) // 2
            h = self.ok("head -n %d %s | sha256sum | cut -d' ' -f1" % (mid, path)).strip()
            if h == sha(want[:mid]):
                lo = mid
            else:
                hi = mid - 1
        there = self.ok("sed -n '%d,%dp' %s" % (lo + 1, lo + 3, path)).split()
        raise AssertionError("%s: %d frames, expected %d; first difference at frame %d: got %s, "
                             "expected %s" % (what, n, len(want), lo, there, want[lo:lo + 3]))

    def lines(self, path):
        return [l for l in self.ok("cat %s" % path).split() if l]

    def death(self):
        """None while the VM runs; else how it ended: vireo's exit status
        and the tail of its stderr."""
        if self.vm.proc.poll() is None:
            return None
        return "VM (pid %d) exited with status %s; stderr tail: %r" % (
            self.vm.proc.pid, self.vm.proc.returncode, self.vm.stderr_tail(400))

    def close(self):
        self.vm.close()


def detach(g):
    """Takes g out of vm.py's list of VMs that Suite.run() kills after each
    case: one VM serves several cases, and the caller closes it."""
    if g.vm in vmmod._live:
        vmmod._live.remove(g.vm)
    return g


# cangen -v prints each frame before writing it, and -p makes it wait for
# room rather than give up, so its output is exactly the sequence it sent.
def guest_cangen(g, runs, out, gap=0, timeout=600):
    """Runs cangen on can0 once per (count, options) in runs; the frames
    sent, canonical, one a line, go to the guest file out."""
    g.ok("rm -f %s.v" % out)
    for count, opts in runs:
        g.ok("cangen can0 -g %d -p 100 -n %d %s -v >> %s.v" % (gap, count, opts, out), timeout)
    g.ok("awk '{ print $2 }' %s.v | %s > %s" % (out, GUEST_CANON, out))
    return sum(c for c, _ in runs)


# --- rigs -------------------------------------------------------------------

class Rig:
    """A rig: its host side (setup(d), d a directory of its own) and its
    VMs (start(), a subclass's); close() undoes what was done of both,
    also when either fails."""

    def __init__(self, d):
        self.qmp = None
        try:
            self.setup(d)
            self.start()
        except BaseException:
            self.close()
            raise

    def setup(self, d):
        pass

    def start(self):
        raise NotImplementedError


class VcanRig(Rig):
    """vcan0 (mtu 72 for CAN FD), a host candump on it from before the VM
    starts until after it ends (dump), a raw socket that sends on it
    (sender), and one VM (g) that a subclass's start() boots; qmp, a QMP
    client of the VM's, where start() opens one. guest_tx and guest_rx
    count the frames the guest put on vcan0 and those sent to it while it
    listened; powered_off says the VM was powered off on purpose."""

    mtu = None

    def setup(self, d):
        self.d = d
        self.dump = self.sender = self.g = None
        self.powered_off = False
        self.guest_tx = 0
        self.guest_rx = 0
        vcan_add(self.mtu)
        self.dump = HostDump()
        self.sender = HostSender()

    def probe(self):
        self.sender.send([SENTINEL_FRAME])
        self.guest_rx += 1

    def guest_to_host(self, runs, fd=False):
        """The guest's cangen runs (guest_cangen) against the host's
        candump: the sender's record and the host's view equal, whole;
        tx_packets up by as many, no tx_errors. Returns the frames sent,
        the seconds cangen took, and the count of each kind of frame on
        vcan0 (standard, extended, RTR, and with fd FD frames of 64
        bytes), each of which must be there."""
        g = self.g
        since = self.dump.mark()
        before = g.stats()
        t0 = time.monotonic()
        n = guest_cangen(g, runs, "/tmp/tx.txt")
        t1 = time.monotonic()
        self.guest_tx += n
        got = self.dump.wait(since, n, 120)
        after = g.stats()
        g.check_file("/tmp/tx.txt", got, "guest cangen record vs host candump on %s" % VCAN)
        kinds = {"std": sum(1 for f in got if re.match(r"^[0-9A-F]{3}#[0-9A-F]*$", f)),
                 "ext": sum(1 for f in got if re.match(r"^[0-9A-F]{8}#[0-9A-F]*$", f)),
                 "rtr": sum(1 for f in got if "#R" in f)}
        if fd:
            kinds["fd64"] = sum(1 for f in got if "##" in f and len(f.split("##")[1]) == 129)
        check(all(kinds.values()), "not every kind of frame was there: %s" % kinds)
        dt = after["tx_packets"] - before["tx_packets"]
        check(dt == n and after["tx_errors"] == before["tx_errors"],
              "guest tx_packets +%d (expected %d), tx_errors %d -> %d" %
              (dt, n, before["tx_errors"], after["tx_errors"]))
        return n, t1 - t0, kinds

    def host_to_guest(self, frames, send):
        """frames (Frame) from the host, sent by send(path) while the
        guest's candump writes to path, against that candump: exactly
        them, in order, and the guest's rx_dropped and rx_over_errors
        unchanged. Returns the frames the dump holds and the seconds
        send() took."""
        g = self.g
        want = [f.text() for f in frames]
        before = g.stats()
        path = g.dump_start(self.probe)
        t0 = time.monotonic()
        send(path)
        t1 = time.monotonic()
        self.guest_rx += len(frames)
        n = g.wait_frames(path, len(frames))
        g.dump_stop(path)
        after = g.stats()
        g.check_file(g.canon_dump(path), want, "host raw socket -> guest candump")
        check(after["rx_dropped"] == before["rx_dropped"] and
              after["rx_over_errors"] == before["rx_over_errors"],
              "guest rx_dropped %d -> %d, rx_over_errors %d -> %d" % (
                  before["rx_dropped"], after["rx_dropped"], before["rx_over_errors"],
                  after["rx_over_errors"]))
        return n, t1 - t0

    def busoff(self):
        """An error frame with CAN_ERR_BUSOFF on vcan0: the guest's can0
        must go BUS-OFF."""
        host([CANSEND, VCAN, "20000040#0000000000000000"])  # CAN_ERR_BUSOFF
        st = self.g.wait_state("BUS-OFF", 20)
        check(st == "BUS-OFF", "after an error frame with CAN_ERR_BUSOFF on %s, can0 is %s" % (
            VCAN, st))

    def send_then_answer(self, since, frame, answer, who="the guest's"):
        """The guest sends frame (cansend; compact text) and, once it is on
        vcan0 (in the host candump after since), the host sends answer (a
        Frame). cansend returns before the frame is on vcan0: waiting for
        it keeps the order on the bus, in the log and in the guest the
        same (concurrent frames have no fixed order)."""
        self.g.ok("cansend can0 " + frame)
        self.guest_tx += 1
        deadline = time.monotonic() + 30
        while frame not in self.dump.frames(since):
            check(time.monotonic() < deadline, "%s %s never reached %s" % (who, frame, VCAN))
            time.sleep(0.1)
        self.sender.send([answer])
        self.guest_rx += 1

    def deaths(self):
        """How the VM ended, unless it was powered off on purpose."""
        return [] if self.powered_off else [d for d in [self.g.death()] if d]

    def close(self):
        for x in (self.qmp, self.g, self.sender):
            if x:
                x.close()
        if self.dump:
            self.dump.stop()
        vcan_del()


class HubRig(Rig):
    """A Vireo CAN bus hub (vireo canbus on d/bus.sock), a member written
    here in Python watching it (watch, named member), and the VMs that a
    subclass's start() boots on the bus (vms(); those in off were powered
    off on purpose); qmp, a QMP client of one of them, where start()
    opens one."""

    member = "test_can.py"

    def setup(self, d):
        self.path = os.path.join(d, "bus.sock")
        self.watch = self.hub = None
        self.off = []
        self.hub = hub_start(self.path)
        self.watch = HubMember(self.path, self.member)

    def vms(self):
        return []

    def probe(self):
        self.watch.send(SENTINEL_FRAME)

    def deaths(self):
        """How each VM that should be running, and the hub, ended."""
        out = [d for d in (g.death() for g in self.vms() if g not in self.off) if d]
        hub = hub_death(self.hub)
        return out + [hub] if hub else out

    def close(self):
        for g in self.vms():
            g.close()
        for x in (self.watch, self.qmp):
            if x:
                x.close()
        if self.hub:
            hub_stop(self.hub)


def run_cases(s, prefix, rig_class, steps, why_not=None):
    """Runs steps (name, function, or a string: why that step is
    skipped) on one rig, in order. A VM (or the hub) that died before a
    step fails that step with its exit status and stderr: a crash of
    vireo never passes as a skip. After a failed setup or a death the
    remaining steps are skipped, saying why (the failure is above)."""
    names = ["%s: %s" % (prefix, n) for n, _ in steps]
    # VIREO_E2E_ONLY selects a part (socketcan or bus), not single steps:
    # the steps share the part's VMs.
    if not all([s.selected(n, key=prefix) for n in names]):
        return
    if why_not:
        for n in names:
            s.skip(n, why_not)
        return
    d = tempfile.mkdtemp()
    rig = None
    broken = None
    try:
        try:
            rig = rig_class(d)
        except Exception as e:
            s.fail("%s: setup" % prefix, "%s: %s" % (type(e).__name__, e))
            broken = "the setup failed"
        for n, (_, fn) in zip(names, steps):
            if broken:
                s.skip(n, "not run: %s (see above)" % broken)
                continue
            if isinstance(fn, str):
                s.skip(n, fn)
                continue
            dead = rig.deaths()
            if dead:
                s.fail(n, "before this step: " + "; ".join(dead))
                broken = "vireo died"
                continue
            s.run(n, fn, rig)
    finally:
        if rig:
            rig.close()
        shutil.rmtree(d, ignore_errors=True)



def suite_main(name, run):
    """A suite's main(): run(s) runs its parts (run_cases) on a Suite s,
    with can-utils found (find_tools()); without the tools image, the
    suite is one skip, saying so. Returns the suite's exit status."""
    s = Suite()
    if not os.path.exists(TOOLS_INITRD):
        s.skip(name, "%s not built (guest/build)" % TOOLS_INITRD)
        return s.finish()
    find_tools()
    run(s)
    return s.finish()
