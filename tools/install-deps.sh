#!/bin/sh
# Install what pyra's tests, demo and benchmarks need on a fresh Debian 12, as root.
# The package lists are tools/deps/*.txt (one package per line, '#' comments); each agent owns its list.
# Idempotent and quiet when everything is already installed. Called by `make deps`.
set -eu
here=$(dirname "$0")
pkgs=$(cat "$here"/deps/*.txt | sed 's/#.*//' | tr -s ' \t' '\n' | sort -u)
missing=""
for p in $pkgs; do
    dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q '^install ok installed$' || missing="$missing $p"
done
if [ -n "$missing" ]; then
    echo "install-deps: installing:$missing"
    export DEBIAN_FRONTEND=noninteractive
    apt-get -o DPkg::Lock::Timeout=600 update -qq
    # shellcheck disable=SC2086
    apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends $missing >/dev/null
fi
# Debian's libvirtd refuses to start without this account (shared/lab/libvirt/REPORT.md §1).
getent group kvm >/dev/null || groupadd -r kvm
getent group libvirt-qemu >/dev/null || groupadd -r libvirt-qemu
getent passwd libvirt-qemu >/dev/null || useradd -r -g libvirt-qemu -G kvm -d /var/lib/libvirt -s /usr/sbin/nologin libvirt-qemu
echo "install-deps: ok"
