"""What Pacemaker (or ocf-tester, crm_resource, an admin) passed to this agent run.

Reads the environment once: the action, the resource instance, the ``OCF_RESKEY_CRM_meta_*`` attributes
(timeout, interval, migrate source/target, clone), ``OCF_CHECK_LEVEL`` (which comes *without* the
``OCF_RESKEY_`` prefix), the OCF version the caller speaks, and ``HA_RSCTMP``.
"""

import os

DEFAULT_RSCTMP = "/run/resource-agents"


def _int_or_none(text):
    if text is None or text.strip() == "":
        return None
    try:
        return int(text.strip())
    except ValueError:
        return None


class OcfEnv:
    """A read-only view of one agent invocation's environment."""

    __slots__ = ("environ", "action", "instance", "resource_type")

    def __init__(self, environ=None, argv=None, resource_type=None):
        self.environ = os.environ if environ is None else environ
        argv = argv if argv is not None else []
        # ocf-tester exports __OCF_ACTION; Pacemaker passes argv[1]. argv wins when both are present:
        # an admin typing `AGENT stop` in a shell that still has __OCF_ACTION set means "stop".
        self.action = argv[1] if len(argv) > 1 else self.environ.get("__OCF_ACTION", "")
        self.instance = self.environ.get("OCF_RESOURCE_INSTANCE") or (resource_type or "pyra")
        self.resource_type = self.environ.get("OCF_RESOURCE_TYPE") or resource_type or ""

    def reskey(self, name, default=None):
        """The raw value of parameter ``name`` (``OCF_RESKEY_<name>``), or ``default`` when absent."""
        return self.environ.get("OCF_RESKEY_" + name, default)

    def meta(self, name, default=None):
        """A meta attribute (``OCF_RESKEY_CRM_meta_<name>``, dashes already underscores)."""
        return self.environ.get("OCF_RESKEY_CRM_meta_" + name.replace("-", "_"), default)

    def meta_flag(self, name):
        """A boolean meta attribute (e.g. ``allow-migrate``) read by the schema's boolean parser: absent or not a
        boolean is False."""
        from pyra.ocf.params import parse_boolean
        try:
            return parse_boolean(self.meta(name) or "")
        except ValueError:
            return False

    @property
    def timeout_ms(self):
        """The operation timeout Pacemaker will enforce, in milliseconds, or None when not given."""
        value = _int_or_none(self.meta("timeout"))
        return value if value and value > 0 else None

    @property
    def interval_ms(self):
        """The monitor interval in milliseconds; None when unset."""
        return _int_or_none(self.meta("interval"))

    @property
    def is_probe(self):
        """A probe is a monitor with interval 0 or no interval at all (ocf-shellfuncs and Pacemaker agree)."""
        return self.action == "monitor" and not self.interval_ms

    @property
    def check_level(self):
        """The requested monitor depth (``OCF_CHECK_LEVEL``; ``OCF_RESKEY_OCF_CHECK_LEVEL`` as ocf-shellfuncs
        also accepts). Unparseable or absent means 0."""
        raw = self.environ.get("OCF_CHECK_LEVEL")
        if raw is None:
            raw = self.environ.get("OCF_RESKEY_OCF_CHECK_LEVEL")
        level = _int_or_none(raw)
        return level if level is not None and level >= 0 else 0

    @property
    def ra_version(self):
        """(major, minor) of the OCF API the caller speaks; (1, 0) when it does not say (ocf-tester)."""
        major = _int_or_none(self.environ.get("OCF_RA_VERSION_MAJOR"))
        minor = _int_or_none(self.environ.get("OCF_RA_VERSION_MINOR"))
        if major is None:
            return (1, 0)
        return (major, minor or 0)

    @property
    def rsctmp(self):
        return self.environ.get("HA_RSCTMP") or DEFAULT_RSCTMP

    @property
    def migrate_target(self):
        return self.meta("migrate_target")

    @property
    def migrate_source(self):
        return self.meta("migrate_source")

    @property
    def exit_reason_prefix(self):
        return self.environ.get("OCF_EXIT_REASON_PREFIX") or "ocf-exit-reason:"
