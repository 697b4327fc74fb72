#!/usr/bin/env python3
"""Boot benchmark: the same kernel and initramfs (an /init that prints a
marker and powers off) under vireo and under QEMU on the same KVM,
alternating, several runs. Prints the wall time from process start to the
marker and to process exit, and peak RSS: medians, runs and spread, and
the ratios of like to like.

Who decompresses the kernel matters more than anything else here, so
each vireo configuration has QEMU peers that do the same:
  vireo          the kernel cache: vireo loads the payload it decompressed
                 once on the host (the first boot of a kernel), the guest
                 decompresses nothing;
  vireo-nocache  VIREO_KERNEL_CACHE=off: the guest decompresses the
                 bzImage, as under QEMU's -kernel bzImage;
  qemu           -M pc, -kernel vmlinuz (bzImage): the guest decompresses;
  qemu-pvh       -M pc, -kernel vmlinux: the uncompressed ELF, entered at
                 its PVH note (QEMU refuses an ELF without one, so a run
                 that boots took that path): nothing to decompress;
  qemu-microvm   -M microvm with the same vmlinux: QEMU's minimal machine
                 (no PCI, no firmware tables to speak of), also PVH.
Like for like: vireo / qemu-pvh and vireo / qemu-microvm (no guest
decompression), vireo-nocache / qemu (both decompress). vireo / qemu is
the previous method's headline, which compared a guest that skips
decompression with one that does it.

Every run's exit status is checked (a VMM that fails or times out is a
failed run, counted), and for vireo which boot path it took (--stats-json
"boot_path"): the cached runs must not have fallen back to decompressing.
Vireo's own memory is its peak RSS minus the guest pages it had backed
(guest_resident_bytes from --stats-json)."""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

from stats import LEGEND, Measure, Runs, target_line

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GUEST = os.environ.get("VIREO_GUEST_DIR", os.path.join(ROOT, "build", "guest"))
KERNEL = os.path.join(GUEST, "vmlinuz")
VMLINUX = os.path.join(GUEST, "vmlinux")
INITRD = os.path.join(GUEST, "initramfs.cpio.gz")
MARKER = b"VIREO-BENCH-MARKER"
CMDLINE = "console=ttyS0 quiet vireo.mode=bench"
TIMEOUT = 300


def run_once(cmd, env=None):
    """(time to marker, time to exit, peak RSS, exit status); raises
    RuntimeError when there was no marker, the VMM did not exit by itself
    within TIMEOUT, or it exited with a nonzero status."""
    t0 = time.monotonic()
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         stdin=subprocess.DEVNULL, env=env)
    buf = b""
    t_marker = None
    killed = False
    while True:
        chunk = os.read(p.stdout.fileno(), 4096)
        if not chunk:
            break
        buf += chunk
        if t_marker is None and MARKER in buf:
            t_marker = time.monotonic() - t0
        if time.monotonic() - t0 > TIMEOUT:
            p.kill()
            killed = True
            break
    err = p.stderr.read()
    _, status, usage = os.wait4(p.pid, 0)
    t_exit = time.monotonic() - t0
    code = os.waitstatus_to_exitcode(status)
    if killed or t_marker is None or code != 0:
        raise RuntimeError("%s: %s; exit status %d; output tail %r; stderr tail %r" % (
            os.path.basename(cmd[0]),
            "killed after %ds" % TIMEOUT if killed else
            "no marker" if t_marker is None else "nonzero exit status",
            code, buf[-200:], err[-300:]))
    return t_marker, t_exit, usage.ru_maxrss * 1024, code


def vireo_stats(stats):
    """What vireo reports in --stats-json: its boot path (None from an
    older vireo), the guest pages it backed, and its own start-up in
    seconds (from its set-up's start to the first KVM_RUN; None from an
    older vireo)."""
    with open(stats) as f:
        s = json.load(f)
    startup = s.get("startup_us")
    return (s.get("boot_path"), s.get("guest_resident_bytes"),
            startup / 1e6 if startup else None)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=int(os.environ.get("BENCH_RUNS", "5")))
    ap.add_argument("--memory", default="256M")
    args = ap.parse_args()
    vireo = os.path.join(ROOT, "build", "vireo")

    def qemu(machine, kernel):
        return ["qemu-system-x86_64", "-M", machine, "-enable-kvm", "-cpu", "host",
                "-m", args.memory, "-smp", "1", "-nodefaults", "-no-user-config",
                "-display", "none", "-serial", "stdio",
                "-kernel", kernel, "-initrd", INITRD, "-append", CMDLINE]

    nocache_env = dict(os.environ, VIREO_KERNEL_CACHE="off")
    with tempfile.TemporaryDirectory() as d:
        stats = os.path.join(d, "stats.json")
        vcmd = [vireo, "--kernel", KERNEL, "--initrd", INITRD, "--cmdline", CMDLINE,
                "--memory", args.memory, "--stats-json", stats]
        configs = [("vireo", vcmd, None), ("vireo-nocache", vcmd, nocache_env),
                   ("qemu", qemu("pc", KERNEL), None)]
        if os.path.exists(VMLINUX):
            configs += [("qemu-pvh", qemu("pc", VMLINUX), None),
                        ("qemu-microvm", qemu("microvm", VMLINUX), None)]
        else:
            print("skip - qemu-pvh, qemu-microvm: no %s (guest/build makes it when the kernel "
                  "has CONFIG_PVH)" % VMLINUX, flush=True)
        labels = [c[0] for c in configs]
        runs = Runs(labels)
        paths = {"vireo": [], "vireo-nocache": []}

        # One unmeasured run each warms the page cache, and vireo's kernel
        # cache (timed separately: a kernel's first boot). A failing warm-up
        # is reported: the measured runs of that configuration will fail too.
        first = None
        try:
            first = run_once(vcmd)
        except RuntimeError as e:
            print("warm-up vireo: FAILED: %s" % e, flush=True)
        for label, cmd, env in configs[2:]:
            try:
                run_once(cmd, env)
            except RuntimeError as e:
                print("warm-up %s: FAILED: %s" % (label, e), flush=True)

        for i in range(args.runs):
            order = list(configs) if i % 2 == 0 else list(reversed(configs))
            for label, cmd, env in order:
                if label.startswith("vireo") and os.path.exists(stats):
                    os.unlink(stats)
                r = runs.attempt(i + 1, label, run_once, cmd, env)
                if r is None:
                    continue
                res = {"marker": r[0], "exit": r[1], "rss": r[2]}
                extra = ""
                if label.startswith("vireo"):
                    path, guest, startup = vireo_stats(stats)
                    paths[label].append(path)
                    res["own"] = r[2] - guest
                    extra = " boot path %s" % path
                    if startup is not None:
                        res["startup"] = startup
                        extra += ", start-up %.3fs" % startup
                runs.add(i + 1, label, res)
                print("run %d %-13s marker %6.3fs exit %6.3fs peak RSS %6.1f MiB status %d%s" %
                      (i + 1, label, r[0], r[1], r[2] / 2**20, r[3], extra), flush=True)

    print()
    print("boot benchmark: %d runs each, --memory %s, %s" % (
        args.runs, args.memory,
        "inside the nested host" if os.environ.get("VIREO_NESTED") else "on this host's KVM"))
    print(LEGEND)
    check_paths(paths)
    print(("%-20s %s" % ("", " ".join("%-30s" % l for l in labels))).rstrip())
    for what, key, spec, scale in (("time to marker, s", "marker", "%.3f", 1),
                                   ("time to exit, s", "exit", "%.3f", 1),
                                   ("peak RSS, MiB", "rss", "%.1f", 2**20)):
        print(("%-20s %s" % (what, " ".join(
            "%-30s" % Measure([r[key] / scale for r in runs.ok[l]], len(runs.bad[l])).cell(spec)
            for l in labels))).rstrip())
    own = Measure([r["own"] / 2**20 for r in runs.ok["vireo"]], len(runs.bad["vireo"]))
    print("%-20s %s" % ("vireo own mem, MiB", own.cell("%.2f")))
    # The VMM's own part of the time to marker: the rest is the guest's.
    for l in ("vireo", "vireo-nocache"):
        startups = [r["startup"] for r in runs.ok[l] if "startup" in r]
        if startups:
            print("%-20s %s (set-up to the first KVM_RUN; the rest of the time to marker is "
                  "the guest's)" % ("%s start-up, s" % l,
                                   Measure(startups, len(runs.bad[l])).cell("%.3f")))
    print("vireo first boot     %s (includes decompressing the kernel into the cache, when it "
          "was not there)" % ("%.3fs" % first[0] if first else "failed"))

    print()
    print("time to marker, ratios (lower is better for vireo)")
    pairs = [("vireo", "qemu-pvh", "like for like: neither guest decompresses"),
             ("vireo", "qemu-microvm", "like for like: neither guest decompresses; "
              "QEMU's minimal machine"),
             ("vireo-nocache", "qemu", "like for like: both guests decompress"),
             ("vireo", "qemu", "previous method's headline: only QEMU's guest decompresses")]
    marker = {l: runs.measure(l, lambda r: r["marker"]) for l in labels}
    for a, b, why in pairs:
        if b in marker:
            print("  %-28s %-32s %s" % ("%s / %s" % (a, b), marker[a].over(marker[b]).cell(), why))
    print()
    for a, b, _ in pairs[:3]:
        if b in marker:
            print(target_line("time to marker %s / %s" % (a, b), marker[a].over(marker[b]),
                              0.5, "lower"))
    print(target_line("vireo own memory, MiB", own, 4.0, "lower"))
    print(runs.counts_line())
    print(runs.failed_line())
    return 0


def check_paths(paths):
    """The cached and uncached vireo runs must have taken different boot
    paths, each always the same one; say so when they did not, or when
    vireo does not report its boot path."""
    seen = {l: sorted(set(p)) for l, p in paths.items()}
    if any(None in s for s in seen.values()):
        print("WARNING: vireo's --stats-json has no \"boot_path\": cannot check that the cached "
              "runs skipped the guest's decompression and the uncached ones did not")
        return
    for label, s in seen.items():
        if len(s) > 1:
            print("WARNING: %s runs took different boot paths: %s" % (label, ", ".join(s)))
    if seen["vireo"] and seen["vireo"] == seen["vireo-nocache"]:
        print("WARNING: vireo and vireo-nocache took the same boot path (%s): the kernel cache "
              "was not used, or not bypassed" % ", ".join(seen["vireo"]))
    else:
        print("boot paths: %s" % "; ".join("%s %s" % (l, ", ".join(s)) for l, s in seen.items()))


if __name__ == "__main__":
    sys.exit(main())
