#!/bin/sh
# pyra soak workload (busybox sh): append sequence-numbered, checksummed records, fsync, and only then
# acknowledge each one. Runs in the soak's TCG guests (/bin/soak-writer in the test guest's initramfs, started
# by td_writer on the kernel command line) and LXC containers (respawned by busybox init).
#
#   soak-writer TARGET ACK
# TARGET  a block device or file holding the records ("none": acknowledge a counter only, for a diskless guest)
# ACK     where acknowledgements go (a serial port or a file the host collector reads), appended one per line:
#           "boot <id> resume <last>"  once at start: <last> = the last record found on TARGET
#           "ack <seq> <id>"           after record <seq> is on TARGET and fsync'ed
# Record <seq> is the 64 bytes at offset 64*<seq> of TARGET (offset 0 unused):
#   "R <seq, 10 digits> <id, 36 chars> <first 12 hex of md5("<seq> <id>")> \n"
# A restart finds its last record by bisection (records are written in order, never with a hole: a failed
# write is retried with the same number) and continues after it, so an acknowledged record is never
# overwritten. lab/soak/records.py reads and checks all of this on the host.
T=$1
A=$2
ID=$(cat /proc/sys/kernel/random/uuid)
PAUSE=${SOAK_PAUSE:-0.5}

valid() {
    [ "$(dd if="$T" bs=64 skip="$1" count=1 2>/dev/null | cut -c1-13)" = "R $(printf %010d "$1") " ]
}

last=0
if [ "$T" != none ]; then
    lo=0
    hi=1
    while valid $hi; do lo=$hi; hi=$((hi * 2)); done
    while [ $((hi - lo)) -gt 1 ]; do
        mid=$(((lo + hi) / 2))
        if valid $mid; then lo=$mid; else hi=$mid; fi
    done
    last=$lo
fi
echo "boot $ID resume $last" >>"$A"
seq=$((last + 1))
while :; do
    if [ "$T" != none ]; then
        sum=$(printf '%s %s' "$seq" "$ID" | md5sum | cut -c1-12)
        if ! printf 'R %010d %s %s \n' "$seq" "$ID" "$sum" |
                dd of="$T" bs=64 seek="$seq" conv=notrunc,fsync 2>/dev/null; then
            sleep 1
            continue
        fi
    fi
    echo "ack $seq $ID" >>"$A"
    seq=$((seq + 1))
    sleep "$PAUSE"
done
