#!/bin/sh
# `make deb`: the Debian package, build/deb/pyra_<version>_all.deb, built with debhelper (debian/) from a copy
# of the tree in build/deb/src, so the tree gets nothing outside build/. The copy's debian/changelog is written
# here from lib/pyra/__init__.py's __version__, pyra's one version number. Then lintian on the .deb: an error
# fails the build, warnings are shown. Needs only Debian packages (tools/deps/base.txt); runs as root or not.
set -eu
cd "$(dirname "$0")/.."
version=$(sed -n 's/^__version__ = "\([0-9][0-9A-Za-z.+~]*\)"$/\1/p' lib/pyra/__init__.py)
[ -n "$version" ] || { echo "deb: no __version__ = \"X.Y.Z\" in lib/pyra/__init__.py" >&2; exit 1; }
maintainer=$(sed -n 's/^Maintainer: //p' debian/control)
out=build/deb
src=$out/src

rm -rf "$out"
mkdir -p "$src"
# The tree as it is, uncommitted changes included, without what the VCS, builds and tests leave.
tar -cf - --exclude=./.git --exclude=./build --exclude=./.pytest_cache --exclude=./.hypothesis --exclude=./.plan \
    --exclude=__pycache__ --exclude='*.pyc' . | tar -xf - -C "$src"

if commit=$(git rev-parse --short=12 HEAD 2>/dev/null); then
    date=$(git log -1 --format=%cD HEAD)
    origin="git commit $commit"
    git diff --quiet HEAD 2>/dev/null || origin="$origin, with uncommitted changes"
else
    date=$(date -R)
    origin="a tree without git history"
fi
cat > "$src/debian/changelog" <<CHANGELOG
pyra ($version) unstable; urgency=medium

  * pyra $version, built from $origin.

 -- $maintainer  $date
CHANGELOG

(cd "$src" && dpkg-buildpackage --build=binary --no-sign </dev/null)
deb=$out/pyra_${version}_all.deb
[ -f "$deb" ] || { echo "deb: dpkg-buildpackage made no $deb" >&2; exit 1; }
lintian --fail-on error --tag-display-limit 0 "$deb" </dev/null
echo "deb: $deb"
