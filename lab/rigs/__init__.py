"""Single-purpose rigs of the lab, one per agent family (each module's docstring says what it owns):

- ``libvirt_node`` (+ ``libvirt_reaper``, ``guest/``)  private libvirtd nodes and the QEMU test guest
- ``storage_guest/``  throw-away QEMU guests with a real device-mapper (the LVMFilesystem guest tier)
- ``lvm_rig``         loop-device PVs, per-"node" LVM configurations, LV activation through ``lab.dmstandin``
- ``lxc_ve`` (+ ``lxc_ve_fakecriu``)  busybox LXC containers and namespace "nodes"
- ``vserver_rig``     guests of the util-vserver contract simulator (tests/fakes/vserver)
"""
