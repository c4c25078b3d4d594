"""The startup_signal protocol on a guest's virtio-serial channel (host side).

Guest -> host ``ready <token>`` (re-sent until acknowledged), host -> guest ``ack <token>``. Afterwards the
guest answers ``ping <x>`` with ``pong <x>``; we use that to confirm the ack arrived and, after a migration,
for a fresh handshake with a guest that acked long ago. The socket is QEMU's (libvirt picks its path; read it
from the live XML). Never half-close it: QEMU drops the client on EOF and a reply in flight is lost.
"""

import os
import socket
import time


class HandshakeError(Exception):
    pass


class Channel:
    def __init__(self, path, deadline):
        self.path = path
        self.deadline = deadline
        self.sock = None
        self.buf = b""

    def connect(self):
        """Connect, retrying while QEMU has not bound the socket yet."""
        while True:
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
            try:
                s.settimeout(max(0.05, min(1.0, self.deadline.remaining())))
                s.connect(self.path)
                self.sock = s
                return self
            except OSError as err:
                s.close()
                if self.deadline.expired():
                    raise HandshakeError("cannot connect to %s: %s" % (self.path, err)) from None
                self.deadline.sleep(0.1)

    def close(self):
        if self.sock is not None:
            self.sock.close()
            self.sock = None

    def send(self, line):
        self.sock.settimeout(max(0.05, self.deadline.remaining()))
        self.sock.sendall(line.encode() + b"\n")

    def lines(self, until):
        """Yield lines received before the sub-deadline ``until`` expires."""
        while not until.expired():
            while b"\n" in self.buf:
                line, _, self.buf = self.buf.partition(b"\n")
                yield line.decode("utf-8", "replace").strip()
            self.sock.settimeout(max(0.02, min(0.5, until.remaining())))
            try:
                data = self.sock.recv(4096)
            except socket.timeout:
                continue
            except OSError as err:
                raise HandshakeError("channel %s: %s" % (self.path, err)) from None
            if not data:  # QEMU closed (guest gone?) - cannot read more
                raise HandshakeError("channel %s closed by QEMU" % self.path)
            self.buf += data

    def ping(self, token, until):
        self.send("ping " + token)
        for line in self.lines(until):
            if line == "pong " + token:
                return True
            if line.startswith("ready "):
                # the guest has not been acknowledged yet (it booted or migrated before a handshake)
                self.send("ack " + line[6:])
                self.send("ping " + token)
        return False


def handshake(path, deadline, log=None):
    """Wait for ``ready <token>`` and answer ``ack <token>``; confirm with a ping. Returns the token."""
    ch = Channel(path, deadline).connect()
    try:
        for line in ch.lines(deadline):
            if line.startswith("ready "):
                token = line[6:].strip()
                ch.send("ack " + token)
                if log:
                    log.info("guest signalled ready %s; acknowledged", token)
                nonce = "%x" % int(time.monotonic() * 1e6)
                if ch.ping(nonce, deadline.within(max(0.5, min(10.0, deadline.remaining())))):
                    return token
                raise HandshakeError("guest sent ready but did not answer a ping after the ack")
            if line and log:
                log.debug("startup_signal: ignoring %r", line)
        raise HandshakeError("the guest did not signal ready on its startup_signal channel in time")
    finally:
        ch.close()


def refresh(path, deadline):
    """A fresh handshake with a running guest (after a migration): ping, or ack a pending ready."""
    ch = Channel(path, deadline).connect()
    try:
        nonce = "%d-%x" % (os.getpid(), int(time.monotonic() * 1e6))
        if not ch.ping(nonce, deadline):
            raise HandshakeError("the guest did not answer on its startup_signal channel in time")
        return True
    finally:
        ch.close()
