"""Which libvirt driver runs the guest, where TransientDomain must behave differently for libvirt-LXC.

A domain is an LXC container when its XML says ``<domain type='lxc'>`` or, when the XML cannot be read (a
probe or stop on a node where the config vanished), when the hypervisor URI's scheme is lxc (lxc:///system,
lxc+unix://...). libvirt-LXC has no virtio-serial channel (no startup_signal handshake), cannot migrate, and
its graceful shutdown is a signal to the container's init. Everything else is QEMU's behaviour.
"""

LXC = "lxc"


def uri_driver(uri):
    """The driver part of a libvirt URI: 'lxc' for lxc:///system and lxc+unix://..., 'qemu' for qemu:///..."""
    scheme = uri.partition("://")[0] if "://" in uri else uri.partition(":")[0]
    return scheme.split("+", 1)[0].lower()


def is_lxc(params, cfg=None):
    """True for a libvirt-LXC domain: the XML's type when it is known, else the hypervisor URI."""
    if cfg is not None and cfg.type:
        return cfg.type.lower() == LXC
    return uri_driver(params.hypervisor) == LXC
