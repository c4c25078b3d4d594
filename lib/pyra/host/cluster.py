"""Pacemaker's command-line tools, for the few things an agent tells the cluster.

The local node name, the members of our partition, and utilization attributes. Every call is bounded by the
operation's deadline (pass ``op.run`` as ``run``). Utilization is written only when it changed: the caller
keeps the last written values in its state record, so a monitor never spawns ``crm_resource`` (VirtualDomain
does up to six times).
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
    """Names of the members of this node's cluster partition (``crm_node -p``), or None when that cannot be
    known (no cluster, the tool failed or timed out): callers must then assume nobody is known to be down."""
    result = run(["crm_node", "-p"], timeout=timeout)
    if not result.ok:
        return None
    return set(result.stdout.split())


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
