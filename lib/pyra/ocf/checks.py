"""Reusable value checks for parameters (the ``checks=`` of a Param).

A check is a callable ``check(value) -> None | str``: None when the value is fine, else a short sentence saying
what is wrong, written for the admin. Its ``describe`` sentence says what it demands, for the metadata and
the man page. Checks marked ``environmental`` look at this node (a file exists, a
directory exists): their failure means "not usable here" (OCF 5 / probe 7), not "invalid everywhere" (OCF 6),
and they are skipped on nodes where the environment is not expected to be visible (probes, stop).
"""

import os


def named(name, describe, environmental=False):
    """Mark a function as a check: its name for logs, its ``describe`` sentence, whether it looks at this node."""
    def wrap(fn):
        fn.check_name = name
        fn.describe = describe
        fn.environmental = environmental
        return fn
    return wrap


@named("absolute path", "Must be an absolute path.")
def absolute_path(value):
    if not isinstance(value, str) or not value.startswith("/"):
        return "must be an absolute path"
    if "\0" in value:
        return "must not contain a NUL byte"
    return None


@named("single line", None)
def single_line(value):
    if isinstance(value, str) and ("\n" in value or "\r" in value or "\0" in value):
        return "must be a single line"
    return None


@named("simple name", "Letters, digits and _-.:+@ only, not starting with '-' or '.'.")
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


@named("existing file", "Must be a readable file on the node that runs the resource.", environmental=True)
def existing_file(value):
    if not os.path.isfile(value):
        return "file %s does not exist on this node" % value
    if not os.access(value, os.R_OK):
        return "file %s is not readable" % value
    return None


def in_range(low=None, high=None):
    """A number between ``low`` and ``high`` inclusive (either may be None)."""
    if low is not None and high is not None:
        describe = "Range: %s to %s." % (low, high)
    elif low is not None:
        describe = "At least %s." % (low,)
    else:
        describe = "At most %s." % (high,)

    @named("range", describe)
    def check(value):
        if low is not None and value < low:
            return "must be at least %s" % (low,)
        if high is not None and value > high:
            return "must be at most %s" % (high,)
        return None
    return check


def each(check):
    """Apply ``check`` to every item of a LIST value."""
    @named(check.check_name, check.describe and "Each item: " + check.describe[0].lower() + check.describe[1:],
           check.environmental)
    def check_items(values):
        for item in values:
            message = check(item)
            if message:
                return "%s: %s" % (item, message)
        return None
    return check_items
