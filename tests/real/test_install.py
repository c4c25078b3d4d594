"""`make install` / `make uninstall`: agents run exactly as Pacemaker runs them, with the system python; the
operator's command /usr/sbin/pyra, its man page pyra.8, its bash completion and the systemd drop-in that orders
Pacemaker's shutdown before libvirt's, LXC's and LVM's go and come with them."""

import os
import subprocess

import pytest

from harness import REPO, list_agents, ocf_tester

pytestmark = pytest.mark.root

OCFDIR = "/usr/lib/ocf/resource.d/pyra"
PYDIR = "/usr/lib/python3/dist-packages/pyra"
PYRA = "/usr/sbin/pyra"
PYRA_MAN = "/usr/share/man/man8/pyra.8"
PYRA_COMPLETION = "/usr/share/bash-completion/completions/pyra"
DROPIN = "/usr/lib/systemd/system/resource-agents-deps.target.d/pyra.conf"
DROPIN_SOURCE = os.path.join(REPO, "dist", "systemd", "resource-agents-deps.target.d", "pyra.conf")


def make(*args, **kw):
    return subprocess.run(["make", "-C", REPO, "--no-print-directory"] + list(args), stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, timeout=300, **kw)


def test_install_and_uninstall_into_destdir(tmp_path):
    dest = str(tmp_path / "root")
    result = make("install", "DESTDIR=" + dest)
    assert result.returncode == 0, result.stdout.decode()
    for agent in list_agents():
        path = dest + OCFDIR + "/" + agent
        assert os.access(path, os.X_OK)
        assert os.path.isfile(dest + "/usr/share/man/man7/ocf_pyra_%s.7" % agent)
    assert os.path.isfile(dest + PYDIR + "/ocf/agent.py")
    assert any(n.endswith(".pyc") for n in os.listdir(dest + PYDIR + "/ocf/__pycache__"))
    assert os.access(dest + PYRA, os.X_OK)
    assert os.path.isfile(dest + PYRA_MAN) and os.path.isfile(dest + PYRA_COMPLETION)
    assert same_file(dest + DROPIN, DROPIN_SOURCE)
    # the staged command runs on the staged library (a DESTDIR install names the final paths: point python at it)
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "PYTHONPATH": os.path.dirname(dest + PYDIR)}
    where = subprocess.run([dest + PYRA, "--version"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env,
                           timeout=30, cwd="/")
    assert where.returncode == 0 and where.stdout.startswith(b"pyra "), where.stdout
    with open(dest + PYRA) as handle:
        assert 'sys.path.append("/usr/lib/python3/dist-packages")' in handle.read()
    result = make("uninstall", "DESTDIR=" + dest)
    assert result.returncode == 0, result.stdout.decode()
    leftovers = [os.path.join(d, f) for d, _, files in os.walk(dest) for f in files]
    assert leftovers == []
    assert not os.path.exists(os.path.dirname(dest + DROPIN))


def same_file(path, source):
    if not os.path.isfile(path):
        return False
    with open(path, "rb") as a, open(source, "rb") as b:
        return a.read() == b.read()


@pytest.fixture(scope="module")
def installed():
    was_installed = os.path.isdir(PYDIR)
    result = make("install")
    assert result.returncode == 0, result.stdout.decode()
    yield
    if not was_installed:
        make("uninstall")


@pytest.mark.parametrize("agent", list_agents())
def test_installed_agent_runs_with_a_bare_environment(installed, agent, tmp_path):
    base = ["env", "-i", "OCF_ROOT=/usr/lib/ocf", "OCF_RESOURCE_INSTANCE=probe-" + agent.lower(),
            "HA_RSCTMP=" + str(tmp_path), "OCF_RESKEY_CRM_meta_interval=0"]
    meta = subprocess.run(base + [OCFDIR + "/" + agent, "meta-data"], stdout=subprocess.PIPE, timeout=30)
    assert meta.returncode == 0 and meta.stdout.startswith(b"<?xml")
    # A probe with no parameters at all, on a node that has nothing of this resource: 7, never 5/6/1.
    probe = subprocess.run(base + [OCFDIR + "/" + agent, "monitor"], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, timeout=60)
    assert probe.returncode == 7, probe.stderr.decode()
    # The library it imported is the installed one, not the source tree.
    where = subprocess.run(["env", "-i", "/usr/bin/python3", "-c", "import pyra; print(pyra.__file__)"],
                           stdout=subprocess.PIPE, timeout=30, cwd="/")
    assert where.stdout.decode().strip() == PYDIR + "/__init__.py"


def test_the_systemd_dropin_is_installed(installed):
    assert same_file(DROPIN, DROPIN_SOURCE)
    assert os.stat(DROPIN).st_mode & 0o777 == 0o644


def test_ocf_tester_passes_on_the_installed_example(installed, tmp_path):
    rc, output = ocf_tester(OCFDIR + "/PyraExample", {"state_dir": str(tmp_path / "state")},
                            env={"HA_RSCTMP": str(tmp_path / "rsctmp")})
    assert rc == 0, output
    assert "passed all tests" in output


def test_installed_pyra_runs_with_a_bare_environment(installed, tmp_path):
    env = ["env", "-i", "PATH=/usr/sbin:/usr/bin:/sbin:/bin"]
    version = subprocess.run(env + [PYRA, "--version"], stdout=subprocess.PIPE, timeout=30, cwd="/")
    assert version.returncode == 0 and version.stdout.startswith(b"pyra ")
    where = subprocess.run(env + ["/usr/bin/python3", "-c", "import pyra.cli.main as m; print(m.__file__)"],
                           stdout=subprocess.PIPE, timeout=30, cwd="/")
    assert where.stdout.decode().strip() == PYDIR + "/cli/main.py"
    # every subcommand has --help, and the installed one generates a domain XML
    helps = subprocess.run(env + [PYRA, "--help"], stdout=subprocess.PIPE, timeout=30, cwd="/").stdout.decode()
    for sub in ("create-domxml", "domadd"):
        assert sub in helps
        res = subprocess.run(env + [PYRA, sub, "--help"], stdout=subprocess.PIPE, timeout=30, cwd="/")
        assert res.returncode == 0 and res.stdout.startswith(b"usage: pyra " + sub.encode())
    disk = tmp_path / "d.img"
    disk.write_bytes(b"")
    xml = subprocess.run(env + [PYRA, "create-domxml", "--name", "inst", "--cpus", "1", "--mem", "64m",
                                "--bridge", "br0", "--disk", str(disk)], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, timeout=60, cwd="/")
    assert xml.returncode == 0 and b"<name>inst</name>" in xml.stdout, xml.stderr
    man = subprocess.run(["man", "--warnings", "-l", PYRA_MAN], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         timeout=60, env={"PATH": "/usr/bin:/bin", "MANPAGER": "cat", "MANWIDTH": "100"})
    if man.returncode == 0:
        text = man.stdout.decode()
        assert "EXIT STATUS" in text and "create-domxml" in text and "domadd" in text
        assert man.stderr.decode().strip() == "", man.stderr
    completion = subprocess.run(["bash", "-c", "source %s && complete -p pyra" % PYRA_COMPLETION],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30)
    assert completion.returncode == 0 and b"_pyra" in completion.stdout, completion.stderr
