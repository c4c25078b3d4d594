"""``pyra`` entry point: the subcommand table, the exit codes, and the rule that every failure is one line.

Exit codes (documented in pyra(8)):
  0 success; 1 the operation failed (the cluster or libvirt said no, or it did not settle in time);
  2 bad usage (argparse); 3 no such resource or guest; 4 not a pyra resource; 5 the cluster cannot be
  reached (no CIB, no crm_mon); 6 libvirt on the guest's node cannot be reached; 7 bad domain XML;
  8 the guest is not running (console, reset ... of a stopped guest); 130 interrupted.
"""

import argparse
import importlib
import sys

OK, FAILED, USAGE, NOT_FOUND, NOT_PYRA, NO_CLUSTER, NO_LIBVIRT, BAD_XML, NOT_RUNNING = 0, 1, 2, 3, 4, 5, 6, 7, 8
INTERRUPTED = 130

# Each module registers its subcommands (``register(subparsers)``); its handlers take the parsed arguments
# and return an exit code (None: 0) or raise CliError.
COMMANDS = ("pyra.cli.listing", "pyra.cli.vm", "pyra.cli.domxml", "pyra.cli.domadd", "pyra.cli.node")


class CliError(Exception):
    """A failure to report as one line on stderr, with its exit code."""

    def __init__(self, message, code=FAILED):
        super().__init__(message)
        self.message = message
        self.code = code


def build_parser():
    from pyra import __version__
    parser = argparse.ArgumentParser(prog="pyra", description="Operate pyra's guests and containers in a "
                                     "Pacemaker cluster (see pyra(8)).")
    parser.add_argument("--version", action="version", version="pyra %s" % __version__)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name in COMMANDS:
        try:
            module = importlib.import_module(name)
        except ImportError as err:
            if err.name != name:
                raise
            continue  # a subcommand module not written yet
        module.register(sub)
    return parser


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        code = args.func(args)
    except CliError as err:
        sys.stderr.write("pyra: %s\n" % err.message.strip().splitlines()[0] if err.message.strip() else "pyra: "
                         "failed\n")
        return err.code
    except KeyboardInterrupt:
        sys.stderr.write("pyra: interrupted\n")
        return INTERRUPTED
    return OK if code is None else code
