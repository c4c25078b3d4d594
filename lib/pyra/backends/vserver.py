"""util-vserver's command-line contract: `vserver NAME start|stop|running|status`, `vserver-stat`, `vkill`.

This module owns everything the VServer agent knows about util-vserver (linux-vserver/util-vserver
``scripts/vserver``, ``vserver.start``, ``vserver.stop``, ``src/vserver-stat.c``, ``doc/configuration.xml``):
- how a vserver is named on the command line (a bare NAME resolves to ``/etc/vservers/NAME``; any other
  config root is passed as the config dir path, which util-vserver accepts in place of the name);
- the exit codes: ``running`` 0/1, ``status`` 0/3, missing config dir 5, unknown command 2, and ``start``/``stop``
  are idempotent (0 with a warning when already in the wanted state);
- the config dir entries the agent reads: ``context`` (static XID), ``run`` (-> file holding the running XID),
  ``interfaces/[IFACE/]{ip,prefix,dev,nodev,disabled}``, ``apps/init/killseq`` ("signal [wait signal]*");
- the context view without the config dir: ``vserver-stat`` (one line per running context, NAME last) and
  ``vkill --xid XID -s SIG`` (signal every process of the context), which is how a stop still works when
  the config dir is on storage that is already gone;
- the addresses that are up on this node (``/proc/net/fib_trie`` and ``/proc/net/if_inet6``: no process).

No OCF semantics here: callers get booleans, records and ``VServerError``s. Every command goes through the
``run(argv, timeout=...)`` callable given by the caller (the agent's deadline-bounded ``op.run``).
"""

import os

DEFAULT_CONFDIR = "/etc/vservers"
DEFAULT_KILLSEQ = (15, 5.0, 9)   # vserver.stop's default kill sequence: TERM, wait 5 s, KILL

RC_RUNNING = 0
RC_NOT_RUNNING = 1
RC_STATUS_STOPPED = 3
RC_USAGE = 2
RC_NO_CONFIG = 5


class VServerError(Exception):
    """A util-vserver command failed in a way the caller must report."""


class ConfigMissing(VServerError):
    """The vserver's config dir is not visible on this node (util-vserver exit 5 or no directory)."""


class ToolMissing(VServerError):
    """A util-vserver program is not installed or not executable on this node."""


def find_program(cmd):
    """The path of ``cmd`` (absolute, relative with '/', or searched on PATH), or None."""
    from pyra.host.command import which
    return which(cmd)


def _read(path):
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError:
        return None


def _tail(text, limit=200):
    lines = [line.strip() for line in (text or "").splitlines() if line.strip()]
    return lines[-1][:limit] if lines else ""


def parse_killseq(text):
    """util-vserver's ``apps/init/killseq``: "signal [wait signal]*" -> (sig, wait, sig, ...); None if invalid."""
    words = (text or "").split()
    if not words or len(words) % 2 == 0:
        return None
    out = []
    for i, w in enumerate(words):
        try:
            out.append(float(w) if i % 2 else int(w))
        except ValueError:
            return None
        if out[-1] < 0:
            return None
    return tuple(out)


def parse_vserver_stat(text):
    """``vserver-stat`` output -> [(xid, nproc, name)] for the guest contexts (0 = host, 1 = spectator skipped).

    Columns: ``CTX PROC VSZ RSS userTIME sysTIME UPTIME NAME``; NAME is the last column and may be empty.
    """
    out = []
    for line in (text or "").splitlines():
        words = line.split()
        if len(words) < 2 or not words[0].isdigit():
            continue
        xid = int(words[0])
        if xid in (0, 1):
            continue
        try:
            nproc = int(words[1])
        except ValueError:
            nproc = 0
        out.append((xid, nproc, " ".join(words[7:]) if len(words) > 7 else ""))
    return out


def configured_interfaces(cfgdir):
    """The addresses util-vserver adds for this vserver, as [(ip, prefix, dev)] from ``interfaces/*/``:
    per-interface ``ip``, ``prefix`` (else global ``interfaces/prefix``, else 32 or 128) and ``dev`` (else the
    global ``interfaces/dev``). ``disabled`` and ``nodev`` ones are left out (util-vserver does not assign
    them, so there is nothing to check or remove)."""
    base = os.path.join(cfgdir, "interfaces")
    try:
        entries = sorted(os.listdir(base))
    except OSError:
        return []
    gdev = _read(os.path.join(base, "dev"))
    gprefix = _read(os.path.join(base, "prefix"))
    out = []
    for entry in entries:
        d = os.path.join(base, entry)
        if not os.path.isdir(d):
            continue
        if os.path.exists(os.path.join(d, "disabled")) or os.path.exists(os.path.join(d, "nodev")):
            continue
        ip = _read(os.path.join(d, "ip"))
        if not ip:
            continue
        ip, _, inline_prefix = ip.partition("/")
        ip = ip.strip()
        prefix = inline_prefix.strip() or _read(os.path.join(d, "prefix")) or gprefix or (
            "128" if ":" in ip else "32")
        out.append((ip, prefix, _read(os.path.join(d, "dev")) or gdev or ""))
    return out


def configured_addresses(cfgdir):
    """Just the addresses of ``configured_interfaces``."""
    return [ip for ip, _prefix, _dev in configured_interfaces(cfgdir)]


def encode_interfaces(interfaces):
    """[(ip, prefix, dev)] -> "ip/prefix@dev ..." for a state record (and back with decode_interfaces)."""
    return " ".join("%s/%s@%s" % i for i in interfaces if i[2])


def decode_interfaces(text):
    out = []
    for word in (text or "").split():
        addr, _, dev = word.partition("@")
        ip, _, prefix = addr.partition("/")
        if ip and prefix and dev:
            out.append((ip, prefix, dev))
    return out


def parse_fib_trie(text):
    """Local IPv4 addresses (``/32 host LOCAL`` leaves) of ``/proc/net/fib_trie``."""
    local = set()
    current = None
    for line in text.splitlines():
        s = line.strip()
        if s.startswith("|--"):
            current = s[3:].strip()
        elif current and s.startswith("/32 host LOCAL"):
            local.add(current)
    return local


def parse_if_inet6(text):
    """Local IPv6 addresses of ``/proc/net/if_inet6`` as 32-digit lower-case hex strings."""
    return {line.split()[0].lower() for line in text.splitlines() if line.split()}


def _ipv6_hex(address):
    import socket
    try:
        return socket.inet_pton(socket.AF_INET6, address).hex()
    except OSError:
        return None


def missing_addresses(addresses, fib_trie=None, if_inet6=None):
    """The ones of ``addresses`` that are not local addresses of this node (its network namespace)."""
    if fib_trie is None:
        fib_trie = _read("/proc/net/fib_trie") or ""
    if if_inet6 is None and any(":" in a for a in addresses):
        if_inet6 = _read("/proc/net/if_inet6") or ""
    v4 = parse_fib_trie(fib_trie)
    v6 = parse_if_inet6(if_inet6 or "")
    missing = []
    for a in addresses:
        if ":" in a:
            if _ipv6_hex(a) not in v6:
                missing.append(a)
        elif a not in v4:
            missing.append(a)
    return missing


class VServer:
    """One vserver, driven through util-vserver's programs.

    ``run(argv, timeout=None)`` must return an object with ``rc``, ``stdout``, ``stderr``, ``timed_out``.
    """

    def __init__(self, name, run, confdir=DEFAULT_CONFDIR, vserver_cmd="vserver"):
        self.name = name
        self.run = run
        self.confdir = confdir.rstrip("/") or "/"
        self.cfgdir = os.path.join(self.confdir, name)
        self.vserver_cmd = vserver_cmd
        # util-vserver resolves a bare name against its compiled-in $__CONFDIR; any other root is given as a path
        self.target = name if self.confdir == DEFAULT_CONFDIR else self.cfgdir

    # ---- programs

    def program(self, which="vserver"):
        """Path of ``vserver`` or a sibling program (``vkill``, ``vserver-stat``: same directory as the
        configured vserver command when that is a path, else PATH). Raises ToolMissing."""
        if which == "vserver":
            cmd = self.vserver_cmd
        elif "/" in self.vserver_cmd:
            cmd = os.path.join(os.path.dirname(self.vserver_cmd), which)
            if not os.access(cmd, os.X_OK):
                cmd = which
        else:
            cmd = which
        path = find_program(cmd)
        if path is None:
            raise ToolMissing("%s not found or not executable (is util-vserver installed?)" % cmd)
        return path

    def _vserver(self, command, timeout):
        res = self.run([self.program(), self.target, command], timeout=timeout)
        if res.timed_out:
            return res
        if res.rc == RC_NO_CONFIG:
            raise ConfigMissing("vserver config dir %s not found (%s)" % (self.cfgdir, _tail(res.stderr)))
        if res.rc == RC_USAGE:
            raise VServerError("%s rejected '%s' (usage error): %s" % (self.vserver_cmd, command,
                                                                       _tail(res.stderr)))
        return res

    # ---- config dir

    def config_present(self):
        return os.path.isdir(self.cfgdir)

    def static_xid(self):
        x = _read(os.path.join(self.cfgdir, "context"))
        return int(x) if x and x.isdigit() else None

    def running_xid(self):
        """The XID util-vserver recorded for the running context (``CFGDIR/run``), or None."""
        x = _read(os.path.join(self.cfgdir, "run"))
        return int(x) if x and x.isdigit() else None

    def killseq(self):
        return parse_killseq(_read(os.path.join(self.cfgdir, "apps", "init", "killseq"))) or DEFAULT_KILLSEQ

    def addresses(self):
        return configured_addresses(self.cfgdir)

    def interfaces(self):
        return configured_interfaces(self.cfgdir)

    # ---- the vserver command

    def is_running(self, timeout=None):
        """``vserver NAME running``: True (0) / False (1). Raises ConfigMissing, ToolMissing, VServerError."""
        res = self._vserver("running", timeout)
        if res.timed_out:
            raise VServerError("'vserver %s running' did not answer in time" % self.name)
        if res.rc == RC_RUNNING:
            return True
        if res.rc == RC_NOT_RUNNING:
            return False
        raise VServerError("'vserver %s running' exited %s: %s" % (self.name, res.rc, _tail(res.stderr)))

    def status(self, timeout=None):
        """``vserver NAME status`` -> (running, first line of output). 0 running, 3 stopped."""
        res = self._vserver("status", timeout)
        if res.timed_out:
            raise VServerError("'vserver %s status' did not answer in time" % self.name)
        first = (res.stdout or "").strip().splitlines()[:1]
        first = first[0] if first else ""
        if res.rc == RC_RUNNING:
            return True, first
        if res.rc == RC_STATUS_STOPPED:
            return False, first
        raise VServerError("'vserver %s status' exited %s: %s" % (self.name, res.rc, _tail(res.stderr)))

    def start(self, timeout=None):
        """``vserver NAME start``: the command result (0 also when already running)."""
        return self._vserver("start", timeout)

    def stop(self, timeout=None):
        """``vserver NAME stop``: the command result (0 also when not running; it then cleans up)."""
        return self._vserver("stop", timeout)

    # ---- contexts, without the config dir

    def contexts(self, timeout=None):
        """Running guest contexts from ``vserver-stat``: [(xid, nproc, name)]."""
        res = self.run([self.program("vserver-stat")], timeout=timeout)
        if res.timed_out or res.rc != 0:
            raise VServerError("vserver-stat failed (rc %s): %s" % (res.rc, _tail(res.stderr)))
        return parse_vserver_stat(res.stdout)

    def find_context(self, xid=None, timeout=None):
        """The XID of this vserver's running context (by XID when known, else by name), or None."""
        for cx, nproc, cname in self.contexts(timeout):
            if xid is not None and cx == xid and nproc > 0:
                return cx
            if xid is None and cname == self.name and nproc > 0:
                return cx
        return None

    def kill_context(self, xid, sig, timeout=None):
        """``vkill --xid XID -s SIG``: signal every process of the context. True if vkill accepted it."""
        res = self.run([self.program("vkill"), "--xid", str(xid), "-s", str(sig)], timeout=timeout)
        return not res.timed_out and res.rc == 0

    def remove_addresses(self, interfaces, timeout=None):
        """util-vserver's disableInterfaces for when its config dir is gone: ``ip addr del`` each recorded
        address that is still up here. Returns the ones that could not be removed."""
        present = set(missing_addresses([i[0] for i in interfaces]))
        left = []
        for ip, prefix, dev in interfaces:
            if ip in present:     # "missing" = not up here: nothing to remove
                continue
            res = self.run(["ip", "addr", "del", "%s/%s" % (ip, prefix), "dev", dev], timeout=timeout)
            if res.timed_out or res.rc != 0:
                left.append(ip)
        return left
