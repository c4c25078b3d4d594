"""TransientDomain: a libvirt guest created from an XML file, never defined persistently on any node.

OCF semantics only; libvirt calls are in pyra.backends.libvirt_api (bounded by the operation deadline), the XML
in libvirt_xml, the startup_signal protocol in libvirt_channel, the emulator fallback in libvirt_proc.
The recurring monitor imports libvirt and nothing else from the backends: it does one connection, one lookup
by the recorded UUID and one state query (no dumpxml, no crm_resource, no XML parsing).
"""

from pyra.ocf import checks, codes
from pyra.agents.base import PyraAgent
from pyra.ocf.agent import Action
from pyra.ocf.errors import ConfigError, Failure, MissingEnvironment
from pyra.ocf.params import BOOLEAN, INTEGER, TIME, Param, Schema


def _postcopy_check(value):
    if value.strip().lower() in ("off", "no", "false", "0", ""):
        return None
    from pyra.ocf.params import parse_time
    try:
        parse_time(value.strip().lower().removeprefix("after").strip())
    except ValueError:
        return "must be off or a delay such as 'after 30s'"
    return None


def _postcopy_delay(value):
    """None for off, else seconds after which to switch to post-copy."""
    word = (value or "off").strip().lower()
    if word in ("off", "no", "false", "0", ""):
        return None
    from pyra.ocf.params import parse_time
    return parse_time(word.removeprefix("after").strip())


def _mode_check(value):
    return None if value in ("p2p", "tunnelled", "direct") else "must be p2p, tunnelled or direct"


MIGRATION = "Live migration"


class TransientDomain(PyraAgent):
    name = "TransientDomain"
    version = "0.1.0"
    shortdesc = "A libvirt guest created from an XML file (transient, never defined)"
    longdesc = (
        "Starts a libvirt guest from a domain XML file with virDomainCreateXML, so that no node ever holds a "
        "persistent definition: the cluster is the only place the guest is configured. start returns when the "
        "guest is ready: it answers 'ack <token>' to the guest's 'ready <token>' on a virtio-serial channel "
        "named startup_signal, and/or it polls monitor_scripts. stop asks the guest to shut down (shutdown_mode), "
        "then destroys it before the operation deadline; when libvirtd does not answer it kills the guest's "
        "emulator, found by the UUID recorded at start. The recurring monitor makes one libvirt state query: a "
        "guest paused by an I/O error is reported as degraded (190). Live migration is peer-to-peer by default, "
        "transient on the target, bounded by the operation timeout (the migration is aborted and the guest keeps "
        "running on the source). OCF_CHECK_LEVEL=10 adds a ping over the startup_signal channel and the "
        "monitor_scripts.")
    schema = Schema(
        Param("config", required=True, unique=True, checks=[checks.absolute_path, checks.existing_file],
              shortdesc="Domain XML file",
              longdesc="Absolute path of the libvirt domain XML. It must have a <name>; a <uuid> is strongly "
                       "recommended (without one a stable UUID is derived from the name). The same file (or an "
                       "identical copy) must be readable on every node that may run the guest."),
        Param("hypervisor", default="qemu:///system", checks=[checks.single_line],
              shortdesc="Hypervisor URI", longdesc="libvirt connection URI of the local hypervisor."),
        Param("force_stop", type=BOOLEAN, default=False, shortdesc="Destroy instead of shutting down",
              longdesc="Skip the graceful shutdown: stop destroys the guest at once."),
        Param("shutdown_mode", default="default", choices=("default", "acpi", "agent"),
              shortdesc="How to ask the guest to shut down",
              longdesc="acpi: press the ACPI power button; agent: ask the QEMU guest agent; default: let "
                       "libvirt choose. If the request is refused the guest is destroyed at once."),
        Param("startup_signal", default="auto", choices=("auto", "on", "off"),
              shortdesc="Wait for the guest's ready signal",
              longdesc="on: start waits for 'ready <token>' on the virtio-serial channel named startup_signal "
                       "and answers 'ack <token>'; auto: on when the XML has such a channel; off: never."),
        Param("startup_timeout", type=TIME, default=0.0, checks=[checks.in_range(0, 86400)],
              shortdesc="Time limit for the guest to become ready",
              longdesc="Seconds start and migrate_from wait for readiness (0: as long as the operation timeout "
                       "allows). On expiry the guest is destroyed and start fails."),
        Param("monitor_scripts", default="", shortdesc="In-guest checks run on start and deep monitors",
              longdesc="Space-separated list of executables (absolute paths). start and migrate_from wait "
                       "until all exit 0; a monitor with OCF_CHECK_LEVEL=10 fails when one does not."),
        Param("console_log", default="", checks=[checks.single_line],
              shortdesc="Serial console log file",
              longdesc="When set, the guest's serial console is written to this file (appended; the same path "
                       "on the migration target continues it)."),
        Param("migration_transport", default="tcp", choices=("tcp", "ssh", "tls"), reloadable=True,
              shortdesc="Transport of the default remote URI",
              longdesc="Used to build the target's URI from hypervisor when remote_uri is not set: "
                       "qemu:///system becomes qemu+<transport>://<target>/system."),
        Param("migration_user", default="", reloadable=True, advanced=True, shortdesc="User for ssh",
              longdesc="User name put in the default remote URI (ssh transport)."),
        Param("migration_network_suffix", default="", reloadable=True,
              shortdesc="Suffix for the migration network name",
              longdesc="Inserted before the first dot of the target node name in URIs (node1.example.com + "
                       "'-mig' gives node1-mig.example.com)."),
        Param("remote_uri", default="", reloadable=True, shortdesc="Target libvirt URI template",
              longdesc="libvirt URI of the target node; %n is replaced by the target node name (with the "
                       "network suffix)."),
        Param("migrate_uri", default="", reloadable=True, shortdesc="Migration data URI template",
              longdesc="Where the migration data stream goes (e.g. tcp://%n-mig:49152); %n as for remote_uri. "
                       "Not used with tunnelled migration."),
        Param("migration_mode", default="p2p", choices=("p2p", "tunnelled", "direct"), reloadable=True,
              shortdesc="Who drives the migration",
              longdesc="p2p: the source libvirtd connects to the target; tunnelled: p2p with the data carried "
                       "over the libvirtd connection; direct: this agent connects to both. Always live."),
        Param("migration_bandwidth", type=INTEGER, default=0, checks=[checks.in_range(0, 10 ** 6)],
              reloadable=True, shortdesc="Bandwidth limit (MiB/s)",
              longdesc="Maximum migration bandwidth in MiB/s; 0 leaves libvirt's default."),
        Param("migration_downtime", type=INTEGER, default=0, checks=[checks.in_range(0, 10 ** 6)],
              reloadable=True, shortdesc="Maximum downtime (ms)",
              longdesc="Maximum tolerated downtime at the switch-over, in milliseconds; 0 leaves the default."),
        Param("migration_auto_converge", type=BOOLEAN, default=False, reloadable=True,
              shortdesc="Throttle the guest's CPUs to make the migration converge"),
        Param("migration_postcopy", default="off", checks=[_postcopy_check], reloadable=True,
              shortdesc="Switch to post-copy",
              longdesc="off, or 'after N' (a duration): switch the migration to post-copy when it is still "
                       "running after N seconds."),
        Param("autoset_utilization_cpu", type=BOOLEAN, default=True,
              shortdesc="Set the cpu utilization from the XML",
              longdesc="On the first probe and on start, set the resource's utilization attribute cpu to the "
                       "guest's vCPUs (only when it changed, only under Pacemaker). With "
                       "placement-strategy other than default, every node then needs a cpu capacity (crm node "
                       "utilization NODE set cpu N): a node without one can run no guest. Set false if you "
                       "place by memory only."),
        Param("autoset_utilization_memory", type=BOOLEAN, default=True,
              shortdesc="Set the memory utilization from the XML",
              longdesc="On the first probe and on start, set the utilization attribute memory (MiB) from the "
                       "XML, so that the scheduler knows the guest's size before it places it."),
    )
    actions = (
        Action("start", timeout=90), Action("stop", timeout=90),
        Action("monitor", timeout=30, interval=10), Action("monitor", timeout=30, interval=60, depth=10),
        Action("migrate_to", timeout=120), Action("migrate_from", timeout=60),
        Action("reload-agent", timeout=20),
    )
    check_levels = (0, 10)

    # -- identity ------------------------------------------------------------------------------------------
    def _config(self, op):
        """The parsed XML (read once per action); MissingEnvironment when unreadable here, ConfigError when it
        is not a domain."""
        cached = getattr(self, "_parsed", None)
        if cached is not None and cached[0] == op.params.config:
            return cached[1]
        from pyra.backends.libvirt_xml import DomainConfig, DomainXMLError
        try:
            cfg = DomainConfig.from_file(op.params.config)
            self._parsed = (op.params.config, cfg)
            return cfg
        except OSError as err:
            raise MissingEnvironment("cannot read config %s: %s" % (op.params.config, err.strerror)) from None
        except DomainXMLError as err:
            raise ConfigError("config %s: %s" % (op.params.config, err)) from None

    def _identity(self, op, prefer_record=True):
        """(name, uuid) of the guest: from the state record when this node started it, else the config.
        None when neither is available (never started here and no readable config)."""
        ident = op.state.identity() if prefer_record else {}
        if ident.get("uuid") and ident.get("name"):
            return ident["name"], ident["uuid"]
        try:
            cfg = self._config(op)
        except MissingEnvironment:
            ident = op.state.identity()
            if ident.get("uuid"):
                return ident.get("name"), ident["uuid"]
            if op.params.config and op.has_record():
                raise
            return None
        except ConfigError:
            ident = op.state.identity()
            if ident.get("uuid"):
                return ident.get("name"), ident["uuid"]
            raise
        return cfg.name, cfg.uuid

    def _hv(self, op, share=None):
        from pyra.backends.libvirt_api import Hypervisor
        limit = op.deadline.remaining() * share if share else None
        return Hypervisor(op.params.hypervisor, op.deadline, call_timeout=limit)

    # -- validate -----------------------------------------------------------------------------------------
    def validate(self, op):
        import os
        p = op.params
        if p.startup_timeout and op.action == "start" and p.startup_timeout > op.deadline.remaining():
            op.log.warning("startup_timeout %gs exceeds the start timeout", p.startup_timeout)
        for script in p.monitor_scripts.split():
            if not script.startswith("/"):
                raise ConfigError("monitor_scripts: %s is not an absolute path" % script)
        if p.console_log and not p.console_log.startswith("/"):
            raise ConfigError("console_log must be an absolute path")
        if "://" not in p.hypervisor:
            raise ConfigError("hypervisor %r is not a libvirt URI" % p.hypervisor)
        cfg = self._config(op)
        if p.startup_signal == "on" and not cfg.has_startup_channel():
            raise ConfigError("startup_signal=on but %s has no unix virtio channel named startup_signal"
                              % os.path.basename(p.config))
        if op.depth >= 10:
            for kind, path in cfg.disk_sources():
                if not os.path.exists(path):
                    raise MissingEnvironment("%s %s of %s does not exist on this node" % (kind, path, cfg.name))
            for script in p.monitor_scripts.split():
                if not os.access(script, os.X_OK):
                    raise MissingEnvironment("monitor script %s is not executable here" % script)
            for kind, name in cfg.networks():
                if kind == "bridge" and not os.path.isdir("/sys/class/net/" + name):
                    raise MissingEnvironment("bridge %s of %s does not exist on this node" % (name, cfg.name))
            if op.action == "validate-all":
                self._validate_hypervisor(op, cfg)
        return cfg

    def _validate_hypervisor(self, op, cfg):
        from pyra.backends import libvirt_api as api
        try:
            with self._hv(op).open() as hv:
                for kind, name in cfg.networks():
                    if kind != "network":
                        continue
                    try:
                        net = hv.call(hv.conn.networkLookupByName, name)
                        active = hv.call(net.isActive)
                    except api.LibvirtError:
                        active = False
                    if not active:
                        raise MissingEnvironment("libvirt network %s is not active on this node" % name)
        except api.Unreachable as err:
            raise MissingEnvironment("hypervisor not reachable: %s" % err) from None

    def validate_all(self, op):
        self.validate(op)
        return codes.SUCCESS

    # -- monitor --------------------------------------------------------------------------------------------
    def monitor(self, op):
        code = self._monitor(op)
        if op.is_probe and code == codes.NOT_RUNNING and "OCF_RESKEY_crm_feature_set" in op.env.environ:
            # Pacemaker probes every node before the first start: publishing the size now lets the scheduler
            # place the guest by its utilization instead of starting it once somewhere it does not fit.
            try:
                self._set_utilization(op, self._config(op))
            except (MissingEnvironment, ConfigError):
                pass
        return code

    def _monitor(self, op):
        ident = self._identity(op)
        if ident is None:
            raise MissingEnvironment("config %s is not readable here and this node never started the guest"
                                     % op.params.config)
        name, uuid = ident
        from pyra.backends import libvirt_api as api
        hv = self._hv(op, share=0.8)
        try:
            hv.open()
            dom = hv.lookup(uuid=uuid)
            if dom is None:
                return op.not_running("domain %s is not running" % name)
            state, reason = hv.state(dom)
        except api.Unreachable as err:
            return self._monitor_without_libvirtd(op, name, uuid, err)
        except api.LibvirtError as err:
            return op.exit(codes.ERR_GENERIC, "libvirt error on %s: %s" % (name, api.error_text(err)))
        if state in (api.RUNNING, api.BLOCKED, api.SHUTDOWN, api.PMSUSPENDED):
            code = codes.SUCCESS
        elif state == api.PAUSED:
            if reason in (api.PAUSED_IOERROR, api.PAUSED_POSTCOPY_FAILED):
                return op.degraded("%s is paused: %s" % (name, api.PAUSED_REASONS.get(reason, reason)))
            if reason == api.PAUSED_USER:
                return op.degraded("%s was paused by an administrator" % name)
            code = codes.SUCCESS  # migration, starting up, snapshot, save: transient pauses
        elif state in (api.SHUTOFF, api.CRASHED, api.NOSTATE):
            return op.not_running("domain %s is %s" % (name, api.STATE_NAMES.get(state, state)))
        else:
            code = codes.SUCCESS
        if op.check_level >= 10 and code == codes.SUCCESS:
            return self._deep_check(op, hv, dom, name)
        return code

    def _monitor_without_libvirtd(self, op, name, uuid, err):
        from pyra.backends.libvirt_proc import emulator_pids
        pids = emulator_pids(uuid, name)
        if pids:
            if op.is_probe:
                op.log.warning("libvirtd unreachable (%s); emulator pid %d of %s runs", err, pids[0], name)
                return codes.SUCCESS
            return op.degraded("libvirtd unreachable; the emulator of %s (pid %d) still runs" % (name, pids[0]))
        return op.not_running("libvirtd unreachable and no emulator of %s runs" % name)

    def _deep_check(self, op, hv, dom, name):
        from pyra.backends import libvirt_channel, libvirt_xml
        if self._uses_signal(op, None, live_xml=hv.xml(dom)):
            path = libvirt_xml.channel_path(hv.xml(dom))
            try:
                libvirt_channel.refresh(path, op.deadline.share(0.5))
            except libvirt_channel.HandshakeError as err:
                return op.exit(codes.ERR_GENERIC, "%s: %s" % (name, err))
        failing = self._failing_script(op)
        if failing:
            return op.exit(codes.ERR_GENERIC, "monitor script %s failed" % failing)
        return codes.SUCCESS

    # -- readiness ------------------------------------------------------------------------------------------
    def _uses_signal(self, op, cfg, live_xml=None):
        mode = op.params.startup_signal
        if mode == "off":
            return False
        if mode == "on":
            return True
        if live_xml is not None:
            from pyra.backends.libvirt_xml import channel_path
            return channel_path(live_xml, need_path=False) is not None
        return cfg.has_startup_channel()

    def _failing_script(self, op):
        for script in op.params.monitor_scripts.split():
            result = op.run([script], timeout=max(1.0, op.deadline.remaining()))
            if not result.ok:
                return script
        return None

    def _ready_deadline(self, op):
        remaining = op.deadline.remaining()
        reserve = min(5.0, max(1.0, 0.2 * remaining))
        ready = op.deadline.within(max(0.0, remaining - reserve))
        if op.params.startup_timeout:
            ready = ready.within(op.params.startup_timeout)
        return ready

    def _wait_ready(self, op, hv, dom, cfg, name, fresh):
        """Block until the guest is ready (handshake and/or monitor_scripts) or the ready deadline passes."""
        from pyra.backends import libvirt_channel, libvirt_xml
        ready = self._ready_deadline(op)
        if self._uses_signal(op, cfg, live_xml=None if cfg is not None else hv.xml(dom)):
            path = libvirt_xml.channel_path(hv.xml(dom))
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
            failing = self._failing_script(op)
            while failing:
                if ready.expired():
                    raise Failure("%s not ready: monitor script %s still fails" % (name, failing))
                ready.sleep(1.0)
                failing = self._failing_script(op)

    # -- start ------------------------------------------------------------------------------------------------
    def start(self, op):
        from pyra.backends import libvirt_api as api
        cfg = self._config(op)
        hv = self._hv(op)
        try:
            hv.open(timeout=max(1.0, op.deadline.remaining() * 0.3))
        except api.Unreachable as err:
            raise MissingEnvironment("hypervisor not reachable: %s" % err) from None
        with hv:
            existing = hv.lookup(name=cfg.name) or hv.lookup(uuid=cfg.uuid)
            if existing is not None:
                uuid = hv.call(existing.UUIDString)
                ename = hv.call(existing.name)
                if hv.is_persistent(existing):
                    raise Failure("a persistent domain %s (%s) is defined on this node; TransientDomain never "
                                  "undefines it: remove it yourself" % (ename, uuid), code=codes.ERR_INSTALLED)
                if uuid != cfg.uuid or ename != cfg.name:
                    raise Failure("another domain %s (%s) runs here with the same name or UUID" % (ename, uuid),
                                  code=codes.ERR_INSTALLED)
                if not hv.gone(existing):
                    if not op.has_record():
                        op.state.record_start({"name": cfg.name, "uuid": cfg.uuid}, uri=op.params.hypervisor)
                    op.log.info("%s is already running: checking that it is ready", cfg.name)
                    # A start that was killed (or timed out) after creating the guest leaves it booting; the
                    # re-run start completes only when the guest answers, as a first start would.
                    try:
                        self._wait_ready(op, hv, existing, None, cfg.name, fresh=True)
                    except api.LibvirtError as err:
                        raise Failure("%s: %s" % (cfg.name, api.error_text(err))) from None
                    return codes.SUCCESS
            op.state.record_start({"name": cfg.name, "uuid": cfg.uuid}, uri=op.params.hypervisor)
            if op.params.console_log:
                cfg.set_console_log(op.params.console_log)
            try:
                dom = hv.create(cfg.tostring())
            except api.LibvirtError as err:
                op.state.record_stop()
                raise Failure("creating %s failed: %s" % (cfg.name, api.error_text(err))) from None
            except api.Unreachable as err:
                self._cleanup_failed_start(op, hv, None, cfg)
                raise Failure("creating %s: %s" % (cfg.name, err)) from None
            op.log.info("created %s (%s) after %.2f s", cfg.name, cfg.uuid, op.deadline.elapsed())
            try:
                self._wait_ready(op, hv, dom, cfg, cfg.name, fresh=False)
            except (Failure, api.Unreachable, api.LibvirtError) as err:
                self._cleanup_failed_start(op, hv, dom, cfg)
                reason = err.reason if isinstance(err, Failure) else str(err)
                raise Failure(reason + "; destroyed it") from None
            op.log.info("%s ready after %.2f s", cfg.name, op.deadline.elapsed())
        self._set_utilization(op, cfg)
        return codes.SUCCESS

    def _cleanup_failed_start(self, op, hv, dom, cfg):
        """A start that failed leaves nothing running: destroy (or kill the emulator), then forget it."""
        from pyra.backends import libvirt_api as api
        from pyra.backends.libvirt_proc import kill_emulator
        try:
            if dom is not None:
                hv.destroy(dom)
                op.deadline.wait_for(lambda: hv.gone(dom), 0.05, 0.3)
        except (api.Unreachable, api.LibvirtError) as err:
            op.log.warning("destroying %s after a failed start: %s", cfg.name, err)
        if kill_emulator(cfg.uuid, cfg.name, op.deadline, op.log):
            op.state.record_stop()

    def _set_utilization(self, op, cfg):
        if "OCF_RESKEY_crm_feature_set" not in op.env.environ:
            return  # not run by Pacemaker (ocf-tester, an admin): no CIB to update
        from pyra.host import cluster
        wanted = {}
        if op.params.autoset_utilization_cpu:
            wanted["cpu"] = str(cfg.vcpus())
        if op.params.autoset_utilization_memory and cfg.memory_mib():
            wanted["memory"] = str(cfg.memory_mib())
        record = op.state.read()
        previous = {k[5:]: v for k, v in record.items() if k.startswith("util.")}
        effective = cluster.set_utilization(op.run, op.env.instance, wanted, previous, log=op.log)
        changed = {"util." + k: v for k, v in effective.items() if previous.get(k) != v}
        if changed:
            op.state.update(**changed)

    # -- stop --------------------------------------------------------------------------------------------------
    def stop(self, op):
        from pyra.backends import libvirt_api as api
        from pyra.backends.libvirt_proc import emulator_pids, kill_emulator
        try:
            ident = self._identity(op, prefer_record=False)
        except ConfigError:
            ident = None
            if op.has_record():
                raise
        if ident is None:
            op.state.record_stop()
            return codes.SUCCESS
        name, uuid = ident
        hv = self._hv(op)
        try:
            hv.open(timeout=max(1.0, min(10.0, op.deadline.remaining() * 0.25)))
            with hv:
                self._stop_via_libvirt(op, hv, name, uuid)
        except api.Unreachable as err:
            op.log.warning("libvirtd unreachable (%s): stopping %s by its emulator process", err, name)
            if not kill_emulator(uuid, name, op.deadline, op.log):
                raise Failure("libvirtd unreachable and the emulator of %s (pid %s) survived SIGKILL"
                              % (name, ",".join(map(str, emulator_pids(uuid, name))))) from None
        except api.LibvirtError as err:
            if emulator_pids(uuid, name):
                raise Failure("stopping %s: %s" % (name, api.error_text(err))) from None
        op.state.record_stop()
        return codes.SUCCESS

    def _stop_via_libvirt(self, op, hv, name, uuid):
        from pyra.backends import libvirt_api as api
        dom = hv.lookup(uuid=uuid)
        if dom is None or hv.gone(dom):
            op.log.info("%s is not running", name)
            return
        if not op.params.force_stop:
            state = hv.state(dom)[0]
            if state == api.PAUSED:
                op.log.info("%s is paused: destroying it (a paused guest cannot shut down)", name)
            else:
                try:
                    hv.shutdown(dom, op.params.shutdown_mode)
                except api.LibvirtError as err:
                    op.log.warning("%s refused the %s shutdown (%s): destroying it", name,
                                   op.params.shutdown_mode, api.error_text(err))
                else:
                    graceful = op.deadline.share(0.6)
                    if graceful.wait_for(lambda: hv.gone(dom), 0.1, 0.5):
                        op.log.info("%s shut down after %.1f s", name, op.deadline.elapsed())
                        return
                    op.log.warning("%s did not shut down within %.0f s: destroying it", name,
                                   op.deadline.elapsed())
        hv.destroy(dom)
        if not op.deadline.wait_for(lambda: hv.gone(dom), 0.05, 0.3):
            raise Failure("%s still runs after destroy" % name)
        op.log.info("%s destroyed", name)

    # -- migration ---------------------------------------------------------------------------------------------
    def _remote_uri(self, op, target):
        from pyra.backends import libvirt_xml
        p = op.params
        template = p.remote_uri
        if not template:
            transport = p.migration_transport
            template = libvirt_xml.default_remote_uri(p.hypervisor, transport)
            if p.migration_user and transport == "ssh":
                template = template.replace("://%n", "://%s@%%n" % p.migration_user, 1)
        return libvirt_xml.expand_node(template, target, p.migration_network_suffix)

    def migrate_to(self, op):
        from pyra.backends import libvirt_api as api
        from pyra.backends import libvirt_xml
        target = op.env.migrate_target
        if not target:
            raise Failure("migrate_to needs OCF_RESKEY_CRM_meta_migrate_target")
        ident = self._identity(op)
        if ident is None:
            raise MissingEnvironment("config %s is not readable and the guest was not started here"
                                     % op.params.config)
        name, uuid = ident
        p = op.params
        remote = self._remote_uri(op, target)
        flags = api.MIGRATE_LIVE | api.MIGRATE_ABORT_ON_ERROR
        if p.migration_mode in ("p2p", "tunnelled"):
            flags |= api.MIGRATE_PEER2PEER
        if p.migration_mode == "tunnelled":
            flags |= api.MIGRATE_TUNNELLED
        if p.migration_auto_converge:
            flags |= api.MIGRATE_AUTO_CONVERGE
        postcopy_after = _postcopy_delay(p.migration_postcopy)
        if postcopy_after is not None:
            flags |= api.MIGRATE_POSTCOPY
        params = {}
        if p.migration_bandwidth:
            params[api.PARAM_BANDWIDTH] = p.migration_bandwidth
        if p.migrate_uri and p.migration_mode != "tunnelled":
            params[api.PARAM_URI] = libvirt_xml.expand_node(p.migrate_uri, target, p.migration_network_suffix)
        hv = self._hv(op)
        try:
            hv.open(timeout=max(1.0, min(10.0, op.deadline.remaining() * 0.2)))
        except api.Unreachable as err:
            raise Failure("hypervisor not reachable: %s" % err) from None
        with hv:
            dom = hv.lookup(uuid=uuid)
            if dom is None or hv.gone(dom):
                raise Failure("%s is not running here: nothing to migrate" % name)
            op.log.info("migrating %s to %s (%s, %s)", name, target, remote, p.migration_mode)
            if p.migration_mode == "direct":
                def run():
                    dconn = api.open_remote(remote)
                    try:
                        return dom.migrate3(dconn, params, flags)
                    finally:
                        dconn.close()
                job = api.Background(run)
            else:
                job = api.Background(dom.migrateToURI3, remote, params, flags)
            self._watch_migration(op, hv, dom, job, name, target, postcopy_after)
            if job.ok:
                op.state.record_migrated(target)
                op.log.info("%s migrated to %s in %.1f s", name, target, op.deadline.elapsed())
                return codes.SUCCESS
            err = job.value
            text = api.error_text(err) if isinstance(err, api.LibvirtError) else str(err)
            still = "still runs here" if not hv.gone(dom) else "is NOT running here any more"
            raise Failure("migration of %s to %s failed: %s; the guest %s" % (name, target, text, still))

    def _watch_migration(self, op, hv, dom, job, name, target, postcopy_after):
        """Poll the job: log progress, apply the downtime limit, switch to post-copy, abort before the deadline."""
        from pyra.backends import libvirt_api as api
        total = op.deadline.remaining()
        reserve = min(10.0, max(2.0, 0.15 * total))
        downtime_set = not op.params.migration_downtime
        postcopy_started = False
        next_log = 0.0
        while not job.wait(min(1.0, max(0.0, op.deadline.remaining() - reserve))):
            elapsed = op.deadline.elapsed()
            if op.deadline.remaining() <= reserve:
                op.log.warning("migration of %s to %s did not finish in %.0f s: aborting it", name, target, elapsed)
                try:
                    hv.call(dom.abortJob, timeout=reserve / 2)
                except (api.LibvirtError, api.Unreachable) as err:
                    op.log.warning("abortJob: %s", err)
                job.wait(max(0.0, op.deadline.remaining() - 0.5))
                if job.ok:
                    return  # it completed while we aborted
                if job.ok is None:
                    raise Failure("migration of %s to %s did not finish in %.0f s and is still being aborted; "
                                  "the guest %s" % (name, target, elapsed, self._where_now(hv, dom)))
                raise Failure("migration of %s to %s did not converge in %.0f s: aborted, the guest still runs "
                              "here" % (name, target, elapsed))
            try:
                if not downtime_set:
                    hv.call(dom.migrateSetMaxDowntime, op.params.migration_downtime, 0, timeout=5.0)
                    downtime_set = True
                if postcopy_after is not None and not postcopy_started and elapsed >= postcopy_after:
                    hv.call(dom.migrateStartPostCopy, 0, timeout=5.0)
                    postcopy_started = True
                    op.log.info("migration of %s switched to post-copy after %.0f s", name, elapsed)
                if elapsed >= next_log:
                    stats = hv.call(api.job_stats, dom, timeout=5.0)
                    if stats:
                        op.log.info("migrating %s: %.0f s, %d MiB sent, %d MiB remaining, pass %s", name, elapsed,
                                    stats.get(api.STAT_DATA_PROCESSED, 0) >> 20,
                                    stats.get(api.STAT_DATA_REMAINING, 0) >> 20,
                                    stats.get(api.STAT_MEMORY_ITERATION, "?"))
                    next_log = elapsed + 5.0
            except (api.LibvirtError, api.Unreachable) as err:
                op.log.debug("migration progress: %s", err)

    @staticmethod
    def _where_now(hv, dom):
        """Words for the source's state after a migration failed to end cleanly (for the exit reason)."""
        from pyra.backends import libvirt_api as api
        try:
            state, _ = hv.state(dom)
        except (api.LibvirtError, api.Unreachable):
            return "may still run here (libvirtd does not answer)"
        if state in (api.RUNNING, api.BLOCKED):
            return "still runs here"
        return "is %s here" % api.STATE_NAMES.get(state, state)

    def migrate_from(self, op):
        from pyra.backends import libvirt_api as api
        cfg = self._config(op)
        hv = self._hv(op)
        try:
            hv.open(timeout=max(1.0, op.deadline.remaining() * 0.3))
        except api.Unreachable as err:
            raise Failure("hypervisor not reachable: %s" % err) from None
        with hv:
            dom = hv.lookup(uuid=cfg.uuid)
            if dom is None:
                raise Failure("%s did not arrive on this node" % cfg.name)
            op.state.record_start({"name": cfg.name, "uuid": cfg.uuid}, uri=op.params.hypervisor,
                                  source=op.env.migrate_source or "")

            def arrived():
                st, reason = hv.state(dom)
                return st == api.RUNNING or (st == api.PAUSED and reason == api.PAUSED_USER)
            if not op.deadline.within(op.deadline.remaining() * 0.5).wait_for(arrived, 0.1, 0.5):
                st, reason = hv.state(dom)
                raise Failure("%s is %s (%s) here after the migration" % (
                    cfg.name, api.STATE_NAMES.get(st, st), api.PAUSED_REASONS.get(reason, reason)))
            try:
                self._wait_ready(op, hv, dom, None, cfg.name, fresh=True)
            except api.LibvirtError as err:
                raise Failure("%s: %s" % (cfg.name, api.error_text(err))) from None
        return codes.SUCCESS

    def reload_agent(self, op):
        # Migration parameters are read when a migration starts: nothing to apply to the running guest.
        op.log.info("migration parameters reloaded")
        return codes.SUCCESS
