"""What a failed end-to-end test prints so that it explains itself from
the CI log alone: the guest's console and the VMM's stderr with every
vCPU's registers (vireo logs them on SIGQUIT while the VM runs, and on a
triple fault or an internal error), and, inside the nested host, the end
of the nested host's own kernel log and of its KVM trace (the last guest
exits and injected exceptions: tests/nested/run, guest/init/nested-host.sh).
Plain standard library."""
import os
import re
import signal
import subprocess
import time

TRACE = "/sys/kernel/tracing/trace"


def tail(data, n):
    if isinstance(data, bytes):
        data = data.decode(errors="replace")
    lines = data.replace("\r", "").splitlines()
    return "\n".join(lines[-n:])


def vm_report(vm, console_lines=60):
    """The console tail and the VMM's stderr; asks a still-running vireo
    for its vCPU registers first."""
    parts = []
    if vm.proc.poll() is None and os.path.basename(vm.cmd[0]).startswith("vireo"):
        try:
            vm.signal(signal.SIGQUIT)
            deadline = time.monotonic() + 2
            while time.monotonic() < deadline and vm.stderr.count(b"mp_state") < 1:
                vm._pump(0.2)
            vm._pump(0.3)
        except OSError:
            pass
    status = vm.proc.poll()
    parts.append("--- %s: %s; the last %d lines of its console ---" %
                 (os.path.basename(vm.cmd[0]),
                  "running" if status is None else "exited with status %s" % status,
                  console_lines))
    parts.append(tail(vm.output, console_lines))
    parts.append("--- its stderr (last 60 lines) ---")
    parts.append(tail(vm.stderr, 60))
    return "\n".join(parts)


def host_report(pids=(), lines=60, trace_lines=40):
    """Inside the nested host: the end of its kernel log and KVM trace, and
    the last events of the processes pids (the failed VMMs; the nested
    host records each event's TGID) when other VMs' events have followed."""
    if not os.environ.get("VIREO_NESTED"):
        return ""
    parts = []
    try:
        out = subprocess.run(["dmesg"], capture_output=True, timeout=10).stdout
        parts.append("--- the nested host's kernel log (last %d lines) ---" % lines)
        parts.append(tail(out, lines))
    except (OSError, subprocess.TimeoutExpired) as e:
        parts.append("--- the nested host's kernel log: %s ---" % e)
    # tracefs files have no size and cannot seek from the end: read it
    # all (a few MiB at most: the buffer is 512 KiB per CPU).
    try:
        with open(TRACE, "rb") as f:
            data = f.read(64 << 20).decode(errors="replace")
        parts.append("--- the nested host's KVM trace (last %d events) ---" % trace_lines)
        parts.append(tail(data, trace_lines))
        events = data.splitlines()
        for pid in pids:
            mine = [e for e in events if re.search(r"\(\s*%d\)" % pid, e)]
            if mine and mine[-1] != events[-1]:
                parts.append("--- the KVM trace of process %d alone (its last %d events) ---" % (pid, trace_lines))
                parts.append("\n".join(mine[-trace_lines:]))
    except OSError as e:
        parts.append("--- the nested host's KVM trace: %s ---" % e)
    return "\n".join(parts)


def failure_report(vms):
    """Everything above for each VM of a failed test, as '# ' lines."""
    vms = [vm for vm in vms if hasattr(vm, "proc") and hasattr(vm, "output")]
    parts = [vm_report(vm) for vm in vms]
    h = host_report([vm.proc.pid for vm in vms])
    if h:
        parts.append(h)
    return "\n".join("  # " + line for line in "\n".join(parts).splitlines())
