"""The library's floors point one way: cli -> agents -> backends -> host -> ocf. A module may import from its own
floor or a floor below, never from one above (lazy imports inside functions included)."""

import ast
import os

import harness

LIB = os.path.join(harness.REPO, "lib", "pyra")
FLOORS = {"ocf": 0, "host": 1, "backends": 2, "agents": 3, "cli": 4}  # cli: the operator's command, on top


def floor_of(module):
    """The floor of a dotted module name under pyra (None for pyra itself)."""
    parts = module.split(".")
    return FLOORS.get(parts[1]) if len(parts) > 1 and parts[0] == "pyra" else None


def imports(path):
    with open(path) as handle:
        tree = ast.parse(handle.read(), path)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module == "pyra":
                for alias in node.names:
                    yield node.lineno, "pyra." + alias.name
            else:
                yield node.lineno, node.module


def modules():
    for floor in FLOORS:
        for base, _dirs, files in os.walk(os.path.join(LIB, floor)):
            for name in files:
                if name.endswith(".py"):
                    yield floor, os.path.join(base, name)


def test_no_module_imports_from_a_floor_above_it():
    upward = []
    for floor, path in modules():
        for line, target in imports(path):
            above = floor_of(target)
            if above is not None and above > FLOORS[floor]:
                upward.append("%s:%d imports %s" % (os.path.relpath(path, LIB), line, target))
    assert upward == []


def test_the_check_sees_an_upward_import(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("def f():\n    from pyra.host.command import run\n")
    assert [floor_of(t) for _, t in imports(str(bad))] == [FLOORS["host"]]
    assert FLOORS["host"] > FLOORS["ocf"]


def test_host_knows_nothing_of_ocf():
    # host is usable by the operator's tools too: its errors are its own, the runtime maps them
    for floor, path in modules():
        if floor == "host":
            assert not [t for _, t in imports(path) if t.startswith("pyra.ocf")], path
