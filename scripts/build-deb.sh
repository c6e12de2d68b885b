#!/bin/bash
# build-deb.sh - build the bpfwrap Debian package from debian/ (make deb):
# install what the build needs, copy the tree to build/deb/bpfwrap-VERSION,
# dpkg-buildpackage there, then lintian. The package lands in build/deb/.
#
# Usage: scripts/build-deb.sh   (from anywhere; as root on a fresh Debian 12
# it installs the Build-Depends of debian/control, dpkg-dev and lintian)
# Exit status: 0 built and lintian-clean (errors and warnings; overrides in
# debian/bpfwrap.lintian-overrides say why), 1 otherwise. lintian's report is
# also written to build/deb/lintian.txt.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=build/deb

# build_deps - the package names of debian/control's Build-Depends, plus the tools
build_deps() {
	awk '/^Build-Depends:/ { on = 1; sub(/^Build-Depends:/, ""); print; next }
	     on && /^[^ \t]/ { on = 0 } on { print }' debian/control | tr ',' '\n' |
		sed 's/[[(<].*//; s/[[:space:]]//g; s/^debhelper-compat$/debhelper/' | grep -v '^$'
	printf '%s\n' dpkg-dev build-essential make lintian
}

missing=""
for p in $(build_deps); do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
	if [ "$(id -u)" != 0 ]; then
		echo "build-deb: missing packages:$missing (run as root, or install them)" >&2
		exit 1
	fi
	echo "build-deb: installing$missing"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi

version=$(dpkg-parsechangelog -S Version)
src=$OUT/bpfwrap-$version
rm -rf "$OUT"
mkdir -p "$src"
# The tree as it is (also uncommitted edits), without builds and VCS data.
tar -cf - --exclude=./build --exclude=./.git --exclude=./tests/fuzz/corpus . | tar -xf - -C "$src"
echo "build-deb: dpkg-buildpackage in $src"
(cd "$src" && dpkg-buildpackage -b -us -uc -Jauto >../dpkg-buildpackage.log 2>&1) || {
	tail -40 "$OUT/dpkg-buildpackage.log" >&2
	echo "build-deb: dpkg-buildpackage failed (log: $OUT/dpkg-buildpackage.log)" >&2
	exit 1
}
rm -rf "$src"
deb=$(ls "$OUT"/bpfwrap_"${version}"_*.deb)
changes=$(ls "$OUT"/bpfwrap_"${version}"_*.changes)
echo "build-deb: $deb"
rc=0
lintian --fail-on error,warning --display-info --tag-display-limit 0 "$changes" >"$OUT/lintian.txt" 2>&1 || rc=$?
if [ -s "$OUT/lintian.txt" ]; then
	sed 's/^/  lintian: /' "$OUT/lintian.txt"
fi
if [ "$rc" -ne 0 ]; then
	echo "build-deb: lintian found errors or warnings (exit $rc)" >&2
	exit 1
fi
echo "build-deb: lintian clean (errors, warnings)"
