"""LVMFilesystem: an LV of a shared VG, activated exclusively on this node, checked and mounted (or left raw).

The OCF semantics of the resource; LVM commands live in ``pyra.backends.lvm``, the kernel's view of an
active LV in ``pyra.backends.lvm_dm``, fsck/mount/unmount/direct I/O in ``pyra.backends.filesystem``.

Ownership, by ``vg_access_mode``:
- system_id: the VG carries the owner's LVM system ID. Start claims an unowned VG, takes a VG over from an
  owner that is not an online member of the cluster (``crm_node -p``), and refuses otherwise. A clean stop
  releases the ID when no other LV of the VG is active here, so that a planned move can take it.
- tagging: the LV carries its owner's tag (this node's name by default; the node's activation/volume_list
  must accept it). Foreign tags are owners, handled like foreign system IDs.
- lvmlockd: lvmlockd's lock (dlm/sanlock) is the arbiter: `-aey` is refused while another host holds it.
After every activation the LV's device is looked up in the kernel (LVM returns 0 when the volume_list filter
skips an LV).

Monitor depth 0 reads the device-mapper node and /proc/self/mountinfo once, without spawning anything.
"""

from pyra.ocf import checks, codes
from pyra.ocf.agent import Action, Agent
from pyra.ocf.errors import ConfigError, Failure, MissingEnvironment
from pyra.ocf.params import BOOLEAN, Param, Schema

ACCESS_MODES = ("system_id", "tagging", "lvmlockd", "clvmd")
SIGNALS = {"TERM": 15, "KILL": 9, "INT": 2, "HUP": 1, "QUIT": 3, "USR1": 10, "USR2": 12}


def parse_stop_signals(text):
    """'TERM:5 KILL:5' -> ((15, 5.0), (9, 5.0)): each signal, then seconds to wait for the mount to free."""
    stages = []
    for word in text.replace(",", " ").split():
        name, _, wait = word.partition(":")
        name = name.upper().removeprefix("SIG")
        if name.isdigit():
            signum = int(name)
        elif name in SIGNALS:
            signum = SIGNALS[name]
        else:
            raise ValueError("unknown signal %r" % name)
        try:
            seconds = float(wait) if wait else 5.0
        except ValueError:
            raise ValueError("bad wait %r after %s" % (wait, name)) from None
        if seconds < 0:
            raise ValueError("negative wait after %s" % name)
        stages.append((signum, seconds))
    if not stages:
        raise ValueError("no signals given")
    return tuple(stages)


def _stop_signals_check(value):
    try:
        parse_stop_signals(value)
    except ValueError as err:
        return str(err)
    return None


def _rules(values):
    if values.vg_access_mode == "clvmd":
        return "vg_access_mode=clvmd: clvmd was removed from LVM 2.03, use lvmlockd"
    if values.activation_mode == "shared":
        if values.vg_access_mode != "lvmlockd":
            return "activation_mode=shared needs vg_access_mode=lvmlockd"
        ro = "ro" in (values.options or "").split(",")
        if values.directory and values.fstype not in ("gfs2", "ocfs2") and not ro:
            return ("activation_mode=shared with %s would corrupt it: use a cluster filesystem (gfs2, ocfs2) or "
                    "mount read-only" % (values.fstype or "a local filesystem"))
    if values.directory and values.directory.rstrip("/") in ("", "/"):
        return "directory must not be /"
    return None


class LVMFilesystem(Agent):
    name = "LVMFilesystem"
    version = "0.1.0"
    shortdesc = "Exclusive LV of a shared VG, checked and mounted"
    longdesc = (
        "Activates a logical volume of a shared volume group exclusively on this node (system ID, tags or "
        "lvmlockd decide who owns it), optionally checks its filesystem, mounts it and monitors it; stop "
        "unmounts (signalling processes that hold the mount, in stages) and deactivates. Without a directory "
        "only the LV is activated, e.g. for a virtual machine's raw disk. Replaces LVM-activate + Filesystem. "
        "Check levels: 0 = LV active and mounted with the right device (no process spawned); 10 = plus a "
        "direct read of the device; 20 = plus a direct write and read of a status file in the filesystem.")
    schema = Schema(
        Param("vgname", required=True, checks=[checks.simple_name], unique_group="lv",
              shortdesc="Volume group", longdesc="Name of the (shared) volume group holding the LV."),
        Param("lvname", required=True, checks=[checks.simple_name], unique_group="lv",
              shortdesc="Logical volume", longdesc="Name of the logical volume to activate."),
        Param("vg_access_mode", default="system_id", choices=ACCESS_MODES,
              shortdesc="How nodes share the VG",
              longdesc=("system_id: the VG carries its owner's LVM system ID (global/system_id_source must be set "
                        "on every node); tagging: the LV carries its owner's tag, and every node's "
                        "activation/volume_list accepts only its own tag; lvmlockd: a shared VG (lock type dlm "
                        "or sanlock) whose LV lock decides; clvmd: not supported by LVM 2.03. With sanlock, a "
                        "node that crashed holding the LV keeps its lease until it expires (about 140 s by "
                        "default): start retries 'locked by other host' for most of its timeout, so give start "
                        "a timeout of at least 160 s on sanlock VGs.")),
        Param("activation_mode", default="exclusive", choices=("exclusive", "shared"),
              shortdesc="Exclusive or shared activation",
              longdesc=("exclusive activates on one node only. shared (lvmlockd only, for clones) is refused "
                        "unless the filesystem is a cluster filesystem (gfs2, ocfs2) or mounted read-only.")),
        Param("tag", default="", shortdesc="Owner tag (tagging mode)",
              longdesc="The tag this node puts on the LV in tagging mode. Default: the node name."),
        Param("directory", default="", checks=[checks.absolute_path], unique_group="directory",
              shortdesc="Mount point (empty: raw LV)",
              longdesc="Where to mount the filesystem. Empty: only activate the LV (e.g. a VM's raw disk)."),
        Param("fstype", default="", shortdesc="Filesystem type",
              longdesc="Filesystem type (ext4, xfs, ...). Empty: detected with blkid at start."),
        Param("options", default="", checks=[checks.single_line], shortdesc="Mount options",
              longdesc="Options for mount -o (comma separated)."),
        Param("run_fsck", default="auto", choices=("auto", "force", "no"), shortdesc="Check before mounting",
              longdesc=("auto: check only filesystems without a journal (as rgmanager fs.sh); force: always; "
                        "no: never. A check that finds errors it cannot fix fails the start with its summary.")),
        Param("force_unmount", default="true", choices=("true", "safe", "false"),
              shortdesc="Signal processes that keep the mount busy",
              longdesc=("true or safe: on a busy unmount signal the processes holding the mount, found by a "
                        "/proc walk that only reads links (never fuser -m, never umount -l), in the stages of "
                        "stop_signals. false: never signal; stop fails while the mount is busy.")),
        Param("stop_signals", default="TERM:5 KILL:5", checks=[_stop_signals_check], advanced=True,
              shortdesc="Signals for holders, with waits",
              longdesc=("Space separated SIGNAL:SECONDS stages sent to the processes holding a busy mount, each "
                        "followed by up to SECONDS of waiting for them to exit; bounded by the stop timeout.")),
        Param("partial_activation", type=BOOLEAN, default=False,
              shortdesc="Activate with missing PVs",
              longdesc=("Activate even when PVs are missing (--activationmode partial); the monitor then "
                        "reports the resource as degraded (190).")),
        Param("degraded_activation", type=BOOLEAN, default=False,
              shortdesc="Activate RAID LVs degraded",
              longdesc=("Activate RAID LVs with missing legs (--activationmode degraded); the monitor then "
                        "reports degraded (190) while PVs are missing.")),
        rules=(_rules,),
    )
    actions = (
        Action("start", timeout=60), Action("stop", timeout=60),
        Action("monitor", timeout=20, interval=10),
        Action("monitor", timeout=40, interval=60, depth=10),
        Action("monitor", timeout=60, interval=120, depth=20),
    )
    check_levels = (0, 10, 20)

    # ---- helpers ----------------------------------------------------------------------------------------
    @staticmethod
    def _target(op):
        """(vg, lv, directory) from the parameters, else from the identity recorded at start."""
        p = op.params
        vg, lv, directory = p.vgname, p.lvname, p.directory
        if not vg or not lv:
            ident = op.state.identity() if op.action in ("monitor", "stop") else {}
            vg, lv = ident.get("vg"), ident.get("lv")
            directory = ident.get("directory", "")
            if not vg or not lv:
                raise MissingEnvironment("vgname and lvname are not set and nothing was started here")
        return vg, lv, (directory.rstrip("/") or "") if directory else ""

    @staticmethod
    def _lvm(op):
        from pyra.backends.lvm import Lvm
        return Lvm(op.run)

    @staticmethod
    def _node_name(op):
        from pyra.host import cluster
        return cluster.local_node_name(op.run, op.env.environ)

    def _may_take_over(self, op, owner, ours):
        """May this node take VG/LV ownership from ``owner``? Only when owners are cluster node names (our own
        ID ``ours`` is one of the partition's members) and ``owner`` is not in our partition: Pacemaker
        starts us there only after the owner was fenced. With IDs that are not node names (system_id_source
        = machineid, a custom tag) an online owner would look absent, so we refuse."""
        from pyra.host import cluster
        online = cluster.online_members(op.run)
        if online is None:
            return False, "cannot tell whether %s is down (crm_node -p failed)" % owner
        if owner in online:
            return False, "%s is an online cluster member" % owner
        if ours not in online:
            return False, ("cannot tell whether %s is down: our ID %s is not a cluster node name "
                           "(use node names: system_id_source=uname, default tag)" % (owner, ours))
        return True, "%s is not a member of this partition" % owner

    # ---- validate -----------------------------------------------------------------------------------
    def validate(self, op):
        import shutil
        if op.depth < 10:
            return
        for tool in ("lvm", "mount", "umount") + (("fsck",) if op.params.directory else ()):
            if not shutil.which(tool):
                raise MissingEnvironment("%s is not installed on this node" % tool)
        if op.params.fstype and op.params.directory and not _fs_supported(op.params.fstype):
            raise MissingEnvironment("this kernel does not support filesystem %s" % op.params.fstype)

    def validate_all(self, op):
        self.validate(op)
        if op.depth >= 10 or op.action == "validate-all":
            self._check_vg(op, self._lvm(op), *self._target(op)[:2])
        return codes.SUCCESS

    def _check_vg(self, op, lvm, vg, lv):
        """The VG must be visible and its sharing must match vg_access_mode (ConfigError: invalid everywhere)."""
        from pyra.backends.lvm import LvmError
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

    # ---- start --------------------------------------------------------------------------------------
    def start(self, op):
        from pyra.backends import lvm_dm
        from pyra.backends.lvm import LvmError
        from pyra.host import mountinfo
        vg, lv, directory = self._target(op)
        p = op.params
        dev = lvm_dm.active_device(vg, lv)
        if directory:
            top = mountinfo.mounts_at(directory)
            if top:
                if dev is not None and top[-1].device_number == dev.rdev:
                    self._record(op, vg, lv, directory)
                    return codes.SUCCESS
                raise Failure("%s already has %s mounted on it" % (directory, top[-1].source))
        elif dev is not None:
            self._record(op, vg, lv, directory)
            return codes.SUCCESS

        lvm = self._lvm(op)
        info = self._check_vg(op, lvm, vg, lv)
        try:
            lvinfo = lvm.lv(vg, lv)
        except LvmError as err:
            raise Failure("cannot read LV %s/%s: %s" % (vg, lv, err.reason)) from None
        if lvinfo is None:
            raise MissingEnvironment("logical volume %s/%s does not exist" % (vg, lv))
        self._record(op, vg, lv, directory)
        if dev is None:
            self._claim(op, lvm, vg, lv, info, lvinfo)
            mode = "sy" if p.activation_mode == "shared" else "ey"
            amode = "partial" if p.partial_activation else ("degraded" if p.degraded_activation else None)
            self._activate(op, lvm, vg, lv, mode, amode, info.get("vg_lock_type", ""))
            dev = lvm_dm.active_device(vg, lv)
            if dev is None:
                hint = (' (does activation/volume_list accept "@%s"?)' % self._tag(op)
                        if p.vg_access_mode == "tagging" else " (activation filter?)")
                raise Failure("lvchange -a%s %s/%s succeeded but the LV is not active%s" % (mode, vg, lv, hint))
        if directory:
            self._mount(op, dev, directory)
        return codes.SUCCESS

    @staticmethod
    def _activate(op, lvm, vg, lv, mode, amode, lock_type):
        """lvchange -a<mode>. On a sanlock VG, "LV locked by other host" is retried within a share of the
        deadline: after the holder crashed (and was fenced) sanlock grants its locks only once the dead host's
        lease has expired (8 x io_timeout + 60 s, ~140 s by default), and a start that fails at once would
        leave the resource banned here instead of failing over."""
        from pyra.backends.lvm import LvmError
        window = op.deadline.share(0.8)
        delay = 1.0
        while True:
            try:
                lvm.activate(vg, lv, mode, amode)
                return
            except LvmError as err:
                if lock_type != "sanlock" or "locked by other host" not in err.reason or window.expired():
                    raise Failure("activating %s/%s failed: %s" % (vg, lv, err.reason)) from None
                op.log.warning("%s: waiting for the holder's sanlock lease to expire", err.reason)
                window.sleep(delay)
                delay = min(5.0, delay * 1.5)

    def _record(self, op, vg, lv, directory):
        ident = {"vg": vg, "lv": lv, "directory": directory}
        if op.state.identity() != ident or not op.state.has_record:
            op.state.record_start(ident)

    def _tag(self, op):
        return op.params.tag or self._node_name(op)

    def _local_id(self, op, lvm, required=True):
        from pyra.backends.lvm import LvmError
        try:
            ours = lvm.local_system_id()
        except LvmError as err:
            raise MissingEnvironment("cannot read this node's LVM system ID: %s" % err.reason) from None
        if not ours and required:
            raise MissingEnvironment("this node has no LVM system ID: set global/system_id_source in lvm.conf")
        return ours

    def _claim(self, op, lvm, vg, lv, info, lvinfo):
        """Make this node the owner of VG/LV in the configured mode, or refuse (Failure)."""
        from pyra.backends.lvm import LvmError
        mode = op.params.vg_access_mode
        try:
            if mode == "system_id":
                ours = self._local_id(op, lvm)
                owner = info.get("vg_systemid", "")
                if owner == ours:
                    return
                if not owner:
                    op.log.info("claiming unowned VG %s for system ID %s", vg, ours)
                    lvm.set_system_id(vg, ours)
                    return
                ok, why = self._may_take_over(op, owner, ours)
                if not ok:
                    raise Failure("VG %s is owned by %s: %s" % (vg, owner, why))
                op.log.warning("taking VG %s over from %s: %s", vg, owner, why)
                lvm.set_system_id(vg, ours, previous_owner=owner)
            elif mode == "tagging":
                ours = self._tag(op)
                foreign = [t for t in (lvinfo or {}).get("tags", []) if t != ours]
                for owner in foreign:
                    ok, why = self._may_take_over(op, owner, ours)
                    if not ok:
                        raise Failure("LV %s/%s is tagged for %s: %s" % (vg, lv, owner, why))
                    op.log.warning("taking LV %s/%s over from %s: %s", vg, lv, owner, why)
                if foreign or ours not in (lvinfo or {}).get("tags", []):
                    lvm.change_lv_tags(vg, lv, add=[ours], delete=foreign)
            elif mode == "lvmlockd":
                lvm.lock_start(vg)
        except LvmError as err:
            raise Failure("cannot take ownership of %s/%s: %s" % (vg, lv, err.reason)) from None

    def _mount(self, op, dev, directory):
        import os
        from pyra.backends import filesystem as fs
        from pyra.host import mountinfo
        p = op.params
        fstype = p.fstype or _detect_fstype(op, dev.path)
        if not fstype:
            raise Failure("no filesystem found on %s: set fstype or create one" % dev.path)
        if fs.needs_fsck(p.run_fsck, fstype):
            try:
                fs.fsck(op.run, dev.path, fstype, timeout=op.deadline.remaining(), force=p.run_fsck == "force")
            except fs.FsError as err:
                raise Failure(err.reason) from None
        try:
            os.makedirs(directory, 0o755, exist_ok=True)
        except OSError as err:
            raise Failure("cannot create mount point %s: %s" % (directory, err.strerror)) from None
        try:
            fs.mount(op.run, dev.path, directory, fstype, p.options, timeout=op.deadline.remaining())
        except fs.FsError as err:
            raise Failure(err.reason) from None
        top = mountinfo.mounts_at(directory)
        if not top or top[-1].device_number != dev.rdev:
            raise Failure("mount of %s on %s did not show up in mountinfo" % (dev.path, directory))
        errors = fs_errors(dev, top[-1].fstype)
        if errors is not None:
            op.state.update(fs_errors=errors)  # the monitor's baseline: errors counted from here on are news

    # ---- stop ---------------------------------------------------------------------------------------
    def stop(self, op):
        from pyra.backends import filesystem as fs
        from pyra.backends import lvm_dm
        from pyra.backends.lvm import LvmError
        from pyra.host import mountinfo
        vg, lv, directory = self._target(op)
        p = op.params
        if directory and mountinfo.mounts_at(directory):
            dev = lvm_dm.active_device(vg, lv)
            top = mountinfo.mounts_at(directory)[-1]
            if dev is None or top.device_number != dev.rdev:
                op.log.warning("%s has %s mounted, not %s/%s: leaving it alone", directory, top.source, vg, lv)
            else:
                try:
                    stages = _stages(parse_stop_signals(p.stop_signals), op.deadline)
                    fs.unmount(op.run, directory, op.deadline.share(0.8), mountinfo, p.force_unmount,
                               stages, op.log)
                except fs.FsError as err:
                    raise Failure(err.reason) from None
        active = lvm_dm.active_device(vg, lv) is not None
        if active or op.has_record():
            lvm = self._lvm(op)
            if active:
                self._deactivate(op, lvm, vg, lv)
                if lvm_dm.active_device(vg, lv) is not None:
                    raise Failure("%s/%s is still active after lvchange -an" % (vg, lv))
            self._release(op, lvm, vg, lv)
        op.state.record_stop()
        return codes.SUCCESS

    @staticmethod
    def _deactivate(op, lvm, vg, lv):
        """lvchange -an, retried while the device is briefly "in use" (udev/blkid probes, or a mount namespace
        created elsewhere that still holds a copy of our mount), within a share of the deadline."""
        from pyra.backends.lvm import LvmError
        window = op.deadline.share(0.5)
        delay = 0.2
        while True:
            try:
                lvm.deactivate(vg, lv)
                return
            except LvmError as err:
                if "in use" not in err.reason or window.expired():
                    raise Failure("deactivating %s/%s failed: %s" % (vg, lv, err.reason)) from None
                op.log.info("%s/%s: %s; retrying", vg, lv, err.reason)
                window.sleep(delay)
                delay = min(1.0, delay * 1.5)

    def _release(self, op, lvm, vg, lv):
        """Give up ownership after a clean deactivation (best effort: a failure here is only logged)."""
        from pyra.backends import lvm_dm
        from pyra.backends.lvm import LvmError
        mode = op.params.vg_access_mode
        try:
            if mode == "tagging":
                lvm.change_lv_tags(vg, lv, delete=[self._tag(op)])
            elif mode == "system_id":
                others = [n for n in lvm.lv_names(vg) if n != lv and lvm_dm.active_device(vg, n) is not None]
                if others:
                    op.log.info("VG %s keeps its system ID: %s still active here", vg, ", ".join(others))
                else:
                    lvm.set_system_id(vg, "")
        except (LvmError, MissingEnvironment) as err:
            op.log.warning("could not release %s/%s: %s", vg, lv, getattr(err, "reason", err))

    # ---- monitor ------------------------------------------------------------------------------------
    def monitor(self, op):
        from pyra.backends import lvm_dm
        vg, lv, directory = self._target(op)
        dev = lvm_dm.active_device(vg, lv)
        if dev is None:
            return op.not_running("%s/%s is not active" % (vg, lv))
        mount = None
        if directory:
            from pyra.host import mountinfo
            top = mountinfo.mounts_at(directory)
            if not top:
                raise Failure("%s/%s is active but not mounted on %s" % (vg, lv, directory))
            mount = top[-1]
            if mount.device_number != dev.rdev:
                raise Failure("%s has %s mounted, not %s/%s" % (directory, mount.source, vg, lv))
        if lvm_dm.suspended(dev):
            return op.degraded("device-mapper device of %s/%s is suspended" % (vg, lv))
        if op.check_level >= 10:
            from pyra.backends import filesystem as fs
            # Under partial/degraded activation the extents of a missing PV map to dm's error target: a read
            # there fails because of the degradation the admin accepted, which is 190, not a failure.
            missing = 0
            if op.params.partial_activation or op.params.degraded_activation:
                missing = self._missing_pvs(op, vg)
            try:
                fs.read_direct(dev.path)
            except (OSError, fs.FsError) as err:
                why = getattr(err, "strerror", None) or err
                if missing:
                    return op.degraded("VG %s is missing %s PV(s); reading %s failed: %s" % (vg, missing, dev.path,
                                                                                           why))
                raise Failure("cannot read %s: %s" % (dev.path, why)) from None
            if missing:
                return op.degraded("VG %s is missing %s PV(s)" % (vg, missing))
        if mount is not None and mount.fstype.startswith("ext"):
            errors = fs_errors(dev, mount.fstype)
            base = op.state.read().get("fs_errors", "")
            if errors is not None and base.isdigit() and errors > int(base):
                return op.degraded("%s: ext4 counted %d new error(s) since start (remounted read-only?)" % (
                    directory, errors - int(base)))
        if mount is not None and mount.read_only and "ro" not in (op.params.options or "").split(","):
            return op.degraded("%s is mounted read-only (remounted after errors?)" % directory)
        if op.check_level >= 20 and mount is not None and not mount.read_only:
            from pyra.backends import filesystem as fs
            # A full filesystem is working storage an admin must attend to: 190, never a restart (1), which
            # cannot free a byte. Users see "full" before root does (reserved blocks), so ask statvfs too.
            full = fs.full(directory)
            if full:
                return op.degraded("%s is full (%s)" % (directory, full))
            try:
                fs.write_read_status(directory, self._node_name(op), "%s %s/%s\n" % (op.env.instance, vg, lv))
            except (OSError, fs.FsError) as err:
                if getattr(err, "errno", None) in fs.FULL_ERRNOS:
                    return op.degraded("%s is full: status file write failed: %s" % (directory, err.strerror))
                raise Failure("status file write in %s failed: %s" % (
                    directory, getattr(err, "strerror", None) or err)) from None
        return codes.SUCCESS

    def _missing_pvs(self, op, vg):
        from pyra.backends.lvm import LvmError
        try:
            info = self._lvm(op).vg(vg)
        except LvmError:
            return 0
        try:
            return int((info or {}).get("vg_missing_pv_count") or 0)
        except ValueError:
            return 0


def _stages(stages, deadline):
    """Turn (signal, seconds) into terminate_in_stages' (signal, share of the remaining time)."""
    out = []
    budget = max(0.1, deadline.remaining() * 0.8)
    left = budget
    for index, (signum, seconds) in enumerate(stages):
        if index == len(stages) - 1:
            out.append((signum, 1.0))
        else:
            out.append((signum, min(1.0, seconds / left) if left > 0 else 1.0))
            left = max(0.1, left - seconds)
    return tuple(out)


def fs_errors(dev, fstype, sysfs="/sys"):
    """ext2/3/4's count of filesystem errors on ``dev`` (/sys/fs/ext4/<kernel name>/errors_count), else None.

    Kernels with the 6.10 error handling (also Debian's 6.1.1xx) no longer set SB_RDONLY when
    errors=remount-ro fires: they log "Remounting filesystem read-only" but mountinfo and statvfs still say
    rw while every write fails. The error count is what changes; two reads, no spawn."""
    if not fstype.startswith("ext"):
        return None
    import os
    try:
        name = os.path.basename(os.readlink("%s/dev/block/%d:%d" % (sysfs, dev.major, dev.minor)))
        with open("%s/fs/ext4/%s/errors_count" % (sysfs, name)) as handle:
            return int(handle.read().strip() or "0")
    except (OSError, ValueError):
        return None


def _detect_fstype(op, path):
    res = op.run(["blkid", "-p", "-o", "value", "-s", "TYPE", path], timeout=min(10.0, op.deadline.remaining()))
    return res.stdout.strip() if res.rc == 0 else ""


def _fs_supported(fstype):
    try:
        with open("/proc/filesystems") as handle:
            known = {line.split()[-1] for line in handle if line.strip()}
    except OSError:
        return True
    return fstype in known or fstype in ("xfs", "ext4", "ext3", "ext2", "btrfs", "gfs2", "ocfs2")
