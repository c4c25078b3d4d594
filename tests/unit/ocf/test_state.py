"""State files: atomic, private, symlink-safe, concurrent-safe, crash memory."""

import multiprocessing
import os
import stat
import subprocess

import pytest

from pyra.ocf.state import InstanceState, StateError, StateFile, safe_component


def test_record_start_identity_and_stop(rsctmp):
    st = InstanceState(rsctmp, "Agent", "vm1")
    assert not st.has_record and st.identity() == {}
    st.record_start({"name": "vm1", "uuid": "1234"})
    fresh = InstanceState(rsctmp, "Agent", "vm1")
    assert fresh.has_record and fresh.identity() == {"name": "vm1", "uuid": "1234"}
    fresh.record_migrated("node2")
    again = InstanceState(rsctmp, "Agent", "vm1")
    assert not again.has_record and again.phase == "migrated" and again.read()["target"] == "node2"
    again.record_stop()
    assert InstanceState(rsctmp, "Agent", "vm1").read() == {}


def test_modes_are_private(rsctmp):
    st = InstanceState(rsctmp, "Agent", "vm1")
    st.record_start({"name": "x"})
    assert stat.S_IMODE(os.stat(st.path).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(os.path.dirname(st.path)).st_mode) == 0o700
    assert stat.S_IMODE(os.stat(os.path.join(rsctmp, "pyra")).st_mode) == 0o700


def test_values_with_newlines_cannot_inject_keys(rsctmp):
    st = InstanceState(rsctmp, "Agent", "vm1")
    st.record_start({"name": "evil\nphase=stopped\\n"})
    again = InstanceState(rsctmp, "Agent", "vm1")
    assert again.phase == "started"
    assert again.identity()["name"] == "evil\nphase=stopped\\n"


def test_instance_names_cannot_escape(rsctmp):
    st = InstanceState(rsctmp, "Agent", "../../etc/passwd")
    st.record_start({"a": "b"})
    assert os.path.dirname(st.path) == os.path.join(rsctmp, "pyra", "Agent")
    assert safe_component("rsc:1") == "rsc:1"
    assert "/" not in safe_component("a/b") and not safe_component("..").startswith(".")


def test_symlinked_state_dir_is_refused(rsctmp, tmp_path):
    target = tmp_path / "elsewhere"
    target.mkdir(mode=0o700)
    os.symlink(str(target), os.path.join(rsctmp, "pyra"))
    with pytest.raises(StateError):
        InstanceState(rsctmp, "Agent", "vm1").record_start({"a": "b"})


def test_group_writable_state_dir_is_refused(rsctmp):
    os.mkdir(os.path.join(rsctmp, "pyra"), 0o700)
    os.chmod(os.path.join(rsctmp, "pyra"), 0o777)
    with pytest.raises(StateError):
        InstanceState(rsctmp, "Agent", "vm1").record_start({"a": "b"})


def test_planted_symlink_as_state_file_is_not_followed(rsctmp, tmp_path):
    st = InstanceState(rsctmp, "Agent", "vm1")
    st.record_start({"a": "b"})
    victim = tmp_path / "victim"
    victim.write_text("precious\n")
    os.unlink(st.path)
    os.symlink(str(victim), st.path)
    assert InstanceState(rsctmp, "Agent", "vm1").read() == {}  # O_NOFOLLOW: not read through
    InstanceState(rsctmp, "Agent", "vm1").record_start({"a": "c"})  # rename replaces the link itself
    assert victim.read_text() == "precious\n"
    assert not os.path.islink(st.path)


def test_unreadable_garbage_is_an_empty_record(tmp_path):
    f = StateFile(str(tmp_path), "x.state")
    (tmp_path / "x.state").write_bytes(b"\xff\xfe garbage without equals\n")
    assert f.read() == {}


def _bump(args):
    rsctmp, n = args
    st = InstanceState(rsctmp, "Agent", "shared")
    for _ in range(n):
        with st.locked():
            st._cache = None
            record = st.read()
            record["count"] = str(int(record.get("count", "0")) + 1)
            st.write(record)


def test_concurrent_updates_are_serialised(rsctmp):
    InstanceState(rsctmp, "Agent", "shared").write({"count": "0"})
    with multiprocessing.get_context("fork").Pool(8) as pool:
        pool.map(_bump, [(rsctmp, 25)] * 8)
    assert InstanceState(rsctmp, "Agent", "shared").read()["count"] == "200"


def _start_many(args):
    rsctmp, index = args
    st = InstanceState(rsctmp, "Agent", "rsc%d" % index)
    for i in range(20):
        st.record_start({"name": "rsc%d" % index, "round": str(i)})
    return st.identity()


def test_twenty_instances_in_parallel_do_not_interfere(rsctmp):
    with multiprocessing.get_context("fork").Pool(20) as pool:
        identities = pool.map(_start_many, [(rsctmp, i) for i in range(20)])
    for i, identity in enumerate(identities):
        assert identity == {"name": "rsc%d" % i, "round": "19"}
    leftovers = [n for n in os.listdir(os.path.join(rsctmp, "pyra", "Agent")) if ".tmp." in n]
    assert leftovers == []


def test_temporary_file_of_a_killed_writer_is_swept(tmp_path):
    """A writer SIGKILLed between creating its temporary file and the rename leaves it behind; the next write
    (or the clean stop) removes it, and never one of a writer that is still alive."""
    st = InstanceState(str(tmp_path), "Agent", "res")
    st.record_start({"name": "x"})
    dead = subprocess.Popen(["true"])
    dead.wait()
    stale = st.path + ".tmp.%d" % dead.pid
    live = st.path + ".tmp.%d" % os.getppid()
    for p in (stale, live):
        with open(p, "w") as f:
            f.write("phase=sta")
    st.update(note="1")
    assert not os.path.exists(stale) and os.path.exists(live)
    assert st.read()["phase"] == "started"
    os.unlink(live)
    with open(stale, "w") as f:
        f.write("x")
    st.record_stop()
    assert not os.path.exists(stale) and not os.path.exists(st.path)
