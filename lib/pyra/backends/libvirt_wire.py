"""libvirt's RPC protocol, just enough for the recurring monitor: one domain state query without loading libvirt.

Loading libvirt-python costs ~18 ms of every monitor (the client library links ~170 shared objects), about
half of what a monitor costs. A monitor of a guest on this node needs four calls of libvirt's remote protocol
on the daemon's local unix socket, whose wire format libvirt keeps stable across releases (XDR; program
0x20008086, version 1): AUTH_LIST, CONNECT_OPEN, DOMAIN_LOOKUP_BY_UUID, DOMAIN_GET_STATE (then CONNECT_CLOSE).

This module answers only what it fully understands and hands everything else back to libvirt-python:
``domain_state`` raises ``Unsupported`` for a URI it does not resolve exactly as libvirt's client does (a remote
host, another transport, a query parameter other than ``socket``, ``remote_mode`` set in libvirt.conf), for a
daemon that asks for authentication, for any error other than "no such domain", and for a socket it cannot
connect to (libvirt-python then tells the whole story). It raises ``Timeout`` when the daemon accepted the
connection but did not answer in time: the daemon is hung, and asking again through libvirt would only spend
the rest of the operation's deadline.

Uses ``_socket`` and ``_struct`` (built in) rather than ``socket``, whose import pulls in ``enum`` and
``selectors`` (~3 ms). The whole conversation, not each call, is bounded by the caller's timeout.
"""

import _socket
import _struct
import os
import time

from pyra.backends.libvirt_codes import ERR_NO_DOMAIN

PROGRAM = 0x20008086
VERSION = 1
CALL, REPLY = 0, 1
OK, ERROR = 0, 1

PROC_CONNECT_OPEN = 1
PROC_CONNECT_CLOSE = 2
PROC_DOMAIN_LOOKUP_BY_UUID = 24
PROC_AUTH_LIST = 66
PROC_DOMAIN_GET_STATE = 212

AUTH_NONE = 0
MAX_PACKET = 4 * 1024 * 1024

DRIVERS = ("qemu", "lxc")  # the drivers TransientDomain runs (DRIVER:///system, DRIVER+unix:///system)
RUN_DIR = "/var/run/libvirt"  # as libvirt builds it: LOCALSTATEDIR "/run/libvirt"
CLIENT_CONF = "/etc/libvirt/libvirt.conf"

_HEADER = _struct.Struct(">IIiiIi")  # program, version, procedure, type, serial, status
_U32 = _struct.Struct(">I")
_I32 = _struct.Struct(">i")
_I32x2 = _struct.Struct(">ii")


class Unsupported(Exception):
    """Not something this module answers for sure: ask libvirt-python."""


class Timeout(Exception):
    """The daemon accepted the connection and did not answer in time."""


# -- URI -> (socket, name sent to the daemon) -----------------------------------------------------------------
def resolve(uri, conf_path=CLIENT_CONF, exists=os.path.exists):
    """(socket path, URI to open on the daemon) for a local system URI, as libvirt's remote driver picks them;
    Unsupported for anything else."""
    scheme, sep, rest = uri.partition("://")
    if not sep:
        raise Unsupported("not a URI: %r" % uri)
    driver, _, transport = scheme.partition("+")
    if driver not in DRIVERS or transport not in ("", "unix"):
        raise Unsupported("driver or transport not handled here: %s" % scheme)
    path, _, query = rest.partition("?")
    if path != "/system":  # a server name ("host/system"), a session, or an embedded driver
        raise Unsupported("not a local system URI: %s" % uri)
    socket_path, mode = None, None
    for item in filter(None, query.split("&")):
        key, _, value = item.partition("=")
        if key == "socket" and value.startswith("/") and "%" not in value:
            socket_path = value
        elif key == "mode" and value in ("auto", "legacy", "direct"):
            mode = value
        else:
            raise Unsupported("URI parameter not handled here: %s" % item)
    name = "%s:///system" % driver
    if socket_path:
        return socket_path, name
    if mode is None and _conf_sets_mode(conf_path):
        raise Unsupported("%s sets remote_mode" % conf_path)
    direct = "%s/virt%sd-sock" % (RUN_DIR, driver)
    legacy = "%s/libvirt-sock" % RUN_DIR
    if mode == "direct" or (mode in (None, "auto") and exists(direct)):
        return direct, name
    if mode == "legacy" or exists(legacy):
        return legacy, name
    raise Unsupported("neither %s nor %s exists" % (direct, legacy))


def _conf_sets_mode(conf_path):
    try:
        with open(conf_path, "rb") as handle:
            text = handle.read()
    except FileNotFoundError:
        return False
    except OSError:
        return True
    return any(line.split(b"=")[0].strip() == b"remote_mode" for line in text.splitlines()
               if not line.lstrip().startswith(b"#"))


# -- XDR ------------------------------------------------------------------------------------------------------
def xdr_string(value):
    data = value.encode()
    return _U32.pack(len(data)) + data + b"\0" * (-len(data) % 4)


def packet(procedure, serial, body=b""):
    """One CALL message: length word (including itself), header, body."""
    header = _HEADER.pack(PROGRAM, VERSION, procedure, CALL, serial, OK)
    return _U32.pack(4 + len(header) + len(body)) + header + body


class _Reader:
    def __init__(self, data):
        self.data = data
        self.pos = 0

    def take(self, size):
        end = self.pos + size
        if end > len(self.data):
            raise Unsupported("reply shorter than its fields")
        chunk = self.data[self.pos:end]
        self.pos = end
        return chunk

    def u32(self):
        return _U32.unpack(self.take(4))[0]

    def i32(self):
        return _I32.unpack(self.take(4))[0]

    def string(self):
        size = self.u32()
        data = self.take(size + (-size % 4))
        return data[:size].decode("utf-8", "replace")


def nonnull_domain(name, uuid_bytes, dom_id):
    """remote_nonnull_domain: name, 16-byte UUID, id."""
    return xdr_string(name) + uuid_bytes + _I32.pack(dom_id)


# -- the conversation -----------------------------------------------------------------------------------------
class _Conversation:
    """Calls on one connection, all within one deadline (time.monotonic()): each wait gets what is left."""

    def __init__(self, sock, deadline):
        self.sock = sock
        self.deadline = deadline
        self.serial = 0

    def _budget(self):
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("deadline passed")
        self.sock.settimeout(left)

    def call(self, procedure, body=b""):
        """The reply body of ``procedure``; (error code, message) as a DaemonError when the daemon says no."""
        serial = self.serial
        self.serial += 1
        self._budget()
        self.sock.sendall(packet(procedure, serial, body))
        while True:
            length = _U32.unpack(self._recv(4))[0]
            if length < 4 + _HEADER.size or length > MAX_PACKET:
                raise Unsupported("reply of impossible length %d" % length)
            data = self._recv(length - 4)
            prog, vers, proc, mtype, rserial, status = _HEADER.unpack_from(data)
            if prog != PROGRAM or vers != VERSION:
                continue  # another program's message (keepalive, events): not ours
            if mtype != REPLY or rserial != serial or proc != procedure:
                continue
            reader = _Reader(data[_HEADER.size:])
            if status == OK:
                return reader
            if status == ERROR:
                code = reader.i32()
                reader.i32()  # error domain
                message = reader.string() if reader.u32() else ""
                raise DaemonError(code, message)
            raise Unsupported("reply status %d" % status)

    def _recv(self, size):
        chunks, left = [], size
        while left:
            self._budget()
            chunk = self.sock.recv(left)
            if not chunk:
                raise Unsupported("the daemon closed the connection")
            chunks.append(chunk)
            left -= len(chunk)
        return b"".join(chunks)


class DaemonError(Exception):
    def __init__(self, code, message):
        super().__init__("libvirt error %d: %s" % (code, message))
        self.code = code
        self.message = message


def domain_state(uri, uuid, timeout, conf_path=CLIENT_CONF):
    """(state, reason) of the domain with ``uuid`` on the daemon behind ``uri``, None when it has no such
    domain. The whole conversation takes at most ``timeout`` seconds (Timeout); Unsupported: ask libvirt."""
    socket_path, name = resolve(uri, conf_path)
    try:
        uuid_bytes = bytes.fromhex(uuid.replace("-", ""))
    except (ValueError, AttributeError):
        raise Unsupported("not a UUID: %r" % (uuid,)) from None
    if len(uuid_bytes) != 16:
        raise Unsupported("not a UUID: %r" % (uuid,))
    deadline = time.monotonic() + max(0.01, timeout)
    sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
    try:
        sock.settimeout(max(0.01, timeout))
        try:
            sock.connect(socket_path)
        except TimeoutError:
            raise Timeout("no connection to %s within %.1f s" % (socket_path, timeout)) from None
        except OSError as err:
            raise Unsupported("cannot connect to %s: %s" % (socket_path, err.strerror)) from None
        talk = _Conversation(sock, deadline)
        try:
            return _query(talk, name, uuid_bytes)
        except TimeoutError:
            raise Timeout("%s did not answer within %.1f s" % (socket_path, timeout)) from None
        except DaemonError as err:
            raise Unsupported(str(err)) from None
        except OSError as err:
            raise Unsupported("talking to %s: %s" % (socket_path, err)) from None
    finally:
        sock.close()


def _query(talk, name, uuid_bytes):
    reply = talk.call(PROC_AUTH_LIST)
    kinds = [reply.i32() for _ in range(reply.u32())]
    if kinds and AUTH_NONE not in kinds:
        raise Unsupported("the daemon asks for authentication %s" % kinds)
    talk.call(PROC_CONNECT_OPEN, _U32.pack(1) + xdr_string(name) + _U32.pack(0))
    state = _lookup_state(talk, uuid_bytes)
    try:
        talk.deadline = min(talk.deadline, time.monotonic() + 0.2)  # a polite goodbye; the answer is known
        talk.call(PROC_CONNECT_CLOSE)
    except (OSError, Unsupported, DaemonError):
        pass
    return state


def _lookup_state(talk, uuid_bytes):
    try:
        reply = talk.call(PROC_DOMAIN_LOOKUP_BY_UUID, uuid_bytes)
    except DaemonError as err:
        if err.code == ERR_NO_DOMAIN:
            return None
        raise
    dom_name = reply.string()
    dom_uuid = reply.take(16)
    dom_id = reply.i32()
    try:
        reply = talk.call(PROC_DOMAIN_GET_STATE, nonnull_domain(dom_name, dom_uuid, dom_id) + _U32.pack(0))
    except DaemonError as err:
        if err.code == ERR_NO_DOMAIN:
            return None  # gone between the two calls: a transient domain that stopped
        raise
    return _I32x2.unpack(reply.take(8))
