"""pyra's lab: the machines, storage and clusters the agents are tried on, built on one host.

Owns everything that stands in for the world around the agents, and nothing of the agents themselves:

- ``pyralab``       a 3-node Pacemaker + Corosync cluster in namespaces (also a CLI: ``pyralab.py exec n1 ...``)
- ``fence_pyralab`` its fence agent (kills every process of the victim node)
- ``sanstorage``    its shared LVM storage (loop-device LUNs, real LVM metadata and ext4)
- ``clusterops``    reading and driving that cluster (crm, crm_mon, Pacemaker's logs, measured times)
- ``demo``          the story ``make demo`` tells
- ``dmstandin``     the device-mapper stand-in for hosts whose kernel has none (LV activation's kernel step)
- ``rigs``          single-purpose rigs: libvirtd nodes, guest images, storage guests, LVM, LXC, VServer

Tests (tests/cluster, tests/real, tests/bench) and the demo import it as the package ``lab`` (the repository
root on sys.path). The lab never imports tests; the one thing it borrows from them is the util-vserver
contract simulator (tests/fakes/vserver), which the VServer rig runs by path. See lab/README.md.
"""
import os

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
