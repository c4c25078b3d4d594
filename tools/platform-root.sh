#!/bin/sh
# A Debian release's root on this machine, to run pyra's suite on the other supported platform:
# CI runs on one release and `make test` also runs the whole suite inside the other one's root.
#
#   tools/platform-root.sh build RELEASE          build (or reuse) /var/cache/pyra-test/roots/RELEASE
#   tools/platform-root.sh run RELEASE CMD...     run CMD as root inside it, in /srv/pyra (this tree's copy)
#   tools/platform-root.sh suite RELEASE          build, then run the whole suite (make test-here) inside it,
#                                                 the cluster scenarios on the packaged install
#   tools/platform-root.sh other                  the supported release this machine is not (bookworm|trixie)
#
# The root is cached between runs on the same machine and rebuilt when the package lists
# (tools/deps/*.txt) or the way it is built change. `run` makes it a real root, not a chroot: a private mount
# namespace, the root bind-mounted onto itself and pivot_root'ed into, with its own /proc (own PID
# namespace), /run, /tmp, network namespace (and /sys that shows it) and host name; /dev, the cgroups and the
# kernel are the host's. Tools that enter a saved mount namespace (nsenter -m) then land in this root, not in
# the host's; nothing outlives the command, and the suite inside cannot meet another one on the host's
# network. `suite` first builds the test guests' images there (the one step that downloads: a kernel .deb).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
tree=$(cd "$here/.." && pwd)
cache=${PYRA_ROOTS:-/var/cache/pyra-test/roots}
mirror=${PYRA_MIRROR:-http://deb.debian.org/debian}

usage() { echo "usage: $0 build|run|suite RELEASE [CMD...] | other" >&2; exit 2; }
if [ "${1:-}" = other ]; then
    # Test tooling, not the agents: the agents detect what they need at run time.
    case $(. /etc/os-release && echo "$VERSION_CODENAME") in
        bookworm) echo trixie ;;
        trixie) echo bookworm ;;
        *) echo "platform-root: this machine is neither Debian 12 nor 13" >&2; exit 1 ;;
    esac
    exit 0
fi
[ $# -ge 2 ] || usage
verb=$1 release=$2; shift 2
root=$cache/$release

# What the root is built from: the package lists, and this format (bump it when build() changes).
format=1
stamp() { { echo "format $format"; cat "$here"/deps/*.txt; } | sha256sum | cut -d' ' -f1; }

build() {
    want=$(stamp)
    if [ -f "$root/.pyra-root" ] && [ "$(cat "$root/.pyra-root")" = "$want" ]; then
        echo "platform-root: $release root is up to date ($root)"; return 0
    fi
    mkdir -p "$cache"
    tmp=$cache/.$release.building
    rm -rf "$tmp" "$root.old"
    echo "platform-root: debootstrap $release (a few minutes)"
    debootstrap --variant=minbase --include=ca-certificates,make "$release" "$tmp" "$mirror" \
        >"$cache/$release.debootstrap.log" 2>&1 || { tail -20 "$cache/$release.debootstrap.log" >&2; exit 1; }
    # No service starts while packages install: the suite starts what it needs itself.
    printf '#!/bin/sh\nexit 101\n' >"$tmp/usr/sbin/policy-rc.d"; chmod 0755 "$tmp/usr/sbin/policy-rc.d"
    mkdir -p "$tmp/srv/pyra-deps"; cp -r "$here/install-deps.sh" "$here/deps" "$tmp/srv/pyra-deps/"
    echo "platform-root: installing the suite's packages in the $release root"
    unshare --mount --propagation private sh -c '
        mount -t proc proc "$1/proc" && mount --rbind /dev "$1/dev" && mount --rbind /sys "$1/sys" &&
        cp /etc/resolv.conf "$1/etc/resolv.conf" &&
        chroot "$1" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin sh /srv/pyra-deps/install-deps.sh' \
        sh "$tmp" >"$cache/$release.deps.log" 2>&1 || { tail -20 "$cache/$release.deps.log" >&2; exit 1; }
    rm -rf "$tmp/srv/pyra-deps" "$tmp/var/cache/apt/archives/"*.deb
    echo "$want" >"$tmp/.pyra-root"
    [ ! -e "$root" ] || mv "$root" "$root.old"
    mv "$tmp" "$root"; rm -rf "$root.old"
    echo "platform-root: $release root ready ($root)"
}

run() {
    [ -f "$root/.pyra-root" ] || { echo "platform-root: no $release root; run '$0 build $release'" >&2; exit 1; }
    # This tree as it is now (tracked and untracked, not ignored) in /srv/pyra, fresh every run, owned
    # by root and world-readable (tests run tools as nobody).
    rm -rf "$root/srv/pyra"; mkdir -p "$root/srv/pyra"
    (cd "$tree" && git ls-files -co --exclude-standard -z | xargs -0 tar -cf - --no-recursion) | tar -C "$root/srv/pyra" -xf -
    chmod 0755 "$root/srv" "$root/srv/pyra"
    # PYRA_ROOT_NET=host keeps the host's network (for a step that downloads)
    case ${PYRA_ROOT_NET:-private} in host) net="" ;; *) net="--net" ;; esac
    unshare --mount --propagation private --pid --fork --uts $net sh -c '
        root=$1; shift
        mount --bind "$root" "$root"
        mount -t proc proc "$root/proc"
        mount --rbind /dev "$root/dev"
        mount -t sysfs sysfs "$root/sys"
        mount --rbind /sys/fs/cgroup "$root/sys/fs/cgroup"
        ip link set lo up
        mount -t tmpfs -o mode=0755 tmpfs "$root/run"
        mount -t tmpfs -o mode=1777 tmpfs "$root/tmp"
        mkdir -p "$root/run/lock" "$root/.old-root"
        cp /etc/resolv.conf "$root/etc/resolv.conf"
        hostname "pyra-$(basename "$root")"
        cd "$root" && pivot_root . .old-root && umount -l /.old-root && rmdir /.old-root
        cd /srv/pyra
        exec /usr/bin/env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
            HOME=/root LANG=C.UTF-8 TERM="${TERM:-dumb}" PYRA_PLATFORM_ROOT="$(basename "$root")" "$@"' \
        sh "$root" "$@"
}

case $verb in
    build) build ;;
    run) [ $# -ge 1 ] || usage; run "$@" ;;
    suite) build; echo "platform-root: the whole suite inside the $release root"
           # there, the cluster scenarios run on pyra installed from its Debian package (make deb)
           PYRA_ROOT_NET=host run sh -c '/usr/bin/python3 lab/rigs/guest/build.py >/dev/null &&
                                          /usr/bin/python3 lab/rigs/storage_guest/build.py >/dev/null'
           run env PYRA_INSTALL=package make test-here PYTEST_ARGS="${PYTEST_ARGS:-}" ;;
    *) usage ;;
esac
