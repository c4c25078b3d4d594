"""The scriptable state behind the fake ``libvirt`` module: nodes (one libvirtd each), their domains, the calls.

Everything is plain data (dicts, lists, strings, numbers) so that the same world can live in memory (an agent
run in-process, the test scripting it directly) or in a JSON file shared with agent subprocesses
(``PYRA_FAKE_LIBVIRT_STATE=<path>``; each call then loads and saves it under ``flock``).

A test scripts it with the helpers of ``World``: ``add_node``, ``set_local`` (the node ``qemu:///system``
means: the node the next agent run is on), ``guest`` (how a guest of that name behaves once created),
``add_domain``/``set_domain``/``crash``, ``refuse``/``hang``/``release`` (libvirtd down or hung), and reads
back ``calls()`` and ``domain()``. Behaviours of a domain (``guest(...)`` or ``add_domain(...)`` keywords):

- ``on_shutdown``: ``"poweroff"`` (default; shows "in shutdown" for ``shutdown_polls`` state queries, then
  vanishes), ``"ignore"`` (a guest that does not react to ACPI), ``"refuse"`` (libvirt raises, as with no
  guest agent)
- ``on_destroy``: ``"ok"`` (default), ``"fail"`` (libvirt raises), ``"ignore"`` (returns but it still runs)
- ``migration``: ``"succeed"`` (default), ``"fail"`` (raises ``migration_error``), ``"stall"`` (never
  converges: blocks until ``abortJob``; with ``postcopy_completes`` a ``migrateStartPostCopy`` finishes it)
- ``channel``: the host-side socket path of the ``startup_signal`` unix channel put in the live XML
- ``persistent``: a defined (not transient) domain
"""

import json
import os
import threading
import uuid as uuidlib
import xml.etree.ElementTree as ET

from .constants import VIR_DOMAIN_RUNNING as RUNNING
from .constants import VIR_DOMAIN_RUNNING_BOOTED as RUNNING_BOOTED
from .constants import VIR_DOMAIN_SHUTOFF as SHUTOFF
from .constants import VIR_DOMAIN_SHUTOFF_CRASHED as SHUTOFF_CRASHED
from .constants import VIR_DOMAIN_SHUTOFF_SHUTDOWN as SHUTOFF_SHUTDOWN
from .constants import VIR_ERR_INTERNAL_ERROR as ERR_INTERNAL_ERROR
from .constants import VIR_ERR_SYSTEM_ERROR as ERR_SYSTEM_ERROR
from .constants import VIR_FROM_QEMU as FROM_QEMU
from .constants import VIR_FROM_RPC as FROM_RPC

DEFAULT_BEHAVIOUR = {
    "on_shutdown": "poweroff", "shutdown_polls": 1, "on_destroy": "ok", "migration": "succeed",
    "migration_error": "operation failed: migration out job: unexpectedly failed",
    "postcopy_completes": False, "channel": None, "persistent": False,
}


class FakeError(Exception):
    """A libvirt error to raise: the module turns it into ``libvirtError`` (code, domain, message)."""

    def __init__(self, code, message, domain=FROM_QEMU):
        super().__init__(message)
        self.code = code
        self.domain = domain
        self.message = message


class Reset(FakeError):
    """The world was reset while a call waited (a stale thread of an earlier test): the call fails."""

    def __init__(self):
        super().__init__(ERR_SYSTEM_ERROR, "Cannot recv data: Connection reset by peer", FROM_RPC)


def _fresh_state(generation=1):
    return {"generation": generation, "local": None, "nodes": {}, "guests": {}, "calls": [], "handlers": 0,
            "next_id": 1}


def _node_state(name):
    return {"name": name, "refuse": False, "hang": False, "create_error": None, "domains": {},
            "networks": {"default": True},
            "host_uuid": str(uuidlib.uuid5(uuidlib.NAMESPACE_DNS, "pyra-fake-node-" + name)),
            "info": ["x86_64", 7936, 2, 2400, 1, 1, 2, 1]}


def _jsonable(value):
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return repr(value)


class World:
    """All fake libvirtds of one test, in memory or in a JSON file (``path``)."""

    def __init__(self, path=None):
        self.path = path
        self._lock = threading.RLock()
        self._cond = threading.Condition(self._lock)
        self._local = threading.local()  # transaction depth of each thread
        self._lock_fd = None
        self.state = _fresh_state()
        if path and os.path.exists(path):
            with self.txn():
                pass
        elif path:
            with self.txn():
                self.state = _fresh_state()

    # -- transactions: every call and every scripting step runs inside one ------------------------------
    def txn(self):
        return _Txn(self)

    def _enter(self):
        self._lock.acquire()
        depth = self._local.depth = getattr(self._local, "depth", 0) + 1
        if depth == 1 and self.path:
            self._flock()
            self._load()

    def _exit(self):
        try:
            if self._local.depth == 1:
                if self.path:
                    self._save()
                    self._funlock()
                self._cond.notify_all()
        finally:
            self._local.depth -= 1
            self._lock.release()

    def _flock(self):
        import fcntl
        self._lock_fd = os.open(self.path + ".lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        fcntl.flock(self._lock_fd, fcntl.LOCK_EX)

    def _funlock(self):
        os.close(self._lock_fd)
        self._lock_fd = None

    def _load(self):
        try:
            with open(self.path) as handle:
                self.state = json.load(handle)
        except (OSError, ValueError):
            self.state = _fresh_state()

    def _save(self):
        tmp = "%s.tmp.%d.%d" % (self.path, os.getpid(), threading.get_ident())
        with open(tmp, "w") as handle:
            json.dump(self.state, handle)
        os.rename(tmp, self.path)

    def wait_until(self, predicate, generation, poll=0.02):
        """Inside the outermost transaction: give the world up until ``predicate()`` holds (other threads and
        processes go on meanwhile). Reset when the world was reset in the meantime."""
        assert not self.path or self._local.depth == 1, "wait_until inside a nested transaction"
        while True:
            if self.state["generation"] != generation:
                raise Reset()
            if predicate():
                return
            if self.path:
                self._save()
                self._funlock()
                self._cond.wait(poll)
                self._flock()
                self._load()
            else:
                self._cond.wait(poll * 5)

    # -- scripting -------------------------------------------------------------------------------------
    def reset(self):
        """Forget everything (calls blocked in a hang or a stalled migration of the old world fail)."""
        with self.txn():
            self.state = _fresh_state(self.state.get("generation", 0) + 1)

    def add_node(self, name, **options):
        """A node with its libvirtd; the first one added is the local node until ``set_local``."""
        with self.txn():
            node = _node_state(name)
            node.update(options)
            self.state["nodes"][name] = node
            if self.state["local"] is None:
                self.state["local"] = name
        return name

    def set_local(self, name):
        with self.txn():
            self._node(name)
            self.state["local"] = name

    def set_node(self, name, **changes):
        with self.txn():
            self._node(name).update(changes)

    def refuse(self, name, flag=True):
        """libvirtd of ``name`` down: connections are refused, calls on open ones fail."""
        self.set_node(name, refuse=bool(flag))

    def hang(self, name, methods=True):
        """libvirtd of ``name`` hung: every call (or those named in ``methods``, e.g. ["open"]) blocks."""
        self.set_node(name, hang=methods if methods is True else list(methods))

    def release(self, name=None):
        with self.txn():
            for node in self.state["nodes"].values():
                if name is None or node["name"] == name:
                    node["hang"] = False

    def guest(self, name, **behaviour):
        """How a domain named ``name`` behaves once it is created or arrives by migration."""
        unknown = set(behaviour) - set(DEFAULT_BEHAVIOUR)
        if unknown:
            raise ValueError("unknown guest behaviour %s" % sorted(unknown))
        with self.txn():
            self.state["guests"].setdefault(name, {}).update(behaviour)

    def add_domain(self, node, name, uuid=None, xml=None, state=RUNNING, reason=RUNNING_BOOTED, **behaviour):
        """A domain already there (started by someone else, or by an agent run that was killed)."""
        uuid = uuid or str(uuidlib.uuid4())
        if xml is None:
            xml = minimal_xml(name, uuid)
        with self.txn():
            dom = self._new_domain(name, uuid, xml, behaviour)
            dom.update(state=state, reason=reason)
            self._node(node)["domains"][uuid] = dom
        return uuid

    def set_domain(self, node, ident, **changes):
        with self.txn():
            dom = self._find(node, ident)
            if dom is None:
                raise KeyError("no domain %s on %s" % (ident, node))
            dom.update(changes)

    def crash(self, node, ident):
        """The guest died under libvirt (QEMU killed, guest crashed with on_crash=destroy)."""
        with self.txn():
            dom = self._find(node, ident)
            if dom is None:
                raise KeyError("no domain %s on %s" % (ident, node))
            self.stop_domain(self._node(node), dom, SHUTOFF_CRASHED)

    def domain(self, node, ident):
        """A copy of the domain's record (by UUID or name), or None when ``node`` does not know it."""
        with self.txn():
            dom = self._find(node, ident)
            return json.loads(json.dumps(dom)) if dom is not None else None

    def domains(self, node):
        with self.txn():
            return sorted(d["name"] for d in self._node(node)["domains"].values())

    def calls(self, node=None, method=None):
        """(node, method, args) of every call made so far, oldest first."""
        with self.txn():
            return [tuple(c) for c in self.state["calls"]
                    if (node is None or c[0] == node) and (method is None or c[1] == method)]

    def methods(self, node=None):
        return [c[1] for c in self.calls(node)]

    def clear_calls(self):
        with self.txn():
            self.state["calls"] = []

    @property
    def error_handlers(self):
        with self.txn():
            return self.state["handlers"]

    # -- internals used by the module (called inside a transaction) --------------------------------------
    def _node(self, name):
        try:
            return self.state["nodes"][name]
        except KeyError:
            raise KeyError("no fake node %r (add_node it first)" % name) from None

    def _find(self, node, ident):
        domains = self._node(node)["domains"]
        if ident in domains:
            return domains[ident]
        for dom in domains.values():
            if dom["name"] == ident:
                return dom
        return None

    def _new_domain(self, name, uuid, xml, behaviour=None):
        dom = dict(DEFAULT_BEHAVIOUR)
        dom.update(self.state["guests"].get(name, {}))
        dom.update(behaviour or {})
        dom.update(name=name, uuid=uuid, xml=xml, state=RUNNING, reason=RUNNING_BOOTED, job=None,
                   poweroff_in=None, id=self.state["next_id"])
        self.state["next_id"] += 1
        return dom

    def record(self, node, method, args):
        self.state["calls"].append([node, method, _jsonable(list(args))])

    def resolve(self, uri):
        """The node a connection URI reaches: no host = the local node; else the node named by the host."""
        local = os.environ.get("PYRA_FAKE_LIBVIRT_NODE") or self.state["local"]
        if uri is None:
            uri = ""
        scheme, sep, rest = uri.partition("://")
        if not sep:
            raise FakeError(ERR_SYSTEM_ERROR, "no connection driver available for %s" % uri, FROM_RPC)
        host = rest.split("/", 1)[0].split("?", 1)[0]
        host = host.rpartition("@")[2]
        if host.startswith("["):
            host = host[1:].split("]", 1)[0]
        else:
            host = host.split(":", 1)[0]
        name = host or local
        if name not in self.state["nodes"]:
            if host:
                raise FakeError(ERR_SYSTEM_ERROR, "unable to connect to server at '%s:16509': Name or service "
                                "not known" % host, FROM_RPC)
            raise FakeError(ERR_SYSTEM_ERROR, "Failed to connect socket to '/var/run/libvirt/libvirt-sock': "
                            "No such file or directory", FROM_RPC)
        return self.state["nodes"][name]

    def stop_domain(self, node, dom, reason):
        """The domain stopped: a transient one vanishes, a persistent one stays defined, shut off."""
        dom["job"] = None
        dom["poweroff_in"] = None
        if dom["persistent"]:
            dom.update(state=SHUTOFF, reason=reason)
        else:
            node["domains"].pop(dom["uuid"], None)

    def tick(self, node, dom):
        """A guest that was asked to shut down finishes after ``shutdown_polls`` queries."""
        if dom.get("poweroff_in") is None:
            return
        if dom["poweroff_in"] <= 0:
            self.stop_domain(node, dom, SHUTOFF_SHUTDOWN)
        else:
            dom["poweroff_in"] -= 1


class _Txn:
    __slots__ = ("world",)

    def __init__(self, world):
        self.world = world

    def __enter__(self):
        self.world._enter()
        return self.world

    def __exit__(self, *exc):
        self.world._exit()
        return False


def minimal_xml(name, uuid, channel=True, vcpus=1, memory_kib=131072):
    ch = ("<channel type='unix'><target type='virtio' name='startup_signal'/></channel>" if channel else "")
    return ("<domain type='qemu'><name>%s</name><uuid>%s</uuid><memory unit='KiB'>%d</memory><vcpu>%d</vcpu>"
            "<os><type arch='x86_64' machine='pc'>hvm</type></os><devices>%s</devices></domain>"
            % (name, uuid, memory_kib, vcpus, ch))


def parse_identity(xml):
    """(name, uuid) of a domain XML, as virDomainCreateXML reads them; FakeError when it is not one."""
    try:
        root = ET.fromstring(xml)
    except ET.ParseError as err:
        raise FakeError(ERR_INTERNAL_ERROR, "XML error: %s" % err) from None
    if root.tag != "domain":
        raise FakeError(ERR_INTERNAL_ERROR, "XML error: unexpected root element <%s>" % root.tag)
    name = (root.findtext("name") or "").strip()
    if not name:
        raise FakeError(ERR_INTERNAL_ERROR, "XML error: missing domain name information")
    uuid = (root.findtext("uuid") or "").strip() or str(uuidlib.uuid4())
    return name, str(uuidlib.UUID(uuid))


def live_xml(dom):
    """The XML of a running domain: id attribute, and the startup_signal channel's socket path filled in."""
    root = ET.fromstring(dom["xml"])
    if dom["state"] != SHUTOFF:
        root.set("id", str(dom["id"]))
    devices = root.find("devices")
    for ch in (devices.findall("channel") if devices is not None else ()):
        target = ch.find("target")
        if ch.get("type") != "unix" or target is None or target.get("name") != "startup_signal":
            continue
        src = ch.find("source")
        if src is None:
            src = ET.Element("source", {"mode": "bind"})
            ch.insert(0, src)
        if not src.get("path"):
            src.set("path", dom["channel"] or "/run/libvirt/qemu/channel/%d-%s/org.pyra.startup_signal"
                    % (dom["id"], dom["name"]))
        target.set("state", "connected")
    return ET.tostring(root, encoding="unicode")

