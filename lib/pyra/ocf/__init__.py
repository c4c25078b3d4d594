"""The OCF runtime shared by every pyra agent.

Modules: ``codes`` (return codes), ``env`` (what Pacemaker passed), ``params``/``checks`` (the typed schema),
``metadata`` (XML from the schema), ``policy`` (the one return-code policy), ``errors`` (conditions agents
raise), ``deadline`` (the operation's time budget), ``state`` (per-instance state files), ``log`` (logging,
exit reasons, tracing), ``agent`` (base class and dispatch).

Import cost matters: ``meta-data`` must answer about as fast as a bare interpreter, so nothing here imports
``logging``, ``subprocess``, ``json``, ``re`` or ``dataclasses`` at module level.
"""
