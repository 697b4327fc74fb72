#!/usr/bin/env python3
"""Debian boot benchmark: the Debian 12 image of guest/debian/build (systemd,
udev, networkd), each run from a fresh qcow2 overlay over its base, under
vireo and under QEMU on the same KVM, alternating. Measured from process
start: the getty's login prompt on ttyS0 ("vireo-debian login:", root is
then logged in automatically), and the VMM's exit after `systemctl
poweroff` typed at root's prompt (time from typing it to the exit).

  vireo      --disk path=overlay.qcow2,format=qcow2, --net user, --rng,
             1 GiB, 2 vCPUs; the kernel cache (the guest decompresses
             nothing)
  qemu       -enable-kvm -cpu host, -drive file=overlay.qcow2,format=qcow2,
             if=virtio, -netdev user + virtio-net-pci, virtio-rng-pci, the
             same memory and vCPUs, -kernel with the same bzImage (the
             guest decompresses it)
  qemu-pvh   the same with the uncompressed kernel (build/guest/vmlinux,
             the same kernel package) entered at its PVH note: nothing to
             decompress, like vireo

Every run's exit status must be 0 and its overlay must pass qemu-img
check; a run that fails either way, or times out, is counted as failed."""
import argparse
import os
import re
import select
import subprocess
import sys
import tempfile
import time

from stats import LEGEND, Measure, Runs

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GUEST = os.path.join(ROOT, "build", "guest")
CMDLINE = "root=/dev/vda ro console=ttyS0 quiet"
LOGIN = re.compile(rb"vireo-debian login: ")
PROMPT = re.compile(rb"root@vireo-debian:~# ")
TIMEOUT = 600


def image_dir():
    r = subprocess.run([os.path.join(ROOT, "guest", "debian", "build"), "--check"],
                       capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit("bench/debian: no usable Debian image (%s): run guest/debian/build" %
                 (r.stdout or r.stderr).strip())
    return r.stdout.strip()


def run_once(cmd, overlay, base):
    """(seconds to the login prompt, seconds from `systemctl poweroff` to
    the exit, peak RSS in bytes); raises RuntimeError on a failed run."""
    if os.path.exists(overlay):
        os.unlink(overlay)
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", "-b", base, "-F", "qcow2", overlay],
                   check=True)
    t0 = time.monotonic()
    p = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out = err = b""
    t_login = t_off = None
    fds = [p.stdout, p.stderr]
    try:
        while True:
            if time.monotonic() - t0 > TIMEOUT:
                raise RuntimeError("no exit within %d s" % TIMEOUT)
            ready, _, _ = select.select(fds, [], [], 1.0) if fds else ([], [], time.sleep(0.2))
            for f in ready:
                chunk = os.read(f.fileno(), 65536)
                if not chunk:
                    fds.remove(f)
                elif f is p.stderr:
                    err += chunk
                else:
                    out += chunk
            if t_login is None and LOGIN.search(out):
                t_login = time.monotonic() - t0
            if t_login is not None and t_off is None and PROMPT.search(out):
                p.stdin.write(b"systemctl poweroff\n")
                p.stdin.flush()
                t_off = time.monotonic()
            # wait4, not poll(): its rusage has the peak RSS.
            pid, status, usage = os.wait4(p.pid, os.WNOHANG)
            if pid:
                p.returncode = os.waitstatus_to_exitcode(status)
                break
    except BaseException:
        p.kill()
        p.wait()
        raise
    finally:
        p.stdin.close()
    code = os.waitstatus_to_exitcode(status)
    if t_login is None or t_off is None or code != 0:
        raise RuntimeError("%s: %s; exit status %d; console tail %r; stderr tail %r" % (
            os.path.basename(cmd[0]), "no login prompt" if t_login is None else
            "no root prompt" if t_off is None else "nonzero exit status", code, out[-300:],
            err[-300:]))
    t_off = time.monotonic() - t_off
    r = subprocess.run(["qemu-img", "check", overlay], capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError("qemu-img check of the overlay: status %d: %s" % (r.returncode,
                                                                           r.stdout[-300:]))
    return t_login, t_off, usage.ru_maxrss * 1024


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=int(os.environ.get("BENCH_RUNS", "3")))
    args = ap.parse_args()
    img = image_dir()
    kernel, initrd = os.path.join(img, "vmlinuz"), os.path.join(img, "initrd.img")
    base = os.path.join(img, "base.qcow2")
    with open(os.path.join(img, "kver")) as f:
        kver = f.read().strip()
    d = tempfile.mkdtemp()
    overlay = os.path.join(d, "overlay.qcow2")

    def qemu(k):
        return ["qemu-system-x86_64", "-enable-kvm", "-cpu", "host", "-m", "1G", "-smp", "2",
                "-nodefaults", "-no-user-config", "-display", "none", "-serial", "stdio",
                "-kernel", k, "-initrd", initrd, "-append", CMDLINE,
                "-drive", "file=%s,format=qcow2,if=virtio" % overlay,
                "-netdev", "user,id=n0", "-device", "virtio-net-pci,netdev=n0",
                "-device", "virtio-rng-pci"]

    configs = [("vireo", [os.path.join(ROOT, "build", "vireo"), "--kernel", kernel, "--initrd", initrd,
                          "--disk", "path=%s,format=qcow2" % overlay, "--cmdline", CMDLINE,
                          "--net", "user", "--rng", "--memory", "1G", "--cpus", "2"]),
               ("qemu", qemu(kernel))]
    vmlinux = os.path.join(GUEST, "vmlinux")
    try:
        with open(os.path.join(GUEST, "kver")) as f:
            same = f.read().strip() == kver
    except OSError:
        same = False
    if os.path.exists(vmlinux) and same:
        configs.append(("qemu-pvh", qemu(vmlinux)))
    else:
        print("skip - qemu-pvh: no %s of the image's kernel %s" % (vmlinux, kver), flush=True)
    labels = [c[0] for c in configs]
    runs = Runs(labels)
    # One unmeasured boot warms the page cache for all (the base image and
    # the initrd are the same files) and vireo's kernel cache, if this
    # kernel was not in it.
    try:
        r = run_once(configs[0][1], overlay, base)
        print("warm-up vireo: login prompt %.1fs (not counted)" % r[0], flush=True)
    except RuntimeError as e:
        print("warm-up vireo: FAILED: %s" % e, flush=True)
    for i in range(args.runs):
        order = configs if i % 2 == 0 else list(reversed(configs))
        for label, cmd in order:
            r = runs.attempt(i + 1, label, run_once, cmd, overlay, base)
            if r is None:
                continue
            runs.add(i + 1, label, {"login": r[0], "off": r[1], "rss": r[2]})
            print("run %d %-9s login prompt %6.1fs  poweroff %5.1fs  peak RSS %6.1f MiB" %
                  (i + 1, label, r[0], r[1], r[2] / 2**20), flush=True)
    if os.path.exists(overlay):
        os.unlink(overlay)
    os.rmdir(d)

    print()
    print("Debian boot benchmark: %d runs each, kernel %s, 1 GiB, 2 vCPUs, %s" % (
        args.runs, kver, "inside the nested host" if os.environ.get("VIREO_NESTED")
        else "on this host's KVM"))
    print(LEGEND)
    print(("%-26s %s" % ("", " ".join("%-28s" % l for l in labels))).rstrip())
    for what, key, spec, scale in (("to the login prompt, s", "login", "%.1f", 1),
                                   ("systemctl poweroff, s", "off", "%.1f", 1),
                                   ("peak RSS, MiB", "rss", "%.0f", 2**20)):
        print(("%-26s %s" % (what, " ".join(
            "%-28s" % Measure([r[key] / scale for r in runs.ok[l]], len(runs.bad[l])).cell(spec)
            for l in labels))).rstrip())
    login = {l: runs.measure(l, lambda r: r["login"]) for l in labels}
    print()
    print("to the login prompt, ratios (lower is better for vireo)")
    for b, why in (("qemu-pvh", "like for like: neither guest decompresses its kernel"),
                   ("qemu", "QEMU's guest decompresses the bzImage")):
        if b in login:
            print("  vireo / %-10s %-30s %s" % (b, login["vireo"].over(login[b]).cell(), why))
    print(runs.counts_line())
    print(runs.failed_line())
    return 0


if __name__ == "__main__":
    sys.exit(main())
