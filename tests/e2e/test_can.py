#!/usr/bin/env python3
"""End to end tests of virtio-can (--can) with Debian's kernel, our guest
driver (guest/can) and the tools image (build/guest/initramfs-tools.cpio.gz:
virtio_can, can-utils, iproute2's ip), on a real KVM (the nested host on
machines whose /dev/kvm cannot run Linux). The socketcan part needs root
and the vcan module; the bus part neither (each case that cannot run says
so with its own skip line). A VM or hub that dies is a failure.

What is checked is what the guest and the host observe, frame by frame:
sequences of frames are compared whole (count, order and contents, through
sha256 of the canonical candump text on both sides, and the first
difference when they disagree), never only counted.

  socketcan  one VM on "--can socketcan=vcan0,fd=on,log=FILE": 10,000
             frames guest -> host (cangen: standard, extended, RTR, 0-8
             bytes, CAN FD up to 64 bytes; cangen -v is the sender's record,
             host candump on vcan0 the receiver's) and 10,000 host -> guest
             (a generated list sent from a raw socket, guest candump);
             cansend while can0 is down (refused by the guest's netdev;
             the device's own rule is in the unit tests); bus-off from an
             error frame on vcan0, and "ip link set can0 type can
             restart"; vireo's --stats-json; the log file against host
             candump.
  bus        two VMs on "vireo canbus": frames both ways; a third VM
             joining later gets only new traffic (its candump, and its
             device's counters in --stats-json for what arrived while its
             controller was stopped); STOP (ip link set can0 down) while
             frames are pending on a stalled bus; bus-off for all (vireo
             canbus --inject-busoff) and restart; one VM with two
             controllers (vcan0 and the bus). A member written here in
             Python (the hub's protocol, canbus_proto.h) watches the bus
             from the host.

The host side needs can-utils (candump, cansend: scripts/deps installs
them; else the guest's copy in the cache, guest/can/fetch).
VIREO_E2E_ONLY=socketcan or bus runs one part (the other part's cases are
listed as skipped)."""
import atexit
import hashlib
import json
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
from qmp import QMP
from vm import VM, GuestShell, Suite, check

TOOLS_INITRD = os.path.join(vmmod.GUEST, "initramfs-tools.cpio.gz")
VCAN = "vcan0"
N_FRAMES = 10000
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
        deadline = time.monotonic() + timeout
        while len(self.lines) - since < count and time.monotonic() < deadline:
            time.sleep(0.1)
        n = -1
        while n != len(self.lines) and time.monotonic() < deadline:
            n = len(self.lines)
            time.sleep(quiet)
        return self.frames(since)

    def stop(self):
        if self.p.poll() is None:
            self.p.terminate()
            try:
                self.p.wait(10)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()
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
        deadline = time.monotonic() + timeout
        while len(self.frames) - since < count and time.monotonic() < deadline:
            time.sleep(0.1)
        n = -1
        while n != len(self.frames) and time.monotonic() < deadline:
            n = len(self.frames)
            time.sleep(quiet)
        return self.frames[since:]

    def close(self):
        try:
            self.s.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.s.close()
        self.t.join(5)


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

    def up(self, fd=False):
        if fd:
            self.ok("/sbin/ip link set can0 type can bitrate 500000 dbitrate 2000000 fd on && "
                    "/sbin/ip link set can0 up")
        else:
            self.ok("/sbin/ip link set can0 up")
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


# Guest -> host traffic, one cangen run per kind; cangen -v prints each frame
# before writing it, and -p makes it wait for room rather than give up, so
# its output is exactly the sequence it sent.
GEN_CLASSIC = (
    (2000, "-I r -L i -D r"),          # standard ids, data 0-8 bytes
    (2000, "-e -I r -L i -D r"),       # extended ids
    (1000, "-R -I r -L i"),            # RTR, requested length 0-8
    (1000, "-R -e -I r -L i"),         # extended RTR
)
GEN_FD = (
    (2000, "-f -I r -L i -D r"),       # CAN FD, every length up to 64
    (2000, "-f -e -I r -L i -D r"),    # CAN FD, extended ids
)


def guest_cangen(g, runs, out, gap=0, timeout=600):
    """Runs cangen on can0 once per (count, options) in runs; the frames
    sent, canonical, one a line, go to the guest file out."""
    g.ok("rm -f %s.v" % out)
    for count, opts in runs:
        g.ok("cangen can0 -g %d -p 100 -n %d %s -v >> %s.v" % (gap, count, opts, out), timeout)
    g.ok("awk '{ print $2 }' %s.v | %s > %s" % (out, GUEST_CANON, out))
    return sum(c for c, _ in runs)


# --- socketcan ---------------------------------------------------------------

class SocketcanRig:
    """vcan0 (CAN FD), a host candump on it from before the VM starts until
    after it ends, and one VM on "--can socketcan=vcan0,fd=on,log=FILE"."""

    def __init__(self, d):
        self.dump = self.sender = self.g = self.t_end = None
        self.powered_off = False
        self.guest_tx = 0  # frames the guest put on vcan0
        self.guest_rx = 0  # frames sent to the guest while it listened
        self.rx_dropped = 0  # frames sent while the controller was stopped
        self.log = os.path.join(d, "can.log")
        self.stats_json = os.path.join(d, "stats.json")
        try:
            subprocess.run(["ip", "link", "del", VCAN], capture_output=True)
            host(["ip", "link", "add", "dev", VCAN, "type", "vcan"])
            host(["ip", "link", "set", VCAN, "mtu", "72"])
            host(["ip", "link", "set", VCAN, "up"])
            self.dump = HostDump()
            self.sender = HostSender()
            self.t_start = time.time()
            self.g = detach(CanGuest(["socketcan=%s,fd=on,log=%s" % (VCAN, self.log)],
                                     stats_json=self.stats_json))
            self.g.up(fd=True)
        except BaseException:
            self.close()
            raise

    def probe(self):
        self.sender.send([Frame(0x7fe, length=1, data=b"\x5e")])
        self.guest_rx += 1

    def deaths(self):
        """How each VM that should be running ended (none: all run)."""
        return [] if self.powered_off else [d for d in [self.g.death()] if d]

    def finish(self):
        """Powers the VM off (vireo writes --stats-json and closes the log)."""
        if not self.powered_off:
            self.powered_off = True
            self.g.poweroff()
            self.t_end = time.time()
            time.sleep(0.5)
            self.dump.stop()

    def close(self):
        for x in (self.g, self.sender):
            if x:
                x.close()
        if self.dump:
            self.dump.stop()
        subprocess.run(["ip", "link", "del", VCAN], capture_output=True)


def sc_guest_to_host(r):
    g = r.g
    since = r.dump.mark()
    before = g.stats()
    t0 = time.monotonic()
    n = guest_cangen(g, GEN_CLASSIC + GEN_FD, "/tmp/tx.txt")
    t1 = time.monotonic()
    r.guest_tx += n
    got = r.dump.wait(since, n, 120)
    after = g.stats()
    # The sender's record and the host's view: equal, whole.
    g.check_file("/tmp/tx.txt", got, "guest cangen record vs host candump on %s" % VCAN)
    kinds = {"std": sum(1 for f in got if re.match(r"^[0-9A-F]{3}#[0-9A-F]*$", f)),
             "ext": sum(1 for f in got if re.match(r"^[0-9A-F]{8}#[0-9A-F]*$", f)),
             "rtr": sum(1 for f in got if "#R" in f),
             "fd64": sum(1 for f in got if "##" in f and len(f.split("##")[1]) == 129)}
    check(all(kinds.values()), "not every kind of frame was there: %s" % kinds)
    dt = after["tx_packets"] - before["tx_packets"]
    check(dt == n and after["tx_errors"] == before["tx_errors"],
          "guest tx_packets +%d (expected %d), tx_errors %d -> %d" %
          (dt, n, before["tx_errors"], after["tx_errors"]))
    return "%d frames in %.1fs (%s), same sequence on both sides" % (n, t1 - t0, ", ".join(
        "%s %d" % kv for kv in kinds.items()))


def sc_host_to_guest(r):
    g = r.g
    frames = frame_list(N_FRAMES, fd=True)
    want = [f.text() for f in frames]
    before = g.stats()
    path = g.dump_start(r.probe)
    t0 = time.monotonic()
    # About what a CAN bus carries (a 500 kbit/s bus: ~4,000 frames/s).
    rate = float(os.environ.get("VIREO_CAN_RATE", "4000"))
    r.sender.send(frames, rate=rate)
    t1 = time.monotonic()
    r.guest_rx += len(frames)
    n = g.wait_frames(path, len(frames))
    g.dump_stop(path)
    after = g.stats()
    g.check_file(g.canon_dump(path), want, "host raw socket -> guest candump")
    check(after["rx_dropped"] == before["rx_dropped"] and
          after["rx_over_errors"] == before["rx_over_errors"],
          "guest rx_dropped %d -> %d, rx_over_errors %d -> %d" % (
              before["rx_dropped"], after["rx_dropped"], before["rx_over_errors"],
              after["rx_over_errors"]))
    return "%d frames (%d FD up to 64 bytes, %d RTR) sent at %.0f/s in %.1fs; guest candump got " \
           "exactly them, in order" % (n, sum(f.fd for f in frames), sum(f.rtr for f in frames), rate,
                                        t1 - t0)


def sc_tx_down(r):
    g = r.g
    g.ok("/sbin/ip link set can0 down")
    since = r.dump.mark()
    st, out = g.sh("cansend can0 321#0102030405060708 2>&1")
    st2, out2 = g.sh("cansend can0 12345678##1" + "AB" * 64 + " 2>&1")
    # A frame from the host meanwhile: the stopped controller drops it.
    r.sender.send([Frame(0x222, length=2, data=b"\x22\x22")])
    r.rx_dropped += 1
    g.up(fd=True)
    # Then something that does pass, to show the bus was listened to.
    g.ok("cansend can0 323#0A0B")
    r.guest_tx += 1
    got = r.dump.wait(since, 2, 30)
    check(st != 0 and st2 != 0, "cansend on a down can0: status %d (%s), %d (%s)" %
          (st, out.strip(), st2, out2.strip()))
    check("down" in (out + out2).lower(), "cansend's error is not 'Network is down': %r %r" %
          (out, out2))
    compare(got, ["222#2222", "323#0A0B"], "%s while can0 was down, then a frame after up" % VCAN)
    # The guest's netdev refuses before the device sees the frame (the
    # device's tx_refused stays 0, checked with --stats-json below); the
    # device's own rule, TX refused while stopped, is unit-tested
    # (tests/unit/test_virtio_can.c, test_controller_rules).
    return "cansend: %s (the guest's netdev refused it; the device rule is unit-tested); nothing " \
           "reached %s" % (out.strip().splitlines()[-1], VCAN)


def sc_busoff(r):
    g = r.g
    before = g.stats()
    since = r.dump.mark()
    host([CANSEND, VCAN, "20000040#0000000000000000"])  # CAN_ERR_BUSOFF
    deadline = time.monotonic() + 20
    st = g.state()
    while st != "BUS-OFF" and time.monotonic() < deadline:
        time.sleep(0.3)
        st = g.state()
    check(st == "BUS-OFF", "after an error frame with CAN_ERR_BUSOFF on %s, can0 is %s" % (VCAN, st))
    # A bus-off controller hears nothing.
    r.sender.send([Frame(0x332, length=1, data=b"\x32")])
    r.rx_dropped += 1
    mid = g.stats()
    time.sleep(1)
    g.ok("/sbin/ip link set can0 type can restart")
    st2 = g.state()
    check(st2 == "ERROR-ACTIVE", "after restart, can0 is %s" % st2)
    # Frames pass again, both ways.
    path = g.dump_start(r.probe)
    g.ok("cansend can0 333#33")
    r.guest_tx += 1
    # cansend returns before the frame is on vcan0: the host's frame goes
    # only once it is there, so that the order on the bus, in the log and
    # in the guest is the same (concurrent frames have no fixed order).
    deadline = time.monotonic() + 30
    while "333#33" not in r.dump.frames(since):
        check(time.monotonic() < deadline, "the guest's 333#33 never reached %s" % VCAN)
        time.sleep(0.1)
    r.sender.send([Frame(0x334, length=1, data=b"\x34")])
    r.guest_rx += 1
    g.wait_frames(path, 2, 30)
    g.dump_stop(path)
    got_guest = g.lines(g.canon_dump(path))
    got_host = [f for f in r.dump.wait(since, 3, 30) if f != SENTINEL]
    after = g.stats()
    compare(got_host, ["332#32", "333#33", "334#34"], "%s from the bus-off on" % VCAN)
    # The guest sees its own frame (echo) and the host's.
    compare(got_guest, ["333#33", "334#34"], "guest candump after restart")
    check(mid["rx_packets"] == before["rx_packets"],
          "the guest received while bus-off: rx_packets %d -> %d" % (before["rx_packets"],
                                                                    mid["rx_packets"]))
    return "BUS-OFF after the error frame; a frame from the host meanwhile not received; " \
           "restart: ERROR-ACTIVE, frames pass both ways (rx_packets %d -> %d)" % (
               before["rx_packets"], after["rx_packets"])


def sc_stats_and_log(r):
    g = r.g
    gstats = g.stats()
    r.finish()
    s = json.load(open(r.stats_json))
    dev = s.get("devices", {}).get("virtio-can0")
    check(dev, "no virtio-can0 in --stats-json devices: %s" % sorted(s.get("devices", {})))
    # Each counter against the guest's and against what the test sent.
    check(dev["tx_frames"] == r.guest_tx == gstats["tx_packets"],
          "tx_frames %d, guest tx_packets %d, frames the guest was made to send %d" %
          (dev["tx_frames"], gstats["tx_packets"], r.guest_tx))
    check(dev["rx_frames"] == r.guest_rx == gstats["rx_packets"],
          "rx_frames %d, guest rx_packets %d, frames sent to the listening guest %d" %
          (dev["rx_frames"], gstats["rx_packets"], r.guest_rx))
    check(dev["rx_dropped"] == r.rx_dropped and dev["tx_refused"] == 0,
          "rx_dropped %d (frames sent while can0 was down or bus-off: %d), tx_refused %d" %
          (dev["rx_dropped"], r.rx_dropped, dev["tx_refused"]))
    # The guest got every frame sent to it (host -> guest compared them),
    # so the host kernel lost none before vireo read its socket.
    check(dev.get("rx_lost") == 0, "rx_lost %s, though the guest got every frame" %
          dev.get("rx_lost"))
    check(dev["queue_notifications"] > 0 and dev["interrupts"] > 0, "stats: %s" % dev)
    # The log: candump -L lines, the frames host candump saw (from the
    # VM's start: before it only the sentinels), in the same order.
    with open(r.log) as f:
        log = f.read().splitlines()
    bad = [l for l in log if not re.match(r"^\((\d+)\.(\d{6})\) %s [0-9A-F]{3}(?:[0-9A-F]{5})?#"
                                          r"(?:R[0-9A-F]?|#[0-9A-F](?:[0-9A-F]{2})*|(?:[0-9A-F]{2})*)$"
                                          % VCAN, l)]
    check(not bad, "log lines not in candump -L format: %s" % bad[:3])
    stamps = [float(l[1:l.index(")")]) for l in log]
    check(stamps == sorted(stamps), "log timestamps go backwards")
    check(stamps and r.t_start - 1 <= stamps[0] and stamps[-1] <= r.t_end + 1,
          "log timestamps %s..%s outside the test's %s..%s" % (stamps[:1], stamps[-1:],
                                                               r.t_start, r.t_end))
    seen = [l.split(None, 1)[1] for l in r.dump.lines[r.dump.start:]]
    logged = [l.split(None, 1)[1] for l in log]
    compare(logged, seen, "log file vs host candump -L on %s (interface, id, data)" % VCAN)
    return "stats: tx_frames %d rx_frames %d tx_refused %d rx_dropped %d, %d MMIO exits, %d " \
           "notifications, %d interrupts; log: %d lines, the same as candump's" % (
               dev["tx_frames"], dev["rx_frames"], dev["tx_refused"], dev["rx_dropped"], dev["exits"],
               dev["queue_notifications"], dev["interrupts"], len(log))


# --- the Vireo CAN bus -------------------------------------------------------

class BusRig:
    def __init__(self, d):
        self.path = os.path.join(d, "bus.sock")
        self.c_stats = os.path.join(d, "c-stats.json")
        self.a_qmp = os.path.join(d, "a-qmp.sock")
        self.qmp = None
        self.watch = self.a = self.b = self.c = None
        self.off = []  # VMs powered off on purpose
        self.hub = subprocess.Popen([vmmod.VIREO, "canbus", self.path], stdout=subprocess.DEVNULL,
                                    stderr=subprocess.PIPE)
        try:
            deadline = time.monotonic() + 20
            while not os.path.exists(self.path):
                check(time.monotonic() < deadline and self.hub.poll() is None,
                      "no canbus hub at %s: %r" % (self.path, self.hub.stderr.read()
                                                   if self.hub.poll() is not None else ""))
                time.sleep(0.1)
            self.watch = HubMember(self.path)
            self.a = detach(CanGuest(["bus=" + self.path], qmp=self.a_qmp))
            self.qmp = QMP(self.a_qmp)
            self.b = detach(CanGuest(["bus=" + self.path]))
            for g in (self.a, self.b):
                g.up()
        except BaseException:
            self.close()
            raise

    def probe(self):
        self.watch.send(Frame(0x7fe, length=1, data=b"\x5e"))

    def vms(self):
        return [g for g in (self.a, self.b, self.c) if g]

    def deaths(self):
        """How each VM that should be running, and the hub, ended."""
        out = [d for d in (g.death() for g in self.vms() if g not in self.off) if d]
        if self.hub.poll() is not None:
            out.append("the canbus hub exited with status %s; stderr tail: %r" % (
                self.hub.returncode, self.hub.stderr.read()[-400:]))
        return out

    def close(self):
        for g in (self.a, self.b, self.c):
            if g:
                g.close()
        if self.watch:
            self.watch.close()
        if self.qmp:
            self.qmp.close()
        if self.hub.poll() is None:
            os.kill(self.hub.pid, signal.SIGCONT)
            self.hub.terminate()
            try:
                self.hub.wait(10)
            except subprocess.TimeoutExpired:
                self.hub.kill()
                self.hub.wait()


BUS_GEN = ((200, "-I r -L i -D r"), (150, "-e -I r -L i -D r"), (150, "-R -I r -L i"))


def bus_two_vms(r):
    detail = []
    for src, dst, name in ((r.a, r.b, "A->B"), (r.b, r.a, "B->A")):
        path = dst.dump_start(r.probe)
        since = r.watch.mark()
        # 1 ms apart: a receiver that falls behind loses frames on a
        # CAN bus, as on real ones; this is about contents and order.
        n = guest_cangen(src, BUS_GEN, "/tmp/bus.txt", gap=1)
        dst.wait_frames(path, n, 60)
        dst.dump_stop(path)
        # Three records of the same traffic, compared whole: the sender's
        # (cangen -v), the receiving VM's (candump) and the host's member.
        watched = r.watch.wait(since, n, 30)
        src.check_file("/tmp/bus.txt", watched, "%s: sender cangen vs the host's bus member" % name)
        dst.check_file(dst.canon_dump(path), watched, "%s: receiver candump vs the host's bus member"
                       % name)
        detail.append("%s %d" % (name, n))
    return ", ".join(detail) + " frames (standard, extended, RTR): identical sequences on both VMs " \
                               "and the host's bus member"


def bus_late_joiner(r):
    """A VM that joins the bus later gets none of the traffic from before.
    A replay of old frames would reach C's device at once, while its
    controller is still stopped (before the driver runs, or before "ip
    link set can0 up"), where no candump could ever show it: what C's
    device received is therefore read from its --stats-json (rx_dropped:
    frames that arrived while stopped). K frames are sent on the bus
    while C runs with can0 down, so rx_dropped must be exactly K: that
    shows that such frames are counted, and that no others came."""
    old = ["100#%02X" % i for i in range(20)]
    since = r.watch.mark()
    r.a.ok("for i in $(seq 0 19); do cansend can0 100#$(printf %02X $i); done")
    compare(r.watch.wait(since, 20, 30), old, "A's frames before C joined, on the bus")
    r.c = detach(CanGuest(["bus=" + r.path], stats_json=r.c_stats))
    while_down = 5
    b_rx = r.b.stats()["rx_packets"]
    for i in range(while_down):
        r.watch.send(Frame(0x0d0, length=1, data=bytes([i])))
    # B got them: the hub has passed them on to every member, C too.
    deadline = time.monotonic() + 30
    while r.b.stats()["rx_packets"] < b_rx + while_down:
        check(time.monotonic() < deadline, "B did not receive the %d frames from the bus" %
              while_down)
        time.sleep(0.3)
    time.sleep(1)
    r.c.up()
    path_c = r.c.dump_start(r.probe)
    path_b = r.b.dump_start(r.probe)
    new = ["200#%02X" % i for i in range(20)]
    r.a.ok("for i in $(seq 0 19); do cansend can0 200#$(printf %02X $i); done")
    r.c.wait_frames(path_c, 20, 30)
    r.b.wait_frames(path_b, 20, 30)
    for g, p in ((r.c, path_c), (r.b, path_b)):
        g.dump_stop(p)
    got_c = r.c.lines(r.c.canon_dump(path_c))
    got_b = r.b.lines(r.b.canon_dump(path_b))
    compare(got_c, new, "C (joined after A's first 20 frames) saw")
    compare(got_b, new, "B saw, meanwhile")
    # And C's frames reach the others.
    path_a = r.a.dump_start(r.probe)
    r.c.ok("cansend can0 0C0#C0FFEE")
    r.a.wait_frames(path_a, 1, 30)
    r.a.dump_stop(path_a)
    compare(r.a.lines(r.a.canon_dump(path_a)), ["0C0#C0FFEE"], "A saw from C")
    # C's device counters, written when C powers off.
    gstats = r.c.stats()
    r.off.append(r.c)
    r.c.poweroff()
    dev = json.load(open(r.c_stats))["devices"]["virtio-can0"]
    check(dev["rx_dropped"] == while_down,
          "C's device dropped %d frames while its controller was stopped; %d were sent on the bus "
          "then (more: frames from before C joined reached it)" % (dev["rx_dropped"], while_down))
    check(dev["rx_frames"] == gstats["rx_packets"] and dev["tx_frames"] == 1,
          "C's device: rx_frames %d (guest rx_packets %d), tx_frames %d (C sent 1)" % (
              dev["rx_frames"], gstats["rx_packets"], dev["tx_frames"]))
    return "C's candump saw exactly A's 20 new frames; C's device: rx_dropped %d = the %d frames sent " \
           "while its can0 was down, none from before it joined; rx_frames %d = guest rx_packets; " \
           "C -> A passes" % (dev["rx_dropped"], while_down, dev["rx_frames"])


def bus_stop_pending(r):
    """Frames pending when the controller stops are cancelled. The hub is
    stopped (SIGSTOP): nothing A sends is taken by the bus or confirmed.
    A queues frames until its queues are full (cangen without -p stops at
    the first ENOBUFS); then "ip link set can0 down" (STOP) and up again
    (START), and only then the hub goes on (SIGCONT). No frame pending at
    the STOP may appear on the bus, ever, and the guest counts them as not
    sent; a frame sent after the restart passes."""
    a = r.a
    before = a.stats()
    since = r.watch.mark()
    os.kill(r.hub.pid, signal.SIGSTOP)
    try:
        # -v prints a frame before writing it: all lines but a last one
        # that failed were accepted.
        out = a.ok("cangen can0 -g 0 -n 400 -I 6AA -L 8 -D i -v > /tmp/stop.v 2>/tmp/stop.err; "
                   "echo rc=$? lines=$(wc -l < /tmp/stop.v); cat /tmp/stop.err")
        m = re.search(r"rc=(\d+) lines=(\d+)", out)
        check(m and m.group(1) != "0" and "No buffer space" in out,
              "cangen did not stop at ENOBUFS on a stalled bus: %s" % out.strip()[-300:])
        sent = int(m.group(2)) - 1
        pending = a.stats()
        a.ok("/sbin/ip link set can0 down")
        stopped = a.stats()
        a.up()
    finally:
        os.kill(r.hub.pid, signal.SIGCONT)
    time.sleep(2)
    a.ok("cansend can0 6AB#FF")
    seen = r.watch.wait(since, 1, 30, quiet=2)
    after = a.stats()
    check(pending["tx_packets"] == before["tx_packets"],
          "frames confirmed while the hub was stopped: tx_packets %d -> %d" %
          (before["tx_packets"], pending["tx_packets"]))
    errors = stopped["tx_errors"] - before["tx_errors"]
    dropped = stopped["tx_dropped"] - before["tx_dropped"]
    late = [f for f in seen if f.startswith("6AA#")]
    check(not late, "%d of the %d frames pending at the STOP reached the bus afterwards (%s ... %s), "
          "%d of them counted as failed by the guest (tx_errors +%d, tx_dropped +%d)" %
          (len(late), sent, late[0] if late else "", late[-1] if late else "",
           min(len(late), errors + dropped), errors, dropped))
    compare(seen, ["6AB#FF"], "the bus after STOP, START and the hub going on")
    check(errors + dropped > 0, "STOP with %d frames pending: tx_errors/tx_dropped did not move" % sent)
    check(after["tx_packets"] == before["tx_packets"] + 1,
          "tx_packets %d -> %d: only 6AB#FF went out" % (before["tx_packets"], after["tx_packets"]))
    return "%d frames queued on the stalled bus; STOP: tx_errors +%d, tx_dropped +%d; none of them " \
           "on the bus afterwards; a new frame passes" % (sent, errors, dropped)


def bus_busoff(r):
    guests = [g for g in r.vms() if g not in r.off]
    busoffs = r.watch.busoffs
    note("inject-busoff")
    host([vmmod.VIREO, "canbus", r.path, "--inject-busoff"])
    note("injected")
    deadline = time.monotonic() + 20
    states = [g.state() for g in guests]
    while any(s != "BUS-OFF" for s in states) and time.monotonic() < deadline:
        time.sleep(0.3)
        states = [g.state() for g in guests]
    check(all(s == "BUS-OFF" for s in states), "after --inject-busoff: %s" % states)
    if r.a in guests:
        ev = r.qmp.event("VIREO_CAN_BUS_OFF", 30)
        check(ev["data"] == {"device": "virtio-can0"}, "QMP bus-off event %r" % ev)
    check(r.watch.busoffs == busoffs + 1, "the host's member got %d bus-offs" %
          (r.watch.busoffs - busoffs))
    since = r.watch.mark()
    for g in guests:
        g.ok("/sbin/ip link set can0 type can restart")
    states = [g.state() for g in guests]
    check(all(s == "ERROR-ACTIVE" for s in states), "after restart: %s" % states)
    if r.a in guests:
        r.qmp.event("VIREO_CAN_RESTART", 30)
    path = r.b.dump_start(r.probe)
    r.a.ok("cansend can0 3A1#02")
    r.b.wait_frames(path, 1, 30)
    r.b.dump_stop(path)
    compare(r.b.lines(r.b.canon_dump(path)), ["3A1#02"], "B after restart")
    compare([f for f in r.watch.wait(since, 1, 30) if f != SENTINEL], ["3A1#02"],
            "the bus from the bus-off on")
    return "%d VMs BUS-OFF, restart: ERROR-ACTIVE, frames pass%s" % (
        len(guests), "; QMP events VIREO_CAN_BUS_OFF, VIREO_CAN_RESTART" if r.a in guests else "")


def bus_two_controllers(r):
    """--can given twice: one VM with a controller on vcan0 and one on the
    bus gets two interfaces, each bridged to its own side only."""
    subprocess.run(["ip", "link", "del", VCAN], capture_output=True)
    host(["ip", "link", "add", "dev", VCAN, "type", "vcan"])
    host(["ip", "link", "set", VCAN, "up"])
    dump = g = None
    try:
        dump = HostDump(VCAN)
        g = CanGuest(["socketcan=" + VCAN, "bus=" + r.path])
        names = g.ok("ls /sys/class/net | grep '^can' || true").split()
        check(names == ["can0", "can1"], "the guest's CAN interfaces: %s" % names)
        g.ok("/sbin/ip link set can0 up && /sbin/ip link set can1 up")
        since_bus, since_vcan = r.watch.mark(), dump.mark()
        g.ok("cansend can0 111#01 && cansend can1 222#02")
        on_vcan = [f for f in dump.wait(since_vcan, 1, 30) if f != SENTINEL]
        on_bus = [f for f in r.watch.wait(since_bus, 1, 30) if f != SENTINEL]
        check(sorted([on_vcan, on_bus]) == [["111#01"], ["222#02"]],
              "can0 sent 111#01, can1 222#02; %s got %s, the bus %s" % (VCAN, on_vcan, on_bus))
        g.poweroff()
    finally:
        if g:
            g.close()
        if dump:
            dump.stop()
        subprocess.run(["ip", "link", "del", VCAN], capture_output=True)
    side = VCAN if on_vcan == ["111#01"] else "the bus"
    return "can0 and can1; can0's frame only on %s, can1's only on the other" % side


def bus_poweroff(r):
    for g in r.vms():
        if g not in r.off:
            r.off.append(g)
            g.poweroff()
    return "all VMs exit 0"


SOCKETCAN_CASES = (
    ("guest -> host, %d frames (std, ext, RTR, 0-8 B, FD to 64 B)" % N_FRAMES, sc_guest_to_host),
    ("host -> guest, %d frames (std, ext, RTR, 0-8 B, FD to 64 B)" % N_FRAMES, sc_host_to_guest),
    ("cansend on a down can0 is refused by the guest's netdev, nothing on vcan0", sc_tx_down),
    ("bus-off from vcan0, restart", sc_busoff),
    ("--stats-json counters; log=FILE equals host candump -L", sc_stats_and_log),
)
BUS_CASES = (
    ("two VMs, frames both ways", bus_two_vms),
    ("a third VM joining later gets only new traffic (its candump and device counters)",
     bus_late_joiner),
    ("STOP with frames pending cancels them", bus_stop_pending),
    ("--inject-busoff reaches every VM, restart", bus_busoff),
    ("one VM, two controllers: vcan0 and the bus", bus_two_controllers),
    ("poweroff", bus_poweroff),
)


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


def main():
    s = Suite()
    if not os.path.exists(TOOLS_INITRD):
        s.skip("virtio-can", "%s not built (guest/build)" % TOOLS_INITRD)
        return s.finish()
    global CANDUMP, CANSEND
    CANDUMP, CANSEND = host_tool("candump"), host_tool("cansend")
    # vcan0 is created here (ip link add): that needs root. The bus part
    # needs only a Unix socket, and runs without root.
    no_vcan = None
    if os.geteuid() != 0:
        no_vcan = "needs root (creates vcan0)"
    elif not CANDUMP or not CANSEND:
        no_vcan = "no candump/cansend on this host (apt-get install can-utils)"
    elif subprocess.run(["modprobe", "vcan"], capture_output=True).returncode != 0 and \
            not os.path.isdir("/sys/module/vcan"):
        no_vcan = "no vcan module"
    run_cases(s, "virtio-can socketcan", SocketcanRig, SOCKETCAN_CASES, no_vcan)
    run_cases(s, "virtio-can bus", BusRig,
              [(n, no_vcan if fn is bus_two_controllers and no_vcan else fn)
               for n, fn in BUS_CASES])
    return s.finish()


CANDUMP = CANSEND = None

if __name__ == "__main__":
    sys.exit(main())
