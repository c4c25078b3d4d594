"""The device-mapper stand-in: LV activation's kernel step, played on hosts whose kernel has no device-mapper.

Owns the lab's side of it: the mount namespace a lab "node" runs its agent and its ``lvm`` in, and the kernel
interfaces the stand-in writes there. The agent is not told anything: ``pyra.backends.lvm_dm`` stats
``/dev/mapper/<dm name>`` and reads ``/sys/dev/block/M:m/dm/{name,suspended}``, LVMFilesystem reads
``readlink /sys/dev/block/M:m`` and ``/sys/fs/ext4/<that name>/errors_count``, exactly as on a real node.

In such a namespace (``setup``), for one node whose host-side state directory is STATE:
  /dev/mapper       a read-only bind mount of STATE/mapper: the block device nodes of the node's active LVs,
                    written by the stand-in through STATE (libdm finds no device-mapper and may not litter it
                    with a control node)
  /sys/dev/block    an overlay (source name ``pyra-dm-sysblock``, upper layer STATE/sysblock/upper) over the
                    real one: every device of the host, also ones attached later, keeps its entry, except that
                    the entry of each active LV's loop device is a link to STATE/sysfs/loopN (``dm/name``,
                    ``dm/suspended``, ``dm/uuid``, and links to the real loopN attributes): its basename is
                    still the kernel name ext4 uses in /sys/fs. Nothing else is added there (LVM reads every
                    entry as M:m).
``lvm`` (this directory, first on PATH) writes and removes those entries on ``lvchange -a[ye]/-an``; it knows
it is in such a namespace by that overlay (and finds STATE from its upper layer). Outside one it passes every
call to the real /sbin/lvm unchanged.

Namespaces: the cluster lab's nodes have their own mount namespace (``lab.pyralab`` calls ``setup`` in it);
the host-tier rigs (``lab.rigs.lvm_rig``) and the SAN admin (``lab.sanstorage``) get a persistent one from
``create`` and run commands in it through ``enter`` (nsenter). Its /dev and /sys propagate nothing to the host;
the directories in ``shared`` stay peers of the host's, so what the agent mounts there is seen on the host.
Host-side readers (tests, the fence agent) use ``devices``/``device`` on STATE.

/dev/mapper must exist as a mount point: on a host without it the lab creates it (an empty directory in
devtmpfs) and ``release_mountpoint`` removes it again once no namespace mounts anything on it.
"""
import os
import stat
import subprocess
import sys

DIR = os.path.dirname(os.path.abspath(__file__))  # first on PATH: its `lvm` is the stand-in
REPO = os.path.dirname(os.path.dirname(DIR))
MAPPER = "/dev/mapper"
SYSBLOCK = "/sys/dev/block"
OVERLAY = "pyra-dm-sysblock"  # the source name of the /sys/dev/block overlay: the mark of a stand-in namespace
CREATED = "/run/pyra-dm-mapper-created"  # the lab made /dev/mapper (the host had none)
# mounts of the lab and of the tests: a namespace of the host tier drops its copies of them at once, so it pins
# nobody's filesystem or loop device
LAB_PREFIXES = ("/var/tmp/pyra-", "/run/pyra-")


class StandinError(RuntimeError):
    pass


def _run(argv, check=True, timeout=60):
    res = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    if check and res.returncode != 0:
        raise StandinError("%s: rc %d: %s" % (" ".join(argv), res.returncode, res.stderr.strip()))
    return res


def paths(state):
    """(mapper, sysblock upper, sysblock work, sysfs) under a node's state directory."""
    return (os.path.join(state, "mapper"), os.path.join(state, "sysblock", "upper"),
            os.path.join(state, "sysblock", "work"), os.path.join(state, "sysfs"))


def dm_name(vg, lv):
    return vg.replace("-", "--") + "-" + lv.replace("-", "--")


# ------------------------------------------------------------------------------------- inside a namespace
def _mountinfo():
    """[(mount point, source, fstype)] of this process's mount namespace."""
    out = []
    with open("/proc/self/mountinfo", encoding="utf-8") as handle:
        for line in handle:
            left, _, right = line.partition(" - ")
            rfields = right.split()
            out.append((unescape(left.split()[4]), rfields[1] if len(rfields) > 1 else "", rfields[0]))
    return out


def unescape(field):
    """A mountinfo field with its octal escapes (\\040 for a blank...) decoded."""
    out, i = [], 0
    while i < len(field):
        if field[i] == "\\" and field[i + 1:i + 4].isdigit():
            out.append(chr(int(field[i + 1:i + 4], 8)))
            i += 4
        else:
            out.append(field[i])
            i += 1
    return "".join(out)


def _mounted_on(point, source=None):
    return any(mp == point and source in (None, src) for mp, src, _ in _mountinfo())


def ensure_mountpoint():
    """/dev/mapper as a mount point (created on the host's devtmpfs when the host has none). Called on the host
    before a namespace is made (inside one, /run may be the node's own)."""
    if not os.path.isdir(MAPPER):
        os.makedirs(MAPPER, 0o755, exist_ok=True)
        open(CREATED, "w").close()


def setup(state):
    """Run inside a lab node's mount namespace (whose /dev and /sys propagate nothing to the host): mount the
    node's /dev/mapper and /sys/dev/block from STATE and mark the namespace as the stand-in's."""
    state = os.path.abspath(state)
    for d in paths(state):
        os.makedirs(d, exist_ok=True)
    mapper, upper, work, _ = paths(state)
    ensure_mountpoint()
    _run(["mount", "--bind", mapper, MAPPER])
    _run(["mount", "-o", "remount,bind,ro", MAPPER])
    _run(["mount", "-t", "overlay", "-o", "lowerdir=%s,upperdir=%s,workdir=%s" % (SYSBLOCK, upper, work),
          OVERLAY, SYSBLOCK])


def reset(state):
    """What a reboot does to the node's device-mapper: no LV active. Run inside the node's namespace (nothing of
    the node may run: its LV devices were released when it died)."""
    import shutil
    if _mounted_on(SYSBLOCK, OVERLAY):
        _run(["umount", SYSBLOCK])
    if _mounted_on(MAPPER):
        _run(["umount", MAPPER])
    mapper, upper, _, sysfs = paths(state)
    for name in os.listdir(mapper) if os.path.isdir(mapper) else ():
        os.unlink(os.path.join(mapper, name))
    shutil.rmtree(os.path.dirname(upper), ignore_errors=True)
    shutil.rmtree(sysfs, ignore_errors=True)
    setup(state)


def _inside(state, shared):
    """The body of ``create``: runs in the new namespace (a copy of the host's mounts)."""
    def is_shared(point):
        return any(point == s or point.startswith(s.rstrip("/") + "/") for s in shared)

    mounts = _mountinfo()
    points = sorted({mp for mp, _, _ in mounts}, key=len, reverse=True)
    for point in points:  # nothing mounted or unmounted here reaches the host, except under `shared`
        if not is_shared(point):
            _run(["mount", "--make-slave", point], check=False)
    for point, source, _ in sorted(mounts, key=lambda m: len(m[0]), reverse=True):
        if is_shared(point):
            continue
        if source.startswith("/dev/loop") or point.startswith(LAB_PREFIXES):
            _run(["umount", "-l", point], check=False)
    setup(state)


# ------------------------------------------------------------------------------------- from the host
def create(nsfile, state, shared=()):
    """A persistent mount namespace for one node of a host-tier rig, bound on ``nsfile`` (which must lie on a
    private mount). Its /dev and /sys propagate nothing to the host; ``shared`` directories (shared mounts on
    the host) stay peers, so mounts made in the namespace below them show on the host and the other way round.
    Copies of loop-device and lab mounts are dropped. Returns the argv prefix that runs a command in it."""
    ensure_mountpoint()
    open(nsfile, "a").close()
    code = ("import sys; sys.path.insert(0, %r); from lab import dmstandin; dmstandin._inside(%r, %r)"
            % (REPO, str(state), [str(s) for s in shared]))
    argv = ["unshare", "--mount=%s" % nsfile, "--propagation", "unchanged", sys.executable, "-c", code]
    from lab import nsbind
    res = nsbind.run(argv, lambda a: _run(a, check=False))
    if res.returncode != 0:
        raise StandinError("%s: rc %d: %s" % (" ".join(argv), res.returncode, res.stderr.strip()))
    return enter(nsfile)


def enter(nsfile):
    """argv prefix running a command in the namespace bound on ``nsfile`` (nsenter execs it: same PID)."""
    import shutil
    return [shutil.which("nsenter") or "/usr/bin/nsenter", "--mount=%s" % nsfile, "--wd=/", "--"]


def destroy(nsfile):
    """Unbind the namespace file (the namespace ends with its last process)."""
    if os.path.exists(nsfile):
        _run(["umount", str(nsfile)], check=False)
        try:
            os.unlink(nsfile)
        except OSError:
            pass


def loop_path(rdev):
    """/dev/<kernel name> of a block device number, as the host's sysfs names it."""
    major, minor = os.major(rdev), os.minor(rdev)
    real = os.path.realpath("/sys/dev/block/%d:%d" % (major, minor))
    name = os.path.basename(real)
    if name.startswith("loop"):
        return "/dev/" + name
    return "/dev/loop%d" % minor  # a reader inside another node's namespace sees that node's stand-in entry


def devices(state):
    """{dm name: loop device} of the LVs active in the node whose state directory is ``state`` (host side)."""
    mapper = paths(state)[0]
    out = {}
    try:
        names = os.listdir(mapper)
    except OSError:
        return out
    for name in names:
        try:
            st = os.lstat(os.path.join(mapper, name))
        except OSError:
            continue
        if stat.S_ISBLK(st.st_mode):
            out[name] = loop_path(st.st_rdev)
    return out


def device(state, vg, lv):
    """The loop device playing VG/LV on that node, or None when it is not active there."""
    return devices(state).get(dm_name(vg, lv))


def release_mountpoint():
    """Remove /dev/mapper if the lab created it, it is empty and no mount namespace mounts anything on it."""
    if not os.path.exists(CREATED):
        return
    seen = set()
    for pid in (p for p in os.listdir("/proc") if p.isdigit()):
        try:
            ino = os.stat("/proc/%s/ns/mnt" % pid).st_ino
            if ino in seen:
                continue
            seen.add(ino)
            with open("/proc/%s/mountinfo" % pid, encoding="utf-8") as handle:
                if any(line.split()[4] == MAPPER for line in handle):
                    return
        except (OSError, IndexError):
            continue
    try:
        os.rmdir(MAPPER)
    except OSError:
        return
    os.unlink(CREATED)
