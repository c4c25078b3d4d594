"""`make deb` and the Debian package it builds (build/deb/pyra_<version>_all.deb): exactly what `make install`
installs, with the version of lib/pyra/__init__.py; lintian finds no error; `apt-get install` of the file works
on this release, the agents then pass ocf-tester, and `apt-get purge` leaves nothing (the byte-compiled files
included: dh_python3's py3compile/py3clean own them).

The host's /usr is shared with tests/real/test_install.py and the cluster lab, which install pyra with `make
install` (or this package, PYRA_INSTALL=package): this module `make uninstall`s before installing the package
(dpkg then owns every path) and, after the purge, puts back what was there before."""

import os
import subprocess

import pytest

import pyra
from harness import REPO, list_agents, ocf_tester

pytestmark = pytest.mark.root

VERSION = pyra.__version__
DEB = os.path.join(REPO, "build", "deb", "pyra_%s_all.deb" % VERSION)
OCFDIR = "/usr/lib/ocf/resource.d/pyra"
PYDIR = "/usr/lib/python3/dist-packages/pyra"
PYRA = "/usr/sbin/pyra"
DROPIN_DIR = "/usr/lib/systemd/system/resource-agents-deps.target.d"
DOCDIR = "/usr/share/doc/pyra"
COMPLETION = "/usr/share/bash-completion/completions/pyra"
PATH = "/usr/sbin:/usr/bin:/sbin:/bin"
APT = ["apt-get", "-o", "DPkg::Lock::Timeout=600", "-y", "-q"]


def run(argv, timeout=120, cwd="/", env=None):
    environ = {"PATH": PATH, "LC_ALL": "C", "DEBIAN_FRONTEND": "noninteractive"}
    environ.update(env or {})
    result = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            timeout=timeout, cwd=cwd, env=environ)
    return result.returncode, result.stdout.decode("utf-8", "replace")


def make(*args, timeout=300):
    return run(["make", "-C", REPO, "--no-print-directory"] + list(args), timeout=timeout, cwd=REPO)


def package_status():
    """dpkg's status of pyra, None when dpkg has no record of it (never installed, or purged)."""
    rc, out = run(["dpkg-query", "-W", "-f=${Status}", "pyra"], timeout=60)
    return out.strip() if rc == 0 else None


def package_installed():
    return package_status() == "install ok installed"


def everything_of_pyra():
    """Every path pyra puts on a system that exists now, from the package or `make install`."""
    found = [p for p in (OCFDIR, PYDIR, PYRA, DROPIN_DIR, DOCDIR, COMPLETION) if os.path.lexists(p)]
    for mandir, prefix in (("/usr/share/man/man7", "ocf_pyra_"), ("/usr/share/man/man8", "pyra.8")):
        found += [os.path.join(mandir, n) for n in os.listdir(mandir) if n.startswith(prefix)]
    return sorted(found)


@pytest.fixture(scope="module")
def deb():
    rc, out = make("deb", timeout=900)
    assert rc == 0, out[-4000:]
    assert os.path.isfile(DEB), out[-2000:]
    return DEB


def restore(state):
    """Put back how pyra was installed before the module ran (once): nothing, `make install`, or the package."""
    before = state.pop("before", None)
    if before == "make":
        return make("install", "PY=/usr/bin/python3")
    if before == "package":
        return run(APT + ["install", "--no-install-recommends", "--reinstall", DEB], timeout=900)
    return 0, ""


@pytest.fixture(scope="module")
def package(deb):
    """The package installed from the file, as an admin would; the host's previous state back afterwards."""
    state = {"before": "package" if package_installed() else "make" if os.path.isdir(PYDIR) else None}
    if package_installed():  # a fresh install: from nothing, not over itself
        rc, out = run(APT + ["purge", "pyra"], timeout=900)
        assert rc == 0, out[-4000:]
    rc, out = make("uninstall")
    assert rc == 0, out
    rc, out = run(APT + ["install", "--no-install-recommends", deb], timeout=900)
    assert rc == 0 and package_installed(), out[-4000:]
    yield state
    if "before" in state:  # the purge test did not run to its end
        if package_installed():
            run(APT + ["purge", "pyra"], timeout=900)
        restore(state)


def deb_field(deb, field):
    rc, out = run(["dpkg-deb", "--field", deb, field], timeout=60)
    assert rc == 0, out
    return out.strip()


def test_the_deb_holds_what_make_install_installs(deb, tmp_path):
    assert deb_field(deb, "Package") == "pyra"
    assert deb_field(deb, "Version") == VERSION
    assert deb_field(deb, "Architecture") == "all"
    depends = [d.strip() for d in deb_field(deb, "Depends").split(",")]
    assert {"python3 (>= 3.11)", "python3-lxml", "resource-agents"} <= set(depends)
    listing = subprocess.run(["dpkg-deb", "--contents", deb], stdout=subprocess.PIPE, timeout=60, check=True)
    in_deb = {line.split(None, 5)[5].split(" -> ")[0].lstrip(".") for line in listing.stdout.decode().splitlines()
              if not line.startswith("d")}
    dest = str(tmp_path / "root")
    rc, out = make("install", "DESTDIR=" + dest)
    assert rc == 0, out
    by_make = set()
    for base, _dirs, files in os.walk(dest):
        for name in files:
            path = os.path.join(base, name)[len(dest):]
            if "/__pycache__/" in path:
                continue  # compiled at install time by py3compile, not shipped
            by_make.add(path + ".gz" if path.startswith("/usr/share/man/") else path)
    assert {p for p in in_deb if not p.startswith(DOCDIR + "/")} == by_make
    assert {p for p in in_deb if p.startswith(DOCDIR + "/")} == {DOCDIR + "/copyright", DOCDIR + "/changelog.gz"}


def test_lintian_finds_no_error(deb):
    rc, out = run(["lintian", "--tag-display-limit", "0", deb], timeout=600)
    errors = [line for line in out.splitlines() if line.startswith("E:")]
    assert errors == [], out
    warnings = sorted({line.split()[2] for line in out.splitlines() if line.startswith("W:")})
    print("lintian warnings:", " ".join(warnings) or "none")


def test_the_installed_package(package):
    rc, out = run(["dpkg-query", "-W", "-f=${Version}", "pyra"], timeout=60)
    assert out.strip() == VERSION
    rc, listed = run(["dpkg", "-L", "pyra"], timeout=60)
    listed = set(listed.split())
    for agent in list_agents():
        assert OCFDIR + "/" + agent in listed and os.access(OCFDIR + "/" + agent, os.X_OK)
        assert "/usr/share/man/man7/ocf_pyra_%s.7.gz" % agent in listed
    for path in (PYRA, COMPLETION, DROPIN_DIR + "/pyra.conf", "/usr/share/man/man8/pyra.8.gz", PYDIR + "/ocf/agent.py"):
        assert path in listed and os.path.isfile(path), path
    # py3compile ran in postinst: the library is byte-compiled for the system python
    assert any(n.endswith(".pyc") for n in os.listdir(PYDIR + "/ocf/__pycache__"))
    rc, out = run([PYRA, "--version"], timeout=60)
    assert rc == 0 and out.strip() == "pyra " + VERSION, out


@pytest.mark.parametrize("agent", list_agents())
def test_the_installed_agents_answer_meta_data(package, agent):
    rc, out = run(["env", "-i", "OCF_ROOT=/usr/lib/ocf", OCFDIR + "/" + agent, "meta-data"], timeout=60)
    assert rc == 0 and out.startswith("<?xml"), out
    if agent == "PyraExample":
        assert '<resource-agent name="PyraExample" version="%s">' % VERSION in out


def test_ocf_tester_passes_on_the_packaged_example(package, tmp_path):
    rc, output = ocf_tester(OCFDIR + "/PyraExample", {"state_dir": str(tmp_path / "state")}, name="t",
                            env={"HA_RSCTMP": str(tmp_path / "rsctmp")})
    assert rc == 0, output
    assert "passed all tests" in output


def test_purge_leaves_nothing(package):
    rc, out = run(APT + ["purge", "pyra"], timeout=900)
    assert rc == 0 and package_status() in (None, "unknown ok not-installed"), out[-4000:]
    leftovers = everything_of_pyra()
    rc_restore, out_restore = restore(package)  # the host as it was before this module, at once
    assert leftovers == []
    assert rc_restore == 0, out_restore[-4000:]
