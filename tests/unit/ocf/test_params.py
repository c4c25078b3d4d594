"""The typed parameter schema: conversion, defaults, deprecation, cross-parameter rules, problems."""

import pytest

from pyra.ocf import checks
from pyra.ocf.params import BOOLEAN, FLOAT, INTEGER, LIST, TIME, Param, Schema, parse_boolean, parse_time


def schema():
    return Schema(
        Param("config", required=True, checks=[checks.absolute_path]),
        Param("count", type=INTEGER, default=3, checks=[checks.in_range(1, 10)]),
        Param("force", type=BOOLEAN, default=False),
        Param("wait", type=TIME, default=30.0),
        Param("mode", choices=("acpi", "agent", "default"), default="default"),
        Param("speed", type=INTEGER, deprecated="bandwidth"),
        Param("bandwidth", type=INTEGER),
        Param("user"), Param("password", private=True),
        required_together=[("user", "password")],
        mutually_exclusive=[("force", "mode")],
    )


@pytest.mark.parametrize("text,value", [("1", True), ("yes", True), ("True", True), (" on ", True),
                                        ("0", False), ("no", False), ("FALSE", False), ("off", False)])
def test_booleans(text, value):
    assert parse_boolean(text) is value


@pytest.mark.parametrize("text", ["", "maybe", "2", "yess"])
def test_bad_booleans(text):
    with pytest.raises(ValueError):
        parse_boolean(text)


@pytest.mark.parametrize("text,seconds", [("90", 90.0), ("90s", 90.0), ("500ms", 0.5), ("2min", 120.0),
                                          ("1h", 3600.0), ("1.5s", 1.5), (" 10 sec ", 10.0), ("3m", 180.0)])
def test_times(text, seconds):
    assert parse_time(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "s", "ten", "-5", "nan", "inf", "5 parsecs"])
def test_bad_times(text):
    with pytest.raises(ValueError):
        parse_time(text)


def test_defaults_and_types():
    values, problems = schema().parse({"config": "/etc/x.xml", "count": "7", "force": "yes", "wait": "2min"})
    assert problems == []
    assert values.config == "/etc/x.xml" and values.count == 7 and values.force is True
    assert values.wait == 120.0 and values.mode == "default"
    assert values.given("count") and not values.given("mode")


def test_every_problem_is_collected_and_values_fall_back():
    values, problems = schema().parse({"config": "relative", "count": "99", "wait": "soon", "mode": "reboot"})
    messages = [str(p) for p in problems]
    assert any("'config' must be an absolute path" in m for m in messages)
    assert any("'count' must be at most 10" in m for m in messages)
    assert any("'wait' must be a duration" in m for m in messages)
    assert any("'mode' must be one of acpi|agent|default" in m for m in messages)
    assert values.count == 3 and values.wait == 30.0 and values.mode == "default"


def test_required_is_reported_not_raised():
    values, problems = schema().parse({})
    assert [p.param for p in problems] == ["config"]
    assert values.config is None


def test_deprecated_name_feeds_its_replacement():
    values, problems = schema().parse({"config": "/x", "speed": "100"})
    assert not problems and values.bandwidth == 100
    values, _ = schema().parse({"config": "/x", "speed": "100", "bandwidth": "5"})
    assert values.bandwidth == 5


def test_required_together_and_mutually_exclusive():
    _, problems = schema().parse({"config": "/x", "user": "admin"})
    assert any("must be set together" in str(p) for p in problems)
    _, problems = schema().parse({"config": "/x", "force": "1", "mode": "acpi"})
    assert any("cannot be combined" in str(p) for p in problems)


def test_environmental_checks_are_marked_and_skippable(tmp_path):
    s = Schema(Param("config", checks=[checks.absolute_path, checks.existing_file]))
    missing = str(tmp_path / "nope.xml")
    _, problems = s.parse({"config": missing})
    assert len(problems) == 1 and problems[0].environmental
    _, problems = s.parse({"config": missing}, environmental=False)
    assert problems == []


def test_rules_see_typed_values():
    s = Schema(Param("a", type=INTEGER, default=1), Param("b", type=INTEGER, default=2),
               rules=[lambda v: "a must be below b" if v.a >= v.b else None])
    assert s.parse({})[1] == []
    assert [str(p) for p in s.parse({"a": "5"})[1]] == ["a must be below b"]


def test_duplicate_and_unknown_names_are_programming_errors():
    with pytest.raises(ValueError):
        Schema(Param("a"), Param("a"))
    with pytest.raises(ValueError):
        Schema(Param("a"), required_together=[("a", "b")])


@pytest.mark.parametrize("value,ok", [("vm1", True), ("-rf", False), ("../etc", False), ("a/b", False),
                                      ("a;b", False), ("", False), ("web-01.example:1", True)])
def test_simple_name(value, ok):
    assert (checks.simple_name(value) is None) is ok


# -- values arrive final: FLOAT, LIST, converters, required_if, reserved names --------------------------------
def test_float_list_and_converter_values_arrive_converted():
    def stages(text):
        if not text.strip():
            raise ValueError("no stages given")
        return tuple(int(w) for w in text.split())
    s = Schema(Param("share", type=FLOAT, default="0.8", checks=[checks.in_range(0.1, 0.95)]),
               Param("scripts", type=LIST, default="", checks=[checks.each(checks.absolute_path)]),
               Param("stages", default="1 2", convert=stages))
    values, problems = s.parse({"share": "0.5", "scripts": "/a /b,/c"})
    assert problems == []
    assert values.share == 0.5 and values.scripts == ("/a", "/b", "/c") and values.stages == (1, 2)
    values, problems = s.parse({})
    assert values.share == 0.8 and values.scripts == () and values.stages == (1, 2)
    assert [p.default_text() for p in s] == ["0.8", "", "1 2"]       # shown as written in the metadata
    values, problems = s.parse({"share": "2", "scripts": "/a rel", "stages": " "})
    messages = sorted(str(p) for p in problems)
    assert messages == ["parameter 'scripts' rel: must be an absolute path",
                        "parameter 'share' must be at most 0.95",
                        "parameter 'stages' no stages given (got ' ')"]
    assert values.share == 0.8 and values.scripts == () and values.stages == (1, 2)


def test_bad_float_is_a_problem():
    _, problems = Schema(Param("f", type=FLOAT)).parse({"f": "nan"})
    assert [str(p) for p in problems] == ["parameter 'f' must be a finite number (got 'nan')"]


def test_required_if():
    s = Schema(Param("migration", choices=("checkpoint", "restart"), default="checkpoint"), Param("dumpdir"),
               required_if=[("migration", "checkpoint", ("dumpdir",))])
    assert [str(p) for p in s.parse({})[1]] == ["parameter 'dumpdir' is required when migration=checkpoint"]
    assert s.parse({"migration": "restart"})[1] == []
    assert s.parse({"dumpdir": "/d"})[1] == []
    with pytest.raises(ValueError):
        Schema(Param("a"), required_if=[("a", "x", ("nope",))])


@pytest.mark.parametrize("name", ["given", "raw", "get", "_given"])
def test_a_name_that_would_shadow_the_values_object_is_refused(name):
    with pytest.raises(ValueError, match="shadow"):
        Schema(Param(name))


def test_checks_ranges_and_advanced_are_described_for_the_metadata():
    p = Param("t", type=TIME, default=5.0, checks=[checks.in_range(1, 60)], advanced=True)
    assert p.notes() == ["Range: 1 to 60.", "Advanced: the default suits almost every cluster."]
    assert Param("c", checks=[checks.absolute_path, checks.existing_file]).notes() == [
        "Must be an absolute path.", "Must be a readable file on the node that runs the resource."]
    assert Param("x", checks=[checks.single_line]).notes() == []
