"""guest/can/test.py: the virtio-can guest driver (guest/can) against Vireo's
virtio-can device on a vcan interface of the host it runs on, which needs a
real KVM, root and the vcan module: on this project's machines, run it in
the nested host:

    guest/build && make && tests/nested/run -- python3 guest/can/test.py

The guest boots build/guest/initramfs-tools.cpio.gz (the driver, ip and
can-utils); the host side uses can-utils from the cache (guest/can/fetch)
and this host's ip. Checks, on "--can socketcan=vcan0": plain "ip link set
can0 up" (default bit timing); standard, extended and RTR frames both ways;
the echo of the guest's own frames; 2000-frame bursts both ways; canfdtest
with the guest as the device under test; bus-off (an error frame with
CAN_ERR_BUSOFF on vcan0) then "ip link set can0 type can restart", and
restart-ms; down/up and module reload while up. On
"--can socketcan=vcan0,fd=on": "bitrate 500000 dbitrate 2000000 fd on",
FD frames up to 64 bytes both ways, classic frames in FD mode, FD through
"mtu 72". Two VMs on a Vireo CAN bus (vireo canbus): frames between them,
canfdtest, bus-off for all (--inject-busoff) and restart. ONLY=classic,
fd or bus runs one part; VIREO=PATH another vireo."""
import os
import re
import select
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "tests", "e2e"))
import vm  # noqa: E402

vm.VIREO = os.environ.get("VIREO", vm.VIREO)
vm.INITRD = os.path.join(vm.GUEST, "initramfs-tools.cpio.gz")
CANBIN = os.path.join(os.environ.get("VIREO_CACHE", os.path.expanduser("~/.cache/vireo")),
                      "can", "root", "usr", "bin")
check = vm.check
n = [0]


def host(cmd, check_rc=True, timeout=60):
    p = subprocess.run(cmd, shell=True, capture_output=True, text=True, timeout=timeout,
                       env=dict(os.environ, PATH=CANBIN + ":" + os.environ["PATH"]))
    if check_rc and p.returncode != 0:
        raise AssertionError("host %r: %d %s %s" % (cmd, p.returncode, p.stdout, p.stderr))
    return p.stdout


SENTINEL = "7FE#EE"


class HostDump:
    """candump -L on vcan0, started and shown to receive before the test
    goes on (a sentinel frame is sent until it comes out): under the
    nested host a fresh candump can take a while to bind its socket."""

    def __init__(self):
        self.p = subprocess.Popen([os.path.join(CANBIN, "candump"), "-L", "-r", "4000000", "vcan0"],
                                  stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        self.buf = b""
        deadline = time.monotonic() + 30
        while SENTINEL.encode() not in self.buf:
            if time.monotonic() > deadline:
                self.p.kill()
                raise AssertionError("host candump does not receive: %r" % self.buf)
            host("cansend vcan0 " + SENTINEL)
            self._read(0.3)

    def _read(self, timeout):
        r, _, _ = select.select([self.p.stdout], [], [], timeout)
        if r:
            data = os.read(self.p.stdout.fileno(), 1 << 16)
            self.buf += data
            return bool(data)
        return False

    def frames(self):
        return [l for l in self.buf.decode(errors="replace").splitlines()
                if l.strip() and SENTINEL not in l]

    def collect(self, count, timeout=30):
        """Waits for count frames besides the sentinels; returns them."""
        deadline = time.monotonic() + timeout
        while len(self.frames()) < count and time.monotonic() < deadline:
            self._read(min(0.5, max(0.01, deadline - time.monotonic())))
        self.p.kill()
        self.p.wait()
        return self.frames()


def run(v, cmd, timeout=60, want_rc=0):
    n[0] += 1
    start = len(v.output)
    v.send(cmd + '; echo "@@E""ND%d $?"\n' % n[0])
    m = v.expect(r"@@END%d (\d+)" % n[0], timeout)
    out = v.output[start:m.start()].decode(errors="replace")
    # drop the echoed command line
    out = out.split("\n", 1)[1] if "\n" in out else ""
    rc = int(m.group(1))
    if want_rc is not None and rc != want_rc:
        raise AssertionError("guest %r: rc %d, output %r" % (cmd, rc, out[-1500:]))
    return out


def boot(canarg):
    v = vm.VM(["--memory", "512M", "--can", canarg, "--cmdline", "console=ttyS0 quiet"])
    v.expect("VIREO-GUEST-UP")
    v.expect(r"vireo# ")
    return v


def setup_vcan(fd):
    host("ip link del vcan0 2>/dev/null; ip link add dev vcan0 type vcan", check_rc=False)
    if fd:
        host("ip link set vcan0 mtu 72")
    host("ip link set vcan0 up")


def test_classic():
    setup_vcan(False)
    v = boot("socketcan=vcan0")
    out = run(v, "dmesg | grep -i virtio.can; ip -d link show can0")
    print(out, flush=True)
    check("virtio-can: classic" in out and "can0" in out, "no can0 / probe message")
    out = run(v, "ip link set can0 up && ip -d -s link show can0")
    print(out, flush=True)
    check("ERROR-ACTIVE" in out and "bitrate 500000" in out, "not ERROR-ACTIVE at 500k")

    # guest -> host
    d = HostDump()
    run(v, "cansend can0 123#DEADBEEF && cansend can0 12345678#0102 && cansend can0 7FF#R && cansend can0 001#R5")
    out = "\n".join(d.collect(4))
    print("host saw:", out, flush=True)
    for f in ("vcan0 123#DEADBEEF", "vcan0 12345678#0102", "vcan0 7FF#R", "vcan0 001#R"):
        check(f in out, "host did not see %s" % f)

    # host -> guest, and the echo of our own frame
    run(v, "candump -L -n 5 can0 > /tmp/d.txt & echo $! > /tmp/d.pid")
    time.sleep(1)
    host("cansend vcan0 321#11223344; cansend vcan0 1ABCDEF0#AA; cansend vcan0 100#R3; cansend vcan0 000#")
    run(v, "cansend can0 555#0102030405060708")
    out = run(v, "wait $(cat /tmp/d.pid); cat /tmp/d.txt", timeout=30)
    print("guest saw:", out, flush=True)
    for f in ("can0 321#11223344", "can0 1ABCDEF0#AA", "can0 100#R", "can0 000#", "can0 555#0102030405060708"):
        check(f in out, "guest did not see %s" % f)

    # bursts both ways
    d = HostDump()
    t0 = time.monotonic()
    run(v, "cangen can0 -n 2000 -g 0 -p 10 -L 8", timeout=120)
    out = str(len(d.collect(2000, 90)))
    print("burst guest->host: %s frames in %.1fs" % (out.strip(), time.monotonic() - t0), flush=True)
    print(run(v, "ip -s link show can0"), flush=True)
    check(out.strip() == "2000", "host got %r of 2000" % out.strip())

    run(v, "candump -n 1000 can0 | wc -l > /tmp/c.txt & echo $! > /tmp/c.pid")
    time.sleep(1)
    host("cangen vcan0 -n 1000 -g 1 -L 8")
    out = run(v, "sleep 2; cat /tmp/c.txt; kill $(cat /tmp/c.pid) 2>/dev/null; ip -s link show can0", timeout=60)
    print("burst host->guest:", out, flush=True)

    # canfdtest: guest is the DUT
    run(v, "canfdtest can0 > /tmp/f.txt 2>&1 & echo $! > /tmp/f.pid")
    time.sleep(1)
    p = subprocess.run("timeout 120 canfdtest -g -l 300 vcan0", shell=True, capture_output=True,
                       text=True, env=dict(os.environ, PATH=CANBIN + ":" + os.environ["PATH"]))
    print("canfdtest host: rc %d %s" % (p.returncode, (p.stdout + p.stderr)[-300:]), flush=True)
    out = run(v, "kill $(cat /tmp/f.pid); cat /tmp/f.txt", want_rc=None)
    print("canfdtest DUT:", out[-300:], flush=True)
    check(p.returncode == 0, "canfdtest failed")

    # bus-off and restart
    host("cansend vcan0 20000040#0000000000000000")
    time.sleep(1)
    out = run(v, "ip -d -s link show can0; dmesg | tail -5")
    print("bus-off:", out, flush=True)
    check("BUS-OFF" in out, "not BUS-OFF")
    out = run(v, "cansend can0 123#01", want_rc=None)
    print("send while bus-off:", out, flush=True)
    out = run(v, "ip link set can0 type can restart && ip -d -s link show can0")
    print("restarted:", out, flush=True)
    check("ERROR-ACTIVE" in out, "not ERROR-ACTIVE after restart")
    d = HostDump()
    run(v, "cansend can0 124#02")
    out = "\n".join(d.collect(1))
    check("vcan0 124#02" in out, "no frame after restart: %r" % out)

    # restart-ms
    run(v, "ip link set can0 down && ip link set can0 type can restart-ms 100 && ip link set can0 up")
    host("cansend vcan0 20000040#0000000000000000")
    out = run(v, "sleep 1; ip -d -s link show can0; dmesg | tail -4")
    print("restart-ms:", out, flush=True)
    check("ERROR-ACTIVE" in out, "no automatic restart")
    d = HostDump()
    run(v, "cansend can0 125#03")
    out = "\n".join(d.collect(1))
    check("vcan0 125#03" in out, "no frame after auto restart: %r" % out)

    # down/up, remove/probe while up
    run(v, "ip link set can0 down && ip link set can0 up && cansend can0 126#04")
    out = run(v, "rmmod virtio_can && insmod /lib/modules/*/extra/virtio_can.ko && sleep 0.5 && ip link set can0 up && cansend can0 127#05 && ip -d link show can0; dmesg | tail -5")
    print("reload:", out, flush=True)
    v.send("poweroff\n")
    check(v.wait(60) == 0, "vireo status")


def test_fd():
    setup_vcan(True)
    v = boot("socketcan=vcan0,fd=on")
    out = run(v, "dmesg | grep -i virtio.can; ip link set can0 up type can bitrate 500000 dbitrate 2000000 fd on && ip -d link show can0")
    print(out, flush=True)
    check("<FD>" in out, "FD not on")
    d = HostDump()
    run(v, "cansend can0 123##1112233445566778899AABBCC && cansend can0 01234567##0" + "AB" * 64 + " && cansend can0 321#0102")
    out = "\n".join(d.collect(3))
    print("host saw:", out, flush=True)
    check("vcan0 123##" in out and "112233445566778899AABBCC" in out, "FD frame")
    check("AB" * 64 in out, "64-byte FD frame")
    check("vcan0 321#0102" in out, "classic in FD mode")
    run(v, "candump -L -n 2 can0 > /tmp/d.txt & echo $! > /tmp/d.pid")
    time.sleep(1)
    host("cansend vcan0 456##0" + "CD" * 48 + "; cansend vcan0 457#01")
    out = run(v, "wait $(cat /tmp/d.pid); cat /tmp/d.txt", timeout=30)
    print("guest saw:", out, flush=True)
    check("can0 456##" in out and "CD" * 48 in out, "FD RX")
    check("can0 457#01" in out, "classic RX in FD mode")
    # fd off; then FD back on through the MTU alone (default data bit timing)
    out = run(v, "ip link set can0 down && ip link set can0 type can fd off && ip link set can0 up && "
                 "ip -d link show can0 && ip link set can0 down && ip link set can0 mtu 72 && "
                 "ip link set can0 up && ip -d link show can0")
    print(out, flush=True)
    check("dbitrate 2000000" in out and "<FD>" in out, "FD through the MTU")
    d = HostDump()
    run(v, "cansend can0 321##0" + "EF" * 20)
    out = "\n".join(d.collect(1))
    check("vcan0 321##" in out and "EF" * 20 in out, "FD frame after mtu 72: %r" % out)
    v.send("poweroff\n")
    check(v.wait(60) == 0, "vireo status")


def test_bus():
    """Two VMs on a Vireo CAN bus (vireo canbus), no host interface."""
    sock = "/tmp/vireo-can-test-%d.sock" % os.getpid()
    hub = subprocess.Popen([vm.VIREO, "canbus", sock], stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 10
        while not os.path.exists(sock):
            check(time.monotonic() < deadline and hub.poll() is None, "no canbus hub")
            time.sleep(0.1)
        a = boot("bus=" + sock)
        b = boot("bus=" + sock)
        for v in (a, b):
            run(v, "ip link set can0 up")
        run(b, "candump -L -n 3 can0 > /tmp/d.txt & echo $! > /tmp/d.pid")
        time.sleep(1)
        run(a, "cansend can0 123#11 && cansend can0 1FFFFFFF#2233 && cansend can0 7FF#R2")
        out = run(b, "wait $(cat /tmp/d.pid); cat /tmp/d.txt", timeout=30)
        print("b saw:", out, flush=True)
        for f in ("can0 123#11", "can0 1FFFFFFF#2233", "can0 7FF#R2"):
            check(f in out, "b did not see %s" % f)
        # canfdtest: a is the device under test, b the generator
        run(a, "canfdtest can0 > /tmp/f.txt 2>&1 & echo $! > /tmp/f.pid")
        time.sleep(1)
        out = run(b, "canfdtest -g -l 300 can0 > /tmp/g.txt 2>&1; tail -5 /tmp/g.txt", timeout=180)
        print("canfdtest:", out, flush=True)
        if "Test messages sent and received: 300" not in out:
            print(run(b, "head -c 3000 /tmp/g.txt; ip -s link show can0", want_rc=None), flush=True)
            print(run(a, "kill $(cat /tmp/f.pid); cat /tmp/f.txt; ip -s link show can0", want_rc=None), flush=True)
        check("Test messages sent and received: 300" in out, "canfdtest over the bus")
        run(a, "kill $(cat /tmp/f.pid)", want_rc=None)
        # bus-off for everyone, then restart
        subprocess.run([vm.VIREO, "canbus", sock, "--inject-busoff"], timeout=30, check=True)
        time.sleep(1)
        for v in (a, b):
            out = run(v, "ip -d link show can0")
            check("BUS-OFF" in out, "not bus-off: %r" % out)
            run(v, "ip link set can0 type can restart")
        run(b, "candump -L -n 1 can0 > /tmp/d.txt & echo $! > /tmp/d.pid")
        time.sleep(1)
        run(a, "cansend can0 321#AA")
        out = run(b, "wait $(cat /tmp/d.pid); cat /tmp/d.txt", timeout=30)
        check("can0 321#AA" in out, "no frame after restart: %r" % out)
        for v in (a, b):
            v.send("poweroff\n")
            check(v.wait(60) == 0, "vireo status")
    finally:
        hub.terminate()
        hub.wait()
        if os.path.exists(sock):
            os.unlink(sock)


if __name__ == "__main__":
    s = vm.Suite()
    if os.environ.get("ONLY") in (None, "classic"):
        s.run("classic", test_classic)
    if os.environ.get("ONLY") in (None, "fd"):
        s.run("fd", test_fd)
    if os.environ.get("ONLY") in (None, "bus"):
        s.run("bus", test_bus)
    sys.exit(s.finish())
