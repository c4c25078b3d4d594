"""The soak's fault catalogue and its seeded planner.

A fault is injected, lasts a while, and is healed; an *episode* is one to three faults whose lifetimes
overlap (at most one of them takes a node out of the membership, so the cluster keeps quorum). The planner
(``plan``) is a pure function of a ``random.Random``: the same seed gives the same kinds, offsets, durations
and target choices (targets are resolved against where things run at injection time, by index).

Each kind states its fencing policy: ``fence`` is "required" (the node leaves the membership: Pacemaker must
fence it before recovering what it ran), "allowed" (it may or may not be fenced), or None (a fence would be a
bug, unless a stop failed, which the engine checks separately).
"""
import os
import re
import signal
import time

from lab import pyralab
from lab.soak import rig

MEMBERSHIP = ("power_cut", "freeze", "partition", "corosync_restart")


class Fault:
    kind = None
    fence = None
    duration = (0, 0)

    def __init__(self, offset, duration, pick):
        self.offset = offset        # seconds after the episode start
        self.duration = duration    # seconds from injection to heal
        self.pick = pick            # a float in [0, 1): which target, resolved at injection time
        self.node = None            # the node it hit (for the fencing check)
        self.note = ""

    def __repr__(self):
        return "%s(+%.0fs, %.0fs)" % (self.kind, self.offset, self.duration)

    def describe(self):
        return "%s %s%s" % (self.kind, self.node or "", (" " + self.note) if self.note else "")

    def _choose(self, options):
        options = sorted(options)
        return options[int(self.pick * len(options))] if options else None

    def inject(self, ctx):
        raise NotImplementedError

    def heal(self, ctx):
        pass


# -- membership faults -----------------------------------------------------------------------------------------
class NodeOut(Fault):
    """A node hosting soak resources is taken out of the membership (``take_out``); the heal waits for its
    fence (required), puts back what the fence did not take (``put_back``, before or after the fence) and
    boots it again."""
    fence = "required"

    def inject(self, ctx):
        self.node = self._choose(ctx.busy_nodes())
        self.take_out(ctx)

    def heal(self, ctx):
        self.before_fence(ctx)
        ctx.wait_fenced(self.node)
        self.after_fence(ctx)
        ctx.boot(self.node)

    def take_out(self, ctx):
        raise NotImplementedError

    def before_fence(self, ctx):
        pass

    def after_fence(self, ctx):
        pass


class PowerCut(NodeOut):
    kind, duration = "power_cut", (5, 20)

    def take_out(self, ctx):
        ctx.lab.kill_node(self.node, quiet=True)


class Freeze(NodeOut):
    kind, duration = "freeze", (6, 15)

    def take_out(self, ctx):
        ctx.lab.signal_node(self.node, signal.SIGSTOP)

    def before_fence(self, ctx):
        ctx.lab.signal_node(self.node, signal.SIGCONT)  # what the fence left of it, if anything


class Partition(NodeOut):
    kind, duration = "partition", (8, 20)

    def take_out(self, ctx):
        ctx.lab.partition(self.node)

    def after_fence(self, ctx):
        ctx.lab.heal(self.node)


class CorosyncRestart(Fault):
    """corosync dies on a node: its pacemaker cannot go on, the others see the node leave uncleanly and fence
    it; then it boots again (booting before the fence would only have the fence kill the new daemons)."""
    kind, fence, duration = "corosync_restart", "required", (3, 8)

    def inject(self, ctx):
        self.node = self._choose(ctx.live_nodes())
        pid = pyralab.pidfile_alive(f"{ctx.lab.ndir(self.node)}/corosync.pid")
        if pid:
            os.kill(pid, signal.SIGKILL)

    def heal(self, ctx):
        ctx.wait_fenced(self.node)
        ctx.lab.kill_node(self.node, quiet=True)  # what the fence left, if it did not come
        ctx.boot(self.node)


# -- daemon and process faults ---------------------------------------------------------------------------------
def _pids(lab, node, comm):
    return [p for p in lab.node_pids(node) if pyralab.comm(p) == comm]


class LibvirtdKill(Fault):
    kind, duration = "libvirtd_kill", (5, 25)

    def inject(self, ctx):
        self.node = self._choose(ctx.nodes_of("vm-disk", "vm-mig"))
        for pid in _pids(ctx.lab, self.node, "libvirtd"):
            os.kill(pid, signal.SIGKILL)

    def heal(self, ctx):
        if ctx.lab.alive(self.node):
            ctx.lab.start_libvirtd(self.node)


class LibvirtdFreeze(Fault):
    kind, duration = "libvirtd_freeze", (5, 25)

    def inject(self, ctx):
        self.node = self._choose(ctx.nodes_of("vm-disk", "vm-mig"))
        self.pids = _pids(ctx.lab, self.node, "libvirtd")
        for pid in self.pids:
            os.kill(pid, signal.SIGSTOP)

    def heal(self, ctx):
        for pid in self.pids:
            try:
                os.kill(pid, signal.SIGCONT)
            except ProcessLookupError:
                pass


class QemuKill(Fault):
    kind = "qemu_kill"

    def inject(self, ctx):
        self.note = self._choose(("vm-disk", "vm-mig"))
        for pid in rig.instances()[self.note]:
            os.kill(pid, signal.SIGKILL)


class ContainerInitKill(Fault):
    kind = "ct_init_kill"

    def inject(self, ctx):
        node = ctx.where("ct")
        if node is None:
            self.note = "(not running)"
            return
        self.node = node
        res = ctx.lab.exec(node, ["lxc-info", "-P", f"{rig.MNT_CT}/lxc", "-n", rig.CT, "-pH"], timeout=30)
        pid = res.stdout.strip()
        if pid.isdigit():
            os.kill(int(pid), signal.SIGKILL)
        else:
            self.note = "(no init pid)"


# -- administration and tooling faults ------------------------------------------------------------------------
class Move(Fault):
    """``crm_resource --move`` of a group to another live node; healed by ``--clear``."""
    kind, duration = "move", (30, 60)
    groups = tuple(rig.GROUPS)

    def inject(self, ctx):
        self.group = self.note = self._choose(self.groups)
        here = ctx.where(rig.GROUPS[self.group][-1])
        others = [n for n in ctx.live_nodes() if n != here]
        if not others:
            self.note += " (nowhere to go)"
            return
        self.node = others[int(self.pick * 7) % len(others)]
        self.before_move(ctx)
        ctx.admin(["crm_resource", "--move", "-r", self.group, "-N", self.node])

    def before_move(self, ctx):
        pass

    def heal(self, ctx):
        ctx.admin(["crm_resource", "--clear", "-r", self.group])


class LvmHangOnce(Move):
    """The next lvm call on a node hangs (until the agent's deadline kills it); then a group is moved there,
    so the hung call is its LV activation."""
    kind, duration = "lvm_hang_once", (40, 70)
    groups = ("grp-vm", "grp-ct")

    def before_move(self, ctx):
        self.flag = f"{ctx.lab.dm_state(self.node)}/hang-once"
        open(self.flag, "w").close()

    def heal(self, ctx):
        if self.node:
            if os.path.exists(self.flag):
                os.unlink(self.flag)
                self.note += " (not consumed)"
            super().heal(ctx)


class ShortTimeout(Fault):
    """vm-disk's start timeout drops to 2 s and its QEMU is killed: the restart cannot finish in time (a TCG
    guest needs longer to answer the handshake), so the agent gives up at its deadline or pacemaker-execd kills
    it; healed by restoring 90 s."""
    kind, duration = "short_timeout", (20, 40)

    def inject(self, ctx):
        ctx.set_start_timeout("vm-disk", "2s")
        for pid in rig.instances()["vm-disk"]:
            os.kill(pid, signal.SIGKILL)
        self.node = ctx.where("vm-disk")

    def heal(self, ctx):
        ctx.set_start_timeout("vm-disk", "90s")


KINDS = {cls.kind: cls for cls in (PowerCut, Freeze, Partition, CorosyncRestart, LibvirtdKill, LibvirtdFreeze,
                                    QemuKill, ContainerInitKill, Move, LvmHangOnce, ShortTimeout)}
WEIGHTS = {"power_cut": 3, "freeze": 2, "partition": 2, "corosync_restart": 1, "libvirtd_kill": 2,
           "libvirtd_freeze": 2, "qemu_kill": 3, "ct_init_kill": 2, "move": 3, "lvm_hang_once": 1,
           "short_timeout": 1}


def plan(rng, kinds=None):
    """One episode: a list of Faults (1 to 3, at most one membership fault and one of each kind), with
    offsets within the first 10 s so that their lifetimes overlap."""
    names = sorted(kinds or KINDS)
    weights = [WEIGHTS.get(n, 1) for n in names]
    count = rng.choices((1, 2, 3), weights=(6, 3, 1))[0]
    chosen = []
    for _ in range(count * 4):
        if len(chosen) == count:
            break
        kind = rng.choices(names, weights=weights)[0]
        if kind in chosen or (kind in MEMBERSHIP and any(k in MEMBERSHIP for k in chosen)):
            continue
        chosen.append(kind)
    faults = []
    for i, kind in enumerate(chosen):
        cls = KINDS[kind]
        low, high = cls.duration
        offset = 0.0 if i == 0 else round(rng.uniform(0, 10), 1)
        faults.append(cls(offset, round(rng.uniform(low, high), 1), rng.random()))
    return faults


def set_start_timeout(ctx, rsc, value):
    """Change the timeout of rsc's start operation in the CIB (through ctx.admin: a node that can answer).
    The op is found by its name, not by an id: crmsh 4 names it RSC-start-0, crmsh 5 RSC-start-0s."""
    res = ctx.admin(["cibadmin", "-Q", "-o", "resources", "-A",
                     f"//primitive[@id='{rsc}']/operations/op[@name='start']"], check=True)
    found = re.search(r'<op\b[^>]*\bid="([^"]+)"', res.stdout)
    if not found:
        raise pyralab.LabError(f"{rsc} has no start op in the CIB: {res.stdout.strip()[:200]}")
    ctx.admin(["cibadmin", "-M", "-o", "resources", "-X", f'<op id="{found.group(1)}" timeout="{value}"/>'],
              check=True)


def wait(predicate, timeout, step=0.5):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(step)
    return predicate()

