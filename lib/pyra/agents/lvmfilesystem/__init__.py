"""LVMFilesystem: an LV of a shared VG, activated exclusively on this node, checked and mounted (or left raw).

The OCF semantics of the resource. Who may activate the LV (system ID, tags, lvmlockd) is in ``ownership``,
the deeper monitor checks in ``health``; LVM commands live in ``pyra.backends.lvm``, the kernel's view of an
active LV in ``pyra.backends.lvm_dm``, fsck/mount/unmount/direct I/O in ``pyra.backends.filesystem``. After
every activation the LV's device is looked up in the kernel (LVM returns 0 when the volume_list filter skips
an LV).

Monitor depth 0 reads the device-mapper node and /proc/self/mountinfo once, without spawning anything.
"""

from pyra.agents.base import PyraAgent
from pyra.agents.lvmfilesystem.health import fs_errors
from pyra.ocf import checks, codes
from pyra.ocf.agent import Action
from pyra.ocf.errors import Failure, MissingEnvironment
from pyra.ocf.params import BOOLEAN, Param, Schema

__all__ = ("LVMFilesystem", "fs_errors", "parse_stop_signals")

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


class LVMFilesystem(PyraAgent):
    name = "LVMFilesystem"
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
                        "stop_signals. false: never signal; stop fails while the mount is busy. Copies of the "
                        "mount that other mount namespaces kept (made with private propagation while it was "
                        "mounted) are unmounted there; their users are signalled the same way.")),
        Param("stop_signals", default="TERM:5 KILL:5", convert=parse_stop_signals, advanced=True,
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

    identity_keys = ("vg", "lv")

    def identify(self, op):
        p = op.params
        if not p.vgname or not p.lvname:
            raise MissingEnvironment("vgname and lvname are not set and nothing was started here")
        return {"vg": p.vgname, "lv": p.lvname, "directory": (p.directory or "").rstrip("/")}

    @staticmethod
    def _target(op):
        ident = op.identity()
        return ident["vg"], ident["lv"], ident.get("directory", "")

    @staticmethod
    def _lvm(op):
        from pyra.backends.lvm import Lvm
        return Lvm(op.run)

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
        from pyra.agents.lvmfilesystem import ownership
        self.validate(op)
        if op.depth >= 10 or op.action == "validate-all":
            ownership.check_vg(op, self._lvm(op), self._target(op)[0])
        return codes.SUCCESS

    # ---- start --------------------------------------------------------------------------------------
    def start(self, op):
        from pyra.agents.lvmfilesystem import ownership
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
                    op.record_start()
                    return codes.SUCCESS
                raise Failure("%s already has %s mounted on it" % (directory, top[-1].source))
        elif dev is not None:
            op.record_start()
            return codes.SUCCESS

        lvm = self._lvm(op)
        info = ownership.check_vg(op, lvm, vg)
        try:
            lvinfo = lvm.lv(vg, lv)
        except LvmError as err:
            raise Failure("cannot read LV %s/%s: %s" % (vg, lv, err.reason)) from None
        if lvinfo is None:
            raise MissingEnvironment("logical volume %s/%s does not exist" % (vg, lv))
        op.record_start()
        if dev is None:
            ownership.claim(op, lvm, vg, lv, info, lvinfo)
            mode = "sy" if p.activation_mode == "shared" else "ey"
            amode = "partial" if p.partial_activation else ("degraded" if p.degraded_activation else None)
            ownership.activate(op, lvm, vg, lv, mode, amode, info.get("vg_lock_type", ""))
            dev = lvm_dm.active_device(vg, lv)
            if dev is None:
                hint = (' (does activation/volume_list accept "@%s"?)' % ownership.tag(op)
                        if p.vg_access_mode == "tagging" else " (activation filter?)")
                raise Failure("lvchange -a%s %s/%s succeeded but the LV is not active%s" % (mode, vg, lv, hint))
        if directory:
            self._mount(op, dev, directory)
        return codes.SUCCESS

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
        from pyra.agents.lvmfilesystem import ownership
        from pyra.backends import filesystem as fs
        from pyra.backends import lvm_dm
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
                    fs.unmount(op.run, directory, op.deadline.share(0.8), mountinfo, p.force_unmount,
                               _stages(p.stop_signals, op.deadline), op.log)
                except fs.FsError as err:
                    raise Failure(err.reason) from None
        dev = lvm_dm.active_device(vg, lv)
        if directory and dev is not None:
            try:
                fs.release_copies(op.run, dev.rdev, op.deadline.share(0.8), p.force_unmount,
                                  _stages(p.stop_signals, op.deadline), op.log)
            except fs.FsError as err:
                raise Failure("%s/%s %s" % (vg, lv, err.reason)) from None
        active = dev is not None
        if active or op.has_record():
            lvm = self._lvm(op)
            if active:
                ownership.deactivate(op, lvm, vg, lv)
                if lvm_dm.active_device(vg, lv) is not None:
                    raise Failure("%s/%s is still active after lvchange -an" % (vg, lv))
            ownership.release(op, lvm, vg, lv)
        op.state.record_stop()
        return codes.SUCCESS

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
        if op.check_level == 0 and mount is None:
            return codes.SUCCESS
        from pyra.agents.lvmfilesystem import health
        return health.check(op, vg, lv, dev, directory, mount)


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
