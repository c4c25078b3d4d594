"""How the cluster scenarios configure each agent: plausible parameters, and a value validate-all must reject.

Owns the per-agent knowledge of tests/cluster (nothing else there names an agent). Scenario 1 runs for every
executable in agents/ as soon as it exists: unknown agents get a generic profile derived from their metadata
(a select parameter given a value outside its options, else a boolean given "maybe"), which is enough for the
tool checks; give an agent an explicit entry here when it needs more.
"""
import os
import xml.etree.ElementTree as ET

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
AGENTS_DIR = os.path.join(REPO, "agents")
METADATA_DIR = os.path.join(REPO, "metadata")


def agents():
    """Agent names present in the source tree (executables in agents/)."""
    try:
        names = os.listdir(AGENTS_DIR)
    except OSError:
        return []
    return sorted(n for n in names if os.access(os.path.join(AGENTS_DIR, n), os.X_OK) and not n.startswith("."))


def metadata(agent):
    """(parameters, root) from metadata/<Agent>.xml: {name: {'required': bool, 'type': str, 'options': [...]}}."""
    root = ET.parse(os.path.join(METADATA_DIR, agent + ".xml")).getroot()
    params = {}
    for p in root.iter("parameter"):
        content = p.find("content")
        params[p.get("name")] = {
            "required": p.get("required") == "1",
            "type": content.get("type") if content is not None else "string",
            "options": [o.get("value") for o in (content.iter("option") if content is not None else [])],
        }
    return params


# Required parameters the generic profile cannot guess; values need to be valid everywhere, not present here.
REQUIRED_VALUES = {
    "veid": "pyra-pcmk-ct1",
    "name": "pyra-pcmk-guest1",
    "config": "/var/tmp/pyra-pcmk/shared/guest1.xml",
    "volgrpname": "pyrapcmkvg",
    "vg": "pyrapcmkvg",
    "lv": "lv1",
    "logical_volume": "lv1",
}

# Explicit wrong values: agent -> (params, parameter expected in the reason).
BAD_VALUES = {
    "PyraExample": ({"start_delay": "soon"}, "start_delay"),
    "ManageVE": ({"veid": "-oops"}, "veid"),
}


def required_params(agent):
    params = metadata(agent)
    out = {}
    for name, spec in params.items():
        if spec["required"]:
            out[name] = REQUIRED_VALUES.get(name, spec["options"][0] if spec["options"] else "x")
    return out


def bad_value(agent):
    """(full params with one invalid value, name of the invalid parameter) for validate-all."""
    base = required_params(agent)
    if agent in BAD_VALUES:
        bad, name = BAD_VALUES[agent]
        return dict(base, **bad), name
    for name, spec in metadata(agent).items():
        if spec["type"] == "select" and spec["options"]:
            return dict(base, **{name: "no-such-choice"}), name
    for name, spec in metadata(agent).items():
        if spec["type"] == "boolean":
            return dict(base, **{name: "maybe"}), name
    for name, spec in metadata(agent).items():
        if spec["type"] == "integer":
            return dict(base, **{name: "many"}), name
    raise LookupError(f"no way to build a wrong value for {agent}: add it to BAD_VALUES in {__file__}")
