"""The cluster as ``pyra`` sees it: the CIB (``cibadmin -Q``) and the status (``crm_mon --output-as=xml``), read
once, in two spawns, and turned into one model of nodes and resources.

Only XML that Pacemaker 2.1 and 3.0 both write is relied on: the CIB's ``primitive``/``group``/``clone``
elements with their ``instance_attributes``/``meta_attributes``/``utilization`` nvpairs, the status section's
``lrm_rsc_op`` records (``operation``, ``on_node``, ``rc-code``, ``last-rc-change``, ``exit-reason``), and
crm_mon's ``nodes/node``, ``resources//resource`` (``role``, ``active``, ``failed``, ``pending``, ``node``
children) and ``failures/failure`` (``op_key``, ``node``, ``exitreason``; the task/op_key spelling of 3.0 too).
"""

import html
import xml.etree.ElementTree as ET

from pyra.cli.main import CliError, NO_CLUSTER, NOT_FOUND, NOT_PYRA

CIB_TIMEOUT = 20.0


class Node:
    __slots__ = ("name", "online", "standby", "maintenance", "is_dc", "resources_running")

    def __init__(self, name, online=False, standby=False, maintenance=False, is_dc=False, resources_running=0):
        self.name, self.online, self.standby, self.maintenance = name, online, standby, maintenance
        self.is_dc, self.resources_running = is_dc, resources_running

    def state(self):
        if not self.online:
            return "offline"
        if self.maintenance:
            return "maintenance"
        if self.standby:
            return "standby"
        return "online"


class Failure:
    __slots__ = ("node", "task", "reason", "status", "rc")

    def __init__(self, node, task, reason, status, rc):
        self.node, self.task, self.reason, self.status, self.rc = node, task, reason, status, rc

    def text(self):
        what = "%s on %s" % (self.task or "operation", self.node or "?")
        detail = self.reason or self.status or ""
        return "%s: %s" % (what, detail) if detail else what

    def as_dict(self):
        return {"node": self.node, "operation": self.task, "reason": self.reason, "status": self.status,
                "rc": self.rc}


class Resource:
    """A primitive of the CIB with what the status says of it."""

    def __init__(self, rid, standard, provider, agent, params, meta, utilization, group=None, clone=None):
        self.id = rid
        self.standard, self.provider, self.agent = standard, provider, agent
        self.params, self.meta, self.utilization = params, meta, utilization
        self.group, self.clone = group, clone
        self.group_meta = {}
        # from crm_mon
        self.role = "Stopped"
        self.nodes = []
        self.failed = False
        self.pending = None
        self.managed = True
        self.failures = []
        # from the status section
        self.migrate_target = None
        self.migrate_source = None
        self.migrate_pending = False
        self.last_node = None

    @property
    def agent_name(self):
        if self.provider:
            return "%s:%s:%s" % (self.standard, self.provider, self.agent)
        return "%s:%s" % (self.standard, self.agent)

    @property
    def is_pyra(self):
        return self.standard == "ocf" and self.provider == "pyra"

    @property
    def target_role(self):
        """The effective target-role: the primitive's own, else its group's, else Started."""
        return self.meta.get("target-role") or self.group_meta.get("target-role") or "Started"

    @property
    def allow_migrate(self):
        return _true(self.meta.get("allow-migrate", self.group_meta.get("allow-migrate", "false")))

    @property
    def active(self):
        return bool(self.nodes)

    @property
    def migrating(self):
        """crm_mon 2.1 says role="Migrating"; a pending migrate_to in the status section says it too."""
        return (self.role == "Migrating" or bool(self.pending and self.pending.lower().startswith("migrat"))
                or self.migrate_pending)

    def where(self):
        """Where it runs, in words: a node, 'n1→n2' while migrating, 'Stopped', 'FAILED (reason)'."""
        if self.migrating:
            if self.migrate_source and self.migrate_target:
                return "migrating %s->%s" % (self.migrate_source, self.migrate_target)
            # crm_mon says Migrating while no pending operation names both ends (between migrate_to,
            # migrate_from and the source's stop): say where it is seen
            return "migrating (on %s)" % (",".join(self.nodes) or "?")
        if self.failed:
            return "FAILED on %s%s" % (",".join(self.nodes) or "?", self._reason())
        if self.nodes:
            text = ",".join(self.nodes)
            if self.pending:
                text += " (%s)" % self.pending.lower()
            return text
        if self.failures:
            return "FAILED%s" % self._reason()
        return "Stopped (%s)" % self.pending.lower() if self.pending else "Stopped"

    def _reason(self):
        for failure in self.failures:
            if failure.reason:
                return ": " + failure.reason
        return ""

    def as_dict(self):
        return {"resource": self.id, "agent": self.agent_name, "where": self.where(), "nodes": list(self.nodes),
                "role": self.role, "target_role": self.target_role, "failed": self.failed or bool(self.failures),
                "pending": self.pending, "migrating": ({"from": self.migrate_source or (self.nodes[0] if self.nodes
                                                                                       else None),
                                                        "to": self.migrate_target} if self.migrating else None),
                "memory": self.utilization.get("memory"), "cpu": self.utilization.get("cpu"),
                "group": self.group, "managed": self.managed, "allow_migrate": self.allow_migrate,
                "failures": [f.as_dict() for f in self.failures], "last_node": self.last_node}


def nvpairs(parent, tag):
    """The name -> value pairs of the ``tag`` blocks (instance_attributes, meta_attributes...) of ``parent``."""
    out = {}
    if parent is None:
        return out
    for block in parent.findall(tag):
        for nv in block.iter("nvpair"):
            if nv.get("name") is not None and nv.get("name") not in out:
                out[nv.get("name")] = nv.get("value", "")
    return out


def _true(value):
    """A Pacemaker boolean (true/yes/on/1/y, any case), by the schema's own parser; anything else is false."""
    from pyra.ocf.params import parse_boolean
    try:
        return parse_boolean(value or "")
    except ValueError:
        return False


class ClusterState:
    """Nodes, resources (CIB order) and cluster properties, from one CIB and one crm_mon document."""

    def __init__(self, cib_text, mon_text):
        try:
            cib = ET.fromstring(cib_text)
        except ET.ParseError as err:
            raise CliError("cibadmin -Q gave no readable CIB: %s" % err, NO_CLUSTER) from None
        try:
            mon = ET.fromstring(mon_text)
        except ET.ParseError as err:
            raise CliError("crm_mon gave no readable XML: %s" % err, NO_CLUSTER) from None
        self.properties = {}
        crm_config = cib.find("configuration/crm_config")
        if crm_config is not None:
            self.properties = nvpairs(crm_config, "cluster_property_set")
        self.moves = {}  # resource -> node of its cli-prefer-* constraint (where crm_resource --move sends it)
        for el in cib.iterfind("configuration/constraints/rsc_location"):
            if not (el.get("id") or "").startswith("cli-prefer-") or not el.get("rsc"):
                continue
            node = el.get("node")  # with --lifetime the node is in a rule: #uname eq NODE
            for expr in el.iterfind("rule/expression"):
                if expr.get("attribute") == "#uname" and expr.get("operation") == "eq":
                    node = node or expr.get("value")
            if node:
                self.moves[el.get("rsc")] = node
        self.resources = {}
        resources = cib.find("configuration/resources")
        if resources is not None:
            self._read_resources(resources)
        self.nodes = {}
        for el in mon.iterfind("nodes/node"):
            if el.get("type", "member") != "member":
                continue
            self.nodes[el.get("name")] = Node(
                el.get("name"), _true(el.get("online")), _true(el.get("standby")), _true(el.get("maintenance")),
                _true(el.get("is_dc")), int(el.get("resources_running") or 0))
        self._read_mon(mon)
        self._read_history(cib.find("status"))

    # -- the CIB -------------------------------------------------------------------------------------------
    def _read_resources(self, parent, group=None, clone=None, group_meta=None):
        for el in parent:
            if el.tag == "primitive":
                rsc = Resource(el.get("id"), el.get("class"), el.get("provider"), el.get("type"),
                               nvpairs(el, "instance_attributes"), nvpairs(el, "meta_attributes"),
                               nvpairs(el, "utilization"), group, clone)
                rsc.group_meta = dict(group_meta or {})
                self.resources[rsc.id] = rsc
            elif el.tag == "group":
                meta = dict(group_meta or {})
                meta.update(nvpairs(el, "meta_attributes"))
                self._read_resources(el, el.get("id"), clone, meta)
            elif el.tag in ("clone", "master", "bundle"):
                self._read_resources(el, group, el.get("id"), nvpairs(el, "meta_attributes"))

    # -- crm_mon -------------------------------------------------------------------------------------------
    def _read_mon(self, mon):
        for el in mon.iterfind(".//resources//resource"):
            rsc = self.resources.get(el.get("id"))
            if rsc is None or rsc.clone:
                continue
            rsc.role = el.get("role") or rsc.role
            rsc.failed = _true(el.get("failed"))
            rsc.managed = el.get("managed", "true") != "false"
            rsc.pending = el.get("pending") or None
            rsc.nodes = [n.get("name") for n in el.iterfind("node")] if _true(el.get("active")) else []
        for el in mon.iterfind("failures/failure"):
            key = el.get("op_key") or ""
            task = el.get("task")
            rid = None
            for candidate in self.resources:  # op_key is <rsc>_<task>_<interval>: the longest id that fits
                if key.startswith(candidate + "_") and (rid is None or len(candidate) > len(rid)):
                    rid = candidate
            if rid is None:
                continue
            if not task:
                task = key[len(rid) + 1:].rsplit("_", 1)[0]
            # 2.1 escapes the exit reason twice (&amp;apos;): undo the second one
            reason = html.unescape(el.get("exitreason") or "") or None
            self.resources[rid].failures.append(Failure(
                el.get("node"), task, reason, el.get("exitstatus") or el.get("status"),
                el.get("exitcode")))

    # -- the status section --------------------------------------------------------------------------------
    def _read_history(self, status):
        if status is None:
            return
        last = {}  # resource -> (last-rc-change, node) of its last start/migrate_from/stop that completed
        for state in status.iterfind("node_state"):
            uname = state.get("uname")
            for lrm_rsc in state.iterfind("lrm/lrm_resources/lrm_resource"):
                rsc = self.resources.get(lrm_rsc.get("id"))
                if rsc is None:
                    continue
                for op in lrm_rsc.iterfind("lrm_rsc_op"):
                    task = op.get("operation")
                    node = op.get("on_node") or uname
                    pending = op.get("op-status") == "-1" or op.get("call-id") == "-1"
                    if task in ("migrate_to", "migrate_from") and pending:
                        rsc.migrate_source = op.get("migrate_source") or (node if task == "migrate_to" else None)
                        rsc.migrate_target = op.get("migrate_target") or (node if task == "migrate_from"
                                                                          else rsc.migrate_target)
                        rsc.migrate_pending = True
                    if task in ("start", "migrate_from", "stop", "migrate_to") and not pending \
                            and op.get("rc-code") == "0":
                        when = int(op.get("last-rc-change") or op.get("last-run") or 0)
                        if when >= last.get(rsc.id, (-1, None))[0]:
                            last[rsc.id] = (when, node)
        for rid, (_, node) in last.items():
            self.resources[rid].last_node = node
        for rsc in self.resources.values():
            if rsc.migrating and not rsc.migrate_target:
                rsc.migrate_target = self.moves.get(rsc.id)

    # -- queries -------------------------------------------------------------------------------------------
    def pyra_resources(self):
        return [r for r in self.resources.values() if r.is_pyra]

    def migration_limit(self):
        """The cluster's migration-limit (-1: unlimited)."""
        try:
            return int(self.properties.get("migration-limit", "-1"))
        except ValueError:
            return -1

    def resource(self, rid, kind=None):
        """The pyra resource ``rid``: CliError 3 when the cluster has none, 4 when it is not a pyra one (or
        not of agent ``kind``)."""
        rsc = self.resources.get(rid)
        if rsc is None:
            raise CliError("no resource %s in the cluster" % rid, NOT_FOUND)
        if not rsc.is_pyra:
            raise CliError("%s is %s: pyra acts only on pyra resources (ocf:pyra:*)" % (rid, rsc.agent_name),
                           NOT_PYRA)
        if kind and rsc.agent != kind:
            raise CliError("%s is %s: this works on ocf:pyra:%s resources only" % (rid, rsc.agent_name, kind),
                           NOT_PYRA)
        return rsc


def parse(cib_text, mon_text):
    """The model from recorded texts (tests, and ``load``)."""
    return ClusterState(cib_text, mon_text)


def query(run, timeout=CIB_TIMEOUT):
    """(cib_text, mon_text): ``cibadmin -Q`` and ``crm_mon --output-as=xml``; CliError 5 when either fails."""
    from pyra.host.command import HostError
    texts = []
    for argv in (["cibadmin", "-Q"], ["crm_mon", "--output-as=xml"]):
        try:
            result = run(argv, timeout=timeout)
        except HostError as err:
            raise CliError("the cluster cannot be reached: %s" % err, NO_CLUSTER) from None
        if not result.ok or not result.stdout.strip():
            raise CliError("the cluster cannot be reached: %s" % result.summary(), NO_CLUSTER)
        texts.append(result.stdout)
    return tuple(texts)


def load(run=None, timeout=CIB_TIMEOUT):
    """The current model: two spawns (cibadmin, crm_mon), through pyra.host.command.run with timeouts."""
    if run is None:
        from pyra.host.command import run
    cib, mon = query(run, timeout)
    return parse(cib, mon)
