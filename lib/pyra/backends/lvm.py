"""LVM command line: what a VG/LV looks like in the metadata, and the changes the agent makes to it.

Everything here spawns `lvm` (start, stop, validate and deep monitors only; the depth-0 monitor uses
``pyra.backends.lvm_dm``). Commands get argv lists and the operation's deadline through the ``run`` callable
(``op.run``). Reports are read from stdout only (LVM prints warnings, and on hosts without device-mapper its
errors, on stderr in the middle of a run) with a ``|`` separator; tags are comma separated.
"""

LVM = "lvm"
SEP = "|"
NOISE = ("leaked on lvm invocation", "/dev/mapper/control", "kernel device-mapper driver",
         "device-mapper is available", "Incompatible libdevmapper", "WARNING: Activation disabled",
         "Skipping global lock", "Reading VG", "WARNING: lvmlockd process is not running")

VG_FIELDS = ("vg_name", "vg_attr", "vg_lock_type", "vg_systemid", "vg_tags", "vg_missing_pv_count",
             "lv_count")
LV_FIELDS = ("lv_name", "lv_attr", "lv_tags", "lv_uuid", "lv_active", "lv_health_status")


class LvmError(Exception):
    """An lvm command failed; ``reason`` is its first meaningful error line."""

    def __init__(self, reason, result=None):
        super().__init__(reason)
        self.reason = reason
        self.result = result


def why(result):
    """The first meaningful line of an lvm command's stderr (without device-mapper/fd noise), preferring an
    error over the WARNINGs LVM prints before it (e.g. "Couldn't find device with uuid" before "Refusing
    activation of partial LV"); a WARNING only when nothing else was said."""
    if result.timed_out:
        return "%s timed out after %.0fs" % (" ".join(result.argv[:2]), result.duration)
    warning = None
    for line in (result.stderr or "").splitlines():
        line = line.strip()
        if not line or any(n in line for n in NOISE):
            continue
        if not line.startswith("WARNING:"):
            return line
        warning = warning or line
    return warning or "%s exited with rc %s" % (" ".join(result.argv[:2]), result.rc)


def _rows(text, fields):
    rows = []
    for line in text.splitlines():
        line = line.strip()
        if not line:
            continue
        values = line.split(SEP)
        if len(values) == len(fields):
            rows.append(dict(zip(fields, (v.strip() for v in values))))
    return rows


def tags(text):
    return [t for t in text.split(",") if t]


class Lvm:
    def __init__(self, run, timeout=None):
        self._run = run
        self.timeout = timeout

    def lvm(self, *args, timeout=None):
        return self._run([LVM, *args], timeout=timeout or self.timeout)

    def _report(self, command, fields, target):
        res = self.lvm(command, "--foreign", "--noheadings", "--separator", SEP, "--units", "b", "--nosuffix",
                       "-o", ",".join(fields), target)
        rows = _rows(res.stdout, fields) if res.rc == 0 else []
        return res, rows

    def vg(self, vg):
        """The VG's report row, or None when no VG of that name is visible on this node."""
        res, rows = self._report("vgs", VG_FIELDS, vg)
        if res.timed_out:
            raise LvmError(why(res), res)
        if not rows:
            text = why(res)
            if res.rc != 0 and "not found" not in text and "Cannot process volume group" not in text:
                raise LvmError(text, res)
            return None
        row = rows[0]
        row["tags"] = tags(row.pop("vg_tags"))
        return row

    def lv(self, vg, lv):
        """The LV's report row, or None when the VG has no such LV."""
        res, rows = self._report("lvs", LV_FIELDS, "%s/%s" % (vg, lv))
        if res.timed_out:
            raise LvmError(why(res), res)
        if not rows:
            if res.rc != 0 and "Failed to find logical volume" not in why(res):
                raise LvmError(why(res), res)
            return None
        row = rows[0]
        row["tags"] = tags(row.pop("lv_tags"))
        return row

    def lv_names(self, vg):
        res = self.lvm("lvs", "--foreign", "--noheadings", "-o", "lv_name", vg)
        if res.rc != 0:
            raise LvmError(why(res), res)
        return [line.strip() for line in res.stdout.splitlines() if line.strip()]

    def local_system_id(self):
        """This node's LVM system ID ('' when none is configured)."""
        res = self.lvm("systemid")
        if res.rc != 0:
            raise LvmError(why(res), res)
        for line in res.stdout.splitlines():
            if "system ID:" in line:
                return line.split("system ID:", 1)[1].strip()
        return ""

    def activate(self, vg, lv, mode="ey", activation_mode=None):
        args = ["lvchange", "-a" + mode]
        if activation_mode:
            args += ["--activationmode", activation_mode]
        res = self.lvm(*args, "%s/%s" % (vg, lv))
        if res.rc != 0:
            raise LvmError(why(res), res)
        return res

    def deactivate(self, vg, lv):
        res = self.lvm("lvchange", "-an", "%s/%s" % (vg, lv))
        if res.rc != 0:
            raise LvmError(why(res), res)
        return res

    def change_lv_tags(self, vg, lv, add=(), delete=()):
        args = ["lvchange"]
        for t in delete:
            args += ["--deltag", t]
        for t in add:
            args += ["--addtag", t]
        if len(args) == 1:
            return None
        res = self.lvm(*args, "%s/%s" % (vg, lv))
        if res.rc != 0:
            raise LvmError(why(res), res)
        return res

    def set_system_id(self, vg, system_id, previous_owner=None):
        """Give the VG to ``system_id``. Taking it from ``previous_owner`` (a node known to be down) needs
        that owner's ID in extra_system_ids for this one command, as ocf:heartbeat:LVM-activate does."""
        args = ["vgchange", "-y"]
        if previous_owner:
            args += ["--config", 'local/extra_system_ids=["%s"]' % previous_owner.replace('"', "")]
        res = self.lvm(*args, "--systemid", system_id, vg)
        if res.rc != 0:
            raise LvmError(why(res), res)
        return res

    def lock_start(self, vg):
        res = self.lvm("vgchange", "--lockstart", vg)
        if res.rc != 0:
            raise LvmError(why(res), res)
        return res
