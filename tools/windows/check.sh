#!/bin/sh
# make check-windows: the unit tests built for Windows, and zila.exe's smoke commands, run
# under Wine (Debian's wine64) in a private prefix under build/windows, quiet (WINEDEBUG=-all).
# usage: tools/windows/check.sh OUTDIR TEST.exe...
set -eu
out=$1
shift
WINE=${WINE:-/usr/lib/wine/wine64}
[ -x "$WINE" ] || { echo "zila: wine64 is missing: sudo apt-get install wine64" >&2; exit 1; }
export WINEPREFIX="$(cd "$out" && pwd)/wine" WINEDEBUG=-all WINEDLLOVERRIDES="mscoree,mshtml="
# Fewer property seeds under Wine: each costs ~10x its Linux time (README "Windows").
export ZILA_VECTORS=tests/vectors ZILA_SEEDS="${WIN_SEEDS:-30}"
# Wine turns a DACL into unix mode bits and back: the owner-only checks are for real Windows.
export ZILA_TEST_NO_ACL=1
start=$(date +%s)
if [ ! -f "$WINEPREFIX/system.reg" ]; then
	echo "== wine: a private prefix in $WINEPREFIX"
	"$WINE" wineboot --init >/dev/null 2>&1 || true
	"${WINESERVER:-/usr/lib/wine/wineserver}" -w 2>/dev/null || true
fi
fail=0
for t in "$@"; do
	n=$(basename "$t" .exe)
	s=$(date +%s)
	if "$WINE" "$t" >"$out/$n.log" 2>&1; then
		echo "== $n (wine): $(grep -E 'PASSED' "$out/$n.log" | tail -1 | sed 's/.*PASSED *\] *//') $(($(date +%s) - s)) s"
	else
		echo "== $n (wine): FAILED"
		tail -30 "$out/$n.log"
		fail=1
	fi
done

# zila.exe itself: a replica, a write captured, a hash, the daemon and its named pipe.
Z="$out/zila.exe"
d="$out/smoke"
rm -rf "$d"
zw() { "$WINE" "$Z" -d "$d" "$@"; }
ok() { echo "ok - $1"; }
no() { echo "not ok - $1"; fail=1; }
zw init >"$out/smoke.log" 2>&1 && ok "zila.exe init" || no "zila.exe init"
zw sql "INSERT INTO states(id, name, code) VALUES ('s1', 'Bihar', 'BR')" >>"$out/smoke.log" 2>&1 &&
	ok "zila.exe sql: a write" || no "zila.exe sql"
h=$(zw hash 2>>"$out/smoke.log" | tr -d '\r') || true
[ ${#h} -eq 64 ] && ok "zila.exe hash" || no "zila.exe hash ($h)"
port=$((20000 + $$ % 20000))
zw daemon --listen 127.0.0.1:$port --beacon-port 0 >"$out/smoke-daemon.log" 2>&1 &
i=0
until zw status >"$out/smoke-status.log" 2>&1 || [ $i -ge 100 ]; do sleep 0.2; i=$((i + 1)); done
grep -q "^daemon: *running" "$out/smoke-status.log" && ok "zila.exe status reaches the daemon over its named pipe" ||
	no "zila.exe status ($(cat "$out/smoke-status.log"))"
zw daemon --listen 127.0.0.1:$((port + 1)) --beacon-port 0 >"$out/smoke-second.log" 2>&1 && no "a second daemon is refused" ||
	{ grep -q "already runs" "$out/smoke-second.log" && ok "a second daemon is refused (the lock)" || no "the second daemon's message"; }
zw stop >>"$out/smoke.log" 2>&1 && ok "zila.exe stop" || no "zila.exe stop"
wait
grep -q "stopped" "$out/smoke-daemon.log" && ok "the daemon stopped cleanly" || no "the daemon's stop"
rc=0
zw status >/dev/null 2>&1 || rc=$?
[ $rc -eq 3 ] && ok "status with no daemon exits 3" || no "status with no daemon"
"${WINESERVER:-/usr/lib/wine/wineserver}" -k 2>/dev/null || true
echo "check-windows: $(($(date +%s) - start)) s under Wine"
[ $fail -eq 0 ] && echo "check-windows: all passed" || { echo "check-windows: FAILED" >&2; exit 1; }
