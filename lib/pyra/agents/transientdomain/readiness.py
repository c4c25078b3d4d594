"""When a TransientDomain guest counts as ready: the startup_signal handshake on its virtio-serial channel
(``ready <token>`` answered by ``ack <token>``, pyra.backends.libvirt_channel) and/or the admin's
monitor_scripts, waited for at start and migrate_from, checked again by depth-10 monitors.
"""

from pyra.agents.transientdomain.driver import is_lxc
from pyra.ocf import codes
from pyra.ocf.errors import Failure


def uses_signal(op, cfg=None, live_xml=None):
    """Whether this guest speaks the handshake: startup_signal on/off, or auto (the XML has the channel; never
    for a libvirt-LXC container)."""
    mode = op.params.startup_signal
    if mode != "auto":
        return mode == "on"
    if is_lxc(op.params, cfg):
        return False  # libvirt-LXC has no virtio-serial channel: auto is off (on is refused by validate)
    if live_xml is not None:
        from pyra.backends.libvirt_xml import channel_path
        return channel_path(live_xml, need_path=False) is not None
    return cfg.has_startup_channel()


def failing_script(op):
    """The first monitor script that does not exit 0, or None."""
    for script in op.params.monitor_scripts:
        result = op.run([script], timeout=max(1.0, op.deadline.remaining()))
        if not result.ok:
            return script
    return None


def deep_check(op, hv, dom, name):
    """Depth 10: the guest still answers on its channel, and every monitor script passes."""
    from pyra.backends import libvirt_channel, libvirt_xml
    live = hv.xml(dom)
    if uses_signal(op, live_xml=live):
        try:
            libvirt_channel.refresh(libvirt_xml.channel_path(live), op.deadline.share(0.5))
        except libvirt_channel.HandshakeError as err:
            raise Failure("%s: %s" % (name, err)) from None
    failing = failing_script(op)
    if failing:
        raise Failure("monitor script %s failed" % failing)
    return codes.SUCCESS


def _ready_deadline(op):
    remaining = op.deadline.remaining()
    reserve = min(5.0, max(1.0, 0.2 * remaining))
    ready = op.deadline.within(max(0.0, remaining - reserve))
    if op.params.startup_timeout:
        ready = ready.within(op.params.startup_timeout)
    return ready


def wait_ready(op, hv, dom, name, fresh, cfg=None):
    """Block until the guest is ready (handshake and/or monitor_scripts) or the ready deadline passes.

    ``fresh``: the guest was not created by this action (already running, or arrived by migration): it is
    asked to answer again instead of waiting for its boot-time ``ready``."""
    from pyra.backends import libvirt_channel, libvirt_xml
    ready = _ready_deadline(op)
    live = hv.xml(dom) if cfg is None else None
    if uses_signal(op, cfg, live_xml=live):
        path = libvirt_xml.channel_path(live if live is not None else hv.xml(dom))
        if not path:
            raise Failure("%s has no startup_signal channel socket in its live XML" % name)
        try:
            if fresh:
                libvirt_channel.refresh(path, ready)
                op.log.info("guest %s answered on its startup_signal channel", name)
            else:
                libvirt_channel.handshake(path, ready, op.log)
        except libvirt_channel.HandshakeError as err:
            raise Failure("%s not ready after %.0f s: %s" % (name, op.deadline.elapsed(), err)) from None
    if op.params.monitor_scripts:
        failing = failing_script(op)
        while failing:
            if ready.expired():
                raise Failure("%s not ready: monitor script %s still fails" % (name, failing))
            ready.sleep(1.0)
            failing = failing_script(op)
