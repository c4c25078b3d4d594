"""A fake of the ``libvirt`` Python binding: the subset pyra uses, backed by a scriptable world of fake nodes.

Importable as the module ``libvirt`` without root, QEMU or libvirtd:

- in-process: load this package under the name ``libvirt`` (``importlib.util.spec_from_file_location("libvirt",
  ".../tests/fakes/libvirt/__init__.py", submodule_search_locations=[...])``) before ``pyra.backends.libvirt_api``
  is imported; the test scripts ``libvirt.fake_world()``;
- as a subprocess (``agents/TransientDomain``): ``PYTHONPATH=tests/fakes``, ``PYRA_FAKE_LIBVIRT_STATE=<json>``
  (the world shared with the test, see ``world.World(path)``) and ``PYRA_FAKE_LIBVIRT_NODE=<node>`` (the node
  this agent runs on).

It imports nothing that needs ``typing``: ``pyra.backends.libvirt_api`` imports it with a stub ``typing``.
Numeric constants are the real ones (``constants.py``). Errors are ``libvirtError`` with the real codes and
messages shaped like libvirt's. Every call is recorded in the world (``fake_world().calls()``). What the fake
does not model raises ``libvirtError`` with ``VIR_ERR_NO_SUPPORT``.
"""

import os
import time

from . import world as _w
from . import constants as _constants
from .constants import (VIR_DOMAIN_JOB_NONE, VIR_DOMAIN_JOB_OPERATION_MIGRATION_OUT, VIR_DOMAIN_JOB_UNBOUNDED,
                        VIR_DOMAIN_PAUSED, VIR_DOMAIN_RUNNING, VIR_DOMAIN_RUNNING_MIGRATED, VIR_DOMAIN_SHUTDOWN,
                        VIR_DOMAIN_SHUTDOWN_USER, VIR_DOMAIN_SHUTOFF,
                        VIR_DOMAIN_SHUTOFF_DESTROYED, VIR_DOMAIN_SHUTOFF_MIGRATED, VIR_DOMAIN_START_AUTODESTROY,
                        VIR_DOMAIN_XML_INACTIVE, VIR_ERR_AGENT_UNRESPONSIVE, VIR_ERR_ERROR, VIR_ERR_INVALID_CONN,
                        VIR_ERR_NO_DOMAIN, VIR_ERR_NO_NETWORK, VIR_ERR_NO_SUPPORT, VIR_ERR_OPERATION_ABORTED,
                        VIR_ERR_OPERATION_FAILED, VIR_ERR_OPERATION_INVALID, VIR_ERR_SYSTEM_ERROR, VIR_FROM_NETWORK,
                        VIR_FROM_NONE, VIR_FROM_RPC, VIR_MIGRATE_PARAM_DEST_NAME, VIR_MIGRATE_PEER2PEER,
                        VIR_MIGRATE_PERSIST_DEST, VIR_MIGRATE_POSTCOPY)

# every VIR_* name of the real binding, as module attributes (what ``import libvirt`` offers)
globals().update({_k: _v for _k, _v in vars(_constants).items() if _k.startswith("VIR_")})

FAKE = True  # lets a test (or a curious agent run) tell this module from the real binding

_WORLD = _w.World(os.environ.get("PYRA_FAKE_LIBVIRT_STATE") or None)
_handlers = []


def fake_world():
    """The world this module runs against (scripted by the test)."""
    return _WORLD


def fake_use_world(world):
    """Run against ``world`` from now on (e.g. a file-backed one); returns it."""
    global _WORLD
    _WORLD = world
    return world


class libvirtError(Exception):  # noqa: N801 - the binding's name
    """As the binding's: ``str()`` is the message, ``err`` the (code, domain, message, level, ...) tuple."""

    def __init__(self, defmsg, *_ignored, code=None, domain=VIR_FROM_NONE):
        Exception.__init__(self, defmsg)
        self.err = None if code is None else (code, domain, defmsg, VIR_ERR_ERROR, defmsg, None, None, 0, 0)

    def get_error_code(self):
        return None if self.err is None else self.err[0]

    def get_error_domain(self):
        return None if self.err is None else self.err[1]

    def get_error_message(self):
        return None if self.err is None else self.err[2]

    def get_error_level(self):
        return None if self.err is None else self.err[3]

    def get_str1(self):
        return None if self.err is None else self.err[4]

    def get_str2(self):
        return None

    def get_str3(self):
        return None

    def get_int1(self):
        return None if self.err is None else self.err[7]

    def get_int2(self):
        return None if self.err is None else self.err[8]


def _raise(err):
    raise libvirtError(err.message, code=err.code, domain=err.domain) from None


def registerErrorHandler(f, ctx):  # noqa: N802
    """Recorded (``fake_world().error_handlers``); the fake never prints errors anyway."""
    _handlers.append((f, ctx))
    with _WORLD.txn() as w:
        w.state["handlers"] += 1
    return 1


def open(name=None):  # noqa: A001 - the binding's name
    W = _WORLD
    try:
        with W.txn():
            gen = W.state["generation"]
            local = os.environ.get("PYRA_FAKE_LIBVIRT_NODE") or W.state["local"]
            W.record(local if not _host(name) else _host(name), "open", [name])
            node = W.resolve(name)
            _maybe_hang(W, node["name"], "open", gen)
            node = W.state["nodes"][node["name"]]
            if node["refuse"]:
                raise _w.FakeError(VIR_ERR_SYSTEM_ERROR, "Failed to connect socket to "
                                   "'/var/run/libvirt/libvirt-sock': Connection refused", VIR_FROM_RPC)
            return virConnect(W, node["name"], name, gen)
    except _w.FakeError as err:
        _raise(err)


def openReadOnly(name=None):  # noqa: N802
    return open(name)


def _host(uri):
    rest = (uri or "").partition("://")[2]
    return rest.split("/", 1)[0].rpartition("@")[2].split(":", 1)[0]


def _maybe_hang(W, node_name, method, gen):
    def released():
        hang = W.state["nodes"][node_name]["hang"]
        return not hang or (hang is not True and method not in hang)
    W.wait_until(released, gen)


class _Handle:
    """What connections and domains share: every method is one recorded transaction on its node."""

    def _begin(self, W, method, args):
        """Inside a transaction: checks (reset, closed, hung, refused) and the record. Returns the node."""
        conn = self._conn
        if W.state["generation"] != conn._gen:
            raise _w.Reset()
        W.record(conn._node, method, args)
        if conn._closed:
            raise _w.FakeError(VIR_ERR_INVALID_CONN, "invalid connection pointer in %s" % method, VIR_FROM_NONE)
        _maybe_hang(W, conn._node, method, conn._gen)
        node = W.state["nodes"][conn._node]
        if node["refuse"]:
            raise _w.FakeError(VIR_ERR_SYSTEM_ERROR, "Cannot recv data: Connection reset by peer", VIR_FROM_RPC)
        return node


class virConnect(_Handle):  # noqa: N801
    def __init__(self, world, node, uri, gen):
        self._world = world
        self._node = node
        self._uri = uri
        self._gen = gen
        self._closed = False
        self._conn = self

    def _do(self, method, args, fn):
        try:
            with self._world.txn() as W:
                node = self._begin(W, method, args)
                return fn(W, node)
        except _w.FakeError as err:
            _raise(err)

    def getURI(self):  # noqa: N802
        return self._do("getURI", [], lambda W, node: self._uri or "qemu:///system")

    def getHostname(self):  # noqa: N802
        return self._do("getHostname", [], lambda W, node: node["name"])

    def close(self):
        def do(W, node):
            self._closed = True
            return 0
        return self._do("close", [], do)

    def isAlive(self):  # noqa: N802
        return self._do("isAlive", [], lambda W, node: 1)

    def lookupByUUIDString(self, uuidstr):  # noqa: N802
        def do(W, node):
            dom = node["domains"].get(str(uuidstr).lower())
            if dom is None:
                raise _w.FakeError(VIR_ERR_NO_DOMAIN, "Domain not found: no domain with matching uuid '%s'"
                                   % uuidstr)
            return virDomain(self, dom["uuid"])
        return self._do("lookupByUUIDString", [uuidstr], do)

    def lookupByName(self, name):  # noqa: N802
        def do(W, node):
            for dom in node["domains"].values():
                if dom["name"] == name:
                    return virDomain(self, dom["uuid"])
            raise _w.FakeError(VIR_ERR_NO_DOMAIN, "Domain not found: no domain with matching name '%s'" % name)
        return self._do("lookupByName", [name], do)

    def createXML(self, xmlDesc, flags=0):  # noqa: N802,N803
        def do(W, node):
            if node["create_error"]:
                raise _w.FakeError(VIR_ERR_OPERATION_FAILED, node["create_error"])
            name, uuid = _w.parse_identity(xmlDesc)
            for dom in node["domains"].values():
                if dom["uuid"] == uuid and dom["state"] != VIR_DOMAIN_SHUTOFF:
                    raise _w.FakeError(VIR_ERR_OPERATION_INVALID, "Requested operation is not valid: domain "
                                       "'%s' is already active" % dom["name"])
                if dom["name"] == name and dom["uuid"] != uuid:
                    raise _w.FakeError(VIR_ERR_OPERATION_FAILED, "operation failed: domain '%s' already "
                                       "exists with uuid %s" % (name, dom["uuid"]))
            dom = W._new_domain(name, uuid, xmlDesc)
            dom["persistent"] = False
            dom["autodestroy"] = bool(flags & VIR_DOMAIN_START_AUTODESTROY)
            node["domains"][uuid] = dom
            return virDomain(self, uuid)
        return self._do("createXML", [xmlDesc, flags], do)

    def listAllDomains(self, flags=0):  # noqa: N802
        return self._do("listAllDomains", [flags],
                        lambda W, node: [virDomain(self, u) for u in sorted(node["domains"])])

    def networkLookupByName(self, name):  # noqa: N802
        def do(W, node):
            if name not in node["networks"]:
                raise _w.FakeError(VIR_ERR_NO_NETWORK, "Network not found: no network with matching name '%s'"
                                   % name, VIR_FROM_NETWORK)
            return virNetwork(self, name)
        return self._do("networkLookupByName", [name], do)

    def getCapabilities(self):  # noqa: N802
        return self._do("getCapabilities", [], lambda W, node: (
            "<capabilities><host><uuid>%s</uuid><cpu><arch>x86_64</arch></cpu></host>"
            "<guest><os_type>hvm</os_type><arch name='x86_64'><domain type='qemu'/></arch></guest>"
            "</capabilities>" % node["host_uuid"]))

    def getInfo(self):  # noqa: N802
        return self._do("getInfo", [], lambda W, node: list(node["info"]))

    def __getattr__(self, name):
        if name.startswith("_"):
            raise AttributeError(name)
        return _unsupported("virConnect." + name)


class virNetwork(_Handle):  # noqa: N801
    def __init__(self, conn, name):
        self._conn = conn
        self._name = name

    def name(self):
        return self._name

    def isActive(self):  # noqa: N802
        return self._conn._do("network.isActive", [self._name],
                              lambda W, node: 1 if node["networks"].get(self._name) else 0)


def _unsupported(what):
    def call(*_args, **_kwargs):
        raise libvirtError("this function is not supported by the connection driver: %s (pyra's fake libvirt)"
                           % what, code=VIR_ERR_NO_SUPPORT)
    return call


class virDomain(_Handle):  # noqa: N801
    def __init__(self, conn, uuid):
        self._conn = conn
        self._uuid = uuid

    def connect(self):
        return self._conn

    def _do(self, method, args, fn, tick=True):
        """``fn(W, node, dom)`` on the live domain record; VIR_ERR_NO_DOMAIN when it is gone."""
        try:
            with self._conn._world.txn() as W:
                node = self._begin(W, method, args)
                dom = node["domains"].get(self._uuid)
                if dom is not None and tick:
                    W.tick(node, dom)
                    dom = node["domains"].get(self._uuid)
                if dom is None:
                    raise _w.FakeError(VIR_ERR_NO_DOMAIN, "Domain not found: no domain with matching uuid '%s'"
                                       % self._uuid)
                return fn(W, node, dom)
        except _w.FakeError as err:
            _raise(err)

    def UUIDString(self):  # noqa: N802
        return self._do("UUIDString", [], lambda W, node, dom: dom["uuid"], tick=False)

    def name(self):
        return self._do("name", [], lambda W, node, dom: dom["name"], tick=False)

    def ID(self):  # noqa: N802
        return self._do("ID", [], lambda W, node, dom: dom["id"] if dom["state"] != VIR_DOMAIN_SHUTOFF else -1)

    def state(self, flags=0):
        return self._do("state", [flags], lambda W, node, dom: [dom["state"], dom["reason"]])

    def info(self):
        return self._do("info", [], lambda W, node, dom: [dom["state"], 131072, 131072, 1, 0])

    def isActive(self):  # noqa: N802
        return self._do("isActive", [], lambda W, node, dom: 0 if dom["state"] == VIR_DOMAIN_SHUTOFF else 1)

    def isPersistent(self):  # noqa: N802
        return self._do("isPersistent", [], lambda W, node, dom: 1 if dom["persistent"] else 0, tick=False)

    def XMLDesc(self, flags=0):  # noqa: N802
        def do(W, node, dom):
            return dom["xml"] if flags & VIR_DOMAIN_XML_INACTIVE else _w.live_xml(dom)
        return self._do("XMLDesc", [flags], do)

    def shutdown(self):
        return self._shutdown("shutdown", 0)

    def shutdownFlags(self, flags=0):  # noqa: N802
        return self._shutdown("shutdownFlags", flags)

    def _shutdown(self, method, flags):
        def do(W, node, dom):
            if dom["state"] == VIR_DOMAIN_SHUTOFF:
                raise _w.FakeError(VIR_ERR_OPERATION_INVALID, "Requested operation is not valid: domain is not "
                                   "running")
            if dom["on_shutdown"] == "refuse":
                raise _w.FakeError(VIR_ERR_AGENT_UNRESPONSIVE, "Guest agent is not responding: QEMU guest agent "
                                   "is not connected")
            if dom["on_shutdown"] == "poweroff" and dom["state"] != VIR_DOMAIN_PAUSED:
                dom["state"], dom["reason"] = VIR_DOMAIN_SHUTDOWN, VIR_DOMAIN_SHUTDOWN_USER
                dom["poweroff_in"] = max(0, int(dom["shutdown_polls"]))
            return 0
        return self._do(method, [flags], do)

    def destroy(self):
        return self.destroyFlags(0)

    def destroyFlags(self, flags=0):  # noqa: N802
        def do(W, node, dom):
            if dom["state"] == VIR_DOMAIN_SHUTOFF:
                raise _w.FakeError(VIR_ERR_OPERATION_INVALID, "Requested operation is not valid: domain is not "
                                   "running")
            if dom["on_destroy"] == "fail":
                raise _w.FakeError(VIR_ERR_SYSTEM_ERROR, "Failed to terminate process 4242 with SIGKILL: Device "
                                   "or resource busy")
            if dom["on_destroy"] != "ignore":
                W.stop_domain(node, dom, VIR_DOMAIN_SHUTOFF_DESTROYED)
            return 0
        return self._do("destroy" if not flags else "destroyFlags", [flags] if flags else [], do, tick=False)

    # -- migration -----------------------------------------------------------------------------------
    def migrateToURI3(self, dconnuri, params, flags=0):  # noqa: N802
        def target(W):
            return W.resolve(dconnuri)["name"]
        if not flags & VIR_MIGRATE_PEER2PEER:
            raise libvirtError("Requested operation is not valid: migrateToURI3 needs VIR_MIGRATE_PEER2PEER with "
                               "a destination URI (pyra's fake)", code=VIR_ERR_OPERATION_INVALID)
        self._migrate("migrateToURI3", [dconnuri, dict(params or {}), flags], target, params, flags)
        return 0

    def migrate3(self, dconn, params, flags=0):
        if not isinstance(dconn, virConnect):
            raise libvirtError("invalid connection pointer in virDomainMigrate3", code=VIR_ERR_INVALID_CONN)
        uuid = self._migrate("migrate3", [dconn._uri, dict(params or {}), flags], lambda W: dconn._node,
                             params, flags)
        return virDomain(dconn, uuid)

    def _migrate(self, method, args, target_of, params, flags):
        conn = self._conn
        src_name = conn._node
        uuid = self._uuid
        params = dict(params or {})
        try:
            with conn._world.txn() as W:
                gen = conn._gen
                self._begin(W, method, args)
                dst_name = target_of(W)
                dom = self._live(W, src_name)
                if dst_name == src_name:
                    raise _w.FakeError(VIR_ERR_OPERATION_INVALID, "Requested operation is not valid: "
                                       "Attempt to migrate guest to the same host %s" % src_name)
                if W.state["nodes"][dst_name]["refuse"]:
                    raise _w.FakeError(VIR_ERR_SYSTEM_ERROR, "unable to connect to server at '%s:16509': "
                                       "Connection refused" % dst_name, VIR_FROM_RPC)
                if dom["job"]:
                    raise _w.FakeError(VIR_ERR_OPERATION_INVALID, "Requested operation is not valid: another "
                                       "migration job is already running for domain '%s'" % dom["name"])
                behaviour = dom["migration"]
                if behaviour == "fail":
                    raise _w.FakeError(VIR_ERR_OPERATION_FAILED, dom["migration_error"])
                if behaviour == "stall":
                    dom["job"] = {"started": time.time(), "aborted": False, "postcopy": False, "iteration": 0,
                                  "flags": flags}

                    def job():
                        d = W.state["nodes"][src_name]["domains"].get(uuid)
                        return d["job"] if d is not None else None

                    def over():
                        j = job()
                        return j is None or j["aborted"] or (j["postcopy"] and
                                                             W.state["nodes"][src_name]["domains"][uuid]
                                                             ["postcopy_completes"])
                    W.wait_until(over, gen)
                    dom = self._live(W, src_name)
                    j, dom["job"] = dom["job"], None
                    if j is None or j["aborted"]:
                        raise _w.FakeError(VIR_ERR_OPERATION_ABORTED, "operation aborted: migration out job: "
                                           "canceled by client")
                return self._arrive(W, src_name, dst_name, dom, params, flags)
        except _w.FakeError as err:
            _raise(err)

    def _live(self, W, node_name):
        dom = W.state["nodes"][node_name]["domains"].get(self._uuid)
        if dom is None or dom["state"] == VIR_DOMAIN_SHUTOFF:
            raise _w.FakeError(VIR_ERR_OPERATION_INVALID, "Requested operation is not valid: domain is not "
                               "running")
        return dom

    @staticmethod
    def _arrive(W, src_name, dst_name, dom, params, flags):
        dst = W.state["nodes"][dst_name]
        name = params.get(VIR_MIGRATE_PARAM_DEST_NAME) or dom["name"]
        for other in dst["domains"].values():
            if other["uuid"] == dom["uuid"] or other["name"] == name:
                raise _w.FakeError(VIR_ERR_OPERATION_FAILED, "operation failed: domain '%s' already exists with "
                                   "uuid %s" % (name, other["uuid"]))
        moved = dict(dom)
        moved.update(name=name, state=VIR_DOMAIN_RUNNING, reason=VIR_DOMAIN_RUNNING_MIGRATED, job=None,
                     poweroff_in=None, id=W.state["next_id"], persistent=bool(flags & VIR_MIGRATE_PERSIST_DEST), migrated_from=src_name)
        W.state["next_id"] += 1
        dst["domains"][dom["uuid"]] = moved
        W.stop_domain(W.state["nodes"][src_name], dom, VIR_DOMAIN_SHUTOFF_MIGRATED)
        return dom["uuid"]

    def _job_call(self, method, args, fn):
        def do(W, node, dom):
            if not dom["job"]:
                raise _w.FakeError(VIR_ERR_OPERATION_INVALID, "Requested operation is not valid: no job is "
                                   "active on the domain")
            return fn(dom["job"])
        return self._do(method, args, do)

    def abortJob(self):  # noqa: N802
        def abort(job):
            job["aborted"] = True
            return 0
        return self._job_call("abortJob", [], abort)

    def migrateSetMaxDowntime(self, downtime, flags=0):  # noqa: N802
        def set_downtime(job):
            job["downtime"] = downtime
            return 0
        return self._job_call("migrateSetMaxDowntime", [downtime, flags], set_downtime)

    def migrateStartPostCopy(self, flags=0):  # noqa: N802
        def postcopy(job):
            if not job["flags"] & VIR_MIGRATE_POSTCOPY:
                raise _w.FakeError(VIR_ERR_OPERATION_INVALID, "Requested operation is not valid: switching to "
                                   "post-copy requires migration to be started with VIR_MIGRATE_POSTCOPY flag")
            job["postcopy"] = True
            return 0
        return self._job_call("migrateStartPostCopy", [flags], postcopy)

    def jobStats(self, flags=0):  # noqa: N802
        def do(W, node, dom):
            job = dom["job"]
            if not job:
                return {"type": VIR_DOMAIN_JOB_NONE}
            job["iteration"] += 1
            sent = job["iteration"] * (64 << 20)
            return {"type": VIR_DOMAIN_JOB_UNBOUNDED, "operation": VIR_DOMAIN_JOB_OPERATION_MIGRATION_OUT,
                    "time_elapsed": int((time.time() - job["started"]) * 1000), "data_processed": sent,
                    "data_remaining": 96 << 20, "data_total": sent + (96 << 20),
                    "memory_iteration": job["iteration"]}
        return self._do("jobStats", [flags], do)

    def __getattr__(self, name):
        if name.startswith("_"):
            raise AttributeError(name)
        return _unsupported("virDomain." + name)

    def __repr__(self):
        return "<fake virDomain %s on %s>" % (self._uuid, self._conn._node)

