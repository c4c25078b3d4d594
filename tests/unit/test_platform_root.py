"""tools/platform-root.sh: `make test` runs the suite again inside a root of the other supported release."""

import subprocess

from harness import REPO

SCRIPT = REPO + "/tools/platform-root.sh"


def codename():
    with open("/etc/os-release", encoding="utf-8") as handle:
        for line in handle:
            if line.startswith("VERSION_CODENAME="):
                return line.split("=", 1)[1].strip().strip('"')
    return ""


def test_other_is_the_supported_release_this_machine_is_not():
    r = subprocess.run(["sh", SCRIPT, "other"], capture_output=True, text=True, timeout=30)
    here = codename()
    if here in ("bookworm", "trixie"):
        assert r.returncode == 0, r.stderr
        assert r.stdout.strip() == {"bookworm": "trixie", "trixie": "bookworm"}[here]
    else:
        assert r.returncode == 1 and "neither Debian 12 nor 13" in r.stderr


def test_usage_errors_exit_2():
    for argv in ([], ["build"], ["frobnicate", "trixie"], ["run", "trixie"]):
        r = subprocess.run(["sh", SCRIPT] + argv, capture_output=True, text=True, timeout=30)
        assert r.returncode == 2 and "usage" in r.stderr, (argv, r)



def test_the_tools_that_build_a_root_are_in_the_dependency_lists():
    """A fresh CI machine has only what `make deps` installs: the root's builder must be in tools/deps (a fresh
    Debian 12 machine once failed `make test` with "debootstrap: not found")."""
    import glob
    import re
    listed = set()
    for path in glob.glob(REPO + "/tools/deps/*.txt"):
        with open(path, encoding="utf-8") as handle:
            listed.update(w for line in handle for w in line.split("#")[0].split())
    with open(SCRIPT, encoding="utf-8") as handle:
        script = handle.read()
    for tool, package in (("debootstrap", "debootstrap"), ("unshare", "util-linux"), ("chroot", None)):
        if re.search(r"\b%s\b" % tool, script) and package:
            assert package in listed, "%s (package %s) is not in tools/deps" % (tool, package)
