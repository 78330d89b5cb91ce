#!/bin/sh
# make deb: copies the source and tools/debian (as debian/) into build/deb/zila, writes the
# changelog for VERSION, builds the binary package with dpkg-buildpackage and checks it with
# lintian (an error or a warning fails the build). The .deb lands in build/deb/.
# usage: tools/debian/build.sh VERSION
set -eu
cd "$(dirname "$0")/../.."
version=${1:?usage: tools/debian/build.sh VERSION}
case "$version" in
[0-9]*) ;;
*) echo "zila: '$version' is not a Debian version (it starts with a digit)" >&2; exit 2 ;;
esac
out=build/deb
stage=$out/zila
mkdir -p "$stage"
# A fresh copy of the source each time; the stage's build/ stays, so a rebuild is quick.
# cp -p keeps the times: make recompiles only what changed.
rm -rf "$stage/debian" "$stage/src" "$stage/include" "$stage/proto" "$stage/tools" "$stage/tests"
cp -pR Makefile README.md ARCHITECTURE.md zila.1 src include proto tools "$stage/"
# the Makefile includes the list of make check's parts
mkdir -p "$stage/tests" && cp -p tests/check.mk "$stage/tests/"
cp -pR tools/debian "$stage/debian"
rm -f "$stage/debian/build.sh" "$stage/debian/deb.mk"
if git rev-parse --git-dir >/dev/null 2>&1; then
	commit=$(git rev-parse --short HEAD)
	date=$(git log -1 --format=%cD)
else
	commit=unknown
	date=$(date -R)
fi
cat >"$stage/debian/changelog" <<EOT
zila ($version) unstable; urgency=medium

  * Built by 'make deb' from commit $commit.

 -- zila developers <zila@example.org>  $date
EOT
rm -f "$out"/zila_*.deb "$out"/zila-dbgsym_*.deb "$out"/zila_*.changes "$out"/zila_*.buildinfo
(cd "$stage" && dpkg-buildpackage -us -uc -b) >"$out/build.log" 2>&1 || {
	tail -40 "$out/build.log" >&2
	echo "zila: dpkg-buildpackage failed; the whole log is $out/build.log" >&2
	exit 1
}
deb=$(ls "$out"/zila_"$version"_*.deb)
# --fail-on warning: a warning is a finding to fix or to explain in debian/zila.lintian-overrides.
lintian --fail-on error,warning --display-info --show-overrides "$out"/zila_"$version"_*.changes \
	>"$out/lintian.txt" 2>&1 || {
	cat "$out/lintian.txt" >&2
	echo "zila: lintian found errors or warnings in $deb (above; also $out/lintian.txt)" >&2
	exit 1
}
echo "built $deb; lintian: no error or warning, $(grep -c '^[IP]:' "$out/lintian.txt") infos," \
	"$(grep -c '^O:' "$out/lintian.txt") overridden (debian/zila.lintian-overrides says why)"
