"""Live migration between two libvirtd "nodes" in their own network namespaces (td-n1, td-n2)."""

import time

import pytest

from lab.rigs import libvirt_node as L

pytestmark = [pytest.mark.root, pytest.mark.qemu, pytest.mark.netns]

def wait_for_text(path, needle, timeout=5.0):
    end = time.monotonic() + timeout
    while True:
        text = path.read_text()
        if needle in text or time.monotonic() > end:
            return text
        time.sleep(0.1)


META_12 = {"migrate_source": "td-n1", "migrate_target": "td-n2"}
META_21 = {"migrate_source": "td-n2", "migrate_target": "td-n1"}


def test_live_migration_there_and_back(pair, guests, rsctmp1, rsctmp2):
    n1, n2 = pair
    g = guests.xml()
    log = L.WORK / "console" / (g["name"] + "-agent.log")
    log.unlink(missing_ok=True)
    p = {"config": g["config"], "console_log": str(log)}
    assert guests.run(n1, "start", p, rsctmp1).rc == 0
    assert "got ack" in log.read_text()
    assert guests.run(n2, "monitor", p, rsctmp2).rc == 7                # probe on the target
    r = guests.run(n1, "migrate_to", p, rsctmp1, meta=META_12, timeout_ms=60000)
    assert r.rc == 0, r
    assert n1.state(g["name"]) is None
    assert n2.state(g["name"])[0] == 1
    r = guests.run(n2, "migrate_from", p, rsctmp2, meta=META_12)
    assert r.rc == 0, r
    assert n2.conn().lookupByName(g["name"]).isPersistent() == 0       # still transient on the target
    assert guests.run(n1, "stop", p, rsctmp1).rc == 0                   # source stop after migration
    assert guests.run(n1, "monitor", p, rsctmp1, interval=10000).rc == 7
    assert guests.run(n2, "monitor", p, rsctmp2, interval=10000).rc == 0
    # the guest answers on its channel on the target (the migrate_from handshake was logged by the guest)
    assert L.ping(n2.channel_path(g["name"]), "after")
    text = wait_for_text(log, "answered ping after")
    assert "answered ping" in text and text.index("got ack") < text.rindex("answered ping after")
    # and back, tunnelled this time
    p2 = dict(p, migration_mode="tunnelled")
    r = guests.run(n2, "migrate_to", p2, rsctmp2, meta=META_21, timeout_ms=60000)
    assert r.rc == 0, r
    assert guests.run(n1, "migrate_from", p2, rsctmp1, meta=META_21).rc == 0
    assert guests.run(n2, "stop", p2, rsctmp2).rc == 0
    assert guests.run(n1, "monitor", p2, rsctmp1, interval=10000).rc == 0
    assert log.read_text().startswith(text)                             # appended, never truncated
    assert guests.run(n1, "stop", p2, rsctmp1).rc == 0
    assert n1.state(g["name"]) is None and n2.state(g["name"]) is None


def test_migration_that_cannot_converge_is_aborted(pair, guests, rsctmp1, rsctmp2):
    n1, n2 = pair
    g = guests.xml(cmdline="td_dirty=32")
    p = {"config": g["config"], "migration_bandwidth": "1"}
    assert guests.run(n1, "start", p, rsctmp1).rc == 0
    r = guests.run(n1, "migrate_to", p, rsctmp1, meta=META_12, timeout_ms=15000)
    assert r.rc == 1, r
    assert not r.killed and r.elapsed < 15.0, r
    assert "aborted" in r.exit_reason and "still runs" in r.exit_reason, r
    assert n1.state(g["name"])[0] == 1                                   # the source keeps running
    assert guests.run(n1, "monitor", p, rsctmp1, interval=10000).rc == 0
    assert n2.state(g["name"]) is None                                   # nothing left on the target
    assert guests.run(n2, "monitor", p, rsctmp2).rc == 7
    assert guests.run(n1, "stop", p, rsctmp1).rc == 0


def test_migration_to_an_unreachable_target_keeps_the_source(pair, guests, rsctmp1):
    n1, _ = pair
    g = guests.xml()
    p = {"config": g["config"], "remote_uri": "qemu+tcp://%n:1/system"}
    assert guests.run(n1, "start", p, rsctmp1).rc == 0
    r = guests.run(n1, "migrate_to", p, rsctmp1, meta=META_12, timeout_ms=20000)
    assert r.rc == 1 and "still runs here" in r.exit_reason, r
    assert guests.run(n1, "monitor", p, rsctmp1, interval=10000).rc == 0
    assert guests.run(n1, "stop", p, rsctmp1).rc == 0
