"""A guest as ``pyra vm`` and ``pyra node`` find it: the TransientDomain resource (by resource id or by the domain
name in its config XML), its parsed parameters (the agent's schema: defaults apply), the node running it and
that node's libvirt URI by the agent's own rule (``migration.remote_uri``), and a bounded libvirt connection.
"""

from pyra.cli.main import CliError, NO_LIBVIRT, NOT_FOUND, NOT_PYRA, NOT_RUNNING

AGENT = "TransientDomain"
CONNECT_TIMEOUT = 10.0


def parse_params(rsc):
    """The resource's instance attributes through TransientDomain's schema (defaults applied, node-local
    checks such as 'the config file exists here' skipped)."""
    from pyra import agents
    values, _problems = agents.load(AGENT).schema.parse(dict(rsc.params), environmental=False)
    return values


def domain_config(rsc):
    """The DomainConfig of the resource's config file, or None when this node cannot read it."""
    from pyra.backends.libvirt_xml import DomainConfig, DomainXMLError
    path = rsc.params.get("config")
    if not path:
        return None
    try:
        return DomainConfig.from_file(path)
    except (OSError, DomainXMLError):
        return None


class Guest:
    """One TransientDomain resource and what is known of its domain."""

    def __init__(self, state, rsc):
        self.state = state
        self.rsc = rsc
        self.params = parse_params(rsc)
        self.config = domain_config(rsc)

    @property
    def domain(self):
        return self.config.name if self.config is not None else self.rsc.id

    @property
    def uuid(self):
        return self.config.uuid if self.config is not None else None

    @property
    def node(self):
        """The node running it now (the source while it migrates), or None."""
        if self.rsc.migrating and self.rsc.migrate_source:
            return self.rsc.migrate_source
        return self.rsc.nodes[0] if self.rsc.nodes else None

    def uri(self, node=None):
        from pyra.agents.transientdomain.migration import remote_uri
        return remote_uri(self.params, node or self.node)

    def require_running(self):
        if self.node is None:
            last = self.rsc.last_node
            where = "last ran on %s" % last if last else "no node has run it since the history was cleaned"
            raise CliError("%s (resource %s) is not running: %s; %s" % (self.domain, self.rsc.id, self.rsc.where(),
                                                                      where), NOT_RUNNING)
        return self.node

    def connect(self, deadline, uri=None):
        """An open Hypervisor on the guest's node; CliError 6 when libvirt there cannot be reached."""
        from pyra.backends import libvirt_api as api
        uri = uri or self.uri()
        hv = api.Hypervisor(uri, deadline)
        try:
            hv.open(timeout=CONNECT_TIMEOUT)
        except api.Unreachable as err:
            raise CliError("libvirt on %s cannot be reached: %s" % (self.node, err), NO_LIBVIRT) from None
        return hv

    def lookup(self, hv):
        """The running domain on hv; CliError 8 when libvirt there does not have it."""
        from pyra.backends import libvirt_api as api
        try:
            dom = hv.lookup(uuid=self.uuid) if self.uuid else hv.lookup(name=self.domain)
        except (api.LibvirtError, api.Unreachable) as err:
            raise CliError("libvirt on %s: %s" % (self.node, api.error_text(err)), NO_LIBVIRT) from None
        if dom is None:
            raise CliError("%s is not running on %s (libvirt there does not know it; the cluster says %s)"
                           % (self.domain, self.node, self.rsc.where()), NOT_RUNNING)
        return dom


def find(state, name):
    """The Guest called ``name`` (resource id, else domain name); CliError 3 / 4 when there is none."""
    rsc = state.resources.get(name)
    if rsc is not None:
        state.resource(name)  # raises NOT_PYRA for a non-pyra resource
        if rsc.agent != AGENT:
            raise CliError("%s is %s: pyra vm acts on ocf:pyra:%s resources only" % (name, rsc.agent_name, AGENT),
                           NOT_PYRA)
        return Guest(state, rsc)
    for rsc in state.pyra_resources():
        if rsc.agent == AGENT:
            cfg = domain_config(rsc)
            if cfg is not None and cfg.name == name:
                return Guest(state, rsc)
    raise CliError("no pyra guest %s: neither a resource id nor the domain name of a TransientDomain resource"
                   % name, NOT_FOUND)
