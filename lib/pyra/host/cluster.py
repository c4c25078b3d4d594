"""Pacemaker's command-line tools, for the few things an agent tells the cluster.

The local node name, the nodes known to be up (partition members and connected remote nodes), and utilization
attributes. Every call is bounded by the operation's deadline (pass ``op.run`` as ``run``). Utilization is
written only when it changed: the caller keeps the last written values in its state record, so a monitor never
spawns ``crm_resource`` (VirtualDomain does up to six times).
"""

import os


def local_node_name(run, environ=None):
    """This node's cluster name: ``OCF_RESKEY_CRM_meta_on_node`` when Pacemaker passed it, else ``crm_node -n``,
    else the kernel's host name."""
    environ = os.environ if environ is None else environ
    name = environ.get("OCF_RESKEY_CRM_meta_on_node")
    if name:
        return name
    result = run(["crm_node", "-n"], timeout=5)
    if result.ok and result.stdout.strip():
        return result.stdout.strip()
    return os.uname().nodename


def online_members(run, timeout=10):
    """Names of the nodes that are, or may still be, up as this node's partition sees them, or None when that
    cannot be known (no cluster, a tool failed or timed out): callers must then assume nobody is known to be
    down.

    That is the corosync members of the partition (``crm_node -p``) plus the Pacemaker Remote and guest nodes
    the cluster has connected or has not fenced yet (``crm_mon``: online or unclean). A remote node is never a
    corosync member: without the second part an agent on a remote node would not find itself among the
    members, and one on a full node would take over from a remote node that still runs."""
    result = run(["crm_node", "-p"], timeout=timeout)
    if not result.ok:
        return None
    remotes = remote_nodes_up(run, timeout)
    if remotes is None:
        return None
    return set(result.stdout.split()) | remotes


def remote_nodes_up(run, timeout=10):
    """Remote and guest nodes that crm_mon shows online or unclean (not yet fenced), or None when crm_mon
    failed or said something unreadable."""
    import xml.etree.ElementTree as ET
    result = run(["crm_mon", "--one-shot", "--output-as=xml"], timeout=timeout)
    if not result.ok:
        return None
    try:
        nodes = ET.fromstring(result.stdout).find("nodes")
    except ET.ParseError:
        return None
    if nodes is None:
        return None
    return {n.get("name") for n in nodes.iter("node") if n.get("type") in ("remote", "guest")
            and "true" in (n.get("online"), n.get("unclean"))}


def set_utilization(run, resource, values, previous=None, log=None):
    """Set the resource's utilization attributes that differ from ``previous``.

    ``values``/``previous``: dicts name -> str. Returns the dict now in effect (for the state record).
    Failures are logged, never raised: utilization is advisory and must not fail a start.
    """
    previous = previous or {}
    effective = dict(previous)
    for name, value in values.items():
        if previous.get(name) == str(value):
            continue
        result = run(["crm_resource", "--resource", resource, "--utilization", "--set-parameter", name,
                      "--parameter-value", str(value)], timeout=10)
        if result.ok:
            effective[name] = str(value)
        elif log is not None:
            log.warning("could not set utilization %s=%s: %s", name, value, result.summary())
    return effective
