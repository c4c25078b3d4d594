#!/bin/sh
# `make demo` / `make demo-down`: a 3-node Pacemaker + Corosync cluster in namespaces on this machine,
# running pyra's agents (lab/demo.py tells the story, lab/pyralab.py is the cluster).
# usage: sh tools/demo.sh up | down       (as root, on Debian 12)
set -eu
here=$(cd "$(dirname "$0")/.." && pwd)
PY=/usr/bin/python3
[ "$(id -u)" = 0 ] || { echo "demo: run as root (it creates namespaces, mounts and daemons)" >&2; exit 1; }
case "${1:-up}" in
up)
    sh "$here/tools/install-deps.sh"
    make -s -C "$here" install PY="$PY"
    exec "$PY" "$here/lab/demo.py"
    ;;
down)
    exec "$PY" "$here/lab/pyralab.py" down
    ;;
*)
    echo "usage: sh tools/demo.sh up|down" >&2
    exit 2
    ;;
esac
