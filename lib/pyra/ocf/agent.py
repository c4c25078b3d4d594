"""The Agent base class and the action dispatcher.

An agent declares its schema, its actions and its supported check levels, and implements one method per
action (``start``, ``stop``, ``monitor``, optionally ``validate``, ``migrate_to``, ``migrate_from``,
``reload_agent`` ...). ``main()`` does everything OCF around them: picks the action from argv (or
``__OCF_ACTION``), answers ``meta-data`` without touching anything, parses and validates parameters, builds the
operation context (deadline, logger, state record, command runner), maps raised conditions to codes through the
one policy, emits exactly one exit reason for a failing action, and logs one summary line with the elapsed
time. Unknown actions answer 3.
"""

import os
import sys
import time

from pyra.ocf import codes, policy
from pyra.ocf.env import OcfEnv
from pyra.ocf.errors import ConfigError, DeadlineExceeded, MissingEnvironment, OcfError

BUILTIN_TIMEOUTS = {"meta-data": 5, "validate-all": 20}


class Action:
    """One advertised action: its default timeout (seconds), interval and depth for monitors."""

    __slots__ = ("name", "timeout", "interval", "depth", "role")

    def __init__(self, name, timeout, interval=None, depth=None, role=None):
        self.name = name
        self.timeout = timeout
        self.interval = interval
        self.depth = depth if depth is not None else (0 if name == "monitor" else None)
        self.role = role

    @property
    def method_name(self):
        return self.name.replace("-", "_")


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

    def run(self, argv, timeout=None, **kwargs):
        """Run an external command bounded by this operation's deadline (see pyra.host.command.run)."""
        from pyra.host.command import run
        return run(argv, deadline=self.deadline, timeout=timeout, tracer=self.log.trace_command, **kwargs)

    def set_reason(self, reason):
        """Remember the exit reason to emit if this action ends with a failing code (the last one wins)."""
        self.reason = reason

    def exit(self, code, reason=None):
        """Return ``code`` with ``reason`` as the exit reason."""
        if reason:
            self.reason = reason
        return code

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
    version = "0.1.0"
    shortdesc = ""
    longdesc = ""
    schema = None
    actions = ()
    check_levels = (0,)

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
        except DeadlineExceeded as err:
            return op, codes.ERR_GENERIC, "%s: %s" % (action, err.reason) if action not in err.reason else err.reason
        except OcfError as err:
            code = err.code if err.code is not None else policy.decide(
                err.condition, action, env.is_probe,
                op.has_record() if action in ("monitor", "stop") else False)
            if code in (codes.NOT_RUNNING, codes.SUCCESS):
                log.info("%s: %s", action, err.reason)
            return op, code, err.reason
        except Exception as err:  # the last line of defence: never a traceback on stderr, always a reason
            import traceback
            frames = traceback.extract_tb(err.__traceback__)
            log.error("internal error: %s: %s at %s", type(err).__name__, err, " <- ".join(
                "%s:%d(%s)" % (os.path.basename(f.filename), f.lineno, f.name) for f in reversed(frames)))
            return op, codes.ERR_GENERIC, "internal error in %s: %s: %s" % (action, type(err).__name__, err)

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
