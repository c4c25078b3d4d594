"""``pyra vm NAME console``: the guest's serial console, interactive, like ``virsh console``.

libvirt's stream API (virDomainOpenConsole on a non-blocking virStream, driven by libvirt's default event loop,
as libvirt-python's consolecallback example does): stdin is put in raw mode and registered as an event handle
beside the stream, so one thread moves bytes both ways; ^] (0x1d) ends the session, as does the guest's side
hanging up (it stopped, or migrated away). No virsh is spawned: the same bounded connection (and the same URI
rule) as every other ``pyra vm`` action. The event implementation must be registered before the connection is
opened, hence this module opens its own.
"""

import os
import sys

ESCAPE = b"\x1d"  # ^]


class Session:
    def __init__(self, lv, stream, out_fd, in_fd):
        self.lv = lv
        self.stream = stream
        self.out_fd = out_fd
        self.in_fd = in_fd
        self.done = False
        self.reason = None
        self.pending = b""

    def on_stream(self, stream, events, _opaque):
        lv = self.lv
        if events & lv.VIR_STREAM_EVENT_READABLE:
            while True:
                try:
                    data = stream.recv(4096)
                except lv.libvirtError as err:
                    self.finish("console stream error: %s" % err)
                    return
                if data == -2:  # nothing more now
                    break
                if not data:
                    self.finish("the guest's console closed (it stopped or moved)")
                    return
                _write_all(self.out_fd, data)
        if events & lv.VIR_STREAM_EVENT_WRITABLE and self.pending:
            self.flush()
        if events & (lv.VIR_STREAM_EVENT_ERROR | lv.VIR_STREAM_EVENT_HANGUP):
            self.finish("the guest's console closed (it stopped or moved)")

    def on_stdin(self, _watch, _fd, _events, _opaque):
        try:
            data = os.read(self.in_fd, 4096)
        except OSError:
            data = b""
        if not data:
            self.finish(None)
            return
        if ESCAPE in data:
            data = data[:data.index(ESCAPE)]
            self.pending += data
            self.flush()
            self.finish(None)
            return
        self.pending += data
        self.flush()

    def flush(self):
        lv = self.lv
        while self.pending and not self.done:
            try:
                sent = self.stream.send(self.pending)
            except lv.libvirtError as err:
                self.finish("console stream error: %s" % err)
                return
            if sent == -2:
                self.stream.eventUpdateCallback(lv.VIR_STREAM_EVENT_READABLE | lv.VIR_STREAM_EVENT_WRITABLE
                                                | lv.VIR_STREAM_EVENT_ERROR | lv.VIR_STREAM_EVENT_HANGUP)
                return
            self.pending = self.pending[sent:]
        if not self.done:
            self.stream.eventUpdateCallback(lv.VIR_STREAM_EVENT_READABLE | lv.VIR_STREAM_EVENT_ERROR
                                            | lv.VIR_STREAM_EVENT_HANGUP)

    def finish(self, reason):
        if not self.done:
            self.done = True
            self.reason = reason


def _write_all(fd, data):
    while data:
        n = os.write(fd, data)
        data = data[n:]


def run(guest, deadline, force=False, in_fd=None, out_fd=None):
    """The interactive session; returns a closing remark (or None). CliError 6/8 as ``Guest.connect/lookup``."""
    from pyra.backends import libvirt_api as api
    lv = api.libvirt
    in_fd = sys.stdin.fileno() if in_fd is None else in_fd
    out_fd = sys.stdout.fileno() if out_fd is None else out_fd
    lv.virEventRegisterDefaultImpl()
    hv = guest.connect(deadline)
    with hv:
        dom = guest.lookup(hv)
        stream = hv.call(hv.conn.newStream, lv.VIR_STREAM_NONBLOCK, timeout=10.0)
        flags = lv.VIR_DOMAIN_CONSOLE_FORCE if force else 0
        try:
            hv.call(dom.openConsole, None, stream, flags, timeout=15.0)
        except api.LibvirtError as err:
            from pyra.cli.main import CliError
            raise CliError("console of %s on %s: %s" % (guest.domain, guest.node, api.error_text(err))) from None
        session = Session(lv, stream, out_fd, in_fd)
        stream.eventAddCallback(lv.VIR_STREAM_EVENT_READABLE | lv.VIR_STREAM_EVENT_ERROR
                                | lv.VIR_STREAM_EVENT_HANGUP, session.on_stream, None)
        watch = lv.virEventAddHandle(in_fd, lv.VIR_EVENT_HANDLE_READABLE, session.on_stdin, None)
        saved = None
        if os.isatty(in_fd):
            import termios
            import tty
            saved = termios.tcgetattr(in_fd)
            tty.setraw(in_fd)
        sys.stderr.write("Connected to %s on %s (%s)\r\nEscape character is ^] (Ctrl + ])\r\n"
                         % (guest.domain, guest.node, hv.uri))
        sys.stderr.flush()
        try:
            while not session.done:
                lv.virEventRunDefaultImpl()
        finally:
            if saved is not None:
                import termios
                termios.tcsetattr(in_fd, termios.TCSADRAIN, saved)
            lv.virEventRemoveHandle(watch)
            for fn in (stream.eventRemoveCallback, stream.abort):
                try:
                    api.bounded(5.0, fn)
                except (api.LibvirtError, api.Unreachable):
                    pass
        sys.stderr.write("\n")
        return session.reason
