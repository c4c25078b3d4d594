"""pyra: OCF resource agents for Pacemaker (libvirt guests, containers, shared-storage volumes).

Packages: ``pyra.ocf`` the OCF runtime (knows nothing of VMs or disks), ``pyra.host`` talking to the local
system, ``pyra.backends`` one module per external system, ``pyra.agents`` one module per agent.
"""

__version__ = "0.1.0"
