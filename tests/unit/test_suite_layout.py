"""The suite itself: every directory that holds test modules is a package, so pytest names each module by its
path (tests.unit.agents.test_vserver beside tests.unit.backends.test_vserver) and two modules with the same
basename in different directories can never break the collection of the whole suite."""
import os

TESTS = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_every_test_directory_is_a_package():
    missing = []
    for root, dirs, files in os.walk(TESTS):
        dirs[:] = [d for d in dirs if d not in ("__pycache__", "fakes", "schemas")]
        if any(n.startswith("test_") and n.endswith(".py") for n in files) or root == TESTS:
            if "__init__.py" not in files:
                missing.append(os.path.relpath(root, TESTS))
    assert missing == []


def _packages(path):
    return {d for d in os.listdir(path) if os.path.isfile(os.path.join(path, d, "__init__.py"))}


def test_tests_mirror_the_library():
    library = _packages(os.path.join(os.path.dirname(TESTS), "lib", "pyra"))
    assert {"ocf", "host", "backends", "agents"} <= library
    assert _packages(os.path.join(TESTS, "unit")) == library
