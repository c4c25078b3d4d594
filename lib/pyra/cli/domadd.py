"""``pyra domadd FILE.xml``: a domain XML becomes a cluster resource, in one CIB transaction.

Validates the XML (pyra's DomainConfig, then libvirt's schema: exit 7 with the reason), reads the CIB once
(``cibadmin -Q``), builds the new element in memory (pyra.cli.domadd_cib: the TransientDomain primitive, and
with ``--disk-group auto`` an LVMFilesystem per LV disk, grouped before it in ``g-<id>``), refuses ids that
exist, then creates it with ONE ``cibadmin --create --scope resources`` call: the CIB applies one request
entirely or not at all (an id created meanwhile by someone else fails it), so nothing half-made is ever left.
Which disks are LVs is decided by their path (/dev/VG/LV, /dev/mapper/VG-LV), without asking LVM: the node
domadd runs on need not see the VG, and an unowned system-ID VG looks local to ``lvs`` until a node claims it.
"""

import os
import sys
import xml.etree.ElementTree as ET

from pyra.cli import domadd_cib
from pyra.cli import main as cli
from pyra.cli.main import CliError

CIB_TIMEOUT = 30.0


def _run(argv, timeout, input=None):
    from pyra.host import command
    return command.run(argv, timeout=timeout, input=input)


def read_config(path):
    """(DomainConfig, absolute path); CliError 7 for a file that is not a usable domain XML, 3 when missing."""
    from pyra.backends import libvirt_schema
    from pyra.backends.libvirt_xml import DomainConfig, DomainXMLError
    absolute = os.path.abspath(path)
    try:
        with open(absolute, "rb") as handle:
            data = handle.read()
    except OSError as err:
        raise CliError("cannot read %s: %s" % (path, err.strerror), cli.NOT_FOUND) from None
    try:
        config = DomainConfig(data)
    except DomainXMLError as err:
        raise CliError("%s: %s" % (path, err), cli.BAD_XML) from None
    try:
        problem = libvirt_schema.check(data)
    except libvirt_schema.SchemaUnavailable as err:
        sys.stderr.write("pyra: warning: %s not checked against libvirt's schema: %s\n" % (path, err))
        problem = None
    if problem:
        raise CliError("%s: libvirt's schema refuses it: %s" % (path, problem), cli.BAD_XML)
    return config, absolute


def read_cib():
    """The CIB's root element (``cibadmin -Q``); CliError 5 when the cluster cannot be reached."""
    result = _run(["cibadmin", "--query"], timeout=CIB_TIMEOUT)
    if not result.ok:
        raise CliError("cannot read the CIB: %s" % result.summary(), cli.NO_CLUSTER)
    try:
        return ET.fromstring(result.stdout)
    except ET.ParseError as err:
        raise CliError("cibadmin --query gave no CIB: %s" % err, cli.NO_CLUSTER) from None


def make_plan(args, config, path):
    from pyra.agents import load
    guest = load("TransientDomain")
    disks = load("LVMFilesystem")
    try:
        return domadd_cib.build(config, path, guest.all_actions(), disks.all_actions(), resource_id=args.id,
                                disk_group=args.disk_group,
                                hypervisor_default=guest.schema.by_name["hypervisor"].default,
                                vg_access_mode=args.vg_access_mode)
    except domadd_cib.Refused as err:
        raise CliError(str(err), getattr(cli, err.code)) from None


def register(subparsers):
    p = subparsers.add_parser(
        "domadd", help="make a domain XML a cluster resource (one CIB transaction)",
        description="Validate FILE.xml (pyra and libvirt's schema), then create in ONE CIB transaction the "
        "ocf:pyra:TransientDomain primitive (config=the file's absolute path, the agent's operation timeouts, "
        "allow-migrate=true, cpu and memory utilization from the XML) and, with --disk-group auto, one "
        "ocf:pyra:LVMFilesystem per disk that is an LV (/dev/VG/LV or /dev/mapper/VG-LV), grouped before the "
        "guest in g-ID. Nothing is changed when anything fails. The file must be readable at the same path on "
        "every node (shared storage, or copied to each node).",
        epilog="example: pyra domadd /etc/pyra/gum.xml --dry-run; pyra domadd /etc/pyra/gum.xml")
    p.add_argument("file", metavar="FILE.xml", help="the domain XML (e.g. from pyra create-domxml)")
    p.add_argument("--id", metavar="RESOURCE", help="resource id of the guest (default: the domain name)")
    p.add_argument("--disk-group", choices=("auto", "none"), default="auto",
                   help="auto (default): an LVMFilesystem per LV disk, grouped before the guest; none: the "
                   "guest alone")
    p.add_argument("--vg-access-mode", choices=("system_id", "lvmlockd", "tagging"), metavar="MODE",
                   help="vg_access_mode of the LVMFilesystem resources (default: the agent's, system_id)")
    p.add_argument("--dry-run", action="store_true", help="print the XML that would be loaded, change nothing")
    p.set_defaults(func=run)
    return p


def run(args):
    config, path = read_config(args.file)
    plan = make_plan(args, config, path)
    text = plan.tostring()
    try:
        cib = read_cib()
    except CliError:
        if not args.dry_run:
            raise
        sys.stderr.write("pyra: warning: the cluster cannot be reached: not checked against the CIB\n")
        cib = None
    if cib is not None:
        try:
            domadd_cib.conflicts(cib, plan, path)
        except domadd_cib.Refused as err:
            raise CliError(str(err), getattr(cli, err.code)) from None
    if args.dry_run:
        sys.stdout.write(text)
        return cli.OK
    result = _run(["cibadmin", "--create", "--scope", "resources", "--xml-pipe"], timeout=CIB_TIMEOUT,
                  input=text)
    if not result.ok:
        raise CliError("the cluster refused the new resources (nothing was changed): %s" % result.summary(),
                       cli.FAILED)
    what = "group %s (%s, then %s)" % (plan.group_id, ", ".join(sorted(plan.disk_ids)), plan.guest_id) \
        if plan.group_id else "resource %s" % plan.guest_id
    sys.stdout.write("pyra: added %s: ocf:pyra:TransientDomain for %s\n" % (what, path))
    return cli.OK
