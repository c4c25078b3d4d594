"""PyraExample: the smallest complete pyra agent, a Dummy-like resource kept as a marker file.

It exists to show the shape of an agent (schema, actions, crash memory, migration) and to prove the
library and the cluster rig without any backend. "Running" means the marker file exists; the marker
lives in ``state_dir`` (put it on a node-local directory to get real per-node state).
"""

from pyra.ocf import checks, codes
from pyra.agents.base import PyraAgent
from pyra.ocf.agent import Action
from pyra.ocf.errors import ConfigError, Failure, MissingEnvironment
from pyra.ocf.params import BOOLEAN, TIME, Param, Schema


class PyraExample(PyraAgent):
    name = "PyraExample"
    shortdesc = "Example pyra resource (a marker file)"
    longdesc = ("A minimal resource used to demonstrate and test the pyra library: it is running when its "
                "marker file exists in state_dir. With config set, the file must exist to start, and a probe "
                "on a node that cannot see it reports the resource as stopped.")
    schema = Schema(
        Param("state_dir", default="/run/pyra-example", checks=[checks.absolute_path],
              shortdesc="Directory for the marker file",
              longdesc="Directory where the marker file lives (created on start)."),
        Param("config", checks=[checks.absolute_path, checks.existing_file],
              shortdesc="A file that must exist on the node to start",
              longdesc="Optional path of a configuration file that must be readable for start."),
        Param("fake", default="dummy", reloadable=True, shortdesc="A reloadable value",
              longdesc="A value recorded in the marker; changing it uses reload-agent, not a restart."),
        Param("start_delay", type=TIME, default=0.0, checks=[checks.in_range(0, 600)],
              shortdesc="Seconds to wait in start", longdesc="Time start takes, to exercise deadlines."),
        Param("fail_stop", type=BOOLEAN, default=False, advanced=True, shortdesc="Make stop fail",
              longdesc="For tests of fencing: stop fails while this is true."),
    )
    actions = (
        Action("start", timeout=20), Action("stop", timeout=20),
        Action("monitor", timeout=20, interval=10), Action("migrate_to", timeout=20),
        Action("migrate_from", timeout=20), Action("reload-agent", timeout=20),
    )

    identity_keys = ("marker",)

    def identify(self, op):
        import os
        return {"marker": os.path.join(op.params.state_dir, op.env.instance.replace("/", "_") + ".running")}

    def _marker(self, op):
        return op.identity()["marker"]

    def _running(self, op):
        import os
        return os.path.exists(self._marker(op))

    def validate(self, op):
        if op.params.start_delay >= op.deadline.remaining() and op.action != "validate-all":
            raise ConfigError("start_delay %gs does not fit in the start timeout" % op.params.start_delay)

    def start(self, op):
        import os
        if self._running(op):
            return codes.SUCCESS
        op.record_start()
        op.deadline.sleep(op.params.start_delay)
        if op.deadline.expired():
            raise Failure("start_delay did not finish before the deadline")
        os.makedirs(op.params.state_dir, 0o755, exist_ok=True)
        with open(self._marker(op), "w") as handle:
            handle.write(op.params.fake + "\n")
        return codes.SUCCESS

    def stop(self, op):
        import os
        if op.params.fail_stop:
            raise Failure("stop fails because fail_stop is set")
        try:
            os.unlink(self._marker(op))
        except FileNotFoundError:
            pass
        op.state.record_stop()
        return codes.SUCCESS

    def monitor(self, op):
        import os
        if op.params.config and not os.path.exists(op.params.config) and not op.has_record():
            raise MissingEnvironment("config %s is not visible on this node" % op.params.config)
        if self._running(op):
            return codes.SUCCESS
        return op.not_running("marker file absent")

    def migrate_to(self, op):
        if not self._running(op):
            raise Failure("not running here, nothing to migrate")
        self.stop(op)
        op.state.record_migrated(op.env.migrate_target)
        return codes.SUCCESS

    def migrate_from(self, op):
        return self.start(op)

    def reload_agent(self, op):
        if self._running(op):
            with open(self._marker(op), "w") as handle:
                handle.write(op.params.fake + "\n")
        return codes.SUCCESS
