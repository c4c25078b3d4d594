"""What every pyra agent shares on top of the OCF runtime: the binding to this machine.

``pyra.ocf`` is the bottom floor and imports nothing above it, so the runtime's two ties to the host are
bound here, once: ``op.run`` runs commands through ``pyra.host.command.run`` (deadline, process tree,
tracing), and what ``pyra.host`` raises becomes an OCF condition (no time left: the deadline passed; a
checked command that failed: the operation failed). Both import ``pyra.host.command`` only when used: a
monitor that spawns nothing (TransientDomain's, LVMFilesystem's at depth 0) never loads it. Every agent
derives from ``PyraAgent``.
"""

from pyra.ocf.agent import Agent
from pyra.ocf.errors import DeadlineExceeded, Failure


def run(argv, **kwargs):
    """``pyra.host.command.run``, imported on first use."""
    from pyra.host.command import run as host_run
    return host_run(argv, **kwargs)


class PyraAgent(Agent):
    runner = staticmethod(run)

    @classmethod
    def error_conditions(cls):
        from pyra.host import command
        return ((command.OutOfTime, DeadlineExceeded), (command.HostError, Failure))
