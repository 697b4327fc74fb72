"""A small QMP client, the same for Vireo and for QEMU: connect to the
socket, read the greeting, negotiate, run commands, collect events."""
import json
import os
import socket
import time


class QMPError(Exception):
    pass


class QMP:
    def __init__(self, path, timeout=30, negotiate=True):
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                self.sock.connect(path)
                break
            except (FileNotFoundError, ConnectionRefusedError):
                self.sock.close()
                if time.monotonic() > deadline:
                    raise QMPError("no QMP socket at %s within %ss" % (path, timeout))
                time.sleep(0.05)
        self.sock.settimeout(timeout)
        self.buf = b""
        self.events = []
        self.greeting = self.read()
        if negotiate:
            self.cmd("qmp_capabilities")

    def read(self):
        """The next JSON object the server sends."""
        while b"\n" not in self.buf:
            data = self.sock.recv(65536)
            if not data:
                raise QMPError("QMP connection closed; unparsed: %r" % self.buf[:200])
            self.buf += data
        line, self.buf = self.buf.split(b"\n", 1)
        return json.loads(line)

    def send_raw(self, data):
        self.sock.sendall(data if isinstance(data, bytes) else data.encode())

    def execute(self, name, arguments=None, id=None):
        """Sends a command; returns the whole reply object (events seen on
        the way are kept in self.events)."""
        req = {"execute": name}
        if arguments is not None:
            req["arguments"] = arguments
        if id is not None:
            req["id"] = id
        self.send_raw(json.dumps(req) + "\n")
        return self.reply()

    def reply(self):
        while True:
            msg = self.read()
            if "event" in msg:
                self.events.append(msg)
                continue
            return msg

    def cmd(self, name, arguments=None):
        """Runs a command that must succeed; returns its "return" value."""
        r = self.execute(name, arguments)
        if "error" in r:
            raise QMPError("%s: %s" % (name, r["error"]))
        return r["return"]

    def event(self, name, timeout=30):
        """Waits for (and removes) the first event called name."""
        deadline = time.monotonic() + timeout
        while True:
            for i, e in enumerate(self.events):
                if e["event"] == name:
                    return self.events.pop(i)
            left = deadline - time.monotonic()
            if left <= 0:
                raise QMPError("no %s event within %ss (got %s)" %
                               (name, timeout, [e["event"] for e in self.events]))
            self.sock.settimeout(left)
            msg = self.read()
            if "event" not in msg:
                raise QMPError("unexpected reply while waiting for %s: %r" % (name, msg))
            self.events.append(msg)

    def close(self):
        self.sock.close()


def shape(value):
    """The structure of a QMP value: keys and JSON types, not the values,
    so replies from QEMU and Vireo can be compared."""
    if isinstance(value, dict):
        return {k: shape(v) for k, v in value.items()}
    if isinstance(value, list):
        return [shape(value[0])] if value else []
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    return type(value).__name__


def shape_missing(ours, reference, path=""):
    """Where ours has a key or a type the reference does not: Vireo may
    leave out what QEMU adds (e.g. QEMU's I/O throttling fields), but what
    it says must be said the way QEMU says it. Returns the differences."""
    diffs = []
    if isinstance(ours, dict):
        if not isinstance(reference, dict):
            return ["%s: object vs %s" % (path or "/", reference)]
        for k, v in ours.items():
            if k not in reference:
                diffs.append("%s/%s: not in QEMU's reply" % (path, k))
            else:
                diffs += shape_missing(v, reference[k], "%s/%s" % (path, k))
    elif isinstance(ours, list):
        if not isinstance(reference, list):
            return ["%s: array vs %s" % (path or "/", reference)]
        if ours and reference:
            diffs += shape_missing(ours[0], reference[0], path + "[]")
    elif ours != reference:
        diffs.append("%s: %s vs QEMU's %s" % (path or "/", ours, reference))
    return diffs


def fresh_socket_path(tag):
    d = os.environ.get("TMPDIR", "/tmp")
    path = os.path.join(d, "vireo-qmp-%s-%d.sock" % (tag, os.getpid()))
    if os.path.exists(path):
        os.unlink(path)
    return path


def reset_while_paused(q, vm, banner):
    """stop, system_reset, and a check that the guest stays paused: no
    `banner` (what it prints from its first instruction) within a second,
    however much output vm has read meanwhile; then cont. The caller
    waits for the boot that follows."""
    q.cmd("stop")
    q.event("STOP")
    vm.output = b""
    q.cmd("system_reset")
    q.event("RESET")
    if q.cmd("query-status")["status"] != "paused":
        raise AssertionError("not paused after a paused reset")
    time.sleep(1)
    vm._pump(0)
    if banner in vm.output:
        raise AssertionError("the guest ran while paused: %r" % vm.output[-200:])
    q.cmd("cont")
    q.event("RESUME")
