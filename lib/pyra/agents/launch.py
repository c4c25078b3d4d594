#!/usr/bin/python3 -S
"""The executable behind every ocf:pyra agent.

In the source tree ``agents/<Agent>`` is a symbolic link to this file; ``make install`` copies it under each
agent's name into the OCF provider directory. The agent is the name it was invoked as. ``-S`` skips the site
module (~4 ms of every monitor); the one directory it would have added for us, Debian's dist-packages (the
installed pyra, python3-libvirt, python3-lxml), is appended by hand.
"""
import os
import sys

_HERE = os.path.dirname(os.path.realpath(__file__))
_SOURCE_LIB = os.path.dirname(os.path.dirname(_HERE))  # lib/ when this is lib/pyra/agents/launch.py
if os.path.isfile(os.path.join(_SOURCE_LIB, "pyra", "__init__.py")):
    sys.path.insert(0, _SOURCE_LIB)
sys.path.append("/usr/lib/python3/dist-packages")

from pyra.agents import AGENTS, load  # noqa: E402
from pyra.ocf.agent import main  # noqa: E402

_NAME = os.path.basename(sys.argv[0])
if _NAME not in AGENTS:
    sys.stderr.write("ocf-exit-reason:no pyra agent is named %s (known: %s)\n" % (_NAME, ", ".join(sorted(AGENTS))))
    sys.exit(5)
main(load(_NAME))
