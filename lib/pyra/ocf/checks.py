"""Reusable value checks for parameters (the ``checks=`` of a Param).

A check is a callable ``check(value) -> None | str``: None when the value is fine, else a short sentence saying
what is wrong, written for the admin. Checks marked ``environmental`` look at this node (a file exists, a
directory exists): their failure means "not usable here" (OCF 5 / probe 7), not "invalid everywhere" (OCF 6),
and they are skipped on nodes where the environment is not expected to be visible (probes, stop).
"""

import os


def _named(name, environmental=False):
    def wrap(fn):
        fn.check_name = name
        fn.environmental = environmental
        return fn
    return wrap


@_named("absolute path")
def absolute_path(value):
    if not isinstance(value, str) or not value.startswith("/"):
        return "must be an absolute path"
    if "\0" in value:
        return "must not contain a NUL byte"
    return None


@_named("single line")
def single_line(value):
    if isinstance(value, str) and ("\n" in value or "\r" in value or "\0" in value):
        return "must be a single line"
    return None


@_named("simple name")
def simple_name(value):
    """A name used inside paths or command lines: no slash, no leading dot or dash, printable ASCII."""
    if not value:
        return "must not be empty"
    if value.startswith(("-", ".")) or "/" in value:
        return "must not start with '-' or '.', nor contain '/'"
    for ch in value:
        if not (ch.isascii() and (ch.isalnum() or ch in "_-.:+@")):
            return "may only contain letters, digits and _-.:+@"
    return None


@_named("existing file", environmental=True)
def existing_file(value):
    if not os.path.isfile(value):
        return "file %s does not exist on this node" % value
    if not os.access(value, os.R_OK):
        return "file %s is not readable" % value
    return None


@_named("existing directory", environmental=True)
def existing_directory(value):
    if not os.path.isdir(value):
        return "directory %s does not exist on this node" % value
    return None


def in_range(low=None, high=None):
    """A number between ``low`` and ``high`` inclusive (either may be None)."""
    @_named("range")
    def check(value):
        if low is not None and value < low:
            return "must be at least %s" % (low,)
        if high is not None and value > high:
            return "must be at most %s" % (high,)
        return None
    return check


def max_length(limit):
    @_named("length")
    def check(value):
        if value is not None and len(value) > limit:
            return "must be at most %d characters" % limit
        return None
    return check
