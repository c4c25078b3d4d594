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

