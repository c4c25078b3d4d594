"""The Agent base class and the action dispatcher.

An agent declares its schema, its actions and its supported check levels, and implements one method per
action (``start``, ``stop``, ``monitor``, optionally ``validate``, ``migrate_to``, ``migrate_from``,
``reload_agent`` ...). ``main()`` does everything OCF around them: picks the action from argv (or
``__OCF_ACTION``), answers ``meta-data`` without touching anything, parses and validates parameters, builds the
operation context (deadline, logger, state record, command runner, the resource's identity resolved by one
rule), maps raised conditions to codes through the one policy, emits exactly one exit reason for a failing
action, and logs one summary line with the elapsed time. Unknown actions answer 3. This floor imports
nothing above it: the command runner and the mapping of the host's errors are bound by ``pyra.agents.base``.
"""

import os
import sys
import time

from pyra.ocf import codes, policy
from pyra.ocf.env import OcfEnv
from pyra.ocf.errors import ConfigError, DeadlineExceeded, MissingEnvironment, OcfError

BUILTIN_TIMEOUTS = {"meta-data": 5, "validate-all": 20}
FRESH_IDENTITY_ACTIONS = ("start", "migrate_from", "validate-all")


class Action:
    """One advertised action: its default timeout (seconds), interval and depth for monitors."""

    __slots__ = ("name", "timeout", "interval", "depth", "role")

    def __init__(self, name, timeout, interval=None, depth=None, role=None):
        self.name = name
        self.timeout = timeout
        self.interval = interval
        self.depth = depth if depth is not None else (0 if name == "monitor" else None)
        self.role = role


class Operation:
    """Everything an action method needs about the current invocation."""

    def __init__(self, agent, env, action, params, problems, deadline, log):
        self.agent = agent
        self.env = env
        self.action = action
        self.params = params
        self.problems = problems
        self.deadline = deadline
        self.log = log
        self.is_probe = env.is_probe
        self.check_level = policy.normalise_check_level(env.check_level, agent.check_levels)
        self.depth = 10 if (action == "start" or env.check_level >= 10) else 0
        self.reason = None
        self._state = None
        self._identity = None

    @property
    def state(self):
        """This instance's state record (created lazily: meta-data and validate never touch it)."""
        if self._state is None:
            from pyra.ocf.state import InstanceState
            self._state = InstanceState(self.env.rsctmp, self.agent.name, self.env.instance)
        return self._state

    def has_record(self):
        """Whether the state record says this node started the resource and has not stopped it."""
        try:
            return self.state.has_record
        except OSError:
            return True  # cannot tell: never claim "stopped"

    # -- identity: one rule for every agent (DESIGN §5) ------------------------------------------------
    def identity(self):
        """What the resource is, as a dict of strings, resolved once per action by one rule.

        A start, migrate_from or validate-all derives it from the parameters (``agent.identify``). Any other
        action uses the identity this node recorded when it started the resource, as long as that record has
        every key of ``agent.identity_keys``: so a monitor or stop finds what runs here even when the
        parameters, or the configuration they point to, cannot be read on this node, and a monitor of a
        guest does not re-read its configuration. Without such a record it falls back to the parameters.
        When neither can tell, the agent's ConfigError or MissingEnvironment propagates and the policy
        decides (a probe 7, a stop 0 unless this node has a record: then 1).
        """
        if self._identity is None:
            self._identity = self._resolve_identity()
        return self._identity

    def _resolve_identity(self):
        if self.action in FRESH_IDENTITY_ACTIONS:
            return dict(self.agent.identify(self))
        recorded = self.state.identity()
        complete = all(recorded.get(key) for key in self.agent.identity_keys)
        if complete and recorded:
            return recorded
        return dict(self.agent.identify(self))

    def record_start(self, identity=None, **extra):
        """Write the crash-memory record before acting on a start or migrate_from: ``identity`` (default:
        ``self.identity()``) and ``extra`` keys. A record that already says "started here" with the same
        identity is kept (what a running resource noted since, such as a monitor's baseline, survives a
        repeated start); ``extra`` keys are merged into it."""
        identity = self.identity() if identity is None else identity
        if self.has_record() and self.state.identity() == {k: str(v) for k, v in identity.items()}:
            changed = {k: v for k, v in extra.items() if self.state.read().get(k) != str(v)}
            if changed:
                self.state.update(**changed)
            return
        self.state.record_start(identity, **extra)
        self._identity = {k: str(v) for k, v in identity.items()}

    def run(self, argv, timeout=None, **kwargs):
        """Run an external command bounded by this operation's deadline, through the agent's runner
        (``pyra.host.command.run`` for every pyra agent; see ``pyra.agents.base``)."""
        if self.agent.runner is None:
            raise RuntimeError("%s has no command runner" % self.agent.name)
        return self.agent.runner(argv, deadline=self.deadline, timeout=timeout, tracer=self.log.trace_command,
                                 **kwargs)

    def not_running(self, reason=None):
        """The resource is not running here: 7 after a clean stop or on a probe, 1 after a crash (DESIGN §5)."""
        if self.action == "monitor" and self.has_record():
            code = policy.decide(policy.CRASHED, "monitor", self.is_probe, True)
            why = reason or "not running"
            self.reason = "%s, but it was started here and not stopped: it failed" % why
            if code != codes.ERR_GENERIC:
                self.log.warning("%s", self.reason)
            return code
        if reason:
            self.log.debug("%s", reason)
        return codes.NOT_RUNNING if self.action == "monitor" else codes.SUCCESS

    def degraded(self, reason):
        """Running but impaired: 190 from monitor (shown by crm_mon, blocks live migration)."""
        self.reason = reason
        self.log.warning("degraded: %s", reason)
        return policy.decide(policy.DEGRADED, self.action, self.is_probe)


class Agent:
    """Base class of every pyra agent. Subclasses set the class attributes and implement the actions."""

    name = ""
    from pyra import __version__ as version  # pyra's one version number, lib/pyra/__init__.py
    shortdesc = ""
    longdesc = ""
    schema = None
    actions = ()
    check_levels = (0,)
    # What identifies the resource: ``identify(op)`` derives it from the parameters; a recorded identity
    # stands in for the parameters only when it has all of ``identity_keys`` (see Operation.identity).
    identity_keys = ()
    # The command runner behind ``op.run`` (a callable, or None) and, through ``error_conditions()``, how errors
    # of the floors above map to OCF conditions. Both are bound by the agents floor (pyra.agents.base), so
    # this runtime imports nothing above it.
    runner = None

    @classmethod
    def error_conditions(cls):
        """(exception class, OcfError class) pairs; asked only when an action raised something else than an
        OcfError, so an agent may import the classes lazily."""
        return ()

    @classmethod
    def all_actions(cls):
        """The declared actions plus meta-data and validate-all, in a stable order."""
        result = list(cls.actions)
        names = {a.name for a in result}
        for name in ("meta-data", "validate-all"):
            if name not in names:
                result.append(Action(name, BUILTIN_TIMEOUTS[name]))
        return result

    @classmethod
    def action_names(cls):
        return {a.name for a in cls.all_actions()}

    def default_timeout(self, action_name, env):
        interval_ms = env.interval_ms or 0
        best = None
        for action in self.all_actions():
            if action.name != action_name:
                continue
            if best is None or (action.interval or 0) * 1000 == interval_ms:
                best = action
        return best.timeout if best else 20

    # -- hooks -----------------------------------------------------------------------------------------
    def identify(self, op):
        """The resource's identity from the parameters (a dict of strings, recorded at start). Raise
        ConfigError when the parameters identify nothing, MissingEnvironment when what they point to cannot
        be read on this node."""
        return {}

    def validate(self, op):
        """Checks beyond the schema. ``op.depth`` 0: parameters only; 10: this node's environment too."""

    def validate_all(self, op):
        self.validate(op)
        return codes.SUCCESS

    # -- entry point -----------------------------------------------------------------------------------
    def usage(self):
        names = sorted(self.action_names())
        return "usage: %s {%s}" % (self.name, "|".join(names))

    def main(self, argv=None, environ=None):
        argv = sys.argv if argv is None else argv
        env = OcfEnv(environ, argv, resource_type=self.name)
        action = env.action
        if action in ("-h", "--help", "help", "usage"):
            sys.stdout.write(self.usage() + "\n")
            return codes.SUCCESS
        if action == "meta-data":
            from pyra.ocf.metadata import render
            sys.stdout.write(render(self, env.ra_version))
            return codes.SUCCESS
        from pyra.ocf.log import Logger, emit_exit_reason
        log = Logger(self.name, env.instance, env.environ, action)
        started = time.monotonic()
        op = None
        if not action:
            code, reason = codes.ERR_UNIMPLEMENTED, "no action given; " + self.usage()
        elif action not in self.action_names() or not hasattr(self, action.replace("-", "_")):
            code, reason = codes.ERR_UNIMPLEMENTED, "action %s is not supported by %s" % (action, self.name)
        else:
            op, code, reason = self._dispatch(env, action, log)
        elapsed = time.monotonic() - started
        failing = _is_failure(action, code)
        if failing and not reason:
            reason = "%s failed (%s)" % (action or "action", codes.name(code))
        if reason and (failing or code == codes.DEGRADED):
            emit_exit_reason(reason, env.exit_reason_prefix)
        summary = "%s%s: %s in %d ms" % (action or "(none)", " (probe)" if env.is_probe else "",
                                         codes.name(code), elapsed * 1000)
        if reason and (failing or code == codes.DEGRADED):
            log.log(30 if failing else 20, "%s: %s", summary, reason)
        else:
            log.info("%s", summary)
        log.close()
        return code

    def _dispatch(self, env, action, log):
        from pyra.ocf.deadline import Deadline
        timeout_ms = env.timeout_ms
        timeout = timeout_ms / 1000.0 if timeout_ms else float(self.default_timeout(action, env))
        deadline = Deadline.for_operation(timeout)
        strict = action in ("start", "validate-all")
        values, problems = self.schema.parse(env, environmental=strict)
        op = Operation(self, env, action, values, problems, deadline, log)
        if log.tracing:
            log.trace("action=%s instance=%s timeout=%.1fs interval_ms=%s check_level=%s" % (
                action, env.instance, timeout, env.interval_ms, env.check_level))
            for param in self.schema:
                if values.given(param.name):
                    shown = "<private>" if param.private else values.raw(param.name)
                    log.trace("param %s=%s" % (param.name, shown))
        try:
            if strict:
                self._raise_problems(problems)
                if action == "start":
                    self.validate(op)
            elif problems:
                for problem in problems:
                    log.warning("%s", problem)
                unusable = [p for p in problems if p.param and self.schema.by_name[p.param].required]
                if unusable and action in ("monitor", "stop") and not op.has_record():
                    # A required parameter missing or invalid, and no record of a start here: this node
                    # cannot have started the resource since boot (DESIGN §5), so the policy answers
                    # (probe 7, stop 0, recurring monitor 1) instead of the agent guessing without it.
                    raise ConfigError(str(unusable[0]))
            method = getattr(self, action.replace("-", "_"))
            code = method(op)
            if code is None:
                code = codes.SUCCESS
            return op, code, op.reason
        except OcfError as err:
            return (op,) + self._decide(err, env, action, op, log)
        except self._mapped_errors() as err:
            return (op,) + self._decide(self._as_condition(err), env, action, op, log)
        except Exception as err:  # the last line of defence: never a traceback on stderr, always a reason
            import traceback
            frames = traceback.extract_tb(err.__traceback__)
            log.error("internal error: %s: %s at %s", type(err).__name__, err, " <- ".join(
                "%s:%d(%s)" % (os.path.basename(f.filename), f.lineno, f.name) for f in reversed(frames)))
            return op, codes.ERR_GENERIC, "internal error in %s: %s: %s" % (action, type(err).__name__, err)

    @classmethod
    def _mapped_errors(cls):
        return tuple(exc for exc, _ in cls.error_conditions())

    @classmethod
    def _as_condition(cls, err):
        for exc, condition in cls.error_conditions():
            if isinstance(err, exc):
                return condition(getattr(err, "reason", None) or str(err))
        raise err

    @staticmethod
    def _decide(err, env, action, op, log):
        """(code, reason) for a raised condition: the policy decides; a deadline is always a plain failure."""
        if isinstance(err, DeadlineExceeded):
            return codes.ERR_GENERIC, err.reason if action in err.reason else "%s: %s" % (action, err.reason)
        code = policy.decide(err.condition, action, env.is_probe,
                             op.has_record() if action in ("monitor", "stop") else False)
        if code in (codes.NOT_RUNNING, codes.SUCCESS):
            log.info("%s: %s", action, err.reason)
        return code, err.reason

    @staticmethod
    def _raise_problems(problems):
        config = [p for p in problems if not p.environmental]
        if config:
            more = " (and %d more)" % (len(config) - 1) if len(config) > 1 else ""
            raise ConfigError("%s%s" % (config[0], more))
        environmental = [p for p in problems if p.environmental]
        if environmental:
            raise MissingEnvironment(str(environmental[0]))


def _is_failure(action, code):
    if code == codes.SUCCESS:
        return False
    if action == "monitor" and code in (codes.NOT_RUNNING, codes.DEGRADED, codes.RUNNING_PROMOTED):
        return False
    return True


def main(agent_class, argv=None, environ=None):
    """Run ``agent_class`` as an OCF agent and exit with its code."""
    try:
        code = agent_class().main(argv, environ)
    except KeyboardInterrupt:
        code = codes.ERR_GENERIC
    sys.stdout.flush()
    sys.exit(code)
