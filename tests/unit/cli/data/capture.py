#!/usr/bin/python3
"""Record the cibadmin -Q / crm_mon --output-as=xml pairs test_listing.py reads, from the 3-node lab.

Run as root holding the lab lock (the lab is shared):
    flock /var/lock/pyra-lab.lock /usr/bin/python3 tests/unit/cli/data/capture.py [--keep]
It brings the lab up (a no-op when it runs), configures: vm-a (TransientDomain, allow-migrate, running),
vm-b (TransientDomain, target-role Stopped), grp-ex (group of PyraExample ex1 ex2), ex-bad (PyraExample whose
config file does not exist: its start fails everywhere), dummy (ocf:heartbeat:Dummy, not pyra); records
settled.{cib,mon}.xml, then moves vm-a and records migrating.{cib,mon}.xml while its migration runs.
Everything is removed again; --keep leaves the lab up.
"""
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(HERE))))
sys.path.insert(0, REPO)

from lab import clusterops as co  # noqa: E402
from lab import pyralab  # noqa: E402
from lab.rigs import libvirt_node  # noqa: E402
from lab.rigs.guest import build  # noqa: E402

WATCH = """
import subprocess, sys, time
end = time.monotonic() + 60
while time.monotonic() < end:
    mon = subprocess.run(["crm_mon", "--output-as=xml"], capture_output=True, text=True, timeout=20).stdout
    cib = subprocess.run(["cibadmin", "-Q"], capture_output=True, text=True, timeout=20).stdout
    if 'pending="Migrat' in mon or ('operation="migrate_to"' in cib and 'call-id="-1"' in cib):
        sys.stdout.write(cib + "\\f" + mon)
        break
"""
RESOURCES = ("vm-a", "vm-b", "grp-ex", "ex-bad", "dummy")


def save(lab, name):
    node = lab.viewer()
    cib = co.sh(lab, ["cibadmin", "-Q"], node=node).stdout
    mon = co.sh(lab, ["crm_mon", "--output-as=xml"], node=node).stdout
    for suffix, text in (("cib", cib), ("mon", mon)):
        with open(os.path.join(HERE, f"{name}.{suffix}.xml"), "w", encoding="utf-8") as f:
            f.write(text)
    return cib, mon


def main():
    lab = pyralab.Lab()
    lab.up(3)
    images = build.build()
    lab.enable_libvirt()
    try:
        for g in ("cap-a", "cap-b"):
            with open(f"{pyralab.STORAGE}/{g}.xml", "w", encoding="utf-8") as f:
                f.write(libvirt_node.guest_xml(g, images, console=f"{pyralab.SHARED}/{g}.console"))
        co.crm(lab, "configure", "primitive", "vm-a", "ocf:pyra:TransientDomain",
               "params", f"config={pyralab.SHARED}/cap-a.xml", "op", "monitor", "interval=10s", "timeout=30s",
               "meta", "allow-migrate=true")
        co.crm(lab, "configure", "primitive", "vm-b", "ocf:pyra:TransientDomain",
               "params", f"config={pyralab.SHARED}/cap-b.xml", "meta", "target-role=Stopped")
        co.crm(lab, "configure", "primitive", "ex1", "ocf:pyra:PyraExample")
        co.crm(lab, "configure", "primitive", "ex2", "ocf:pyra:PyraExample", "params", "fake=two")
        co.crm(lab, "configure", "group", "grp-ex", "ex1", "ex2")
        co.crm(lab, "configure", "primitive", "ex-bad", "ocf:pyra:PyraExample",
               "params", "config=/nonexistent/ex-bad.conf")
        co.crm(lab, "configure", "primitive", "dummy", "ocf:heartbeat:Dummy")
        lab.settle(120)
        save(lab, "settled")
        src = lab.where("vm-a")[0]
        dst = next(n for n in lab.nodes if n != src)
        co.sh(lab, ["crm_resource", "--move", "-r", "vm-a", "-N", dst, "--lifetime", "PT5M"])
        # poll inside the node (no nsenter per round): crm_mon's pending attribute, the CIB's pending migrate_to
        res = lab.exec(lab.viewer(), ["/usr/bin/python3", "-c", WATCH], timeout=90)
        cib, _, mon = res.stdout.partition("\f")
        if mon:
            for suffix, text in (("cib", cib), ("mon", mon)):
                with open(os.path.join(HERE, f"migrating.{suffix}.xml"), "w", encoding="utf-8") as f:
                    f.write(text)
            print("captured the migration")
        else:
            print("missed the migration:", res.stderr)
        lab.settle(120)
    finally:
        co.remove(lab, "vm-a", "vm-b", "ex-bad", "dummy")
        co.remove(lab, "ex1", "ex2", "grp-ex")
        for g in ("cap-a", "cap-b"):
            try:
                os.unlink(f"{pyralab.STORAGE}/{g}.xml")
            except OSError:
                pass
        if "--keep" not in sys.argv:
            lab.down()


if __name__ == "__main__":
    main()
