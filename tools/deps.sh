#!/bin/sh
# Makes sure the Debian packages a make target needs are installed: installs them with
# apt-get when run as root, otherwise names them and fails.
# usage: tools/deps.sh build|check|fuzz|demo|web|webcheck|deb|windows
set -eu
need=""
have_pc() { pkg-config --exists "$1" 2>/dev/null; }
have_hdr() { [ -f "/usr/include/$1" ]; }
have_cmd() { command -v "$1" >/dev/null 2>&1; }

command -v pkg-config >/dev/null 2>&1 || need="$need pkg-config"
have_cmd cc || need="$need gcc"
have_cmd make || need="$need make"
have_pc libsodium || need="$need libsodium-dev"
have_pc libuv || need="$need libuv1-dev"
have_pc sqlite3 || need="$need libsqlite3-dev"
have_hdr csv.h || need="$need libcsv-dev"
have_pc libzstd || need="$need libzstd-dev"
have_pc libprotobuf-c || need="$need libprotobuf-c-dev"
have_pc jansson || need="$need libjansson-dev"
have_cmd protoc-c || need="$need protobuf-c-compiler"
[ -f /usr/share/llhttp/llhttp.c ] || need="$need node-llhttp" # the web interface's HTTP parser (C sources)
have_pc openssl || need="$need libssl-dev" # TLS of the web interface on the LAN (HQ)
have_pc libpq || need="$need libpq-dev"
have_hdr jpeglib.h || need="$need libjpeg62-turbo-dev" # shrinking phone photos on the way in (#25)
case "${1:-build}" in
check)
	have_pc cmocka || need="$need libcmocka-dev"
	have_cmd sqlite3 || need="$need sqlite3"
	have_cmd ip || need="$need iproute2"
	have_cmd python3 || need="$need python3"
	[ -x /usr/lib/postgresql/15/bin/initdb ] || need="$need postgresql"
	;;
fuzz)
	have_cmd clang || need="$need clang"
	ls /usr/lib/llvm-*/lib/clang/*/lib/linux/libclang_rt.fuzzer-x86_64.a >/dev/null 2>&1 ||
		need="$need libclang-rt-14-dev"
	;;
deb)
	have_cmd dh || need="$need debhelper"
	have_cmd lintian || need="$need lintian"
	have_cmd adduser || need="$need adduser"
	have_cmd ip || need="$need iproute2"
	;;
windows)
	# the cross-compiler, what builds the libraries from Debian's sources, Wine and NSIS
	have_cmd x86_64-w64-mingw32-gcc || need="$need gcc-mingw-w64-x86-64"
	have_cmd cmake || need="$need cmake"
	have_cmd autoreconf || need="$need autoconf"
	have_cmd automake || need="$need automake"
	have_cmd libtoolize || need="$need libtool"
	have_cmd tclsh || need="$need tcl"
	have_cmd dpkg-source || need="$need dpkg-dev"
	[ -x /usr/lib/wine/wine64 ] || need="$need wine64"
	have_cmd makensis || need="$need nsis"
	;;
web)
	have_cmd node || need="$need nodejs"
	have_cmd npm || need="$need npm"
	;;
webcheck)
	# the browser tests: Debian's Chromium, and Devanagari for the screenshots
	have_cmd node || need="$need nodejs"
	have_cmd npm || need="$need npm"
	have_cmd chromium || need="$need chromium"
	[ -d /usr/share/fonts/truetype/noto ] || need="$need fonts-noto-core"
	;;
demo)
	have_cmd sqlite3 || need="$need sqlite3"
	have_cmd python3 || need="$need python3"
	;;
esac
[ -z "$need" ] && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
	echo "installing:$need" >&2
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -q >/dev/null
	# shellcheck disable=SC2086
	apt-get install -y -q --no-install-recommends $need >/dev/null
	exit 0
fi
echo "zila: missing packages; install them with: sudo apt-get install$need" >&2
exit 1
