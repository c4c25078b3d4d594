"""Changing the cluster through Pacemaker's own tools (target-role, move with a lifetime, ban, clear, standby)
and waiting until it has settled, with progress: one state line per second on a TTY (rewritten in place),
plain lines when the state changes otherwise. Every call goes through pyra.host.command.run with a timeout.
"""

import sys
import time

from pyra.cli import clusterstate
from pyra.cli.main import CliError, FAILED

TOOL_TIMEOUT = 30.0


def tool(argv, timeout=TOOL_TIMEOUT):
    """Run a Pacemaker tool that changes the CIB; CliError 1 with its own words when it fails."""
    from pyra.host.command import run
    result = run(argv, timeout=timeout)
    if not result.ok:
        raise CliError(result.summary(), FAILED)
    return result


def set_target_role(rid, role):
    tool(["crm_resource", "--resource", rid, "--meta", "--set-parameter", "target-role", "--parameter-value", role])


def lifetime(seconds):
    """An ISO 8601 duration for crm_resource --lifetime."""
    return "PT%dS" % max(60, int(seconds))


def move(rid, node=None, seconds=600):
    argv = ["crm_resource", "--move", "--resource", rid, "--lifetime", lifetime(seconds)]
    if node:
        argv += ["--node", node]
    tool(argv)


def ban(rid, node, seconds=600):
    tool(["crm_resource", "--ban", "--resource", rid, "--node", node, "--lifetime", lifetime(seconds)])


def ban_xml(rids, node, seconds, now=None):
    """The location constraints ``crm_resource --ban --lifetime`` writes (same ids, so ``--clear`` lifts them),
    for several resources, wrapped in <constraints> for one ``cibadmin --create``."""
    from xml.sax.saxutils import quoteattr
    now = time.time() if now is None else now
    end = time.strftime("%Y-%m-%d %H:%M:%SZ", time.gmtime(now + max(60, int(seconds))))
    out = []
    for rid in rids:
        cid = "cli-ban-%s-on-%s" % (rid, node)
        out.append('<rsc_location id=%s rsc=%s role="Started"><rule id=%s score="-INFINITY" boolean-op="and">'
                   '<expression id=%s attribute="#uname" operation="eq" value=%s type="string"/>'
                   '<date_expression id=%s operation="lt" end=%s/></rule></rsc_location>' % (
                       quoteattr(cid), quoteattr(rid), quoteattr(cid + "-rule"), quoteattr(cid + "-expr"),
                       quoteattr(node), quoteattr(cid + "-lifetime"), quoteattr(end)))
    return "<constraints>%s</constraints>" % "".join(out)


def ban_many(rids, node, seconds=600):
    """Ban several resources from node in ONE CIB change, so the cluster plans their moves in one transition
    (a ban per resource would abort the transition while an earlier migration is half done, and Pacemaker may
    then finish it by stop and start). Falls back to one ``crm_resource --ban`` each when the CIB refuses
    (a ban of the same id exists already)."""
    from pyra.host.command import run
    if len(rids) == 1:
        return ban(rids[0], node, seconds)
    result = run(["cibadmin", "--create", "--scope", "constraints", "--xml-text", ban_xml(rids, node, seconds)],
                 timeout=TOOL_TIMEOUT)
    if not result.ok:
        for rid in rids:
            ban(rid, node, seconds)


def clear(rid, node=None):
    argv = ["crm_resource", "--clear", "--resource", rid]
    if node:
        argv += ["--node", node]
    tool(argv)


def set_standby(node, on):
    tool(["crm_attribute", "--node", node, "--name", "standby", "--update", "on" if on else "off"])


class Progress:
    """State lines: on a TTY one line rewritten each second; otherwise a line whenever the text changes."""

    def __init__(self, stream=None, tty=None):
        self.stream = stream or sys.stdout
        self.tty = self.stream.isatty() if tty is None else tty
        self.last = None
        self.t0 = time.monotonic()

    def show(self, text):
        line = "[%3.0fs] %s" % (time.monotonic() - self.t0, text)
        if self.tty:
            self.stream.write("\r\x1b[K" + line)
            self.stream.flush()
        elif text != self.last:
            self.stream.write(line + "\n")
            self.stream.flush()
        self.last = text

    def done(self, text=None):
        if self.tty and self.last is not None:
            self.stream.write("\n")
        if text:
            self.stream.write(text + "\n")
        self.stream.flush()


def wait(check, timeout, progress, loader=None, step=1.0):
    """Poll the cluster (cibadmin + crm_mon per round) until ``check(state)`` returns (done, text, error):
    done -> return the state; error (a string) -> CliError 1; timeout -> CliError 1."""
    loader = loader or clusterstate.load
    end = time.monotonic() + timeout
    while True:
        state = loader()
        done, text, error = check(state)
        progress.show(text)
        if error:
            progress.done()
            raise CliError(error, FAILED)
        if done:
            progress.done()
            return state
        if time.monotonic() >= end:
            progress.done()
            raise CliError("did not settle within %.0f s: %s" % (timeout, text), FAILED)
        time.sleep(max(0.0, min(step, end - time.monotonic())))


def new_failures(rsc, before):
    """Failures of rsc not in ``before`` (a set of (node, task) seen when we started)."""
    return [f for f in rsc.failures if (f.node, f.task) not in before]


def failure_keys(rsc):
    return {(f.node, f.task) for f in rsc.failures}
