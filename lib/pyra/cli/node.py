"""``pyra node NODE evacuate|maintenance on|off``: empty a node of its pyra guests through Pacemaker.

evacuate bans every pyra resource running on NODE from it (``crm_resource --ban --lifetime``: the cluster
chooses the target, by utilization when a placement strategy says so; a group moves as a whole) and waits for
each to run elsewhere; live when the resource has allow-migrate. No more guests are in flight at once than the
cluster property migration-limit allows (-1, the default: all at once): they go in waves, each wave's bans in
one CIB change (one transition; the next wave once the last has settled). Progress per guest, then a table
(guest, from, to, seconds). The bans stay until their lifetime ends (``--lifetime``, default one hour) so the
cluster does not bring the guests back; ``pyra vm NAME unmove`` lifts one.
maintenance on = evacuate, then standby (``crm_attribute --node N --name standby --update on``; the bans are then
cleared: standby keeps the node empty); maintenance off = standby off.
"""

import sys
import time

from pyra.cli import clusterstate, clusterwait
from pyra.cli.main import CliError, FAILED, NOT_FOUND

DEFAULT_TIMEOUT = 600.0
DEFAULT_LIFETIME = 3600.0


def register(subparsers):
    p = subparsers.add_parser("node", help="a node: evacuate its pyra guests, maintenance on|off",
                              description="Act on one cluster node: live-migrate every pyra guest off it "
                              "(respecting migration-limit) or put it in maintenance (evacuate + standby).")
    p.add_argument("node", metavar="NODE")
    acts = p.add_subparsers(dest="action", metavar="ACTION")
    acts.required = True
    ev = acts.add_parser("evacuate", help="move every pyra guest off NODE (live where allow-migrate)",
                         description="Move every pyra resource off NODE through Pacemaker (a ban with a "
                         "lifetime), at most migration-limit at once; progress per guest, then a table.")
    ma = acts.add_parser("maintenance", help="on: evacuate and put NODE in standby; off: bring it back",
                         description="on: evacuate NODE, then put it in standby. off: take it out of standby.")
    ma.add_argument("mode", choices=("on", "off"))
    for a in (ev, ma):
        a.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT, metavar="S",
                       help="seconds to wait for all guests to move (default %.0f)" % DEFAULT_TIMEOUT)
        a.add_argument("--json", action="store_true", help="print the final table as JSON")
    ev.add_argument("--lifetime", type=float, default=DEFAULT_LIFETIME, metavar="S",
                    help="seconds the bans keep the guests off NODE (default %.0f)" % DEFAULT_LIFETIME)
    ev.set_defaults(func=do_evacuate)
    ma.set_defaults(func=do_maintenance)


class Move:
    def __init__(self, unit, members, source, live):
        self.unit, self.members, self.source, self.live = unit, members, source, live
        self.started = None
        self.seconds = None
        self.target = None
        self.error = None
        self.failures_before = {}

    def as_dict(self):
        return {"guest": self.unit, "from": self.source, "to": self.target,
                "seconds": None if self.seconds is None else round(self.seconds, 1),
                "how": "live" if self.live else "restart", "error": self.error}


def _units(state, node):
    """The pyra resources running on node, grouped as they move: [(unit id, [member ids], live)]."""
    units = {}
    for rsc in state.pyra_resources():
        if node in rsc.nodes:
            units.setdefault(rsc.group or rsc.id, []).append(rsc)
    return [(unit, [r.id for r in rs], all(r.allow_migrate for r in rs)) for unit, rs in units.items()]


def _state_of(move, state, node):
    """(done, words) for one move in flight."""
    rscs = [state.resources.get(m) for m in move.members]
    if any(r is None for r in rscs):
        move.error = "removed from the CIB"
        return True, "removed"
    for r in rscs:
        fresh = clusterwait.new_failures(r, move.failures_before.get(r.id, set()))
        if fresh:
            move.error = fresh[-1].text()
            return True, "FAILED"
    where = rscs[0].where()
    settled = all(not r.pending and len(r.nodes) == 1 and r.nodes[0] != node for r in rscs)
    if settled and len({r.nodes[0] for r in rscs}) == 1:
        move.target = rscs[0].nodes[0]
        return True, "on %s" % move.target
    return False, where


def evacuate(node, timeout, lifetime, out=None, loader=None):
    """Move everything pyra off node; returns the list of Moves (each with target/seconds or error)."""
    out = out or sys.stdout
    loader = loader or clusterstate.load
    state = loader()
    if node not in state.nodes:
        raise CliError("no node %s in the cluster (nodes: %s)" % (node, " ".join(state.nodes)), NOT_FOUND)
    moves = [Move(u, members, node, live) for u, members, live in _units(state, node)]
    if not moves:
        out.write("%s runs no pyra guest: nothing to move\n" % node)
        return moves
    limit = state.migration_limit()
    if limit <= 0:
        limit = len(moves)
    for m in moves:
        m.failures_before = {r: clusterwait.failure_keys(state.resources[r]) for r in m.members}
    out.write("evacuating %s: %s (at most %d at once, migration-limit %s)\n" % (
        node, ", ".join(m.unit for m in moves), limit, state.properties.get("migration-limit", "-1 (unset)")))
    progress = clusterwait.Progress(out)
    queue = list(moves)
    flying = []
    end = time.monotonic() + timeout
    words = {}
    while queue or flying:
        if queue and not flying:
            # the next wave (migration-limit guests, all when unlimited) in one CIB change: one transition,
            # never aborted by our own next ban while a migration is half done
            wave, queue = queue[:limit], queue[limit:]
            clusterwait.ban_many([m.unit for m in wave], node, lifetime)
            for m in wave:
                m.started = time.monotonic()
                words[m.unit] = "moving"
            flying.extend(wave)
        state = loader()
        for m in list(flying):
            done, text = _state_of(m, state, node)
            words[m.unit] = text
            if done:
                m.seconds = time.monotonic() - m.started
                flying.remove(m)
        for m in queue:
            words[m.unit] = "queued"
        progress.show(" | ".join("%s %s" % (m.unit, words.get(m.unit, "?")) for m in moves))
        if not (queue or flying):
            break
        if time.monotonic() >= end:
            for m in flying + queue:
                m.error = "still %s after %.0f s" % (words.get(m.unit, "?"), timeout)
            break
        time.sleep(0.5)
    progress.done()
    return moves


def table(moves):
    from pyra.cli.listing import table as render
    rows = []
    for m in moves:
        d = m.as_dict()
        d["seconds"] = "%.1f" % m.seconds if m.seconds is not None and not m.error else "-"
        d["to"] = d["to"] or ("FAILED: %s" % m.error if m.error else "-")
        rows.append(d)
    return render(rows, (("GUEST", "guest"), ("FROM", "from"), ("TO", "to"), ("SECONDS", "seconds"),
                         ("HOW", "how")))


def _report(moves, args, wall):
    import json
    if args.json:
        sys.stdout.write(json.dumps({"moves": [m.as_dict() for m in moves], "seconds": round(wall, 1)},
                                    indent=1, sort_keys=True) + "\n")
    elif moves:
        sys.stdout.write(table(moves))
        sys.stdout.write("evacuated in %.1f s\n" % wall)
    failed = [m for m in moves if m.error]
    if failed:
        raise CliError("%d of %d guests did not leave %s: %s" % (len(failed), len(moves), args.node,
                                                                  "; ".join("%s: %s" % (m.unit, m.error)
                                                                            for m in failed)), FAILED)


def do_evacuate(args):
    t0 = time.monotonic()
    moves = evacuate(args.node, args.timeout, args.lifetime)
    _report(moves, args, time.monotonic() - t0)
    return 0


def do_maintenance(args):
    state = clusterstate.load()
    if args.node not in state.nodes:
        raise CliError("no node %s in the cluster (nodes: %s)" % (args.node, " ".join(state.nodes)), NOT_FOUND)
    if args.mode == "off":
        clusterwait.set_standby(args.node, False)
        sys.stdout.write("%s: standby off, it takes resources again\n" % args.node)
        return 0
    t0 = time.monotonic()
    moves = evacuate(args.node, args.timeout, max(args.timeout, 600))
    clusterwait.set_standby(args.node, True)
    for m in moves:
        if not m.error:
            clusterwait.clear(m.unit, args.node)  # standby keeps the node empty from now on
    _report(moves, args, time.monotonic() - t0)
    sys.stdout.write("%s: in standby (pyra node %s maintenance off brings it back)\n" % (args.node, args.node))
    return 0
