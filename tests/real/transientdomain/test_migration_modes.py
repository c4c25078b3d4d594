"""Migration modes of TransientDomain between the two libvirtd "nodes" of conftest's ``pair`` (td-n1, td-n2).

- migration_postcopy="after 1s": a guest that rewrites 32 MiB continuously (td_dirty) under a 1 MiB/s bandwidth
  limit cannot converge by pre-copy (test_migration.py shows that very setup aborted); with post-copy the agent
  switches after ~1 s, the migration completes and the guest answers on its channel on the target.
- migration_mode=direct (managed direct: this agent connects to both libvirtds, no PEER2PEER flag) there and
  back, the guest answering on the target each time.
"""

import re

import pytest

from lab.rigs import libvirt_node as L

pytestmark = [pytest.mark.root, pytest.mark.qemu, pytest.mark.netns]

META_12 = {"migrate_source": "td-n1", "migrate_target": "td-n2"}
META_21 = {"migrate_source": "td-n2", "migrate_target": "td-n1"}


def _arrived(guests, node, other, g, p, rsctmp, meta, token):
    """After migrate_to: only on ``node``, migrate_from succeeds, the guest answers, still transient."""
    assert other.state(g["name"]) is None
    assert node.state(g["name"])[0] == 1
    r = guests.run(node, "migrate_from", p, rsctmp, meta=meta)
    assert r.rc == 0, r
    assert L.ping(node.channel_path(g["name"]), token)
    conn = node.conn()
    try:
        assert conn.lookupByName(g["name"]).isPersistent() == 0
    finally:
        conn.close()
    assert guests.run(node, "monitor", p, rsctmp, interval=10000).rc == 0


def agent_log(tmp_path, tag):
    """An HA_LOGFILE for one agent run (the harness environment sends the log elsewhere than stderr)."""
    path = tmp_path / ("agent-%s.log" % tag)
    path.unlink(missing_ok=True)
    return path, {"HA_LOGFILE": str(path)}


def test_postcopy_completes_a_migration_precopy_cannot(pair, guests, rsctmp1, rsctmp2, tmp_path):
    n1, n2 = pair
    g = guests.xml(cmdline="td_dirty=32")
    p = {"config": g["config"], "migration_bandwidth": "1", "migration_postcopy": "after 1s"}
    assert guests.run(n1, "validate-all", p, rsctmp1).rc == 0
    assert guests.run(n1, "start", p, rsctmp1).rc == 0
    assert L.ping(n1.channel_path(g["name"]), "before")
    log, env = agent_log(tmp_path, "pc")
    r = guests.run(n1, "migrate_to", p, rsctmp1, meta=META_12, timeout_ms=60000, env=env)
    text = log.read_text()
    assert r.rc == 0, (r, text)
    assert not r.killed and r.elapsed < 60.0, r
    switched = re.search(r"switched to post-copy after (\d+) s", text)
    assert switched, (r.elapsed, text[-3000:])
    assert 1 <= int(switched.group(1)) < 10, switched.group(0)
    done = re.search(r"migrated to td-n2 in ([0-9.]+) s", text)
    assert done and float(done.group(1)) >= 1.0, text[-3000:]
    _arrived(guests, n2, n1, g, p, rsctmp2, META_12, "postcopy")
    assert guests.run(n1, "stop", p, rsctmp1).rc == 0                  # the source's stop after migration
    assert guests.run(n1, "monitor", p, rsctmp1, interval=10000).rc == 7
    assert L.ping(n2.channel_path(g["name"]), "still")                 # still alive and dirtying on the target
    assert guests.run(n2, "stop", p, rsctmp2).rc == 0
    assert n1.state(g["name"]) is None and n2.state(g["name"]) is None


def test_postcopy_off_is_accepted_and_garbage_refused(pair, guests, rsctmp1):
    n1, _ = pair
    g = guests.xml()
    for value in ("off", "after 30s", "5"):
        assert guests.run(n1, "validate-all", {"config": g["config"], "migration_postcopy": value},
                          rsctmp1).rc == 0, value
    r = guests.run(n1, "validate-all", {"config": g["config"], "migration_postcopy": "soon"}, rsctmp1)
    assert r.rc == 6 and "migration_postcopy" in r.exit_reason, r


def test_direct_migration_there_and_back(pair, guests, rsctmp1, rsctmp2, tmp_path):
    n1, n2 = pair
    g = guests.xml()
    p = {"config": g["config"], "migration_mode": "direct"}
    assert guests.run(n1, "validate-all", p, rsctmp1).rc == 0
    assert guests.run(n1, "start", p, rsctmp1).rc == 0
    log, env = agent_log(tmp_path, "d12")
    r = guests.run(n1, "migrate_to", p, rsctmp1, meta=META_12, timeout_ms=60000, env=env)
    assert r.rc == 0, (r, log.read_text())
    assert "td-n2 (qemu+tcp://td-n2/system, direct)" in log.read_text(), log.read_text()
    _arrived(guests, n2, n1, g, p, rsctmp2, META_12, "d12")
    assert guests.run(n1, "stop", p, rsctmp1).rc == 0
    r = guests.run(n2, "migrate_to", p, rsctmp2, meta=META_21, timeout_ms=60000)
    assert r.rc == 0, r
    _arrived(guests, n1, n2, g, p, rsctmp1, META_21, "d21")
    assert guests.run(n2, "stop", p, rsctmp2).rc == 0
    assert guests.run(n1, "stop", p, rsctmp1).rc == 0
    assert n1.state(g["name"]) is None and n2.state(g["name"]) is None


def test_direct_migration_to_an_unreachable_target_keeps_the_source(pair, guests, rsctmp1):
    n1, _ = pair
    g = guests.xml()
    p = {"config": g["config"], "migration_mode": "direct", "remote_uri": "qemu+tcp://%n:1/system"}
    assert guests.run(n1, "start", p, rsctmp1).rc == 0
    r = guests.run(n1, "migrate_to", p, rsctmp1, meta=META_12, timeout_ms=20000)
    assert r.rc == 1 and "still runs here" in r.exit_reason, r
    assert not r.killed and r.elapsed < 20.0, r
    assert guests.run(n1, "monitor", p, rsctmp1, interval=10000).rc == 0
    assert guests.run(n1, "stop", p, rsctmp1).rc == 0
