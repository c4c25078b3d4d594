"""``pyra vm NAME ACTION``: one guest (a TransientDomain resource, named by resource id or domain name).

Actions on the domain go to libvirt on the node that runs it, through that node's URI by the agent's rule
(``migration.remote_uri``), every call bounded: where, info, console, reset, ctrlaltdel, sysrq KEY, nmi,
screenshot FILE, vnc. Actions on its placement go through Pacemaker only (target-role, crm_resource --move with
a lifetime, --clear) and then wait until the cluster has settled: start, stop, restart, migrate [NODE], unmove.
"""

import json
import sys
import xml.etree.ElementTree as ET

from pyra.cli import clusterstate, clusterwait, vm_guest
from pyra.cli.main import CliError, FAILED, NOT_FOUND, NOT_RUNNING, USAGE

LIBVIRT_TIMEOUT = 30.0
DEFAULT_WAIT = 180.0

# Linux input keycodes (linux/input-event-codes.h) of what sysrq takes: letters, digits, space
_ROWS = {"qwertyuiop": 16, "asdfghjkl": 30, "zxcvbnm": 44}
KEYCODES = {ch: base + i for row, base in _ROWS.items() for i, ch in enumerate(row)}
KEYCODES.update({str(d): 1 + d for d in range(1, 10)})
KEYCODES.update({"0": 11, "space": 57, " ": 57})
KEY_LEFTCTRL, KEY_LEFTALT, KEY_DELETE, KEY_SYSRQ = 29, 56, 111, 99


def register(subparsers):
    p = subparsers.add_parser("vm", help="one guest: where, info, console, reset, sysrq, start, stop, migrate ...",
                              description="Act on one pyra guest (an ocf:pyra:TransientDomain resource), named by "
                              "its resource id or its domain name. Domain actions go to libvirt on the node "
                              "that runs it (the agent's remote URI rule); placement actions go through "
                              "Pacemaker and wait until the cluster has settled.")
    p.add_argument("name", metavar="NAME", help="resource id or domain name")
    acts = p.add_subparsers(dest="action", metavar="ACTION")
    acts.required = True

    def action(name, help_, func, **kw):
        a = acts.add_parser(name, help=help_, description=help_[0].upper() + help_[1:] + ".", **kw)
        a.set_defaults(func=func)
        return a

    a = action("where", "print the node running the guest (exit 8 when it is not running)", do_where)
    a = action("info", "the domain as libvirt sees it next to what the cluster thinks", do_info)
    a.add_argument("--json", action="store_true", help="one JSON object")
    a = action("console", "the guest's serial console, interactive (escape: ^])", do_console)
    a.add_argument("--force", action="store_true", help="take the console over from another session")
    a = action("reset", "hard-reset the guest (virDomainReset): it boots again", do_reset)
    a.add_argument("--force", action="store_true", help="reset even a guest with on_reboot=destroy (it stops)")
    action("ctrlaltdel", "send ctrl+alt+del to the guest's keyboard", do_ctrlaltdel)
    a = action("sysrq", "send alt+sysrq+KEY to the guest's keyboard", do_sysrq)
    a.add_argument("key", metavar="KEY", help="the sysrq command key (a letter or digit: h, s, u, b, c, ...)")
    action("nmi", "inject a non-maskable interrupt", do_nmi)
    a = action("screenshot", "save the guest's screen (virDomainScreenshot) into FILE", do_screenshot)
    a.add_argument("file", metavar="FILE")
    action("vnc", "print the guest's VNC address and an ssh tunnel command", do_vnc)
    for name, help_, func in (("start", "set target-role Started and wait until it runs", do_start),
                              ("stop", "set target-role Stopped and wait until it is stopped", do_stop),
                              ("restart", "stop, then start, through target-role", do_restart),
                              ("migrate", "move it (live when allow-migrate) with crm_resource --move and a "
                               "lifetime, to NODE or away from its node", do_migrate),
                              ("unmove", "remove the move constraints (crm_resource --clear)", do_unmove)):
        a = action(name, help_, func)
        if name == "migrate":
            a.add_argument("node", metavar="NODE", nargs="?", help="target node (default: let the cluster choose)")
            a.add_argument("--lifetime", type=float, default=None, metavar="S",
                           help="seconds the move constraint lives (default: the wait timeout, at least 60)")
        a.add_argument("--timeout", type=float, default=DEFAULT_WAIT, metavar="S",
                       help="seconds to wait for the cluster to settle (default %.0f)" % DEFAULT_WAIT)
        a.add_argument("--no-wait", action="store_true", help="change the CIB and return at once")


def _deadline(seconds=LIBVIRT_TIMEOUT):
    from pyra.ocf.deadline import Deadline
    return Deadline(seconds)


def _guest(args):
    return vm_guest.find(clusterstate.load(), args.name)


def _libvirt_error(guest, what, err):
    from pyra.backends import libvirt_api as api
    return CliError("%s of %s on %s: %s" % (what, guest.domain, guest.node, api.error_text(err)), FAILED)


def _on_domain(args, what, fn):
    """Run fn(hv, dom) on the running guest's node; one line of output."""
    from pyra.backends import libvirt_api as api
    guest = _guest(args)
    guest.require_running()
    hv = guest.connect(_deadline())
    with hv:
        dom = guest.lookup(hv)
        try:
            out = fn(hv, dom)
        except api.LibvirtError as err:
            raise _libvirt_error(guest, what, err) from None
        except api.Unreachable as err:
            raise CliError("%s of %s: libvirt on %s stopped answering: %s" % (what, guest.domain, guest.node, err),
                           6) from None
    sys.stdout.write("%s: %s on %s\n" % (guest.domain, out or what, guest.node))
    return 0


# -- where / info ------------------------------------------------------------------------------------------
def do_where(args):
    guest = _guest(args)
    if guest.node is None:
        sys.stdout.write("%s: %s (last ran on %s)\n" % (guest.rsc.id, guest.rsc.where(), guest.rsc.last_node or "?"))
        return NOT_RUNNING
    sys.stdout.write(guest.node + "\n")
    return 0


def _live_details(root):
    disks, nics = [], []
    for d in root.iterfind("devices/disk"):
        src = d.find("source")
        tgt = d.find("target")
        source = ""
        if src is not None:
            source = src.get("file") or src.get("dev") or src.get("dir") or src.get("name") or ""
        disks.append({"target": tgt.get("dev") if tgt is not None else None, "device": d.get("device"),
                      "source": source})
    for i in root.iterfind("devices/interface"):
        mac, src, tgt = i.find("mac"), i.find("source"), i.find("target")
        nics.append({"type": i.get("type"), "mac": mac.get("address") if mac is not None else None,
                     "source": (src.get("bridge") or src.get("network") or src.get("dev")) if src is not None
                     else None, "target": tgt.get("dev") if tgt is not None else None})
    return disks, nics


def do_info(args):
    from pyra.backends import libvirt_api as api
    guest = _guest(args)
    rsc = guest.rsc
    cluster = {"resource": rsc.id, "where": rsc.where(), "node": guest.node, "role": rsc.role,
               "target_role": rsc.target_role, "allow_migrate": rsc.allow_migrate, "group": rsc.group,
               "memory": rsc.utilization.get("memory"), "cpu": rsc.utilization.get("cpu"),
               "failures": [f.text() for f in rsc.failures], "last_node": rsc.last_node,
               "uri": guest.uri() if guest.node else None}
    domain = None
    if guest.node:
        hv = guest.connect(_deadline())
        with hv:
            dom = guest.lookup(hv)
            try:
                state, maxmem, mem, vcpus, cputime = hv.call(dom.info)
                reason = hv.state(dom)[1]
                xml = hv.xml(dom)
                dom_id = hv.call(dom.ID)
            except api.LibvirtError as err:
                raise _libvirt_error(guest, "info", err) from None
        root = ET.fromstring(xml)
        disks, nics = _live_details(root)
        text = api.STATE_NAMES.get(state, str(state))
        if state == api.PAUSED:
            text += " (%s)" % api.PAUSED_REASONS.get(reason, reason)
        domain = {"name": guest.domain, "uuid": root.findtext("uuid"), "id": dom_id, "state": text,
                  "vcpus": vcpus, "memory_mib": mem // 1024, "max_memory_mib": maxmem // 1024,
                  "cpu_time_s": round(cputime / 1e9, 1), "disks": disks, "interfaces": nics}
    if args.json:
        sys.stdout.write(json.dumps({"cluster": cluster, "libvirt": domain}, indent=1, sort_keys=True) + "\n")
        return 0 if domain else NOT_RUNNING
    w = sys.stdout.write
    w("cluster:  %s (%s) %s, target-role %s%s%s\n" % (rsc.id, rsc.agent_name, rsc.where(), rsc.target_role,
                                                    ", group %s" % rsc.group if rsc.group else "",
                                                    ", allow-migrate" if rsc.allow_migrate else ""))
    w("          utilization: memory %s MiB, cpu %s\n" % (cluster["memory"] or "-", cluster["cpu"] or "-"))
    for f in rsc.failures:
        w("          failed: %s\n" % f.text())
    if domain is None:
        w("libvirt:  not running (last ran on %s)\n" % (rsc.last_node or "?"))
        return NOT_RUNNING
    w("libvirt:  %s on %s (%s): %s, id %s, uuid %s\n" % (domain["name"], guest.node, cluster["uri"], domain["state"],
                                                        domain["id"], domain["uuid"]))
    w("          %d vCPU, %d MiB (max %d), %.1f s of CPU time used\n" % (
        domain["vcpus"], domain["memory_mib"], domain["max_memory_mib"], domain["cpu_time_s"]))
    for d in domain["disks"]:
        w("          disk %s (%s): %s\n" % (d["target"], d["device"], d["source"] or "-"))
    for n in domain["interfaces"]:
        w("          nic %s %s %s -> %s\n" % (n["mac"], n["type"], n["source"] or "-", n["target"] or "-"))
    return 0


# -- console and keys --------------------------------------------------------------------------------------
def do_console(args):
    from pyra.cli import vm_console
    guest = _guest(args)
    guest.require_running()
    remark = vm_console.run(guest, _deadline(86400 * 365), force=args.force)
    if remark:
        sys.stderr.write("pyra: %s\n" % remark)
    return 0


def do_reset(args):
    def reset(hv, dom):
        live = ET.fromstring(hv.xml(dom))
        on_reboot = live.findtext("on_reboot") or "restart"
        if on_reboot == "destroy" and not args.force:
            raise CliError("%s has on_reboot=destroy: QEMU runs it with -no-reboot and a reset would stop it (the "
                           "cluster would then recover it as a failure); --force resets anyway" % live.findtext("name"),
                           FAILED)
        hv.call(dom.reset, 0)
        return "reset (it boots again)"
    return _on_domain(args, "reset", reset)


def _send_keys(hv, dom, codes):
    from pyra.backends import libvirt_api as api
    hv.call(dom.sendKey, api.libvirt.VIR_KEYCODE_SET_LINUX, 100, codes, len(codes), 0)


def do_ctrlaltdel(args):
    def send(hv, dom):
        _send_keys(hv, dom, [KEY_LEFTCTRL, KEY_LEFTALT, KEY_DELETE])
        return "sent ctrl+alt+del"
    return _on_domain(args, "ctrlaltdel", send)


def do_sysrq(args):
    key = args.key.lower()
    if key not in KEYCODES:
        raise CliError("sysrq takes one letter or digit, not %r" % args.key, USAGE)

    def send(hv, dom):
        _send_keys(hv, dom, [KEY_LEFTALT, KEY_SYSRQ, KEYCODES[key]])
        return "sent alt+sysrq+%s" % key
    return _on_domain(args, "sysrq", send)


def do_nmi(args):
    def send(hv, dom):
        hv.call(dom.injectNMI, 0)
        return "injected an NMI"
    return _on_domain(args, "nmi", send)


def do_screenshot(args):
    def shot(hv, dom):
        stream = hv.call(hv.conn.newStream, 0)
        mime = hv.call(dom.screenshot, stream, 0, 0)
        chunks = []
        hv.call(stream.recvAll, lambda _s, data, _o: chunks.append(data) or len(data), None)
        hv.call(stream.finish)
        try:
            with open(args.file, "wb") as f:
                f.write(b"".join(chunks))
        except OSError as err:
            raise CliError("cannot write %s: %s" % (args.file, err.strerror), FAILED) from None
        return "screenshot (%s, %d bytes) written to %s" % (mime, sum(map(len, chunks)), args.file)
    return _on_domain(args, "screenshot", shot)


def do_vnc(args):
    out = []

    def find(hv, dom):
        root = ET.fromstring(hv.xml(dom))
        out.extend(g for g in root.iterfind("devices/graphics") if g.get("type") == "vnc")
    guest = _guest(args)
    _on_domain_quiet(guest, find)
    if not out:
        raise CliError("%s has no VNC display (no <graphics type='vnc'> in its live XML)" % guest.domain, FAILED)
    g = out[0]
    port = g.get("port")
    if not port or port == "-1":
        raise CliError("%s's VNC display has no port yet" % guest.domain, FAILED)
    listen = g.get("listen") or ""
    lst = g.find("listen")
    if lst is not None and lst.get("address"):
        listen = lst.get("address")
    host = guest.node
    local_only = listen in ("", "127.0.0.1", "::1", "localhost")
    if listen and listen not in ("0.0.0.0", "::") and not local_only:
        host = listen
    sys.stdout.write("%s: VNC on %s:%s (display :%d), listening on %s\n" % (
        guest.domain, guest.node, port, int(port) - 5900, listen or "127.0.0.1"))
    if not local_only:
        sys.stdout.write("  vncviewer %s::%s\n" % (host, port))
    sys.stdout.write("  tunnel: ssh -N -L 5900:%s:%s root@%s   then: vncviewer localhost::5900\n" % (
        "localhost" if local_only else host, port, guest.node))
    return 0


def _on_domain_quiet(guest, fn):
    from pyra.backends import libvirt_api as api
    guest.require_running()
    hv = guest.connect(_deadline())
    with hv:
        dom = guest.lookup(hv)
        try:
            return fn(hv, dom)
        except api.LibvirtError as err:
            raise _libvirt_error(guest, "vnc", err) from None


# -- placement through Pacemaker ---------------------------------------------------------------------------
def _settle(args, rid, check):
    if args.no_wait:
        sys.stdout.write("%s: requested; not waiting (--no-wait)\n" % rid)
        return 0
    clusterwait.wait(check, args.timeout, clusterwait.Progress())
    return 0


def _running_check(rid, want_running, before, avoid=None, target=None):
    def check(state):
        rsc = state.resources.get(rid)
        if rsc is None:
            return False, "%s vanished from the CIB" % rid, "%s was removed from the CIB meanwhile" % rid
        text = "%s: %s" % (rid, rsc.where())
        fresh = clusterwait.new_failures(rsc, before)
        if fresh:
            return False, text, "%s: %s" % (rid, fresh[-1].text())
        if rsc.pending:
            return False, text, None
        if want_running:
            ok = len(rsc.nodes) == 1 and rsc.role == "Started"
            if ok and target:
                ok = rsc.nodes == [target]
            if ok and avoid:
                ok = avoid not in rsc.nodes
            return ok, text, None
        return not rsc.nodes, text, None
    return check


def _placement(args):
    """(state, rsc) for a placement action: the resource must be a pyra guest (3/4 otherwise)."""
    state = clusterstate.load()
    guest = vm_guest.find(state, args.name)
    return state, guest.rsc


def do_start(args):
    state, rsc = _placement(args)
    clusterwait.set_target_role(rsc.id, "Started")
    return _settle(args, rsc.id, _running_check(rsc.id, True, clusterwait.failure_keys(rsc)))


def do_stop(args):
    state, rsc = _placement(args)
    clusterwait.set_target_role(rsc.id, "Stopped")
    return _settle(args, rsc.id, _running_check(rsc.id, False, clusterwait.failure_keys(rsc)))


def do_restart(args):
    state, rsc = _placement(args)
    before = clusterwait.failure_keys(rsc)
    clusterwait.set_target_role(rsc.id, "Stopped")
    if args.no_wait:
        raise CliError("restart needs to wait for the stop (drop --no-wait)", USAGE)
    clusterwait.wait(_running_check(rsc.id, False, before), args.timeout, clusterwait.Progress())
    clusterwait.set_target_role(rsc.id, "Started")
    return _settle(args, rsc.id, _running_check(rsc.id, True, before))


def do_migrate(args):
    state, rsc = _placement(args)
    if args.node is not None and args.node not in state.nodes:
        raise CliError("no node %s in the cluster (nodes: %s)" % (args.node, " ".join(state.nodes)), NOT_FOUND)
    if not rsc.nodes:
        raise CliError("%s is not running (%s): nothing to migrate" % (rsc.id, rsc.where()), NOT_RUNNING)
    if args.node is not None and rsc.nodes == [args.node]:
        sys.stdout.write("%s already runs on %s\n" % (rsc.id, args.node))
        return 0
    unit = rsc.group or rsc.id  # a group member moves with its group
    source = rsc.nodes[0]
    life = args.lifetime if args.lifetime is not None else args.timeout
    clusterwait.move(unit, args.node, life)
    return _settle(args, rsc.id, _running_check(rsc.id, True, clusterwait.failure_keys(rsc), avoid=source,
                                                target=args.node))


def do_unmove(args):
    state, rsc = _placement(args)
    unit = rsc.group or rsc.id
    clusterwait.clear(unit)
    sys.stdout.write("%s: move constraints cleared\n" % unit)
    if args.no_wait:
        return 0
    clusterwait.wait(_running_check(rsc.id, rsc.target_role != "Stopped", clusterwait.failure_keys(rsc)),
                     args.timeout, clusterwait.Progress())
    return 0
