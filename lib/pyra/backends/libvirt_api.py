"""libvirt calls with a deadline: connection, domain lookup, state, shutdown, destroy, create, migration.

libvirt's client library blocks without a time limit when libvirtd hangs (its socket accepts, nothing answers),
and a Python signal handler cannot interrupt a C call. So every call here runs in a worker thread (``_thread``,
built in: no import cost) while the caller waits on a lock with a timeout; a call that does not return in time
raises ``Unreachable`` and the caller falls back to the emulator process (``libvirt_proc``). The abandoned
worker dies with the process.

Only this module imports ``libvirt``. Error handling: libvirt prints every error to stderr unless an error
handler is registered; we register a silent one and report errors ourselves.
"""

import _thread
import sys

from pyra.backends import libvirt_codes as _codes


class _Annotation:
    """Stands in for every ``typing`` name while libvirt.py is imported: subscriptable, callable, inert."""

    def __getitem__(self, _item):
        return self

    def __call__(self, *args, **_kwargs):
        return args[0] if len(args) == 1 and callable(args[0]) else self  # @overload returns the function


def _import_libvirt():
    """``import libvirt`` without ``typing``: libvirt.py imports it only for annotations, and it (with ``re``)
    is ~9 ms of a ~45 ms monitor. A stub ``typing`` module is in sys.modules only during the import; if anything
    goes wrong the import is simply redone with the real module."""
    if "typing" in sys.modules or "libvirt" in sys.modules:
        import libvirt
        return libvirt
    stub = type(sys)("typing")
    stub.__getattr__ = lambda _name: _Annotation()
    sys.modules["typing"] = stub
    try:
        import libvirt
    except Exception:  # noqa: BLE001 - any surprise: fall back to the plain import below
        sys.modules.pop("libvirt", None)
        libvirt = None
    finally:
        if sys.modules.get("typing") is stub:
            del sys.modules["typing"]
    if libvirt is None:
        import libvirt
    return libvirt


libvirt = _import_libvirt()
libvirt.registerErrorHandler(lambda _ctx, _err: None, None)

LibvirtError = libvirt.libvirtError

# the numbers pyra decides on, defined once in libvirt_codes (shared with the libvirt-free monitor path)
NOSTATE, RUNNING, BLOCKED, PAUSED = _codes.NOSTATE, _codes.RUNNING, _codes.BLOCKED, _codes.PAUSED
SHUTDOWN, SHUTOFF, CRASHED, PMSUSPENDED = _codes.SHUTDOWN, _codes.SHUTOFF, _codes.CRASHED, _codes.PMSUSPENDED
PAUSED_USER, PAUSED_IOERROR, PAUSED_POSTCOPY_FAILED = (_codes.PAUSED_USER, _codes.PAUSED_IOERROR,
                                                       _codes.PAUSED_POSTCOPY_FAILED)
ERR_NO_DOMAIN, ERR_OPERATION_INVALID = _codes.ERR_NO_DOMAIN, _codes.ERR_OPERATION_INVALID
STATE_NAMES, PAUSED_REASONS = _codes.STATE_NAMES, _codes.PAUSED_REASONS

SHUTDOWN_FLAGS = {"acpi": libvirt.VIR_DOMAIN_SHUTDOWN_ACPI_POWER_BTN,
                  "agent": libvirt.VIR_DOMAIN_SHUTDOWN_GUEST_AGENT,
                  "default": libvirt.VIR_DOMAIN_SHUTDOWN_DEFAULT}

MIGRATE_LIVE = libvirt.VIR_MIGRATE_LIVE
MIGRATE_PEER2PEER = libvirt.VIR_MIGRATE_PEER2PEER
MIGRATE_TUNNELLED = libvirt.VIR_MIGRATE_TUNNELLED
MIGRATE_AUTO_CONVERGE = libvirt.VIR_MIGRATE_AUTO_CONVERGE
MIGRATE_POSTCOPY = libvirt.VIR_MIGRATE_POSTCOPY
MIGRATE_ABORT_ON_ERROR = libvirt.VIR_MIGRATE_ABORT_ON_ERROR
PARAM_URI = libvirt.VIR_MIGRATE_PARAM_URI
PARAM_BANDWIDTH = libvirt.VIR_MIGRATE_PARAM_BANDWIDTH


class Unreachable(Exception):
    """libvirtd did not answer (refused, or no reply in time)."""


def bounded(timeout, fn, *args):
    """Run ``fn(*args)`` in a worker thread; its result, its exception, or Unreachable after ``timeout`` s."""
    done = _thread.allocate_lock()
    done.acquire()
    box = []

    def work():
        try:
            box.append((True, fn(*args)))
        except BaseException as err:  # handed to the caller below
            box.append((False, err))
        finally:
            done.release()

    _thread.start_new_thread(work, ())
    if not done.acquire(True, max(0.01, timeout)):
        raise Unreachable("no answer from libvirt within %.1f s" % timeout)
    ok, value = box[0]
    if ok:
        return value
    raise value


def error_code(err):
    try:
        return err.get_error_code()
    except AttributeError:
        return None


def error_text(err):
    try:
        msg = err.get_error_message()
    except AttributeError:
        msg = None
    return msg or str(err)


class Hypervisor:
    """One connection to libvirtd, every call bounded by a deadline (pyra.ocf.deadline.Deadline)."""

    def __init__(self, uri, deadline, call_share=None):
        self.uri = uri
        self.deadline = deadline
        self.call_share = call_share  # each call may take at most this share of the time left when it starts
        self.conn = None

    def _limit(self, timeout=None):
        left = self.deadline.remaining()
        limit = left * self.call_share if self.call_share else left
        return limit if timeout is None else min(limit, timeout)

    def call(self, fn, *args, timeout=None):
        return bounded(self._limit(timeout), fn, *args)

    def open(self, timeout=None):
        """Connect; Unreachable when libvirtd refuses or does not answer in time."""
        try:
            self.conn = self.call(libvirt.open, self.uri, timeout=timeout)
        except LibvirtError as err:
            raise Unreachable("cannot connect to %s: %s" % (self.uri, error_text(err))) from None
        if self.conn is None:
            raise Unreachable("cannot connect to %s" % self.uri)
        return self

    def close(self):
        conn, self.conn = self.conn, None
        if conn is not None:
            try:
                bounded(min(2.0, max(0.1, self.deadline.remaining())), conn.close)
            except (Unreachable, LibvirtError):
                pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    # -- domains -------------------------------------------------------------------------------------------
    def lookup(self, uuid=None, name=None):
        """The domain by UUID (preferred) or name, or None when libvirt does not know it."""
        try:
            if uuid:
                return self.call(self.conn.lookupByUUIDString, uuid)
            return self.call(self.conn.lookupByName, name)
        except LibvirtError as err:
            if error_code(err) == ERR_NO_DOMAIN:
                return None
            raise

    def state(self, dom):
        """(state, reason); (SHUTOFF, 0) when the domain vanished (a transient domain that stopped)."""
        try:
            return tuple(self.call(dom.state))
        except LibvirtError as err:
            if error_code(err) == ERR_NO_DOMAIN:
                return (SHUTOFF, 0)
            raise

    def gone(self, dom):
        """True when the domain no longer runs here (vanished or shut off)."""
        st = self.state(dom)[0]
        return st in (SHUTOFF, NOSTATE) and not self._active(dom)

    def _active(self, dom):
        try:
            return bool(self.call(dom.isActive))
        except LibvirtError as err:
            if error_code(err) == ERR_NO_DOMAIN:
                return False
            raise

    def is_persistent(self, dom):
        return bool(self.call(dom.isPersistent))

    def xml(self, dom, flags=0):
        return self.call(dom.XMLDesc, flags)

    def create(self, xml):
        """virDomainCreateXML without flags: transient, and never AUTODESTROY (it would die with us)."""
        return self.call(self.conn.createXML, xml, 0)

    def shutdown(self, dom, mode):
        flags = SHUTDOWN_FLAGS[mode]
        if flags:
            return self.call(dom.shutdownFlags, flags)
        return self.call(dom.shutdown)

    def destroy(self, dom):
        try:
            self.call(dom.destroy)
        except LibvirtError as err:
            if error_code(err) not in (ERR_NO_DOMAIN, ERR_OPERATION_INVALID):
                raise



class Background:
    """A libvirt call running in a worker thread while the caller watches it (migration)."""

    def __init__(self, fn, *args):
        self._done = _thread.allocate_lock()
        self._done.acquire()
        self.ok = None
        self.value = None

        def work():
            try:
                self.value = fn(*args)
                self.ok = True
            except BaseException as err:  # handed to the caller through .value
                self.value = err
                self.ok = False
            finally:
                self._done.release()

        _thread.start_new_thread(work, ())

    def wait(self, timeout):
        """True when the call has returned (within ``timeout`` seconds)."""
        if self._done.acquire(True, max(0.0, timeout)):
            self._done.release()
            return True
        return False


def open_remote(uri):
    return libvirt.open(uri)


def job_stats(dom):
    """The current job's statistics dict ({} when there is no job or the call is not supported)."""
    try:
        return dom.jobStats(0) or {}
    except LibvirtError:
        return {}


STAT_DATA_REMAINING = "data_remaining"
STAT_DATA_PROCESSED = "data_processed"
STAT_MEMORY_ITERATION = "memory_iteration"
