"""The guest side of a fake domain, for tests: its startup_signal channel and its emulator process.

``GuestChannel(path)`` listens on a real AF_UNIX socket where QEMU would (the path the fake puts in the live
XML: ``world.guest(name, channel=path)``) and plays the test guest's init (lab/rigs/guest/init):
``ready <token>`` re-sent until ``ack <token>``, ``pong X`` for every ``ping X``. Modes: ``"ready"`` (a
booting guest), ``"acked"`` (it was acknowledged long ago: only pongs), ``"silent"`` (never says anything).

``FakeEmulator(uuid, name)`` is a sleeping process whose command line looks like the QEMU libvirt starts
(``-name guest=<name>,... -uuid <uuid>``): what pyra's emulator fallback looks for in /proc when libvirtd does
not answer. No root needed for either.
"""

import os
import socket
import subprocess
import sys
import threading
import time


class GuestChannel:
    def __init__(self, path, token="boot-1", mode="ready", resend=0.2):
        if mode not in ("ready", "acked", "silent"):
            raise ValueError("mode must be ready, acked or silent")
        self.path = path
        self.token = token
        self.mode = mode
        self.resend = resend
        self.acked = mode == "acked"
        self.received = []     # lines the host sent, in order
        self.sent = []         # lines the guest sent
        self.connections = 0
        self._stop = threading.Event()
        self._server = None
        self._thread = None

    def start(self):
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass
        srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
        srv.bind(self.path)
        srv.listen(4)
        srv.settimeout(0.05)
        self._server = srv
        self._thread = threading.Thread(target=self._serve, name="guest-channel", daemon=True)
        self._thread.start()
        return self

    def stop(self):
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
        if self._server is not None:
            self._server.close()
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
        return False

    def wait_received(self, line, timeout=10.0):
        """True once the host's ``line`` arrived (the guest reads asynchronously: an agent may return before
        the guest thread has read everything it wrote, e.g. an ack sent after the ping whose pong it waited for).
        """
        end = time.monotonic() + timeout
        while line not in self.received and time.monotonic() < end:
            time.sleep(0.005)
        return line in self.received

    @property
    def pings(self):
        return [line for line in self.received if line.startswith("ping ")]

    def _serve(self):
        while not self._stop.is_set():
            try:
                conn, _ = self._server.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            self.connections += 1
            try:
                self._talk(conn)
            except OSError:
                pass
            finally:
                conn.close()

    def _send(self, conn, line):
        conn.sendall(line.encode() + b"\n")
        self.sent.append(line)

    def _talk(self, conn):
        conn.settimeout(0.02)
        buf = b""
        next_ready = 0.0
        while not self._stop.is_set():
            if self.mode == "ready" and not self.acked and time.monotonic() >= next_ready:
                self._send(conn, "ready " + self.token)
                next_ready = time.monotonic() + self.resend
            try:
                data = conn.recv(4096)
            except socket.timeout:
                continue
            if not data:
                return  # the host closed its end
            buf += data
            while b"\n" in buf:
                raw, _, buf = buf.partition(b"\n")
                line = raw.decode("utf-8", "replace").strip()
                self.received.append(line)
                if line == "ack " + self.token:
                    self.acked = True
                elif line.startswith("ping ") and self.mode != "silent":
                    self._send(conn, "pong " + line[5:])


class FakeEmulator:
    """A process that pyra.backends.libvirt_proc takes for the guest's QEMU (it sleeps; SIGTERM ends it)."""

    def __init__(self, uuid, name):
        self.uuid = uuid
        self.name = name
        argv = [sys.executable, "-S", "-c", "import time\nwhile True: time.sleep(3600)",
                "-name", "guest=%s,debug-threads=on" % name, "-uuid", uuid, "-no-user-config"]
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        self._wait_visible()

    def _wait_visible(self):
        """Until /proc shows the final command line (the exec after fork)."""
        end = time.monotonic() + 10
        while time.monotonic() < end:
            try:
                with open("/proc/%d/cmdline" % self.proc.pid, "rb") as handle:
                    if self.uuid.encode() in handle.read():
                        return
            except OSError:
                pass
            time.sleep(0.005)

    @property
    def pid(self):
        return self.proc.pid

    def alive(self):
        return self.proc.poll() is None

    def wait_dead(self, timeout=10):
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            pass
        return not self.alive()

    def stop(self):
        if self.alive():
            self.proc.kill()
        self.proc.wait()
