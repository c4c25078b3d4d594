"""``pyra list [--json]``: every pyra resource of the cluster in one table, from one CIB and one crm_mon read."""

import json
import sys

from pyra.cli import clusterstate

COLUMNS = (("RESOURCE", "resource"), ("AGENT", "agent"), ("WHERE", "where"), ("TARGET", "target_role"),
           ("MEM", "memory"), ("CPU", "cpu"), ("GROUP", "group"))


def register(subparsers):
    p = subparsers.add_parser("list", help="every pyra resource: where it runs, target role, size, group",
                              description="List every pyra resource (ocf:pyra:*) of the cluster: where it "
                              "runs (a node; Stopped; FAILED with the exit reason; migrating from->to), its "
                              "target-role, its memory (MiB) and vCPUs (utilization) and its group. Reads the "
                              "CIB and the status once (cibadmin -Q, crm_mon --output-as=xml).")
    p.add_argument("--json", action="store_true", help="a JSON list of objects instead of the table")
    p.set_defaults(func=run)


def rows(state):
    out = []
    for rsc in state.pyra_resources():
        row = rsc.as_dict()
        row["agent"] = rsc.agent
        out.append(row)
    return out


def table(rows_, columns=COLUMNS):
    """Plain text columns; empty cells as '-'."""
    cells = [[h for h, _ in columns]]
    for row in rows_:
        cells.append(["-" if row.get(k) in (None, "") else str(row.get(k)) for _, k in columns])
    widths = [max(len(c[i]) for c in cells) for i in range(len(columns))]
    lines = []
    for c in cells:
        lines.append("  ".join(v.ljust(w) for v, w in zip(c, widths)).rstrip())
    return "\n".join(lines) + "\n"


def render(state, as_json=False):
    data = rows(state)
    if as_json:
        return json.dumps(data, indent=1, sort_keys=True) + "\n"
    if not data:
        return "no pyra resources in the cluster\n"
    return table(data)


def run(args):
    state = clusterstate.load()
    sys.stdout.write(render(state, args.json))
    return 0
