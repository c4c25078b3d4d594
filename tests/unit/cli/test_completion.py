"""tools/completion/pyra: subcommands, actions and options from pyra's own --help, guests from the CIB (only
ocf:pyra:TransientDomain) and nodes from crm_node (fakes on PATH), with or without the bash-completion package."""

import os
import shutil
import subprocess
import sys

import pytest

from harness import REPO

SCRIPT = os.path.join(REPO, "tools", "completion", "pyra")
CIB = ('<resources><group id="g-gum"><primitive id="gum-vda" class="ocf" provider="pyra" type="LVMFilesystem"/>'
       '<primitive id="gum" class="ocf" provider="pyra" type="TransientDomain"/></group>'
       '<primitive id="fence" class="stonith" type="fence_x"/>'
       '<primitive id="vd" class="ocf" provider="heartbeat" type="VirtualDomain"/></resources>')


@pytest.fixture(scope="module")
def fakebin(tmp_path_factory):
    if not shutil.which("bash"):
        pytest.skip("no bash")
    d = tmp_path_factory.mktemp("bin")
    for name, body in (("pyra", 'exec %s %s "$@"' % (sys.executable, os.path.join(REPO, "sbin", "pyra"))),
                       ("cibadmin", "cat <<'X'\n%s\nX" % CIB),
                       ("crm_node", "echo '1 n1 member'; echo '2 n2 member'")):
        path = d / name
        path.write_text("#!/bin/sh\n%s\n" % body)
        path.chmod(0o755)
    return str(d)


def complete(fakebin, *words):
    words = list(words)
    script = ("source %s\nCOMP_WORDS=(%s)\nCOMP_CWORD=%d\nCOMP_LINE=\"${COMP_WORDS[*]}\"\n"
              "COMP_POINT=${#COMP_LINE}\n_pyra\nprintf '%%s\\n' \"${COMPREPLY[@]}\"\n"
              % (SCRIPT, " ".join("'%s'" % w for w in words), len(words) - 1))
    res = subprocess.run(["bash", "--norc", "--noprofile", "-c", script], capture_output=True, text=True,
                         timeout=60, env={"PATH": fakebin + ":/usr/bin:/bin", "HOME": "/nonexistent"})
    assert res.stderr == "", res.stderr
    return [w for w in res.stdout.splitlines() if w]


def test_subcommands_and_options(fakebin):
    assert {"create-domxml", "domadd", "--help", "--version"} <= set(complete(fakebin, "pyra", ""))
    assert complete(fakebin, "pyra", "cre") == ["create-domxml"]
    opts = complete(fakebin, "pyra", "create-domxml", "--")
    assert {"--name", "--cpus", "--mem", "--disk", "--bridge", "--ovs", "--vlan", "--mac", "--console-log",
            "--output"} <= set(opts)
    assert complete(fakebin, "pyra", "create-domxml", "--type", "") == ["kvm", "qemu"]
    assert complete(fakebin, "pyra", "domadd", "--disk-group", "") == ["auto", "none"]
    assert set(complete(fakebin, "pyra", "domadd", "--d")) == {"--disk-group", "--dry-run"}


def test_guest_and_node_names(fakebin):
    if not os.path.exists(os.path.join(REPO, "lib", "pyra", "cli", "vm.py")):
        pytest.skip("pyra vm does not exist yet")
    assert complete(fakebin, "pyra", "vm", "") == ["gum"]
    assert "migrate" in complete(fakebin, "pyra", "vm", "gum", "")
    assert complete(fakebin, "pyra", "vm", "gum", "migrate", "") == ["n1", "n2"]
