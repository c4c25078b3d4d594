"""A stand-in for CRIU >= 4.1 and lxc-checkpoint, for the LXC checkpoint-migration flow of ManageVE.

This machine's CRIU (Debian 12, 3.17) cannot dump on kernels >= 6.13 and no newer CRIU is packaged, so the
agent's checkpoint path (dump directory, restore on the other node, removal of the images, a failed restore
and Pacemaker's recovery) is exercised against this double, which keeps lxc-checkpoint's command line and
exit codes and really stops/starts the LXC container:
- ``criu --version`` prints ``Version: 4.1``;
- ``lxc-checkpoint -s -D DIR -n NAME [-P PATH] [-o LOG -l LEVEL]`` writes ``DIR/inventory.img`` then
  ``lxc-stop -k`` (the container stops, as with -s); rc 1 when it is not running;
- ``lxc-checkpoint -r -D DIR ...``: rc 1 when the container runs or DIR has no images (error in LOG), else
  ``lxc-start -d``. Like the real one it leaves a process behind that holds the caller's stdout/stderr
  (the real restore daemonizes an lxc monitor): an agent that captured them would hang.
  ``DIR/FAIL`` makes the restore fail (rc 1, "criu: restore failed") for recovery tests.
Memory state is not carried (it is a restart in disguise); the real CRIU path is in the lab report.
"""
from pathlib import Path

FAKE_DIR = Path("/var/tmp/pyra-ve/fakecriu/bin")

CRIU = """#!/bin/sh
case "$1" in --version|-V) echo "Version: 4.1"; exit 0 ;; check) echo "Looks good."; exit 0 ;; esac
echo "pyra-ve fake criu: only --version and check" >&2; exit 1
"""

LXC_CHECKPOINT = r"""#!/bin/sh
# pyra-ve fake lxc-checkpoint (see lab/rigs/lxc_ve_fakecriu.py)
mode= dir= name= path= log=/dev/null
while [ $# -gt 0 ]; do
    case $1 in
        -s|--stop) mode=dump ;;
        -r|--restore) mode=restore ;;
        -D|--checkpoint-dir) dir=$2; shift ;;
        -n|--name) name=$2; shift ;;
        -P|--lxcpath) path=$2; shift ;;
        -o|--logfile) log=$2; shift ;;
        -l|--logpriority) shift ;;
        *) echo "lxc-checkpoint: unknown option $1" >&2; exit 1 ;;
    esac
    shift
done
[ -n "$name" ] && [ -n "$dir" ] && [ -n "$mode" ] || { echo "lxc-checkpoint: missing -n/-D/-s|-r" >&2; exit 1; }
P=${path:+-P $path}
echo "$mode $name $dir" >> /var/tmp/pyra-ve/fakecriu/calls.log
state=$(lxc-info $P -n "$name" -sH 2>/dev/null)
if [ "$mode" = dump ]; then
    [ "$state" = RUNNING ] || { echo "lxc-checkpoint: $name is not running" >> "$log"; exit 1; }
    mkdir -p "$dir" && echo "fake-criu images of $name" > "$dir/inventory.img" || exit 1
    lxc-stop $P -n "$name" -k
    exit $?
fi
[ "$state" = RUNNING ] && { echo "lxc-checkpoint: $name is running" >> "$log"; exit 1; }
[ -f "$dir/inventory.img" ] || { echo "criu: no images in $dir" >> "$log"; exit 1; }
[ -e "$dir/FAIL" ] && { echo "criu: restore failed (injected)" >> "$log"; exit 1; }
lxc-start $P -n "$name" -d || exit 1
# like the daemonized lxc monitor of a real restore: keep the caller's stdout/stderr open for a while
sleep 8 &
exit 0
"""


CALLS = FAKE_DIR.parent / "calls.log"


def calls():
    try:
        return CALLS.read_text().splitlines()
    except FileNotFoundError:
        return []


def install():
    """Write the fakes; returns the directory to put first on PATH."""
    FAKE_DIR.mkdir(parents=True, exist_ok=True)
    for name, text in (("criu", CRIU), ("lxc-checkpoint", LXC_CHECKPOINT)):
        path = FAKE_DIR / name
        path.write_text(text)
        path.chmod(0o755)
    return str(FAKE_DIR)
