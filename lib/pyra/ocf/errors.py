"""Conditions an agent raises when it cannot go on; the runtime turns them into codes through the policy.

Raise with a reason written for the admin (what is wrong and what to do); the runtime emits it as the single
``ocf-exit-reason:`` line, shortened to 128 characters.
"""

from pyra.ocf import policy


class OcfError(Exception):
    """Base class: a condition (see ``pyra.ocf.policy``) and a reason."""

    condition = policy.FAILED

    def __init__(self, reason):
        super().__init__(reason)
        self.reason = reason

    def __str__(self):
        return self.reason


class ConfigError(OcfError):
    """The parameters are invalid everywhere (6 from validate-all/start only)."""

    condition = policy.CONFIG_INVALID


class MissingEnvironment(OcfError):
    """Something this resource needs is not usable on this node (config file, binary, storage, daemon)."""

    condition = policy.ENV_MISSING


class Failure(OcfError):
    """The operation did not achieve its goal."""

    condition = policy.FAILED


class DeadlineExceeded(Failure):
    """The operation's time budget ran out before the goal was reached."""
