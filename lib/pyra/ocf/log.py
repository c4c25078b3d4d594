"""Logging, exit reasons and tracing, following the HA_* conventions of ocf-shellfuncs and ocf.py.

Destinations (as ``ha_log`` does): syslog when ``HA_LOGFACILITY`` is set and not ``none`` (the facility is
honoured, unlike ocf.py); ``HA_LOGFILE``; ``HA_DEBUGLOG`` for debug lines; stderr only when neither is set
(Pacemaker's execd records agent stderr). Debug lines only when ``HA_debug`` is a true value — ocf.py turns
debug *on* for ``HA_debug=0``; we do not. Every message is one line: embedded newlines are escaped, so a
parameter value cannot forge a log line or an ``ocf-exit-reason:`` line.

Why not import the distro's ocf.py here: it configures the ``logging`` module at import (~8 ms, more than a
whole monitor's budget) and has the bugs above. Its line format is kept, and a test compares the constants.

Tracing (``OCF_TRACE_RA=1`` or ``OCF_RESKEY_trace_ra=1``): every external call is recorded with its argv,
exit code, duration and output, in ``OCF_TRACE_FILE`` or ``$OCF_RESKEY_trace_dir/<type>/<inst>.<action>.<ts>``
(default dir ``/var/lib/heartbeat/trace_ra``, as ocf-shellfuncs uses).
"""

import os
import sys
import time

DEBUG, INFO, WARNING, ERROR = 10, 20, 30, 40
_LEVEL_NAMES = {DEBUG: "DEBUG", INFO: "INFO", WARNING: "WARNING", ERROR: "ERROR"}
_SYSLOG_PRIORITY = {DEBUG: 7, INFO: 6, WARNING: 4, ERROR: 3}
REASON_LIMIT = 128
_TRUE = ("1", "yes", "true", "on", "y")


def one_line(text):
    """Make ``text`` a single printable line (newlines and other control characters escaped)."""
    text = str(text)
    if text.isprintable():
        return text
    out = []
    for ch in text:
        if ch == "\n":
            out.append("\\n")
        elif ch == "\r":
            out.append("\\r")
        elif ch == "\t":
            out.append(" ")
        elif not ch.isprintable():
            out.append("\\x%02x" % (ord(ch) & 0xFF))
        else:
            out.append(ch)
    return "".join(out)


def shorten(text, limit=REASON_LIMIT):
    text = one_line(text).strip()
    if len(text) <= limit:
        return text
    return text[: limit - 3].rstrip() + "..."


def _facility(name):
    import syslog
    name = name.strip().lower()
    if name.startswith("log_"):
        name = name[4:]
    return getattr(syslog, "LOG_" + name.upper(), syslog.LOG_DAEMON)


class Logger:
    """The agent's logger for one invocation."""

    def __init__(self, agent_name, instance, environ=None, action=""):
        environ = os.environ if environ is None else environ
        self.agent_name = agent_name
        self.instance = instance
        self.action = action
        self.debug_enabled = environ.get("HA_debug", "").strip().lower() in _TRUE
        facility = environ.get("HA_LOGFACILITY", "").strip()
        self.syslog_facility = facility if facility and facility.lower() != "none" else None
        self.logfile = environ.get("HA_LOGFILE") or None
        self.debuglog = environ.get("HA_DEBUGLOG") or None
        self.datefmt = environ.get("HA_DATEFMT") or "%b %d %T "
        self.tag = environ.get("HA_LOGTAG") or agent_name
        self.to_stderr = self.syslog_facility is None and self.logfile is None
        self._syslog_open = False
        self._trace_fd = None
        if (environ.get("OCF_TRACE_RA", "").lower() in _TRUE
                or environ.get("OCF_RESKEY_trace_ra", "").lower() in _TRUE):
            self._open_trace(environ)

    # -- plain logging -------------------------------------------------------------------------------
    def log(self, level, message, *args):
        if level == DEBUG and not self.debug_enabled:
            if self._trace_fd is not None:
                self._trace_write("debug: " + one_line(message % args if args else message))
            return
        text = one_line(message % args if args else message)
        if self._trace_fd is not None:
            self._trace_write("%s: %s" % (_LEVEL_NAMES[level].lower(), text))
        if self.syslog_facility is not None:
            import syslog
            if not self._syslog_open:
                syslog.openlog(self.tag, syslog.LOG_PID, _facility(self.syslog_facility))
                self._syslog_open = True
            syslog.syslog(_SYSLOG_PRIORITY[level], "%s: %s" % (_LEVEL_NAMES[level], text))
        line = None
        if self.logfile or self.debuglog or self.to_stderr:
            line = "%s(%s)[%d]:\t%s%s: %s\n" % (self.agent_name, self.instance, os.getpid(),
                                               time.strftime(self.datefmt), _LEVEL_NAMES[level], text)
        if self.logfile:
            self._append(self.logfile, line)
        if self.debuglog and self.debuglog != self.logfile:
            self._append(self.debuglog, line)
        if self.to_stderr and (level >= WARNING or self.debug_enabled):
            sys.stderr.write(line)
            sys.stderr.flush()

    def debug(self, message, *args):
        self.log(DEBUG, message, *args)

    def info(self, message, *args):
        self.log(INFO, message, *args)

    def warning(self, message, *args):
        self.log(WARNING, message, *args)

    def error(self, message, *args):
        self.log(ERROR, message, *args)

    @staticmethod
    def _append(path, line):
        try:
            fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except OSError:
            return
        try:
            os.write(fd, line.encode("utf-8", "replace"))
        finally:
            os.close(fd)

    # -- tracing -------------------------------------------------------------------------------------
    def _open_trace(self, environ):
        target = environ.get("OCF_TRACE_FILE")
        try:
            if target and target.isdigit():
                self._trace_fd = os.dup(int(target))
                return
            if not target:
                base = environ.get("OCF_RESKEY_trace_dir") or "/var/lib/heartbeat/trace_ra"
                directory = os.path.join(base, self.agent_name)
                os.makedirs(directory, 0o700, exist_ok=True)
                stamp = time.strftime("%Y-%m-%d.%H:%M:%S")
                target = os.path.join(directory, "%s.%s.%s" % (self.instance, self.action or "none", stamp))
            self._trace_fd = os.open(target, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC
                                     | os.O_NOFOLLOW, 0o600)
        except OSError:
            self._trace_fd = None

    @property
    def tracing(self):
        return self._trace_fd is not None

    def _trace_write(self, text):
        try:
            os.write(self._trace_fd, ("+ %.3f %s\n" % (time.time(), text)).encode("utf-8", "replace"))
        except OSError:
            pass

    def trace_command(self, result):
        """Record one external call (a pyra.host.command.CommandResult)."""
        self.debug("ran %s -> %s in %.0f ms", result.argv_text(), result.status_text(), result.duration * 1000)
        if self._trace_fd is not None:
            self._trace_write("exec argv=%s rc=%s duration_ms=%.1f timed_out=%s" % (
                one_line(repr(list(result.argv))), result.rc, result.duration * 1000, result.timed_out))
            if result.stdout:
                self._trace_write("  stdout=" + one_line(result.stdout[:4000]))
            if result.stderr:
                self._trace_write("  stderr=" + one_line(result.stderr[:4000]))

    def trace(self, text):
        if self._trace_fd is not None:
            self._trace_write(one_line(text))

    def close(self):
        if self._trace_fd is not None:
            os.close(self._trace_fd)
            self._trace_fd = None
        if self._syslog_open:
            import syslog
            syslog.closelog()
            self._syslog_open = False


def emit_exit_reason(reason, prefix="ocf-exit-reason:", stream=None):
    """Write the one ``ocf-exit-reason:`` line (≤ 128 characters of text) to stderr."""
    stream = stream or sys.stderr
    stream.write("%s%s\n" % (prefix, shorten(reason)))
    stream.flush()
