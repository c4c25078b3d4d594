"""What every pyra agent shares on top of the OCF runtime: the binding to this machine.

``pyra.ocf`` is the bottom floor and imports nothing above it, so the runtime's two ties to the host are
bound here, once: ``op.run`` runs commands through ``pyra.host.command.run`` (deadline, process tree,
tracing), and what ``pyra.host`` raises becomes an OCF condition (no time left: the deadline passed; a
checked command that failed: the operation failed). Every agent derives from ``PyraAgent``.
"""

from pyra.host import command
from pyra.ocf.agent import Agent
from pyra.ocf.errors import DeadlineExceeded, Failure


class PyraAgent(Agent):
    runner = staticmethod(command.run)
    error_conditions = ((command.OutOfTime, DeadlineExceeded), (command.HostError, Failure))
