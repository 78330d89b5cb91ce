#!/bin/sh
# The Windows build's libraries, cross-built from Debian's own source packages with mingw-w64
# into a cache in the build tree (never the repository): `make windows-deps` runs it, and it
# does nothing when the cache holds every library. Nothing is downloaded but by apt.
# usage: tools/windows/srcdeps.sh OUT    (OUT = build/windows/deps: include/, lib/, VERSIONS)
set -eu
out=${1:?usage: srcdeps.sh OUT}
here=$(cd "$(dirname "$0")" && pwd)
case $out in /*) ;; *) out=$(pwd)/$out ;; esac
# Source packages, in build order. llhttp (node-llhttp) joins here when the web server needs it.
PKGS="libsodium libuv1 sqlite3 libzstd protobuf-c jansson libcsv cmocka"
stamp=$out/.done
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$PKGS" ]; then exit 0; fi

host=x86_64-w64-mingw32
command -v $host-gcc >/dev/null 2>&1 || { echo "zila: $host-gcc is missing: sudo apt-get install gcc-mingw-w64-x86-64" >&2; exit 1; }
# Fixed flags, fixed time and paths in the archives: the same sources give the same libraries.
export SOURCE_DATE_EPOCH=1700000000 ZERO_AR_DATE=1 LC_ALL=C TZ=UTC
CFLAGS="-O2 -g0 -ffile-prefix-map=$out=. -fno-ident"
CC=$host-gcc AR=$host-ar RANLIB=$host-ranlib
export CFLAGS
src=$out/../src
mkdir -p "$out/include" "$out/lib" "$src"

# A deb-src line for the suite the machine installs from, when there is none (apt-get source
# needs it): the URI of the deb line in debian.sources.
if ! grep -rqsE '^(deb-src|Types:.*deb-src)' /etc/apt/sources.list /etc/apt/sources.list.d/; then
	f=/etc/apt/sources.list.d/debian.sources
	uri=$(sed -n 's/^URIs: *//p' $f 2>/dev/null | head -1)
	key=$(sed -n 's/^Signed-By: *//p' $f 2>/dev/null | head -1)
	[ -n "$uri" ] || { echo "zila: no deb line in $f to derive a deb-src line from" >&2; exit 1; }
	line="deb-src ${key:+[signed-by=$key] }$uri bookworm main"
	if [ "$(id -u)" != 0 ]; then
		echo "zila: apt has no deb-src line; as root: echo '$line' >/etc/apt/sources.list.d/zila-src.list && apt-get update" >&2
		exit 1
	fi
	echo "$line" >/etc/apt/sources.list.d/zila-src.list
	apt-get update -q >/dev/null || { rm -f /etc/apt/sources.list.d/zila-src.list; echo "zila: apt-get update failed with '$line'" >&2; exit 1; }
fi

cd "$src"
for p in $PKGS; do
	d=$(ls -d "$p"-*/ 2>/dev/null | head -1 || true)
	if [ -z "$d" ]; then
		apt-get source -q --only-source "$p" >"$p.log" 2>&1 || { tail -20 "$p.log" >&2; echo "zila: apt-get source $p failed" >&2; exit 1; }
	fi
done
: >"$out/VERSIONS"
for f in *.dsc; do sed -n 's/^Source: //p; s/^Version: //p' "$f" | paste -sd' ' >>"$out/VERSIONS"; done
dir() { ls -d "$src/$1"-*/ | head -1; }
# Each library once: a library whose stamp is there is kept (a failed run resumes).
todo() { [ ! -f "$out/.done-$1" ] && echo "  WINDEP  $1" >&2; }
did() { touch "$out/.done-$1"; }
j=-j2

# libsodium: its autotools (the source package has no configure: autoreconf), for the mingw host.
if todo libsodium; then
	cd "$(dir libsodium)"
	[ -x configure ] || autoreconf -fi >build.log 2>&1 || { tail -30 build.log; exit 1; }
	./configure -q --host=$host --prefix="$out" --disable-shared --enable-static --disable-pie \
		--disable-dependency-tracking >build.log 2>&1 || { tail -30 build.log; exit 1; }
	make $j -s >>build.log 2>&1 && make -s install >>build.log 2>&1 || { tail -30 build.log; exit 1; }
did libsodium
fi

# libuv: cmake with a mingw toolchain file.
if todo libuv; then
	cd "$(dir libuv1)"
	rm -rf _w && mkdir _w && cd _w
	cmake -G "Unix Makefiles" -DCMAKE_TOOLCHAIN_FILE="$here/mingw.cmake" -DCMAKE_BUILD_TYPE=Release \
		-DCMAKE_C_FLAGS_RELEASE="$CFLAGS" -DCMAKE_INSTALL_PREFIX="$out" -DLIBUV_BUILD_SHARED=OFF \
		-DLIBUV_BUILD_TESTS=OFF -DLIBUV_BUILD_BENCH=OFF .. >build.log 2>&1 || { tail -30 build.log; exit 1; }
	make $j -s uv_a >>build.log 2>&1 || { tail -30 build.log; exit 1; }
	# The static library alone (its name differs between libuv versions: libuv_a.a, libuv.a).
	cp "$(ls libuv_a.a libuv.a 2>/dev/null | head -1)" "$out/lib/libuv.a"
	cp -r ../include/uv.h ../include/uv "$out/include/"
did libuv
fi

# SQLite: the amalgamation, built from the source package's own tree (tool/mksqlite3c.tcl
# needs tclsh; the package's configure makes it). The options of Debian's libsqlite3.
if todo sqlite3; then
	cd "$(dir sqlite3)"
	mkdir -p _w && cd _w
	# The amalgamation is made by tools (lemon, mksourceid) built for this machine.
	if [ ! -f sqlite3.c ]; then
		env -u CFLAGS ../configure -q >build.log 2>&1 || { tail -30 build.log; exit 1; }
		make -s sqlite3.c >>build.log 2>&1 || { tail -30 build.log; echo "zila: sqlite3 amalgamation failed (needs tclsh)" >&2; exit 1; }
	fi
	$CC $CFLAGS -DSQLITE_THREADSAFE=1 -DSQLITE_ENABLE_COLUMN_METADATA -DSQLITE_ENABLE_FTS5 \
		-DSQLITE_ENABLE_JSON1 -DSQLITE_ENABLE_RTREE -DSQLITE_ENABLE_SESSION -DSQLITE_ENABLE_PREUPDATE_HOOK \
		-DSQLITE_ENABLE_DBSTAT_VTAB -DSQLITE_SECURE_DELETE -DSQLITE_OMIT_LOAD_EXTENSION \
		-c sqlite3.c -o sqlite3.o
	$AR rcD "$out/lib/libsqlite3.a" sqlite3.o
	cp sqlite3.h sqlite3ext.h "$out/include/"
did sqlite3
fi

# zstd: its plain Makefile, the library alone.
if todo libzstd; then
	cd "$(dir libzstd)/lib"
	make $j -s CC=$CC AR=$AR WINDRES=$host-windres CFLAGS="$CFLAGS" ZSTD_LEGACY_SUPPORT=0 \
		libzstd.a >build.log 2>&1 || { tail -30 build.log; exit 1; }
	cp libzstd.a "$out/lib/" && cp zstd.h zstd_errors.h zdict.h "$out/include/"
	make -s clean >/dev/null 2>&1 || true
did libzstd
fi

# protobuf-c: the runtime only (one file; the compiler runs on Linux).
if todo protobuf-c; then
	cd "$(dir protobuf-c)"
	mkdir -p "$out/include/protobuf-c"
	$CC $CFLAGS -I. -c protobuf-c/protobuf-c.c -o _pbc.o
	$AR rcD "$out/lib/libprotobuf-c.a" _pbc.o && rm -f _pbc.o
	cp protobuf-c/protobuf-c.h "$out/include/protobuf-c/"
did protobuf-c
fi

# jansson: cmake.
if todo jansson; then
	cd "$(dir jansson)"
	rm -rf _w && mkdir _w && cd _w
	cmake -G "Unix Makefiles" -DCMAKE_TOOLCHAIN_FILE="$here/mingw.cmake" -DCMAKE_BUILD_TYPE=Release \
		-DCMAKE_C_FLAGS_RELEASE="$CFLAGS" -DCMAKE_INSTALL_PREFIX="$out" -DJANSSON_BUILD_SHARED_LIBS=OFF \
		-DJANSSON_BUILD_DOCS=OFF -DJANSSON_WITHOUT_TESTS=ON -DJANSSON_EXAMPLES=OFF .. >build.log 2>&1 ||
		{ tail -30 build.log; exit 1; }
	make $j -s >>build.log 2>&1 && make -s install >>build.log 2>&1 || { tail -30 build.log; exit 1; }
did jansson
fi

# libcsv: one file.
if todo libcsv; then
	cd "$(dir libcsv)"
	$CC $CFLAGS -I. -c libcsv.c -o _csv.o
	$AR rcD "$out/lib/libcsv.a" _csv.o && rm -f _csv.o
	cp csv.h "$out/include/"
did libcsv
fi

# cmocka, for the unit tests under Wine (make check-windows): cmake, the static library.
if todo cmocka; then
	cd "$(dir cmocka)"
	rm -rf _w && mkdir _w && cd _w
	cmake -G "Unix Makefiles" -DCMAKE_TOOLCHAIN_FILE="$here/mingw.cmake" -DCMAKE_BUILD_TYPE=Release \
		-DCMAKE_C_FLAGS_RELEASE="$CFLAGS" -DWITH_STATIC_LIB=ON -DWITH_EXAMPLES=OFF -DUNIT_TESTING=OFF .. \
		>build.log 2>&1 || { tail -30 build.log; exit 1; }
	make $j -s cmocka-static >>build.log 2>&1 || { tail -30 build.log; exit 1; }
	cp src/libcmocka-static.a "$out/lib/libcmocka.a" && cp ../include/cmocka.h "$out/include/"
did cmocka
fi
echo "$PKGS" >"$stamp"
echo "  WINDEP  done: $(paste -sd, "$out/VERSIONS")" >&2
