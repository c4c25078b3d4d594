"""One module per external system the agents drive (libvirt, lvm, vzctl, lxc, vserver)."""
