"""Teardown (issue 17): `pyralab down` (what `make demo-down` runs) returns only when nothing of the lab is left.

A new user ran `make demo-down` and, right after it returned, still found corosync and libvirtd processes of
the nodes (zombies their parent had yet to reap). This test runs last in the session (conftest orders it):
it gives the lab what the demo has (a libvirtd per node, an LV activated by the dm stand-in and mounted
inside a node), records every process and namespace of every node, tears the lab down, and checks at once,
with the host's own tools rather than the lab's bookkeeping, that no process (zombies included), namespace,
loop device or mount of the lab remains.
"""
import os
import subprocess

import pytest

from lab import dmstandin, pyralab, sanstorage

pytestmark = [pytest.mark.root, pytest.mark.cluster, pytest.mark.netns, pytest.mark.slow]

VG = "pyra_pcmk_down"


def in_proc(pid, start):
    """The process is still in /proc, as anything (a zombie too)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            raw = f.read()
    except OSError:
        return False
    return int(raw[raw.rindex(b")") + 2:].split()[19]) == start


def ns_members(inodes):
    """PIDs of every process on the machine (zombies cannot say) in one of the given namespaces."""
    found = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            for kind in ("net", "mnt", "uts"):
                try:
                    if os.stat(f"/proc/{name}/ns/{kind}").st_ino in inodes:
                        found.append(int(name))
                except OSError:
                    continue
    return found


def test_down_returns_when_nothing_of_the_lab_is_left(lab):
    lab.enable_libvirt()
    san = sanstorage.San(lab)
    san.lun(VG, "32M")
    san.fill(VG, lambda path: None)
    node_env = {"PATH": pyralab.PCMK_ENV["PATH"]}
    lab.exec("n1", ["lvm", "lvchange", "-aey", f"{VG}/data"], env=node_env, check=True)
    lab.exec("n1", ["mkdir", "-p", f"{sanstorage.MNT}/{VG}"], check=True)
    lab.exec("n1", ["mount", f"/dev/mapper/{dmstandin.dm_name(VG, 'data')}", f"{sanstorage.MNT}/{VG}"], check=True)
    loops_before = set(pyralab.lab_loops())
    assert any(back.startswith("/dev/loop") for _, back in loops_before)  # the stand-in's LV device, over the LUN

    processes = {}
    inodes = set()
    for n in lab.nodes:
        for pid in lab.node_pids(n):
            st = pyralab.proc_state(pid)
            if st:
                processes[pid] = st[2]
        inodes.update(i for i in lab.node_record(n) if i)
        inodes.add(os.stat(f"{pyralab.NSD}/{lab.netns(n)}.uts").st_ino)
    names = {pyralab.comm(p) for p in processes}
    assert {"corosync", "pacemakerd", "libvirtd"} <= names, names

    lab.down()

    left = [f"{pid} {pyralab.comm(pid)}" for pid, start in processes.items() if in_proc(pid, start)]
    assert left == [], "processes of the nodes still in /proc right after down: %s" % left
    assert ns_members(inodes) == []
    netns = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True).stdout
    assert pyralab.PREFIX not in netns, netns
    loops = subprocess.run(["losetup", "-l", "-n", "-O", "NAME,BACK-FILE"], capture_output=True, text=True,
                           check=True).stdout
    rows = {tuple(line.split(None, 1)) for line in loops.splitlines()}
    assert pyralab.LAB not in loops and not rows & loops_before, loops
    with open("/proc/self/mountinfo", encoding="utf-8") as f:
        mounts = [line for line in f if "pyra-pcmk" in line or dmstandin.OVERLAY in line]
    assert mounts == []
    for name in ("corosync", "pacemakerd", "pacemaker-fenced", "pacemaker-controld"):
        res = subprocess.run(["pgrep", "-a", "-x", name], capture_output=True, text=True)
        assert res.stdout == "", f"{name} still running right after down:\n{res.stdout}"
    assert not os.path.exists(pyralab.LAB) and not os.path.exists(pyralab.RUN)
    assert not os.path.exists(pyralab.FENCE_DST)
    assert pyralab.leftovers(processes) == []
