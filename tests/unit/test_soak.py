"""The chaos soak's own parts (lab/soak): the record format and ack-stream invariants, the real writer script
under busybox against a file, and the seeded episode planner. The soak itself runs on the lab cluster
(tests/cluster/test_soak.py, `make soak`)."""
import os
import random
import subprocess
import time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lab.soak import faults, records

A, B = "11111111-aaaa-bbbb-cccc-000000000001", "22222222-aaaa-bbbb-cccc-000000000002"
WRITER = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                      "lab", "soak", "writer.sh")


@given(st.integers(min_value=1, max_value=10**9), st.uuids().map(str))
def test_records_round_trip_and_any_flipped_byte_is_caught(seq, writer):
    blob = records.format_record(seq, writer)
    assert records.parse_record(blob) == (seq, writer)
    for i in (0, 5, 20, 50, 62):
        damaged = blob[:i] + bytes([blob[i] ^ 0x01]) + blob[i + 1:]
        assert records.parse_record(damaged) != (seq, writer)


def _stream(text, has_target=True):
    s = records.AckStream("t", has_target=has_target)
    s.feed(text.encode())
    return s


def test_a_clean_stream_with_a_restart_that_resumes_after_the_last_ack():
    s = _stream(f"boot {A} resume 0\r\nack 1 {A}\r\nack 2 {A}\r\nboot {B} resume 2\nack 3 {B}\n")
    assert s.violations == [] and s.max_acked == 3 and s.instances == [A, B]
    assert s.acked == {1: A, 2: A, 3: B}


def test_an_earlier_writer_acknowledging_after_a_later_one_started_is_two_writers_at_once():
    s = _stream(f"boot {A} resume 0\nack 1 {A}\nboot {B} resume 1\nack 2 {B}\nack 2 {A}\n")
    assert len(s.violations) == 1 and "two writers at once" in s.violations[0]


def test_a_restart_that_does_not_find_an_acknowledged_record_is_data_loss():
    s = _stream(f"boot {A} resume 0\nack 1 {A}\nack 2 {A}\nboot {B} resume 1\n")
    assert len(s.violations) == 1 and "lost" in s.violations[0]
    assert _stream(f"boot {A} resume 0\nack 5 {A}\nboot {B} resume 0\n", has_target=False).violations == []


def test_lines_split_across_reads_and_a_line_torn_by_a_killed_writer():
    s = records.AckStream("t")
    for chunk in (f"boot {A} res", f"ume 0\nack 1 {A}\nack 2 {A[:5]}", f"boot {B} resume 1\nack 2 {B}\n"):
        s.feed(chunk.encode())
    assert s.torn == 2  # the torn line, and B's announcement lost in it
    assert s.violations == [] and s.acked == {1: A, 2: B}


def test_verify_finds_missing_damaged_and_overwritten_records():
    s = _stream(f"boot {A} resume 0\nack 1 {A}\nack 2 {A}\nack 3 {A}\n")
    good = b"".join(records.format_record(n, A) for n in (1, 2, 3))
    assert records.verify(s, good) == []
    assert records.verify(s, good[:128]) == ["t: acknowledged record 3 is missing or damaged"]
    overwritten = good[:64] + records.format_record(2, B) + good[128:]
    assert "acknowledged by writer" in records.verify(s, overwritten)[0]


@pytest.mark.skipif(not os.path.exists("/bin/busybox"), reason="busybox is not installed")
def test_the_writer_script_under_busybox_resumes_without_overwriting(tmp_path):
    bb = tmp_path / "bin"
    bb.mkdir()
    for applet in ("sh", "dd", "cut", "printf", "md5sum", "cat", "sleep", "echo"):
        os.symlink("/bin/busybox", bb / applet)
    target, acks = tmp_path / "records", tmp_path / "acks"
    target.write_bytes(b"")
    env = {"PATH": str(bb), "SOAK_PAUSE": "0"}
    stream = records.AckStream("writer")
    for run in range(2):
        proc = subprocess.Popen([str(bb / "sh"), WRITER, str(target), str(acks)], env=env)
        try:
            # no time window: wait for this writer's announcement and five of its acknowledgements
            while len(stream.instances) <= run or list(stream.acked.values()).count(stream.current) < 5:
                stream.read_file(str(acks))
                assert proc.poll() is None
                time.sleep(0.01)
        finally:
            proc.kill()
            proc.wait()
    stream.read_file(str(acks))
    assert stream.violations == [] and len(stream.instances) == 2
    assert records.verify(stream, target.read_bytes()[64:]) == []


def test_the_planner_is_a_function_of_the_seed_and_keeps_quorum():
    def kinds(seed):
        rng = random.Random(seed)
        return [[(f.kind, f.offset, f.duration, f.pick) for f in faults.plan(rng)] for _ in range(50)]
    assert kinds(7) == kinds(7) and kinds(7) != kinds(8)
    seen = set()
    for episode in kinds(7) + kinds(9):
        names = [k for k, *_ in episode]
        assert 1 <= len(names) <= 3 and len(set(names)) == len(names)
        assert sum(n in faults.MEMBERSHIP for n in names) <= 1
        assert episode[0][1] == 0.0 and all(0 <= o <= 10 for _, o, _, _ in episode)
        seen.update(names)
    assert seen == set(faults.KINDS)


def test_the_planner_honours_a_kind_list():
    rng = random.Random(1)
    assert {f.kind for _ in range(30) for f in faults.plan(rng, ["qemu_kill", "move"])} == {"qemu_kill", "move"}


def test_every_kind_has_an_inject_and_a_fencing_policy():
    for name, cls in faults.KINDS.items():
        assert cls.kind == name and cls.inject is not faults.Fault.inject
        assert cls.fence in (None, "allowed", "required")
        assert (cls.fence is not None) == (name in faults.MEMBERSHIP)


def test_a_writer_without_target_counts_every_acknowledgement_across_restarts():
    s = _stream(f"boot {A} resume 0\nack 1 {A}\nack 2 {A}\nboot {B} resume 0\nack 1 {B}\n", has_target=False)
    assert s.violations == [] and s.total == 3 and s.max_acked == 2


class _FakeLab:
    """Three nodes; ``answers`` is the return codes of successive exec calls (then 0)."""
    nodes = ["n1", "n2", "n3"]

    def __init__(self, answers):
        self.answers = list(answers)
        self.asked = []

    def viewer(self, exclude=()):
        return next(n for n in self.nodes if n not in exclude)

    def exec(self, node, argv, check=False, timeout=120):
        self.asked.append(node)
        rc = self.answers.pop(0) if self.answers else 0
        return subprocess.CompletedProcess(argv, rc, "", "no DC yet" if rc else "")


def _context(lab, out=()):
    from lab.soak import engine
    ctx = engine.Context.__new__(engine.Context)
    ctx.lab, ctx.out = lab, set(out)
    return ctx


def test_admin_commands_avoid_nodes_taken_out_and_retry_while_the_cluster_recovers(monkeypatch):
    """CI, seed 1501: a short_timeout fault changed the CIB right after a freeze of n1, asked n1 (frozen) and
    died. Admin commands go to a node still in, and are tried again while a new DC is elected."""
    from lab.soak import engine
    monkeypatch.setattr(engine.time, "sleep", lambda s: None)
    lab = _FakeLab([1, 1])
    assert _context(lab, out={"n1"}).admin(["cibadmin", "-Q"]).returncode == 0
    assert lab.asked == ["n2", "n2", "n2"]
    lab = _FakeLab([1] * 10)
    with pytest.raises(Exception, match="no DC yet"):
        _context(lab, out={"n1", "n2"}).admin(["cibadmin", "-M"], check=True, tries=3)
    assert lab.asked == ["n3"] * 3


@pytest.mark.parametrize("op_id", ["vm-disk-start-0", "vm-disk-start-0s"])  # crmsh 4, crmsh 5
def test_start_timeout_is_changed_on_the_op_crmsh_named(op_id):
    """CI, Debian 13: the op was looked up as vm-disk-start-0, crmsh 5 had named it vm-disk-start-0s."""
    calls = []

    class Ctx:
        def admin(self, argv, check=False):
            calls.append(argv)
            out = f'<op name="start" timeout="90s" interval="0s" id="{op_id}"/>' if "-Q" in argv else ""
            return subprocess.CompletedProcess(argv, 0, out, "")
    faults.set_start_timeout(Ctx(), "vm-disk", "2s")
    assert "//primitive[@id='vm-disk']/operations/op[@name='start']" in calls[0]
    assert calls[1][-1] == f'<op id="{op_id}" timeout="2s"/>'
