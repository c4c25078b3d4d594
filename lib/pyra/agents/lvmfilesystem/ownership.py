"""Who may activate the LV: the VG's sharing checked against vg_access_mode, ownership claimed and released
(system ID, tags, lvmlockd), and LVM's activation and deactivation retried while another holder lets go.

Ownership, by ``vg_access_mode``:
- system_id: the VG carries the owner's LVM system ID. Start claims an unowned VG, takes a VG over from an
  owner that is not an online member of the cluster (``crm_node -p``), and refuses otherwise. A clean stop
  releases the ID when no other LV of the VG is active here, so that a planned move can take it.
- tagging: the LV carries its owner's tag (this node's name by default; the node's activation/volume_list
  must accept it). Foreign tags are owners, handled like foreign system IDs.
- lvmlockd: lvmlockd's lock (dlm/sanlock) is the arbiter: `-aey` is refused while another host holds it.
"""

from pyra.backends.lvm import LvmError
from pyra.ocf.deadline import retry
from pyra.ocf.errors import ConfigError, Failure, MissingEnvironment


def node_name(op):
    from pyra.host import cluster
    return cluster.local_node_name(op.run, op.env.environ)


def tag(op):
    """The tag this node puts on the LV in tagging mode."""
    return op.params.tag or node_name(op)


def may_take_over(op, owner, ours):
    """May this node take VG/LV ownership from ``owner``? Only when owners are cluster node names (our own
    ID ``ours`` is one of the nodes that are up) and ``owner`` is neither in our partition nor a connected
    or unfenced remote node: Pacemaker starts us there only after the owner was fenced. With IDs that are
    not node names (system_id_source = machineid, a custom tag) an online owner would look absent, so we
    refuse."""
    from pyra.host import cluster
    online = cluster.online_members(op.run)
    if online is None:
        return False, "cannot tell whether %s is down (crm_node -p or crm_mon failed)" % owner
    if owner in online:
        return False, "%s is an online cluster member" % owner
    if ours not in online:
        return False, ("cannot tell whether %s is down: our ID %s is not a cluster node name "
                       "(use node names: system_id_source=uname, default tag)" % (owner, ours))
    return True, "%s is not a member of this partition nor a connected remote node" % owner


def check_vg(op, lvm, vg):
    """The VG must be visible and its sharing must match vg_access_mode (ConfigError: invalid everywhere)."""
    try:
        info = lvm.vg(vg)
    except LvmError as err:
        # lvm failed or hung: that says nothing about whether the VG belongs here (5 would ban the
        # resource from this node for good); a plain failure lets Pacemaker retry or recover.
        raise Failure("cannot read VG %s: %s" % (vg, err.reason)) from None
    if info is None:
        raise MissingEnvironment("volume group %s is not visible on this node" % vg)
    mode = op.params.vg_access_mode
    lock_type = info.get("vg_lock_type", "")
    if mode == "lvmlockd":
        if lock_type not in ("dlm", "sanlock", "idm"):
            raise ConfigError("VG %s is not a shared VG (lock type %r): create it with vgcreate --shared "
                              "or choose another vg_access_mode" % (vg, lock_type or "none"))
    elif lock_type:
        raise ConfigError("VG %s is shared with lvmlockd (lock type %s): use vg_access_mode=lvmlockd"
                          % (vg, lock_type))
    if mode == "tagging" and info.get("vg_systemid"):
        raise ConfigError("VG %s has system ID %s: use vg_access_mode=system_id"
                          % (vg, info["vg_systemid"]))
    return info


def local_id(lvm):
    """This node's LVM system ID; MissingEnvironment when it has none or LVM cannot say."""
    try:
        ours = lvm.local_system_id()
    except LvmError as err:
        raise MissingEnvironment("cannot read this node's LVM system ID: %s" % err.reason) from None
    if not ours:
        raise MissingEnvironment("this node has no LVM system ID: set global/system_id_source in lvm.conf")
    return ours


def claim(op, lvm, vg, lv, info, lvinfo):
    """Make this node the owner of VG/LV in the configured mode, or refuse (Failure)."""
    mode = op.params.vg_access_mode
    try:
        if mode == "system_id":
            ours = local_id(lvm)
            owner = info.get("vg_systemid", "")
            if owner == ours:
                return
            if not owner:
                op.log.info("claiming unowned VG %s for system ID %s", vg, ours)
                lvm.set_system_id(vg, ours)
                return
            ok, why = may_take_over(op, owner, ours)
            if not ok:
                raise Failure("VG %s is owned by %s: %s" % (vg, owner, why))
            op.log.warning("taking VG %s over from %s: %s", vg, owner, why)
            lvm.set_system_id(vg, ours, previous_owner=owner)
        elif mode == "tagging":
            ours = tag(op)
            foreign = [t for t in (lvinfo or {}).get("tags", []) if t != ours]
            for owner in foreign:
                ok, why = may_take_over(op, owner, ours)
                if not ok:
                    raise Failure("LV %s/%s is tagged for %s: %s" % (vg, lv, owner, why))
                op.log.warning("taking LV %s/%s over from %s: %s", vg, lv, owner, why)
            if foreign or ours not in (lvinfo or {}).get("tags", []):
                lvm.change_lv_tags(vg, lv, add=[ours], delete=foreign)
        elif mode == "lvmlockd":
            lvm.lock_start(vg)
    except LvmError as err:
        raise Failure("cannot take ownership of %s/%s: %s" % (vg, lv, err.reason)) from None


def release(op, lvm, vg, lv):
    """Give up ownership after a clean deactivation (best effort: a failure here is only logged)."""
    from pyra.backends import lvm_dm
    mode = op.params.vg_access_mode
    try:
        if mode == "tagging":
            lvm.change_lv_tags(vg, lv, delete=[tag(op)])
        elif mode == "system_id":
            others = [n for n in lvm.lv_names(vg) if n != lv and lvm_dm.active_device(vg, n) is not None]
            if others:
                op.log.info("VG %s keeps its system ID: %s still active here", vg, ", ".join(others))
            else:
                lvm.set_system_id(vg, "")
    except (LvmError, MissingEnvironment) as err:
        op.log.warning("could not release %s/%s: %s", vg, lv, err.reason)


def activate(op, lvm, vg, lv, mode, amode, lock_type):
    """lvchange -a<mode>. On a sanlock VG, "LV locked by other host" is retried within a share of the
    deadline: after the holder crashed (and was fenced) sanlock grants its locks only once the dead host's
    lease has expired (8 x io_timeout + 60 s, ~140 s by default), and a start that fails at once would
    leave the resource banned here instead of failing over."""
    def lease_held(outcome):
        return (isinstance(outcome, LvmError) and lock_type == "sanlock"
                and "locked by other host" in outcome.reason)

    def waiting(err, _delay):
        op.log.warning("%s: waiting for the holder's sanlock lease to expire", err.reason)
    try:
        retry(lambda: lvm.activate(vg, lv, mode, amode), op.deadline.share(0.8), lease_held,
              delay=1.0, max_delay=5.0, on_retry=waiting)
    except LvmError as err:
        raise Failure("activating %s/%s failed: %s" % (vg, lv, err.reason)) from None


def deactivate(op, lvm, vg, lv):
    """lvchange -an, retried while the device is briefly "in use" (udev/blkid probes, or a mount namespace
    created elsewhere that still holds a copy of our mount), within a share of the deadline."""
    def in_use(outcome):
        return isinstance(outcome, LvmError) and "in use" in outcome.reason

    def waiting(err, _delay):
        op.log.info("%s/%s: %s; retrying", vg, lv, err.reason)
    try:
        retry(lambda: lvm.deactivate(vg, lv), op.deadline.share(0.5), in_use, delay=0.2, max_delay=1.0,
              on_retry=waiting)
    except LvmError as err:
        who = holders(vg, lv) if in_use(err) else ""
        if who:
            raise Failure("cannot deactivate %s/%s: in use by %s" % (vg, lv, who)) from None
        raise Failure("deactivating %s/%s failed: %s" % (vg, lv, err.reason)) from None


def holders(vg, lv):
    """Who keeps the LV's device open, for the exit reason: a mount namespace holding a copy of its
    filesystem, or a process with the device open ("" when none is found)."""
    import os
    from pyra.backends import lvm_dm
    from pyra.host import mountns
    dev = lvm_dm.active_device(vg, lv)
    if dev is None:
        return ""
    found = ["the mount namespace of " + c.describe() for c in mountns.copies(dev.rdev)]
    names = {dev.path, os.path.realpath(dev.path)}
    found += ["pid %d (%s)" % (pid, mountns.command_name(pid)) for pid in mountns.device_openers(names)]
    return ", ".join(found)
