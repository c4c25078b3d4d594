"""Network disks (the seed's planned Ceph), for real with NBD: <disk type='network'><source protocol='nbd'>.

qemu-nbd serves a raw image from its own network namespace td-stor, reached from td-n1 and td-n2 over their
own links (lab/rigs/nbd.py). The guest does I/O on /dev/vda on request over its startup_signal channel: it reads
a seed line the test writes into the image server-side and writes a line the test then finds in the image.
Proves, before and after a live migration with the agent's migrate_to/migrate_from, that the guest on each node
reads and writes the disk through that node's own NBD connection. The agent never looks for a network disk's
name as a local file (start, validate-all at depth 10).
"""

import time
import uuid as uuidlib

import pytest

from lab.rigs import libvirt_node as L
from lab.rigs import nbd as N

pytestmark = [pytest.mark.root, pytest.mark.qemu, pytest.mark.netns]

META_12 = {"migrate_source": "td-n1", "migrate_target": "td-n2"}
META_21 = {"migrate_source": "td-n2", "migrate_target": "td-n1"}
N1_ADDR, N2_ADDR = N.LINKS["td-n1"][2], N.LINKS["td-n2"][2]


@pytest.fixture
def nbd_server(storage):
    srv = N.NBDServer(N.make_image(L.WORK / "nbd" / ("tdnbd-%s.img" % uuidlib.uuid4().hex[:8])),
                      "vms/tdguest-disk")
    try:
        srv.start()
        yield srv
    finally:
        srv.stop()
        srv.image.unlink(missing_ok=True)


def wait_until(pred, timeout=15.0):
    end = time.monotonic() + timeout
    while True:
        value = pred()
        if value or time.monotonic() > end:
            return value
        time.sleep(0.1)


def disk_io(node, g, token, seed):
    """Ask the guest to do I/O on /dev/vda; it must read ``seed`` and read back what it wrote."""
    line = L.channel_exchange(node.channel_path(g["name"]), "disk " + token, "disk %s " % token, timeout=30)
    assert line == "disk %s seed=%s back=pyra-disk %s" % (token, seed, token), line


def test_guest_on_an_nbd_disk_does_io_and_migrates(storage, nbd_server, disk_guests, rsctmp1, rsctmp2):
    n1, n2 = storage
    srv = nbd_server
    srv.write_seed("seed-1")
    g = disk_guests.xml(prefix="tdnbd", devices=N.disk_xml(srv.name, srv.port))
    p = {"config": g["config"]}
    for node, rsctmp in ((n1, rsctmp1), (n2, rsctmp2)):
        r = disk_guests.run(node, "validate-all", p, rsctmp, check_level=10)
        assert r.rc == 0, r
    r = disk_guests.run(n1, "start", p, rsctmp1)
    assert r.rc == 0, r
    assert "vda: 32768 sectors, seed: seed-1" in g["console"].read_text()   # read at boot
    assert srv.clients() == {N1_ADDR}
    disk_io(n1, g, "before", "seed-1")
    assert srv.data() == "pyra-disk before"                                  # the write reached the server
    assert disk_guests.run(n1, "monitor", p, rsctmp1, interval=60000, check_level=10).rc == 0
    assert disk_guests.run(n2, "monitor", p, rsctmp2).rc == 7                # probe on the target

    t = time.monotonic()
    r = disk_guests.run(n1, "migrate_to", p, rsctmp1, meta=META_12, timeout_ms=60000)
    assert r.rc == 0, r
    print("NBD-disk migration td-n1 -> td-n2: %.2f s" % (time.monotonic() - t))
    r = disk_guests.run(n2, "migrate_from", p, rsctmp2, meta=META_12)
    assert r.rc == 0, r
    assert n1.state(g["name"]) is None
    assert disk_guests.run(n1, "stop", p, rsctmp1).rc == 0
    assert wait_until(lambda: srv.clients() == {N2_ADDR}), srv.clients()    # only the target's QEMU now
    srv.write_seed("seed-2")
    disk_io(n2, g, "after", "seed-2")
    assert srv.data() == "pyra-disk after"
    assert L.ping(n2.channel_path(g["name"]), "nbd-after")
    assert disk_guests.run(n2, "monitor", p, rsctmp2, interval=60000, check_level=10).rc == 0

    t = time.monotonic()
    r = disk_guests.run(n2, "migrate_to", p, rsctmp2, meta=META_21, timeout_ms=60000)
    assert r.rc == 0, r
    print("NBD-disk migration td-n2 -> td-n1: %.2f s" % (time.monotonic() - t))
    assert disk_guests.run(n1, "migrate_from", p, rsctmp1, meta=META_21).rc == 0
    assert disk_guests.run(n2, "stop", p, rsctmp2).rc == 0
    assert wait_until(lambda: srv.clients() == {N1_ADDR}), srv.clients()
    srv.write_seed("seed-3")
    disk_io(n1, g, "back", "seed-3")
    assert srv.data() == "pyra-disk back"

    assert disk_guests.run(n1, "stop", p, rsctmp1).rc == 0
    assert n1.state(g["name"]) is None and n2.state(g["name"]) is None
    assert wait_until(lambda: srv.clients() == set()), srv.clients()
    assert disk_guests.run(n1, "monitor", p, rsctmp1, interval=10000).rc == 7


@pytest.mark.parametrize("source", [
    "<source protocol='nbd' name='vms/no-such-local-path'><host name='10.213.3.100' port='10809'/></source>",
    "<source protocol='rbd' name='rbd/tdguest-disk'><host name='ceph-mon1.invalid' port='6789'/></source>",
], ids=["nbd", "rbd"])
def test_network_disk_name_is_never_a_local_path(node, guests, rsctmp1, source):
    """validate-all at depth 10 passes: no file-existence check on a network disk, and no connection to it."""
    disk = ("<disk type='network' device='disk'><driver name='qemu' type='raw'/>%s"
            "<target dev='vda' bus='virtio'/></disk>" % source)
    g = guests.xml(prefix="tdnet", devices=disk)
    p = {"config": g["config"]}
    r = guests.run(node, "validate-all", p, rsctmp1, check_level=10)
    assert r.rc == 0, r
    r = guests.run(node, "monitor", p, rsctmp1)                             # identity from the XML as ever
    assert r.rc == 7, r
    assert guests.run(node, "stop", p, rsctmp1).rc == 0
