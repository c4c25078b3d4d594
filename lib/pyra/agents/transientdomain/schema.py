"""TransientDomain's parameters: the one table that drives parsing, validation, metadata and the man page."""

from pyra.ocf import checks
from pyra.ocf.params import BOOLEAN, INTEGER, LIST, TIME, Param, Schema, parse_time


def parse_postcopy(text):
    """migration_postcopy: None for off, else the seconds after which to switch to post-copy ('after 30s')."""
    word = text.strip().lower()
    if word in ("off", "no", "false", "0", ""):
        return None
    try:
        return parse_time(word.removeprefix("after").strip())
    except ValueError:
        raise ValueError("must be off or a delay such as 'after 30s'") from None


SCHEMA = Schema(
    Param("config", required=True, unique=True, checks=[checks.absolute_path, checks.existing_file],
          shortdesc="Domain XML file",
          longdesc="Absolute path of the libvirt domain XML. It must have a <name>; a <uuid> is strongly "
                   "recommended (without one a stable UUID is derived from the name). The same file (or an "
                   "identical copy) must be readable on every node that may run the guest. start and "
                   "validate-all check it against this node's libvirt schema (domain.rng, as "
                   "virt-xml-validate does) whenever it changed: a file libvirt refuses fails validate-all "
                   "with libvirt's words, and start on that node with 'not installed' (5). start and "
                   "OCF_CHECK_LEVEL=10 monitors also check that every disk source and every bridge (Linux or "
                   "Open vSwitch) it names exists on the node; network disks (rbd, iscsi, nbd) are left to "
                   "QEMU."),
    Param("hypervisor", default="qemu:///system", checks=[checks.single_line],
          shortdesc="Hypervisor URI", longdesc="libvirt connection URI of the local hypervisor. "
          "lxc:///system runs libvirt-LXC containers, which cannot migrate (libvirt-LXC has no migration): "
          "leave allow-migrate off for them."),
    Param("force_stop", type=BOOLEAN, default=False, shortdesc="Destroy instead of shutting down",
          longdesc="Skip the graceful shutdown: stop destroys the guest at once."),
    Param("shutdown_mode", default="default", choices=("default", "acpi", "agent"),
          shortdesc="How to ask the guest to shut down",
          longdesc="acpi: press the ACPI power button; agent: ask the QEMU guest agent; default: let "
                   "libvirt choose. If the request is refused the guest is destroyed at once. For a libvirt-LXC "
                   "container, default sends SIGTERM to its init (an init that reboots on it, as busybox's does, is "
                   "restarted by libvirt-LXC and then destroyed); acpi and agent are refused by libvirt-LXC."),
    Param("startup_signal", default="auto", choices=("auto", "on", "off"),
          shortdesc="Wait for the guest's ready signal",
          longdesc="on: start waits for 'ready <token>' on the virtio-serial channel named startup_signal "
                   "and answers 'ack <token>'; auto: on when the XML has such a channel; off: never. Only QEMU guests "
                   "have the channel: for a libvirt-LXC container auto is off and on is refused."),
    Param("startup_timeout", type=TIME, default=0.0, checks=[checks.in_range(0, 86400)],
          shortdesc="Time limit for the guest to become ready",
          longdesc="Seconds start and migrate_from wait for readiness (0: as long as the operation timeout "
                   "allows). On expiry the guest is destroyed and start fails."),
    Param("monitor_scripts", type=LIST, default="", checks=[checks.each(checks.absolute_path)],
          shortdesc="In-guest checks run on start and deep monitors",
          longdesc="Space-separated list of executables (absolute paths). start and migrate_from wait "
                   "until all exit 0; a monitor with OCF_CHECK_LEVEL=10 fails when one does not."),
    Param("console_log", default="", checks=[checks.absolute_path],
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
                   "over the libvirtd connection; direct: this agent connects to both. Always live. libvirt-LXC "
                   "containers cannot migrate: migrate_to refuses them."),
    Param("migration_bandwidth", type=INTEGER, default=0, checks=[checks.in_range(0, 10 ** 6)],
          reloadable=True, shortdesc="Bandwidth limit (MiB/s)",
          longdesc="Maximum migration bandwidth in MiB/s; 0 leaves libvirt's default."),
    Param("migration_downtime", type=INTEGER, default=0, checks=[checks.in_range(0, 10 ** 6)],
          reloadable=True, shortdesc="Maximum downtime (ms)",
          longdesc="Maximum tolerated downtime at the switch-over, in milliseconds; 0 leaves the default."),
    Param("migration_auto_converge", type=BOOLEAN, default=False, reloadable=True,
          shortdesc="Throttle the guest's CPUs to make the migration converge"),
    Param("migration_postcopy", default="off", convert=parse_postcopy, reloadable=True,
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
                   "XML's <memory>: the most the guest can use (a ballooned guest's currentMemory may grow to "
                   "it), so that the scheduler knows the guest's size before it places it."),
)
