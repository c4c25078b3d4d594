"""The connection to this node's libvirtd, opened with a share of the operation's deadline.

Every action talks to libvirt through one ``Hypervisor`` (pyra.backends.libvirt_api), whose calls are all
bounded; what differs between actions is how much of the budget connecting may take, and what an unreachable
libvirtd means (the callers decide: kill the emulator, report missing environment, fail).
"""


def connect(op, share, cap=None, per_call=None):
    """An open Hypervisor for ``op.params.hypervisor``. Connecting may take ``share`` of the time left (capped
    at ``cap`` seconds, never less than 1 s); with ``per_call`` every later call may take at most that share
    of the time left when it starts, so that a libvirtd that freezes mid-action leaves time for a fallback.
    Raises pyra.backends.libvirt_api.Unreachable."""
    from pyra.backends.libvirt_api import Hypervisor
    hv = Hypervisor(op.params.hypervisor, op.deadline, call_share=per_call)
    limit = op.deadline.remaining() * share
    if cap is not None:
        limit = min(limit, cap)
    return hv.open(timeout=max(1.0, limit))
