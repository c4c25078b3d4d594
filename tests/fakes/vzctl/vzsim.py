"""vzctl contract simulator: every command except the plain `status` fast path (see ./vzctl).

It reproduces the command line, messages and exit codes of legacy vzctl (OpenVZ <= 6) and of the
OpenVZ 7 vzctl as documented in research/anchors-seeds.md section 3, and really starts a process
tree for each container, so crashes, slow stops and stuck inits are real processes.

State layout under $VZCTL_SIM_ROOT (default /var/tmp/pyra-ve/vzsim):
    flavor                     "legacy" or "vz7" (overridden by $VZCTL_SIM_FLAVOR)
    ct/<ctid>/ve.conf          KEY="value" lines; exists + private/ => "exist"
    ct/<ctid>/private/         private area (vz7 default dump: private/dump/Dump)
    names/<name>               contains the ctid (vzctl --name)
    run/<ctid>/pid             "<pid> <starttime>" of the container init (PID-reuse guard)
    run/<ctid>/mounted         present while mounted
    run/<ctid>/booted          written by the init when boot is done (start --wait waits for it)
    run/<ctid>/counter         workload counter, +1 every 0.2 s; carried over by chkpnt/restore
    run/<ctid>/paused          vz7 "paused" (init tree SIGSTOPped)
    run/<ctid>/console         init stdout/stderr
    lock/<ctid>.lck            flock held by the vzctl that works on a container (others get 9)
    dump/Dump.<ctid>           legacy default dump file

ve.conf keys the simulator understands (besides NAME): STOP_TIMEOUT (s, default 120, as vzctl),
BOOT_DELAY (s before the init says it booted), HALT_DELAY (s the init takes to halt),
IGNORE_HALT=yes (init ignores the halt request: vzctl stop kills it after STOP_TIMEOUT),
DISABLED=yes (start gives 105), SIM_FAIL=start|chkpnt|restore|stop (fault injection),
SIM_LOCK_DELAY (s to sleep while holding the lock, for lock-contention tests).
If $VZCTL_SIM_LOG is set, every invocation appends its argv to that file (status too).

Simulator-only commands (double underscore): __pause CTID, __crash CTID, __pid CTID.
"""

import fcntl
import os
import signal
import sys
import time

ROOT = os.environ.get("VZCTL_SIM_ROOT") or "/var/tmp/pyra-ve/vzsim"

# vzerror.h
VZ_SYSTEM_ERROR = 3
VZ_INVALID_PARAMETER_SYNTAX = 2
VZ_LOCKED = 9
VZ_NOCONFIG = 14
VZ_CHKPNT_ERROR = 16
VZ_RESTORE_ERROR = 17
VZ_VE_NOTRUN = 31
VZ_VE_RUNNING = 32
VZ_STOP_ERROR = 33
VZ_VE_PRIVATE_NOTEXIST = 43
VZ_START_DISABLED = 105
VZ_WAIT_FAILED = 133

INIT_SCRIPT = r"""
run=$1; i=$2
halt() {
    [ "${HALT_DELAY:-0}" != 0 ] && { sleep "$HALT_DELAY" & wait $!; }
    [ -n "$daemon" ] && kill "$daemon" 2>/dev/null
    exit 0
}
if [ "$IGNORE_HALT" = yes ]; then trap '' TERM; else trap halt TERM; fi
sleep 100000 & daemon=$!
if [ "${BOOT_DELAY:-0}" != 0 ]; then sleep "$BOOT_DELAY" & wait $!; fi
: > "$run/booted"
while :; do
    i=$((i+1)); echo "$i" > "$run/counter.new"; mv -f "$run/counter.new" "$run/counter"
    sleep 0.2 & wait $!
done
"""


def flavor():
    f = os.environ.get("VZCTL_SIM_FLAVOR")
    if not f:
        try:
            with open(os.path.join(ROOT, "flavor")) as fh:
                f = fh.read().strip()
        except OSError:
            f = ""
    return f or "legacy"


def say(msg):
    if not QUIET:
        print(msg, flush=True)


def err(msg):
    print(msg, file=sys.stderr, flush=True)


QUIET = False


def read_conf(ctid):
    conf = {}
    try:
        with open(os.path.join(ROOT, "ct", ctid, "ve.conf")) as fh:
            for line in fh:
                line = line.strip()
                if not line or line.startswith("#") or "=" not in line:
                    continue
                k, v = line.split("=", 1)
                conf[k.strip()] = v.strip().strip('"')
    except OSError:
        pass
    return conf


def write_conf(ctid, conf):
    path = os.path.join(ROOT, "ct", ctid, "ve.conf")
    with open(path + ".new", "w") as fh:
        for k, v in conf.items():
            fh.write('%s="%s"\n' % (k, v))
    os.replace(path + ".new", path)


def resolve(arg):
    """CTID or name -> ctid; exits 2 on a malformed or unknown name (vzctl: 'Bad container ID')."""
    if not arg or "/" in arg or arg.startswith("."):
        err("Bad container ID %s" % arg)
        sys.exit(VZ_INVALID_PARAMETER_SYNTAX)
    if os.path.isdir(os.path.join(ROOT, "ct", arg)):
        return arg
    try:
        with open(os.path.join(ROOT, "names", arg)) as fh:
            return fh.read().strip()
    except OSError:
        pass
    if arg.isdigit():
        return arg
    if flavor() == "vz7" and all(c in "0123456789abcdefABCDEF-" for c in arg):
        return arg
    err("Bad container ID %s" % arg)
    sys.exit(VZ_INVALID_PARAMETER_SYNTAX)


def rundir(ctid):
    return os.path.join(ROOT, "run", ctid)


def default_dump(ctid):
    if flavor() == "vz7":
        return os.path.join(ROOT, "ct", ctid, "private", "dump", "Dump")
    return os.path.join(ROOT, "dump", "Dump." + ctid)


def exists(ctid):
    d = os.path.join(ROOT, "ct", ctid)
    return os.path.isfile(os.path.join(d, "ve.conf")) and os.path.isdir(os.path.join(d, "private"))


def proc_start(pid):
    try:
        with open("/proc/%d/stat" % pid) as fh:
            line = fh.read()
    except OSError:
        return None, None
    rest = line.rsplit(") ", 1)[1].split()
    return rest[0], rest[19]


def init_pid(ctid):
    """PID of the running container init, or None (gone, zombie, or PID reused)."""
    try:
        with open(os.path.join(rundir(ctid), "pid")) as fh:
            pid_s, start = fh.read().split()
        pid = int(pid_s)
    except (OSError, ValueError):
        return None
    state, st = proc_start(pid)
    if st is None or st != start or state in ("Z", "X"):
        return None
    return pid


def lock(ctid):
    os.makedirs(os.path.join(ROOT, "lock"), exist_ok=True)
    fd = os.open(os.path.join(ROOT, "lock", ctid + ".lck"), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        err("Container already locked")
        sys.exit(VZ_LOCKED)
    os.ftruncate(fd, 0)
    os.write(fd, b"%d\n" % os.getpid())
    delay = float(read_conf(ctid).get("SIM_LOCK_DELAY", "0") or 0)
    if delay:
        time.sleep(delay)
    return fd


def touch(path):
    with open(path, "a"):
        pass


def rm(path):
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def reap_leftovers(ctid):
    """Kill what is left of a dead container's process group (its 'daemon' child)."""
    try:
        with open(os.path.join(rundir(ctid), "pid")) as fh:
            pid = int(fh.read().split()[0])
    except (OSError, ValueError, IndexError):
        return
    if init_pid(ctid) is None:
        try:
            os.killpg(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass


def spawn_init(ctid, conf, counter):
    rd = rundir(ctid)
    os.makedirs(rd, exist_ok=True)
    rm(os.path.join(rd, "booted"))
    rm(os.path.join(rd, "paused"))
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "PYRA_VE_SIM_CT": ctid}
    for k in ("BOOT_DELAY", "HALT_DELAY", "IGNORE_HALT"):
        if conf.get(k):
            env[k] = conf[k]
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: becomes the container init in its own session
        try:
            os.close(r)
            os.setsid()
            fd = os.open(os.path.join(rd, "console"), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
            null = os.open("/dev/null", os.O_RDONLY)
            os.dup2(null, 0)
            os.dup2(fd, 1)
            os.dup2(fd, 2)
            os.write(w, b"ok")
            os.close(w)
            os.execve("/bin/sh", ["sh", "-c", INIT_SCRIPT, "vzsim-init-" + ctid, rd, str(counter)], env)
        finally:
            os._exit(127)
    os.close(w)
    os.read(r, 2)
    os.close(r)
    # wait until the child has exec'd sh (so the start time we record is the init's)
    for _ in range(200):
        try:
            with open("/proc/%d/cmdline" % pid, "rb") as fh:
                if fh.read().startswith(b"sh\0"):
                    break
        except OSError:
            break
        time.sleep(0.005)
    _, st = proc_start(pid)
    with open(os.path.join(rd, "pid.new"), "w") as fh:
        fh.write("%d %s\n" % (pid, st))
    os.replace(os.path.join(rd, "pid.new"), os.path.join(rd, "pid"))
    return pid


def kill_tree(pid, sig):
    try:
        os.killpg(pid, sig)
    except ProcessLookupError:
        pass


def wait_gone(ctid, pid, timeout):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if init_pid(ctid) != pid:
            return True
        try:  # reap it if it is our child (it is not, normally)
            os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            pass
        time.sleep(0.02)
    return init_pid(ctid) != pid


def parse_opts(args, flags=(), valued=()):
    opts, rest = {}, []
    i = 0
    while i < len(args):
        a = args[i]
        if a in flags:
            opts[a] = True
        elif a in valued:
            if i + 1 >= len(args):
                err("Missing value for %s" % a)
                sys.exit(VZ_INVALID_PARAMETER_SYNTAX)
            opts[a] = args[i + 1]
            i += 1
        elif a.startswith("--") and "=" in a and a.split("=", 1)[0] in valued:
            k, v = a.split("=", 1)
            opts[k] = v
        else:
            rest.append(a)
        i += 1
    if rest:
        err("Invalid option: %s" % " ".join(rest))
        sys.exit(VZ_INVALID_PARAMETER_SYNTAX)
    return opts


# ---------------------------------------------------------------------------------------- actions

def cmd_status(ctid, args):
    parse_opts(args)
    ex = "exist" if exists(ctid) else "deleted"
    mnt = "mounted" if os.path.exists(os.path.join(rundir(ctid), "mounted")) else "unmounted"
    fl = flavor()
    if init_pid(ctid):
        st = "paused" if fl == "vz7" and os.path.exists(os.path.join(rundir(ctid), "paused")) else "running"
    elif os.path.exists(default_dump(ctid)):
        st = "suspended" if fl == "vz7" else "down suspended"
    else:
        st = "down"
    print("%s %s %s %s %s" % ("VEID" if fl == "vz7" else "CTID", ctid, ex, mnt, st))
    return 0


def check_exists(ctid):
    d = os.path.join(ROOT, "ct", ctid)
    if not os.path.isfile(os.path.join(d, "ve.conf")):
        err("Container config file does not exist")
        return VZ_NOCONFIG
    if not os.path.isdir(os.path.join(d, "private")):
        err("Container private area %s does not exist" % os.path.join(d, "private"))
        return VZ_VE_PRIVATE_NOTEXIST
    return 0


def do_mount(ctid):
    if not os.path.exists(os.path.join(rundir(ctid), "mounted")):
        os.makedirs(rundir(ctid), exist_ok=True)
        touch(os.path.join(rundir(ctid), "mounted"))
        say("Container is mounted")


def do_umount(ctid):
    if os.path.exists(os.path.join(rundir(ctid), "mounted")):
        rm(os.path.join(rundir(ctid), "mounted"))
        say("Container is unmounted")


def wait_booted(ctid, pid):
    booted = os.path.join(rundir(ctid), "booted")
    while True:
        if os.path.exists(booted):
            say("Container is started")  # --wait: init reached its runlevel
            return 0
        if init_pid(ctid) != pid:
            err("Container start failed: init exited while waiting")
            return VZ_WAIT_FAILED
        time.sleep(0.02)


def cmd_start(ctid, args):
    opts = parse_opts(args, flags=("--wait", "--force", "--skip-fsck", "--skip-remount"))
    rc = check_exists(ctid)
    if rc:
        return rc
    lock(ctid)  # held until the process exits
    conf = read_conf(ctid)
    if init_pid(ctid):
        err("Container is already running")
        return VZ_VE_RUNNING
    if conf.get("DISABLED") == "yes" and not opts.get("--force"):
        err("Container start disabled")
        return VZ_START_DISABLED
    reap_leftovers(ctid)
    say("Starting container ...")
    do_mount(ctid)
    if conf.get("SIM_FAIL") == "start":
        err("Unable to start init, probably incorrect template")
        do_umount(ctid)
        return VZ_SYSTEM_ERROR
    pid = spawn_init(ctid, conf, 0)
    say("Container start in progress...")
    if opts.get("--wait"):
        return wait_booted(ctid, pid)
    return 0


def stop_running(ctid, pid, conf, fast):
    if not fast:
        say("Stopping container ...")
        kill_tree(pid, signal.SIGCONT)
        try:
            os.kill(pid, signal.SIGTERM)  # "halt" inside the container
        except ProcessLookupError:
            pass
        if wait_gone(ctid, pid, float(conf.get("STOP_TIMEOUT", "120") or 120)):
            kill_tree(pid, signal.SIGKILL)  # whatever the halt left behind
            say("Container was stopped")
            return 0
        say("Killing container ...")
    else:
        say("Killing container ...")
    kill_tree(pid, signal.SIGKILL)
    kill_tree(pid, signal.SIGCONT)
    if not wait_gone(ctid, pid, 5):
        err("Unable to stop container")
        return VZ_STOP_ERROR
    say("Container was stopped")
    return 0


def cmd_stop(ctid, args):
    opts = parse_opts(args, flags=("--fast", "--skip-umount"))
    lock(ctid)  # held until the process exits
    conf = read_conf(ctid)
    pid = init_pid(ctid)
    if not pid:
        err("Unable to stop: container is not running")
        reap_leftovers(ctid)
        return 0
    if conf.get("SIM_FAIL") == "stop":
        err("Unable to stop container: operation timed out")
        return VZ_STOP_ERROR
    rc = stop_running(ctid, pid, conf, opts.get("--fast"))
    if rc == 0 and not opts.get("--skip-umount"):
        do_umount(ctid)
    rm(os.path.join(rundir(ctid), "paused"))
    return rc


def cmd_restart(ctid, args):
    opts = parse_opts(args, flags=("--wait", "--force", "--skip-fsck", "--fast"))
    rc = cmd_stop(ctid, ["--fast"] if opts.get("--fast") else [])
    if rc:
        return rc
    return cmd_start(ctid, ["--wait"] if opts.get("--wait") else [])


def dump_path(ctid, opts):
    return opts.get("--dumpfile") or default_dump(ctid)


def cmd_chkpnt(ctid, args):
    opts = parse_opts(args, flags=("--kill", "--suspend", "--dump", "--skip-umount"),
                      valued=("--dumpfile", "--dumpdir", "--context"))
    lock(ctid)  # held until the process exits
    conf = read_conf(ctid)
    pid = init_pid(ctid)
    if not pid:
        err("Unable to setup checkpoint: container is not running")
        return VZ_VE_NOTRUN
    path = dump_path(ctid, opts)
    say("Setting up checkpoint...")
    say("\tsuspend...")
    kill_tree(pid, signal.SIGSTOP)
    if conf.get("SIM_FAIL") == "chkpnt":
        kill_tree(pid, signal.SIGCONT)
        err("Checkpointing failed")
        return VZ_CHKPNT_ERROR
    say("\tdump...")
    try:
        with open(os.path.join(rundir(ctid), "counter")) as fh:
            counter = int(fh.read().strip() or 0)
    except (OSError, ValueError):
        counter = 0
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True) if flavor() == "vz7" else None
        with open(path + ".part", "w") as fh:
            fh.write("VZSIMDUMP ctid=%s counter=%d\n" % (ctid, counter))
        os.replace(path + ".part", path)
    except OSError as e:
        kill_tree(pid, signal.SIGCONT)
        err("Error: Unable to create dump file %s: %s" % (path, e.strerror))
        err("Checkpointing failed")
        return VZ_CHKPNT_ERROR
    say("\tkill...")
    kill_tree(pid, signal.SIGKILL)
    kill_tree(pid, signal.SIGCONT)
    wait_gone(ctid, pid, 5)
    if not opts.get("--skip-umount"):
        do_umount(ctid)
    say("Checkpointing completed successfully")
    return 0


def cmd_restore(ctid, args):
    opts = parse_opts(args, flags=("--undump", "--resume", "--skip-fsck"),
                      valued=("--dumpfile", "--dumpdir"))
    rc = check_exists(ctid)
    if rc:
        return rc
    lock(ctid)  # held until the process exits
    conf = read_conf(ctid)
    pid = init_pid(ctid)
    if pid and os.path.exists(os.path.join(rundir(ctid), "paused")):
        kill_tree(pid, signal.SIGCONT)  # vz7: resume a paused (CPT-suspended) container
        rm(os.path.join(rundir(ctid), "paused"))
        say("Resuming...")
        return 0
    if pid:
        err("Unable to restore: container is already running")
        return VZ_VE_RUNNING
    path = dump_path(ctid, opts)
    say("Restoring container ...")
    try:
        with open(path) as fh:
            head = fh.read().split()
    except OSError as e:
        err("Error: Unable to open dump file %s: %s" % (path, e.strerror))
        err("Restoring failed")
        return VZ_RESTORE_ERROR
    fields = dict(x.split("=", 1) for x in head[1:] if "=" in x)
    if not head or head[0] != "VZSIMDUMP" or "counter" not in fields:
        err("Error: %s is not a dump file" % path)
        err("Restoring failed")
        return VZ_RESTORE_ERROR
    reap_leftovers(ctid)
    do_mount(ctid)
    say("\tundump...")
    if conf.get("SIM_FAIL") == "restore":
        do_umount(ctid)
        err("Error: undump failed: Invalid argument")
        err("Restoring failed")
        return VZ_RESTORE_ERROR
    say("\tresume...")
    spawn_init(ctid, dict(conf, BOOT_DELAY="0"), int(fields["counter"]))
    say("Container start in progress...")
    say("Restoring completed successfully")
    return 0


def cmd_mount(ctid, args):
    parse_opts(args)
    rc = check_exists(ctid)
    if rc:
        return rc
    lock(ctid)  # held until the process exits
    if os.path.exists(os.path.join(rundir(ctid), "mounted")):
        err("Container is already mounted")
        return 41
    do_mount(ctid)
    return 0


def cmd_umount(ctid, args):
    parse_opts(args)
    lock(ctid)  # held until the process exits
    if init_pid(ctid):
        err("Container is running -- stop it first")
        return VZ_VE_RUNNING
    if not os.path.exists(os.path.join(rundir(ctid), "mounted")):
        err("Container is not mounted")
        return 40
    do_umount(ctid)
    return 0


def cmd_create(ctid, args):
    opts = parse_opts(args, valued=("--ostemplate", "--config", "--name", "--private", "--root", "--layout"))
    d = os.path.join(ROOT, "ct", ctid)
    if exists(ctid):
        err("Container private area already exists")
        return 44
    os.makedirs(os.path.join(d, "private"), exist_ok=True)
    conf = {"OSTEMPLATE": opts.get("--ostemplate", "busybox")}
    if opts.get("--name"):
        conf["NAME"] = opts["--name"]
        os.makedirs(os.path.join(ROOT, "names"), exist_ok=True)
        with open(os.path.join(ROOT, "names", opts["--name"]), "w") as fh:
            fh.write(ctid + "\n")
    write_conf(ctid, conf)
    say("Creating container private area (%s)" % conf["OSTEMPLATE"])
    say("Container private area was created")
    return 0


def cmd_destroy(ctid, args):
    parse_opts(args)
    lock(ctid)  # held until the process exits
    if init_pid(ctid):
        err("Container is currently running. Stop it first.")
        return VZ_VE_RUNNING
    conf = read_conf(ctid)
    if conf.get("NAME"):
        rm(os.path.join(ROOT, "names", conf["NAME"]))
    d = os.path.join(ROOT, "ct", ctid)
    import shutil
    shutil.rmtree(d, ignore_errors=True)
    shutil.rmtree(rundir(ctid), ignore_errors=True)
    say("Container private area was destroyed")
    return 0


SIM_KEYS = {"--stop-timeout": "STOP_TIMEOUT", "--sim-boot-delay": "BOOT_DELAY", "--sim-halt-delay": "HALT_DELAY",
            "--sim-ignore-halt": "IGNORE_HALT", "--disabled": "DISABLED", "--sim-fail": "SIM_FAIL",
            "--sim-lock-delay": "SIM_LOCK_DELAY", "--name": "NAME"}


def cmd_set(ctid, args):
    opts = parse_opts(args, flags=("--save",), valued=tuple(SIM_KEYS))
    rc = check_exists(ctid)
    if rc:
        return rc
    lock(ctid)  # held until the process exits
    conf = read_conf(ctid)
    for opt, key in SIM_KEYS.items():
        if opt in opts:
            if key == "NAME":
                if conf.get("NAME"):
                    rm(os.path.join(ROOT, "names", conf["NAME"]))
                os.makedirs(os.path.join(ROOT, "names"), exist_ok=True)
                with open(os.path.join(ROOT, "names", opts[opt]), "w") as fh:
                    fh.write(ctid + "\n")
            if opts[opt] == "":
                conf.pop(key, None)
            else:
                conf[key] = opts[opt]
    write_conf(ctid, conf)
    say("Saved parameters for Container %s" % ctid)
    return 0


def sim_pause(ctid, args):
    pid = init_pid(ctid)
    if not pid:
        err("not running")
        return VZ_VE_NOTRUN
    kill_tree(pid, signal.SIGSTOP)
    touch(os.path.join(rundir(ctid), "paused"))
    return 0


def sim_crash(ctid, args):
    pid = init_pid(ctid)
    if not pid:
        err("not running")
        return VZ_VE_NOTRUN
    kill_tree(pid, signal.SIGKILL)
    kill_tree(pid, signal.SIGCONT)
    wait_gone(ctid, pid, 5)
    return 0


def sim_pid(ctid, args):
    pid = init_pid(ctid)
    if not pid:
        return 1
    print(pid)
    return 0


COMMANDS = {
    "status": cmd_status, "start": cmd_start, "stop": cmd_stop, "restart": cmd_restart,
    "chkpnt": cmd_chkpnt, "suspend": cmd_chkpnt, "restore": cmd_restore, "resume": cmd_restore,
    "mount": cmd_mount, "umount": cmd_umount, "create": cmd_create, "destroy": cmd_destroy,
    "set": cmd_set, "__pause": sim_pause, "__crash": sim_crash, "__pid": sim_pid,
}

USAGE = """Usage: vzctl [options] <command> <ctid> [parameters]
vzctl create <ctid> [--ostemplate <name>] [--name <name>]
vzctl start <ctid> [--wait] [--force] [--skip-fsck] [--skip-remount]
vzctl stop <ctid> [--fast] [--skip-umount]
vzctl restart|destroy|mount|umount|status <ctid>
vzctl chkpnt|suspend <ctid> [--dumpfile <name>]
vzctl restore|resume <ctid> [--dumpfile <name>]
vzctl set <ctid> [--stop-timeout N] [--name N] [--save]
(simulator: tests/fakes/vzctl)"""


def main(argv):
    global QUIET
    log = os.environ.get("VZCTL_SIM_LOG")
    if log:
        with open(log, "a") as fh:
            fh.write(" ".join(argv) + "\n")
    while argv and argv[0] in ("--quiet", "--verbose"):
        QUIET = QUIET or argv[0] == "--quiet"
        argv = argv[1:]
    if not argv or argv[0] in ("--help", "help"):
        err(USAGE)
        return VZ_INVALID_PARAMETER_SYNTAX if not argv else 0
    cmd = argv[0]
    if cmd not in COMMANDS:
        err("Invalid action: %s" % cmd)
        err(USAGE)
        return VZ_INVALID_PARAMETER_SYNTAX
    if len(argv) < 2:
        err("CT ID missing")
        return VZ_INVALID_PARAMETER_SYNTAX
    for sub in ("ct", "run", "lock", "dump", "names"):
        os.makedirs(os.path.join(ROOT, sub), exist_ok=True)
    ctid = resolve(argv[1])
    return COMMANDS[cmd](ctid, argv[2:])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
