"""TransientDomain: a libvirt guest created from an XML file, never defined persistently on any node.

The OCF actions; the parameters are in ``schema``, readiness (handshake, monitor_scripts) in ``readiness``,
live migration in ``migration``, the libvirtd connection in ``connection``. libvirt calls are in
pyra.backends.libvirt_api (bounded by the operation deadline), the XML in libvirt_xml, the startup_signal
protocol in libvirt_channel, the emulator fallback in libvirt_proc. The recurring monitor does not load
libvirt-python at all: libvirt_wire asks the local daemon on its socket (one connection, one lookup by the
recorded UUID, one state query; no dumpxml, no crm_resource, no XML parsing) and hands anything it does not
fully understand (a remote URI, authentication, an unexpected error) back to the libvirt-python path.
"""

import os

from pyra.agents.base import PyraAgent
from pyra.agents.transientdomain.connection import connect
from pyra.agents.transientdomain.driver import is_lxc
from pyra.agents.transientdomain.schema import SCHEMA
from pyra.ocf import codes
from pyra.ocf.agent import Action
from pyra.ocf.errors import ConfigError, Failure, MissingEnvironment


class TransientDomain(PyraAgent):
    name = "TransientDomain"
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
        "monitor_scripts. A libvirt-LXC container (hypervisor=lxc:///system, <domain type='lxc'>) runs the same "
        "way, except that it has no startup_signal channel (monitor_scripts tell when it is ready), stop sends "
        "SIGTERM to its init before destroying it, and it cannot migrate: libvirt-LXC has no migration, so "
        "migrate_to fails and the container keeps running (leave allow-migrate off for it).")
    schema = SCHEMA
    actions = (
        Action("start", timeout=90), Action("stop", timeout=90),
        Action("monitor", timeout=30, interval=10), Action("monitor", timeout=30, interval=60, depth=10),
        Action("migrate_to", timeout=120), Action("migrate_from", timeout=60),
        Action("reload-agent", timeout=20),
    )
    check_levels = (0, 10)
    identity_keys = ("name", "uuid")

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

    def identify(self, op):
        """The guest's name and UUID, from its domain XML."""
        if not op.params.config:
            raise MissingEnvironment("no config given and this node never started the guest")
        cfg = self._config(op)
        return {"name": cfg.name, "uuid": cfg.uuid}

    # -- validate -----------------------------------------------------------------------------------------
    def validate(self, op):
        p = op.params
        if p.startup_timeout and op.action == "start" and p.startup_timeout > op.deadline.remaining():
            op.log.warning("startup_timeout %gs exceeds the start timeout", p.startup_timeout)
        if "://" not in p.hypervisor:
            raise ConfigError("hypervisor %r is not a libvirt URI" % p.hypervisor)
        cfg = self._config(op)
        if p.startup_signal == "on" and is_lxc(p, cfg):
            raise ConfigError("startup_signal=on needs a virtio-serial channel, which only QEMU guests have: %s "
                              "is a libvirt-LXC container (use monitor_scripts to tell when it is ready)" % cfg.name)
        if p.startup_signal == "on" and not cfg.has_startup_channel():
            raise ConfigError("startup_signal=on but %s has no unix virtio channel named startup_signal"
                              % os.path.basename(p.config))
        from pyra.agents.transientdomain import environment
        if op.action in ("start", "validate-all"):
            environment.check_schema(op, cfg.name)
        if op.depth >= 10:
            environment.check_node(op, cfg)
            for script in p.monitor_scripts:
                if not os.access(script, os.X_OK):
                    raise MissingEnvironment("monitor script %s is not executable here" % script)
            if op.action == "validate-all":
                self._validate_hypervisor(op, cfg)
        return cfg

    def _validate_hypervisor(self, op, cfg):
        from pyra.backends import libvirt_api as api
        try:
            with connect(op, 1.0) as hv:
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
        ident = op.identity()
        name, uuid = ident["name"], ident["uuid"]
        if op.check_level < 10:
            from pyra.backends import libvirt_wire as wire
            try:
                found = wire.domain_state(op.params.hypervisor, uuid, op.deadline.remaining() * 0.8)
            except wire.Timeout as err:
                return self._monitor_without_libvirtd(op, name, uuid, err)
            except wire.Unsupported as err:
                op.log.debug("state through libvirt-python (%s)", err)
            else:
                if found is None:
                    return op.not_running("domain %s is not running" % name)
                return self._judge_state(op, name, *found) or codes.SUCCESS
        from pyra.backends import libvirt_api as api
        try:
            hv = connect(op, 0.8, per_call=0.8)
            dom = hv.lookup(uuid=uuid)
            if dom is None:
                return op.not_running("domain %s is not running" % name)
            state, reason = hv.state(dom)
        except api.Unreachable as err:
            return self._monitor_without_libvirtd(op, name, uuid, err)
        except api.LibvirtError as err:
            raise Failure("libvirt error on %s: %s" % (name, api.error_text(err))) from None
        verdict = self._judge_state(op, name, state, reason)
        if verdict is not None:
            return verdict
        if op.check_level >= 10:
            from pyra.agents.transientdomain import environment
            from pyra.agents.transientdomain.readiness import deep_check
            try:
                cfg = self._config(op)
            except (MissingEnvironment, ConfigError) as err:
                op.log.warning("%s: node resources not checked: %s", name, err.reason)
            else:
                environment.check_node(op, cfg)  # a disk or bridge gone from under the guest: it cannot run here
            return deep_check(op, hv, dom, name)
        return codes.SUCCESS

    @staticmethod
    def _judge_state(op, name, state, reason):
        """The monitor's answer for a domain state that is not plainly running, None when it runs."""
        from pyra.backends import libvirt_codes as lc
        if state in (lc.SHUTOFF, lc.CRASHED, lc.NOSTATE):
            return op.not_running("domain %s is %s" % (name, lc.STATE_NAMES.get(state, state)))
        if state == lc.PAUSED:
            if reason in (lc.PAUSED_IOERROR, lc.PAUSED_POSTCOPY_FAILED):
                return op.degraded("%s is paused: %s" % (name, lc.PAUSED_REASONS.get(reason, reason)))
            if reason == lc.PAUSED_USER:
                return op.degraded("%s was paused by an administrator" % name)
            # migration, starting up, snapshot, save: transient pauses
        return None

    def _monitor_without_libvirtd(self, op, name, uuid, err):
        from pyra.backends.libvirt_proc import emulator_pids
        pids = emulator_pids(uuid, name)
        if pids:
            if op.is_probe:
                op.log.warning("libvirtd unreachable (%s); emulator pid %d of %s runs", err, pids[0], name)
                return codes.SUCCESS
            return op.degraded("libvirtd unreachable; the emulator of %s (pid %d) still runs" % (name, pids[0]))
        return op.not_running("libvirtd unreachable and no emulator of %s runs" % name)

    # -- start ------------------------------------------------------------------------------------------------
    def start(self, op):
        from pyra.agents.transientdomain.readiness import wait_ready
        from pyra.backends import libvirt_api as api
        cfg = self._config(op)
        try:
            hv = connect(op, 0.3)
        except api.Unreachable as err:
            raise MissingEnvironment("hypervisor not reachable: %s" % err) from None
        try:
            with hv:
                existing = hv.lookup(name=cfg.name) or hv.lookup(uuid=cfg.uuid)
                if existing is not None:
                    uuid = hv.call(existing.UUIDString)
                    ename = hv.call(existing.name)
                    if hv.is_persistent(existing):
                        raise MissingEnvironment("a persistent domain %s (%s) is defined on this node; TransientDomain "
                                                 "never undefines it: remove it yourself" % (ename, uuid))
                    if uuid != cfg.uuid or ename != cfg.name:
                        raise MissingEnvironment("another domain %s (%s) runs here with the same name or UUID"
                                                 % (ename, uuid))
                    if not hv.gone(existing):
                        op.record_start(uri=op.params.hypervisor)
                        op.log.info("%s is already running: checking that it is ready", cfg.name)
                        # A start that was killed (or timed out) after creating the guest leaves it booting; the
                        # re-run start completes only when the guest answers, as a first start would.
                        try:
                            wait_ready(op, hv, existing, cfg.name, fresh=True)
                        except api.LibvirtError as err:
                            raise Failure("%s: %s" % (cfg.name, api.error_text(err))) from None
                        return codes.SUCCESS
                # a fresh record, keeping the utilization a probe already published (no second crm_resource)
                published = {k: v for k, v in op.state.read().items() if k.startswith("util.")}
                op.state.record_start(op.identity(), uri=op.params.hypervisor, **published)
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
                    wait_ready(op, hv, dom, cfg.name, fresh=False, cfg=cfg)
                except (Failure, api.Unreachable, api.LibvirtError) as err:
                    self._cleanup_failed_start(op, hv, dom, cfg)
                    reason = err.reason if isinstance(err, Failure) else str(err)
                    raise Failure(reason + "; destroyed it") from None
                op.log.info("%s ready after %.2f s", cfg.name, op.deadline.elapsed())
        except (api.Unreachable, api.LibvirtError) as err:
            # a libvirtd that stops answering (or fails) after we connected: a plain failure with its words
            raise Failure("starting %s: %s" % (cfg.name, api.error_text(err))) from None
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
        ident = op.identity()
        name, uuid = ident["name"], ident["uuid"]
        try:
            # each call may take half of what is left: a libvirtd that freezes mid-stop leaves time to kill
            # the emulator instead of ending the stop (and fencing the node) with nothing done
            with connect(op, 0.25, cap=10.0, per_call=0.5) as hv:
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
                    if is_lxc(op.params) and op.params.shutdown_mode == "default":
                        # libvirt-LXC's own default (initctl, then SIGTERM) returns success without signalling
                        # an init that has no initctl pipe (libvirt 9.0, busybox init): SIGTERM the init
                        hv.call(dom.shutdownFlags, api.libvirt.VIR_DOMAIN_SHUTDOWN_SIGNAL)
                    else:
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
    def migrate_to(self, op):
        from pyra.agents.transientdomain import migration
        return migration.migrate_to(op)

    def migrate_from(self, op):
        from pyra.agents.transientdomain import migration
        return migration.migrate_from(op, self._config(op))

    def reload_agent(self, op):
        # Migration parameters are read when a migration starts: nothing to apply to the running guest.
        op.log.info("migration parameters reloaded")
        return codes.SUCCESS
