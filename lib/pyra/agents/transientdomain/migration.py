"""TransientDomain's live migration: migrate_to drives it (peer-to-peer, tunnelled or direct) and watches it
against the deadline (progress, downtime limit, post-copy, abort in time: the guest keeps running on the
source); migrate_from waits for the guest to arrive and answer. The target's URI follows the agent's
remote_uri / migration_transport / migration_user / migration_network_suffix rules (``remote_uri``).
libvirt-LXC cannot migrate: migrate_to refuses a container before touching it, and it keeps running.
"""

from pyra.agents.transientdomain.connection import connect
from pyra.agents.transientdomain.driver import is_lxc
from pyra.agents.transientdomain.readiness import wait_ready
from pyra.ocf import codes
from pyra.ocf.errors import Failure


def remote_uri(params, target):
    """The libvirt URI of ``target`` for these parameters: the remote_uri template, else the local hypervisor
    URI with the migration transport (and user, for ssh); %n is the node name with the network suffix."""
    from pyra.backends import libvirt_xml
    template = params.remote_uri
    if not template:
        transport = params.migration_transport
        template = libvirt_xml.default_remote_uri(params.hypervisor, transport)
        if params.migration_user and transport == "ssh":
            template = template.replace("://%n", "://%s@%%n" % params.migration_user, 1)
    return libvirt_xml.expand_node(template, target, params.migration_network_suffix)


def _config_or_none(path):
    """The parsed domain XML, or None when it cannot be read here (the URI then tells the driver)."""
    from pyra.backends.libvirt_xml import DomainConfig, DomainXMLError
    try:
        return DomainConfig.from_file(path) if path else None
    except (OSError, DomainXMLError):
        return None


def migrate_to(op):
    from pyra.backends import libvirt_api as api
    from pyra.backends import libvirt_xml
    target = op.env.migrate_target
    if not target:
        raise Failure("migrate_to needs OCF_RESKEY_CRM_meta_migrate_target")
    ident = op.identity()
    name, uuid = ident["name"], ident["uuid"]
    p = op.params
    if is_lxc(p, _config_or_none(p.config)):
        raise Failure("libvirt-LXC cannot migrate a container: %s keeps running here (set allow-migrate=false "
                      "for it: Pacemaker then stops it here and starts it on %s)" % (name, target))
    remote = remote_uri(p, target)
    flags = api.MIGRATE_LIVE | api.MIGRATE_ABORT_ON_ERROR
    if p.migration_mode in ("p2p", "tunnelled"):
        flags |= api.MIGRATE_PEER2PEER
    if p.migration_mode == "tunnelled":
        flags |= api.MIGRATE_TUNNELLED
    if p.migration_auto_converge:
        flags |= api.MIGRATE_AUTO_CONVERGE
    if p.migration_postcopy is not None:
        flags |= api.MIGRATE_POSTCOPY
    params = {}
    if p.migration_bandwidth:
        params[api.PARAM_BANDWIDTH] = p.migration_bandwidth
    if p.migrate_uri and p.migration_mode != "tunnelled":
        params[api.PARAM_URI] = libvirt_xml.expand_node(p.migrate_uri, target, p.migration_network_suffix)
    try:
        hv = connect(op, 0.2, cap=10.0)
    except api.Unreachable as err:
        raise Failure("hypervisor not reachable: %s" % err) from None
    try:
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
            _watch(op, hv, dom, job, name, target, p.migration_postcopy)
            if job.ok:
                op.state.record_migrated(target)
                op.log.info("%s migrated to %s in %.1f s", name, target, op.deadline.elapsed())
                return codes.SUCCESS
            err = job.value
            text = api.error_text(err) if isinstance(err, api.LibvirtError) else str(err)
            still = "still runs here" if not hv.gone(dom) else "is NOT running here any more"
            raise Failure("migration of %s to %s failed: %s; the guest %s" % (name, target, text, still))
    except (api.Unreachable, api.LibvirtError) as err:
        raise Failure("migrating %s to %s: %s" % (name, target, api.error_text(err))) from None

def _watch(op, hv, dom, job, name, target, postcopy_after):
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
                              "the guest %s" % (name, target, elapsed, _where_now(hv, dom)))
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



def migrate_from(op, cfg):
    from pyra.backends import libvirt_api as api
    try:
        hv = connect(op, 0.3)
    except api.Unreachable as err:
        raise Failure("hypervisor not reachable: %s" % err) from None
    with hv:
        dom = hv.lookup(uuid=cfg.uuid)
        if dom is None:
            raise Failure("%s did not arrive on this node" % cfg.name)
        op.record_start(uri=op.params.hypervisor, source=op.env.migrate_source or "")

        def arrived():
            st, reason = hv.state(dom)
            return st == api.RUNNING or (st == api.PAUSED and reason == api.PAUSED_USER)
        if not op.deadline.within(op.deadline.remaining() * 0.5).wait_for(arrived, 0.1, 0.5):
            st, reason = hv.state(dom)
            raise Failure("%s is %s (%s) here after the migration" % (
                cfg.name, api.STATE_NAMES.get(st, st), api.PAUSED_REASONS.get(reason, reason)))
        try:
            wait_ready(op, hv, dom, cfg.name, fresh=True)
        except api.LibvirtError as err:
            raise Failure("%s: %s" % (cfg.name, api.error_text(err))) from None
    return codes.SUCCESS
