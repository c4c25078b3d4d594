"""The suite itself: test modules live in directories without __init__.py, so pytest imports them by their
basename; two with the same name in different directories make the whole collection fail."""
import collections
import os

TESTS = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_test_module_basenames_are_unique():
    seen = collections.defaultdict(list)
    for root, dirs, files in os.walk(TESTS):
        dirs[:] = [d for d in dirs if d != "__pycache__"]
        for name in files:
            if name.startswith("test_") and name.endswith(".py"):
                seen[name].append(os.path.relpath(os.path.join(root, name), TESTS))
    assert {n: p for n, p in seen.items() if len(p) > 1} == {}
