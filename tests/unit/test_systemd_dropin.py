"""The systemd drop-in dist/systemd/resource-agents-deps.target.d/pyra.conf (installed by `make install` and the
package as /usr/lib/systemd/system/resource-agents-deps.target.d/pyra.conf): pacemaker.service is After= and
Wants= resource-agents-deps.target, so what the target is ordered After= stops only once Pacemaker stopped,
which has migrated or stopped the guests and containers by then."""

import os
import re
import shutil
import subprocess

import pytest

from harness import REPO

DROPIN = os.path.join(REPO, "dist", "systemd", "resource-agents-deps.target.d", "pyra.conf")
INSTALLED = "/usr/lib/systemd/system/resource-agents-deps.target.d/pyra.conf"
UNIT_NAME = re.compile(r"^[A-Za-z0-9:_.\\@-]+\.(service|socket|target|mount)$")
# What must be still up while Pacemaker stops pyra's resources (issue item 5).
MUST_OUTLIVE_PACEMAKER = {
    "libvirtd.service", "libvirtd.socket", "virtqemud.service", "virtqemud.socket", "virtlxcd.service",
    "virtlogd.service", "virtlogd.socket", "virtlockd.service", "libvirt-guests.service",
    "lxc.service", "lxcfs.service", "vz.service",
    "lvmlockd.service", "lvmlocks.service", "sanlock.service", "dlm.service", "blk-availability.service",
}


def parse(path):
    """[(section, key, value)] of a systemd unit file (comments and blank lines dropped)."""
    entries, section = [], None
    with open(path, encoding="utf-8") as handle:
        for number, raw in enumerate(handle, 1):
            line = raw.strip()
            if not line or line[0] in "#;":
                continue
            assert not line.endswith("\\"), "%s:%d: no continuation lines" % (path, number)
            if line.startswith("[") and line.endswith("]"):
                section = line[1:-1]
                continue
            key, sep, value = line.partition("=")
            assert sep and section, "%s:%d: not a key=value in a section: %r" % (path, number, line)
            entries.append((section, key.strip(), value.strip()))
    return entries


def after_units():
    return [unit for _, key, value in parse(DROPIN) if key == "After" for unit in value.split()]


def test_the_dropin_only_orders():
    entries = parse(DROPIN)
    assert entries and {section for section, _, _ in entries} == {"Unit"}
    # After= only: no Requires=/BindsTo= (a node without libvirt must still start Pacemaker), no Wants= (it would
    # start daemons the node does not use; libvirtd and the modular virtqemud conflict), no Before=
    assert {key for _, key, _ in entries} == {"After"}


def test_the_dropin_names_every_unit_that_must_outlive_pacemaker():
    units = after_units()
    assert len(units) == len(set(units)), "a unit named twice"
    assert [u for u in units if not UNIT_NAME.match(u)] == []
    assert MUST_OUTLIVE_PACEMAKER - set(units) == set()
    # never Pacemaker's own stack: that would be an ordering cycle with pacemaker.service
    assert not {"pacemaker.service", "corosync.service", "resource-agents-deps.target"} & set(units)


def test_make_install_puts_it_where_systemd_reads_drop_ins():
    with open(os.path.join(REPO, "Makefile")) as handle:
        makefile = handle.read()
    assert "dist/systemd/resource-agents-deps.target.d/pyra.conf $(DESTDIR)%s" % INSTALLED in makefile
    assert "rm -f $(DESTDIR)%s" % INSTALLED in makefile


def _verify(unit_dir):
    env = dict(os.environ, SYSTEMD_UNIT_PATH=str(unit_dir) + ":", SYSTEMD_LOG_COLOR="0", SYSTEMD_PAGER="")
    result = subprocess.run(["systemd-analyze", "verify", "--man=no", str(unit_dir / "resource-agents-deps.target")],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, timeout=120,
                            stdin=subprocess.DEVNULL)
    return result.returncode, result.stdout.decode("utf-8", "replace")


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed")
def test_systemd_analyze_verify_accepts_the_target_with_the_dropin(tmp_path):
    # The target as resource-agents ships it (or its shape), the drop-in beside it as systemd looks for it.
    shipped = "/usr/lib/systemd/system/resource-agents-deps.target"
    if os.path.isfile(shipped):
        shutil.copy(shipped, tmp_path / "resource-agents-deps.target")
    else:
        (tmp_path / "resource-agents-deps.target").write_text("[Unit]\nDescription=resource-agents dependencies\n")
    dropins = tmp_path / "resource-agents-deps.target.d"
    dropins.mkdir()
    shutil.copy(DROPIN, dropins / "pyra.conf")
    rc, output = _verify(tmp_path)
    assert rc == 0 and "pyra.conf" not in output, output
    # ... and it did read the drop-in: a bad key in it is reported
    with open(dropins / "pyra.conf", "a") as handle:
        handle.write("NoSuchKeyForPyra=1\n")
    rc, output = _verify(tmp_path)
    assert "pyra.conf" in output and "NoSuchKeyForPyra" in output, output
