"""pyra.backends.libvirt_wire: the monitor's libvirt-free state query, against a scripted daemon on a real
unix socket (the real daemon is in tests/real/transientdomain/test_libvirt_wire.py).

The golden packets are the bytes libvirt-python 9.0's client sent to libvirtd (captured with strace).
"""

import os
import socket
import struct
import tempfile
import threading
import time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pyra.backends import libvirt_wire as wire

UUID = "11111111-2222-3333-4444-555555555555"
UUID_BYTES = bytes.fromhex(UUID.replace("-", ""))

# what libvirt's own client sends (libvirt-python 9.0 on Debian 12, strace -xx)
GOLDEN_AUTH_LIST = bytes.fromhex("0000001c 20008086 00000001 00000042 00000000 00000000 00000000".replace(" ", ""))
GOLDEN_OPEN = bytes.fromhex(
    "00000038 20008086 00000001 00000001 00000000 00000001 00000000 00000001 0000000e 71656d75 3a2f2f2f"
    " 73797374 656d0000 00000000".replace(" ", ""))
GOLDEN_LOOKUP = bytes.fromhex(("0000002c 20008086 00000001 00000018 00000000 00000004 00000000"
                               + UUID.replace("-", "")).replace(" ", ""))
GOLDEN_GET_STATE = bytes.fromhex(
    ("0000003c 20008086 00000001 000000d4 00000000 00000005 00000000 00000004 64657667"
     + UUID.replace("-", "") + "00000001 00000000").replace(" ", ""))


def test_packets_are_byte_for_byte_what_libvirts_client_sends():
    assert wire.packet(wire.PROC_AUTH_LIST, 0) == GOLDEN_AUTH_LIST
    assert wire.packet(wire.PROC_CONNECT_OPEN, 1,
                       struct.pack(">I", 1) + wire.xdr_string("qemu:///system") + struct.pack(">I", 0)) == GOLDEN_OPEN
    assert wire.packet(wire.PROC_DOMAIN_LOOKUP_BY_UUID, 4, UUID_BYTES) == GOLDEN_LOOKUP
    assert wire.packet(wire.PROC_DOMAIN_GET_STATE, 5,
                       wire.nonnull_domain("devg", UUID_BYTES, 1) + struct.pack(">I", 0)) == GOLDEN_GET_STATE


@given(st.text(max_size=40))
def test_xdr_strings_are_padded_to_four_bytes_and_read_back(text):
    data = wire.xdr_string(text)
    assert len(data) % 4 == 0
    reader = wire._Reader(data + b"tail")
    assert reader.string() == text and reader.take(4) == b"tail"


# -- which socket, which name: as libvirt's remote driver chooses ---------------------------------------------
def _exists(*present):
    return lambda path: path in present


DIRECT_QEMU = "/var/run/libvirt/virtqemud-sock"
DIRECT_LXC = "/var/run/libvirt/virtlxcd-sock"
LEGACY = "/var/run/libvirt/libvirt-sock"


@pytest.mark.parametrize("uri, present, expected", [
    ("qemu:///system", (DIRECT_QEMU, LEGACY), (DIRECT_QEMU, "qemu:///system")),   # modular daemons first
    ("qemu:///system", (LEGACY,), (LEGACY, "qemu:///system")),                    # then libvirtd
    ("qemu+unix:///system", (LEGACY,), (LEGACY, "qemu:///system")),
    ("lxc:///system", (DIRECT_LXC,), (DIRECT_LXC, "lxc:///system")),
    ("qemu:///system?mode=legacy", (DIRECT_QEMU, LEGACY), (LEGACY, "qemu:///system")),
    ("qemu:///system?mode=direct", (), (DIRECT_QEMU, "qemu:///system")),
    ("qemu+unix:///system?socket=/run/x/sock", (), ("/run/x/sock", "qemu:///system")),
])
def test_resolve_local_system_uris(uri, present, expected, tmp_path):
    assert wire.resolve(uri, str(tmp_path / "absent.conf"), exists=_exists(*present)) == expected


@pytest.mark.parametrize("uri", [
    "qemu:///session", "qemu+ssh://root@h1/system", "qemu+tcp://h1/system", "qemu://h1/system",
    "qemu+tls://h1/system", "test:///default", "xen:///system", "qemu:///embed?root=/x",
    "qemu:///system?no_verify=1", "qemu+unix:///system?socket=relative", "qemu+ext:///system", "not a uri",
])
def test_resolve_leaves_everything_else_to_libvirt(uri, tmp_path):
    with pytest.raises(wire.Unsupported):
        wire.resolve(uri, str(tmp_path / "absent.conf"), exists=_exists(DIRECT_QEMU, LEGACY))


def test_resolve_defers_to_libvirt_when_the_client_config_sets_the_mode(tmp_path):
    conf = tmp_path / "libvirt.conf"
    conf.write_text('# remote_mode = "legacy"\nuri_default = "qemu:///system"\n')
    assert wire.resolve("qemu:///system", str(conf), exists=_exists(LEGACY))[0] == LEGACY
    conf.write_text('remote_mode = "legacy"\n')
    with pytest.raises(wire.Unsupported):
        wire.resolve("qemu:///system", str(conf), exists=_exists(LEGACY))
    # an explicit socket is not subject to the mode
    assert wire.resolve("qemu+unix:///system?socket=/s", str(conf))[0] == "/s"


def test_resolve_without_any_daemon_socket_defers_to_libvirt(tmp_path):
    with pytest.raises(wire.Unsupported):
        wire.resolve("qemu:///system", str(tmp_path / "absent.conf"), exists=_exists())


# -- a scripted daemon ----------------------------------------------------------------------------------------
def _reply(proc, serial, body=b"", status=wire.OK, mtype=wire.REPLY, program=wire.PROGRAM):
    header = struct.pack(">IIiiIi", program, 1, proc, mtype, serial, status)
    return struct.pack(">I", 4 + len(header) + len(body)) + header + body


def _error(code, message="boom"):
    return struct.pack(">ii", code, 10) + struct.pack(">I", 1) + wire.xdr_string(message)


CLOSE = object()


class Daemon:
    """A unix socket answering each call with ``script[procedure](serial, body)``: bytes to send, None to
    fall silent, CLOSE to hang up. AUTH_LIST answers "none" unless scripted; other procedures not in the script
    get an empty OK reply. Records the procedures called."""

    def __init__(self, script=None):
        self.script = {wire.PROC_AUTH_LIST: _auth([wire.AUTH_NONE])}
        self.script.update(script or {})
        self.calls = []
        self.dir = tempfile.mkdtemp(prefix="pwire-")
        self.path = os.path.join(self.dir, "sock")
        self.server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.server.bind(self.path)
        self.server.listen(4)
        self.release = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    @property
    def uri(self):
        return "qemu+unix:///system?socket=" + self.path

    def _serve(self):
        try:
            conn, _ = self.server.accept()
        except OSError:
            return
        try:
            self._talk(conn)
        except OSError:
            pass  # the client hung up first: what some tests want
        finally:
            conn.close()

    def _talk(self, conn):
        while True:
            head = self._recv(conn, 4)
            if head is None:
                return
            data = self._recv(conn, struct.unpack(">I", head)[0] - 4)
            if data is None:
                return
            _prog, _vers, proc, _type, serial, _status = struct.unpack_from(">IIiiIi", data)
            self.calls.append(proc)
            handler = self.script.get(proc, lambda s, b: _reply(proc, s))
            out = handler(serial, data[24:])
            if out is None:
                self.release.wait(30)
                return
            if out is CLOSE:
                return
            conn.sendall(out)

    @staticmethod
    def _recv(conn, size):
        buf = b""
        while len(buf) < size:
            chunk = conn.recv(size - len(buf))
            if not chunk:
                return None
            buf += chunk
        return buf

    def close(self):
        self.release.set()
        if not self.calls:  # nobody connected: wake the accept
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as poke:
                poke.connect(self.path)
        self.server.close()
        self.thread.join(5)
        for name in os.listdir(self.dir):
            os.unlink(os.path.join(self.dir, name))
        os.rmdir(self.dir)


@pytest.fixture
def daemon():
    made = []

    def make(script=None):
        d = Daemon(script)
        made.append(d)
        return d
    yield make
    for d in made:
        d.close()


def _auth(kinds):
    return lambda s, b: _reply(wire.PROC_AUTH_LIST, s, struct.pack(">I", len(kinds))
                               + b"".join(struct.pack(">i", k) for k in kinds))


def _found(name="vm1", dom_id=7):
    return lambda s, b: _reply(wire.PROC_DOMAIN_LOOKUP_BY_UUID, s, wire.nonnull_domain(name, b, dom_id))


def _state(state, reason):
    return lambda s, b: _reply(wire.PROC_DOMAIN_GET_STATE, s, struct.pack(">ii", state, reason))


def test_running_domain(daemon):
    d = daemon({wire.PROC_AUTH_LIST: _auth([0]), wire.PROC_DOMAIN_LOOKUP_BY_UUID: _found(),
                wire.PROC_DOMAIN_GET_STATE: _state(1, 5)})
    assert wire.domain_state(d.uri, UUID, 10) == (1, 5)
    assert d.calls == [wire.PROC_AUTH_LIST, wire.PROC_CONNECT_OPEN, wire.PROC_DOMAIN_LOOKUP_BY_UUID,
                       wire.PROC_DOMAIN_GET_STATE, wire.PROC_CONNECT_CLOSE]


def test_get_state_names_the_domain_the_lookup_returned(daemon):
    seen = []

    def state(serial, body):
        seen.append(body)
        return _reply(wire.PROC_DOMAIN_GET_STATE, serial, struct.pack(">ii", 3, 5))
    d = daemon({wire.PROC_DOMAIN_LOOKUP_BY_UUID: _found("guest-a", 12), wire.PROC_DOMAIN_GET_STATE: state})
    assert wire.domain_state(d.uri, UUID, 10) == (3, 5)
    assert seen == [wire.nonnull_domain("guest-a", UUID_BYTES, 12) + struct.pack(">I", 0)]


def test_an_empty_auth_list_means_no_authentication(daemon):
    d = daemon({wire.PROC_AUTH_LIST: _auth([]), wire.PROC_DOMAIN_LOOKUP_BY_UUID: _found(),
                wire.PROC_DOMAIN_GET_STATE: _state(1, 1)})
    assert wire.domain_state(d.uri, UUID, 10) == (1, 1)


def test_no_such_domain_is_none(daemon):
    d = daemon({wire.PROC_DOMAIN_LOOKUP_BY_UUID:
                lambda s, b: _reply(24, s, _error(wire.ERR_NO_DOMAIN, "Domain not found"), status=wire.ERROR)})
    assert wire.domain_state(d.uri, UUID, 10) is None
    assert d.calls[-1] == wire.PROC_CONNECT_CLOSE


def test_a_domain_gone_between_lookup_and_state_is_none(daemon):
    d = daemon({wire.PROC_DOMAIN_LOOKUP_BY_UUID: _found(),
                wire.PROC_DOMAIN_GET_STATE: lambda s, b: _reply(212, s, _error(42), status=wire.ERROR)})
    assert wire.domain_state(d.uri, UUID, 10) is None


@pytest.mark.parametrize("script", [
    {wire.PROC_AUTH_LIST: _auth([2])},                                                  # polkit
    {wire.PROC_AUTH_LIST: _auth([1])},                                                  # SASL
    {wire.PROC_CONNECT_OPEN: lambda s, b: _reply(1, s, _error(38, "no driver"), status=wire.ERROR)},
    {wire.PROC_DOMAIN_LOOKUP_BY_UUID: lambda s, b: _reply(24, s, _error(1, "internal"), status=wire.ERROR)},
    {wire.PROC_DOMAIN_LOOKUP_BY_UUID: lambda s, b: _reply(24, s, b"\0\0\0\x09ab")},     # truncated reply
    {wire.PROC_DOMAIN_LOOKUP_BY_UUID: lambda s, b: struct.pack(">I", 8) + b"\0" * 4},   # impossible length
    {wire.PROC_DOMAIN_LOOKUP_BY_UUID: lambda s, b: _reply(24, s, status=2)},            # unknown status
    {wire.PROC_DOMAIN_LOOKUP_BY_UUID: lambda s, b: CLOSE},                              # hangs up
])
def test_anything_unexpected_is_handed_to_libvirt(daemon, script):
    d = daemon(script)
    with pytest.raises(wire.Unsupported):
        wire.domain_state(d.uri, UUID, 10)


def test_messages_of_other_programs_and_serials_are_skipped(daemon):
    def lookup(serial, body):
        keepalive = _reply(1, 0, program=0x6b656570, mtype=2)
        stray = _reply(24, serial + 100, wire.nonnull_domain("other", b"\xff" * 16, 1))
        return keepalive + stray + _found()(serial, body)
    d = daemon({wire.PROC_DOMAIN_LOOKUP_BY_UUID: lookup, wire.PROC_DOMAIN_GET_STATE: _state(1, 1)})
    assert wire.domain_state(d.uri, UUID, 10) == (1, 1)


def test_a_daemon_that_accepts_and_never_answers_is_a_timeout(daemon):
    d = daemon({wire.PROC_AUTH_LIST: lambda s, b: None})
    with pytest.raises(wire.Timeout):
        wire.domain_state(d.uri, UUID, 0.3)


def test_a_socket_nobody_listens_on_is_handed_to_libvirt(tmp_path):
    dead = tmp_path / "sock"
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(str(dead))
    s.close()  # a stale socket file: connection refused
    for path in (dead, tmp_path / "absent"):
        with pytest.raises(wire.Unsupported):
            wire.domain_state("qemu+unix:///system?socket=%s" % path, UUID, 5)


@pytest.mark.parametrize("bad", ["", "not-a-uuid", "1111", UUID + "00"])
def test_a_malformed_uuid_is_handed_to_libvirt(daemon, bad):
    d = daemon()
    with pytest.raises(wire.Unsupported):
        wire.domain_state(d.uri, bad, 5)


# -- the numbers ----------------------------------------------------------------------------------------------
def test_libvirt_codes_are_libvirts_own():
    libvirt = pytest.importorskip("libvirt")
    if getattr(libvirt, "FAKE", False):
        pytest.skip("the fake binding is loaded")
    from pyra.backends import libvirt_codes as lc
    pairs = {"NOSTATE": "VIR_DOMAIN_NOSTATE", "RUNNING": "VIR_DOMAIN_RUNNING", "BLOCKED": "VIR_DOMAIN_BLOCKED",
             "PAUSED": "VIR_DOMAIN_PAUSED", "SHUTDOWN": "VIR_DOMAIN_SHUTDOWN", "SHUTOFF": "VIR_DOMAIN_SHUTOFF",
             "CRASHED": "VIR_DOMAIN_CRASHED", "PMSUSPENDED": "VIR_DOMAIN_PMSUSPENDED",
             "PAUSED_USER": "VIR_DOMAIN_PAUSED_USER", "PAUSED_IOERROR": "VIR_DOMAIN_PAUSED_IOERROR",
             "PAUSED_POSTCOPY_FAILED": "VIR_DOMAIN_PAUSED_POSTCOPY_FAILED", "ERR_NO_DOMAIN": "VIR_ERR_NO_DOMAIN",
             "ERR_OPERATION_INVALID": "VIR_ERR_OPERATION_INVALID"}
    assert {ours: getattr(lc, ours) for ours in pairs} == {ours: getattr(libvirt, theirs)
                                                          for ours, theirs in pairs.items()}
    assert wire.ERR_NO_DOMAIN == libvirt.VIR_ERR_NO_DOMAIN


def test_the_timeout_bounds_the_whole_conversation_not_each_call(daemon):
    """Each answer alone comes well within the timeout; all of them together cannot."""
    def slow(reply):
        def handler(serial, body):
            time.sleep(0.3)
            return reply(serial, body)
        return handler
    d = daemon({wire.PROC_AUTH_LIST: slow(_auth([0])),
                wire.PROC_CONNECT_OPEN: slow(lambda s, b: _reply(1, s)),
                wire.PROC_DOMAIN_LOOKUP_BY_UUID: slow(_found()),
                wire.PROC_DOMAIN_GET_STATE: slow(_state(1, 1))})
    with pytest.raises(wire.Timeout):
        wire.domain_state(d.uri, UUID, 0.5)
