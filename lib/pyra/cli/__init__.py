"""The operator's command ``pyra``: where a guest runs, its console, reset and sysrq, start/stop/migrate through
the cluster, domain XML generation, adding a guest to the cluster, node evacuation.

A top floor beside ``pyra.agents``: it uses ``pyra.backends`` (libvirt, the XML helpers), ``pyra.host``
(commands with deadlines, Pacemaker's tools) and the rules the agents follow (the migration URI of a node,
TransientDomain's operation timeouts), never a copy of them. ``main`` holds the subcommand table, the exit
codes and the one-line error policy; each subcommand module has a ``register(subparsers)``.
"""
