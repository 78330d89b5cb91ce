#!/bin/sh
# Across operating systems (make check-windows): a Linux HQ daemon and a Windows laptop daemon
# (zila.exe under Wine) on loopback. The laptop joins by invite code over the network, both
# sides write, they sync both ways and hash equal; a USB bundle written on each side is
# applied on the other; the Wine daemon is killed with SIGKILL in the middle of a large sync
# and restarted: nothing is lost and the replica's integrity_check is ok.
# usage: ZILA=build/zila ZILA_EXE=build/windows/zila.exe sh tests/windows/test_cross.sh
. "$(dirname "$0")/../integration/lib.sh"
: "${ZILA_EXE:=$(pwd)/build/windows/zila.exe}"
WINE=${WINE:-/usr/lib/wine/wine64}
export WINEDEBUG=-all
: "${WINEPREFIX:=$(pwd)/build/windows/wine}"
export WINEPREFIX
# zw DIR ARGS...: zila.exe on the replica in DIR (a Linux path: Wine's Z: drive is /)
zw() { _d=$1; shift; "$WINE" "$ZILA_EXE" -d "Z:$_d" "$@"; }
wup() {
	"$WINE" "$ZILA_EXE" -d "Z:$1" daemon --listen "127.0.0.1:$3" --beacon-port 0 2>>"$2" &
	wpid=$!
	until_ok 150 zw "$1" status
}
cleanup() {
	stop_daemons
	[ -n "${wpid:-}" ] && kill "$wpid" 2>/dev/null
	"${WINESERVER:-/usr/lib/wine/wineserver}" -k 2>/dev/null
	done_with_tmp
}
trap cleanup EXIT
P=$((21000 + $$ % 20000))
HQ=$T/hq
LAP=$T/lap
count() { sqlite3 "$1/zila.db" "SELECT count(*) FROM people WHERE $2"; }

# --- HQ on Linux, the laptop joins from Windows ------------------------------------------
org_init "$HQ" && districts "$HQ" d1 || { bad "HQ setup"; finish; exit 1; }
daemon_up "$HQ" "$T/hq.log" $P || bad "the Linux HQ daemon answers"
expect 0 "zila.exe init" -- zw "$LAP" init
code=$("$ZILA" -d "$HQ" invite --district d1 --role district | head -1)
printf '%s\n' "$code" | zw "$LAP" join - --hq "127.0.0.1:$P" --name winlap >"$T/join.out" 2>&1 &&
	ok "zila.exe joins the Linux HQ by invite code" || bad "join: $(cat "$T/join.out")"
zw "$LAP" whoami >"$T/who" 2>&1; has "$T/who" "d1" "the Windows laptop is a laptop of d1"

# --- both write, sync both ways ----------------------------------------------------------
wup "$LAP" "$T/lap.log" $((P + 1)) || bad "the Windows daemon answers status"
zw "$LAP" sync hq --wait >"$T/sync.out" 2>&1 && ok "zila.exe sync hq --wait (the catalogue)" ||
	bad "sync: $(tail -3 "$T/sync.out")"
"$ZILA" -d "$HQ" sql "INSERT INTO people(id, district_id, name) VALUES ('hq-1', 'd1', 'from Linux HQ')" >/dev/null
zw "$LAP" sql "INSERT INTO people(id, district_id, name, name_local) VALUES ('win-1', 'd1', 'from Windows', 'विंडोज़')" \
	>"$T/sql.out" 2>&1 || bad "zila.exe sql: $(cat "$T/sql.out")"
zw "$LAP" sync hq --wait >"$T/sync.out" 2>&1 && ok "zila.exe sync hq --wait (both ways)" ||
	bad "sync: $(tail -3 "$T/sync.out")"
until_ok 50 test "$(count "$HQ" "id = 'win-1'")" = 1 && ok "HQ (Linux) holds the Windows laptop's row" ||
	bad "HQ lacks win-1"
[ "$(count "$LAP" "id = 'hq-1'")" = 1 ] && ok "the Windows laptop holds HQ's row" || bad "the laptop lacks hq-1"
[ "$(sqlite3 "$HQ/zila.db" "SELECT name_local FROM people WHERE id = 'win-1'")" = "विंडोज़" ] &&
	ok "Hindi written on Windows arrives unchanged" || bad "name_local changed on the way"
h1=$("$ZILA" -d "$HQ" hash)
h2=$(zw "$LAP" hash 2>/dev/null | tr -d '\r')
[ -n "$h1" ] && [ "$h1" = "$h2" ] && ok "Linux HQ and Windows laptop hash equal" || bad "hashes differ: $h1 / $h2"

# --- USB bundles, each way ---------------------------------------------------------------
zw "$LAP" stop >/dev/null 2>&1
wait "$wpid" 2>/dev/null
wpid=""
zw "$LAP" sql "INSERT INTO people(id, district_id, name) VALUES ('usb-w', 'd1', 'by USB from Windows')" >/dev/null 2>&1
zw "$LAP" bundle create "Z:$T/w.bndl" >"$T/b1" 2>&1 && ok "zila.exe bundle create" || bad "bundle create: $(cat "$T/b1")"
"$ZILA" -d "$HQ" bundle apply "$T/w.bndl" >"$T/b2" 2>&1 && ok "Linux applies the Windows bundle" ||
	bad "bundle apply: $(cat "$T/b2")"
[ "$(count "$HQ" "id = 'usb-w'")" = 1 ] && ok "the row came by USB to Linux" || bad "usb-w missing at HQ"
"$ZILA" -d "$HQ" sql "INSERT INTO people(id, district_id, name) VALUES ('usb-l', 'd1', 'by USB from Linux')" >/dev/null
zw "$LAP" vector >"$T/lap.vec" 2>/dev/null
"$ZILA" -d "$HQ" bundle create "$T/l.bndl" --for "$T/lap.vec" >"$T/b3" 2>&1 || bad "bundle create --for: $(cat "$T/b3")"
zw "$LAP" bundle apply "Z:$T/l.bndl" >"$T/b4" 2>&1 && ok "zila.exe applies the Linux bundle" ||
	bad "zila.exe bundle apply: $(cat "$T/b4")"
[ "$(count "$LAP" "id = 'usb-l'")" = 1 ] && ok "the row came by USB to Windows" || bad "usb-l missing on the laptop"

# --- SIGKILL of the Wine daemon in the middle of a large sync ---------------------------------
N=${CROSS_ROWS:-100000}
sqlite3 "$HQ/zila.db" "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < $N)
	INSERT INTO people(id, district_id, name) SELECT 'big-' || i, 'd1', 'person ' || i FROM n"
"$ZILA" -d "$HQ" seal >/dev/null
zw "$LAP" sql "INSERT INTO people(id, district_id, name) VALUES ('before-kill', 'd1', 'written before the kill')" >/dev/null 2>&1
wal() { stat -c %s "$LAP/zila.db-wal" 2>/dev/null || echo 0; }
w0=$(wal)
"$WINE" "$ZILA_EXE" -d "Z:$LAP" daemon --listen "127.0.0.1:$((P + 1))" --beacon-port 0 2>>"$T/lap.log" &
wpid=$!
# The daemon dials HQ as it starts; the rows come as a few large entries, each applied in one
# transaction: kill it as soon as the replica's WAL grows by a megabyte (rows being written).
k=0
while [ $k -lt 600 ] && [ "$(wal)" -lt $((w0 + 1048576)) ]; do sleep 0.05; k=$((k + 1)); done
kill -9 "$wpid" 2>/dev/null
wait "$wpid" 2>/dev/null
wpid=""
got=$(count "$LAP" "id LIKE 'big-%'")
[ "$got" -lt "$N" ] && ok "SIGKILL came in the middle of the sync ($got of $N rows applied)" ||
	echo "# the kill came after the sync ($got of $N rows): a faster machine; CROSS_ROWS=1000000 for a longer one"
[ "$(sqlite3 "$LAP/zila.db" "PRAGMA integrity_check")" = ok ] && ok "integrity_check ok right after SIGKILL" ||
	bad "integrity_check failed after SIGKILL"
wup "$LAP" "$T/lap.log" $((P + 1)) || bad "the Windows daemon starts again after SIGKILL"
zw "$LAP" sync hq --wait >"$T/sync2.out" 2>&1 || bad "sync after the kill: $(tail -3 "$T/sync2.out")"
until_ok 100 test "$(count "$LAP" "id LIKE 'big-%'")" = "$N" && ok "all $N rows on the Windows laptop after the restart" ||
	bad "the laptop holds $(count "$LAP" "id LIKE 'big-%'") of $N rows"
until_ok 50 test "$(count "$HQ" "id = 'before-kill'")" = 1 && ok "the laptop's write from before the kill reached HQ" ||
	bad "before-kill missing at HQ"
h1=$("$ZILA" -d "$HQ" hash)
h2=$(zw "$LAP" hash 2>/dev/null | tr -d '\r')
[ "$h1" = "$h2" ] && ok "hashes equal after the kill and restart" || bad "hashes differ after the restart"
[ "$(sqlite3 "$LAP/zila.db" "PRAGMA integrity_check")" = ok ] && ok "integrity_check ok at the end" ||
	bad "integrity_check failed at the end"
zw "$LAP" stop >/dev/null 2>&1
finish
