"""The tests named in tests/FAULTS.md (issue 8's fault, bad-input and hardening table), one pytest node id per
line; ``make test-faults`` runs exactly these. Usable as a script: ``/usr/bin/python3 tests/faults_table.py``."""
import os
import re
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
TABLE = os.path.join(HERE, "FAULTS.md")
NODE = re.compile(r"`(tests/[\w/.-]+\.py(?:::\w+)?)`")


def node_ids(path=TABLE):
    """Node ids in table order, without repeats."""
    with open(path, encoding="utf-8") as handle:
        text = handle.read()
    seen = []
    for match in NODE.finditer(text):
        if match.group(1) not in seen:
            seen.append(match.group(1))
    return seen


if __name__ == "__main__":
    sys.stdout.write("".join(n + "\n" for n in node_ids()))
