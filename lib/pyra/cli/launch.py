#!/usr/bin/python3
"""The executable ``pyra`` (installed as /usr/sbin/pyra; in the source tree ``sbin/pyra`` links here)."""
import os
import sys

_HERE = os.path.dirname(os.path.realpath(__file__))
_SOURCE_LIB = os.path.dirname(os.path.dirname(_HERE))  # lib/ when this is lib/pyra/cli/launch.py
if os.path.isfile(os.path.join(_SOURCE_LIB, "pyra", "__init__.py")):
    sys.path.insert(0, _SOURCE_LIB)

from pyra.cli.main import main  # noqa: E402

sys.exit(main())
