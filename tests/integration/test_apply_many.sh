#!/bin/sh
# Three laptops' large windows at HQ at once (#20): each is applied in slices on HQ's worker
# thread with the one SQLite connection lent to it, and the loop may take the connection
# back (a claim: `zila status`, a session's end) before a slice's result is taken on the
# loop. No other slice may start in that gap, for the result is recorded in the store: two
# threads on one connection (opened without SQLite's mutex) is undefined behaviour. The
# worker here returns 300 ms late after each commit (ZILA_TEST_SLICE_LATE_MS), so the gap is
# wide; `zila status` claims the store every few ms; every laptop's rows arrive whole.
. "$(dirname "$0")/lib.sh"
HQ=$T/hq; L1=$T/lap1; L2=$T/lap2; L3=$T/lap3
HQP=$((20000 + ($$ * 13) % 20000))
N=${TWO_ROWS:-20000}
cleanup() { stop_daemons -9; done_with_tmp; }
trap cleanup EXIT
trap 'exit 1' INT TERM

printf 'correct horse battery\n' >"$T/pw"
for d in "$HQ" "$L1" "$L2" "$L3"; do "$ZILA" -d "$d" init >/dev/null; done
"$ZILA" -d "$HQ" org init --name Party --passphrase-file "$T/pw" >/dev/null
"$ZILA" -d "$HQ" sql "INSERT INTO states(id, name) VALUES ('s1', 'S');
  INSERT INTO districts(id, state_id, name) VALUES ('d-1', 's1', 'One'), ('d-2', 's1', 'Two'), ('d-3', 's1', 'Three')" >/dev/null
ZILA_TEST_SLICE_LATE_MS=300 "$ZILA" -v -d "$HQ" daemon --listen "127.0.0.1:$HQP" --beacon-port 0 2>>"$T/hq.log" &
pids="$pids $!"
until_ok 100 "$ZILA" -d "$HQ" status || { bad "hq daemon starts"; finish; exit 1; }
for i in 1 2 3; do
	eval "L=\$L$i"
	code=$("$ZILA" -d "$HQ" invite --district "d-$i" | head -1)
	expect 0 "laptop $i joins over the network" -- "$ZILA" -d "$L" join "$code" --hq "127.0.0.1:$HQP" --name "lap$i"
	sqlite3 "$L/zila.db" "WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n WHERE x < $N)
	  INSERT INTO people(id, district_id, name, phone)
	  SELECT printf('%032x', x * 2654435761 % 4294967291) || 'd$i' || x, 'd-$i', 'Person ' || x,
	         printf('9%09d', x + $i * 100000000) FROM n"
	"$ZILA" -d "$L" seal >/dev/null
done
for i in 1 2 3; do
	eval "L=\$L$i"
	daemon_up "$L" "$T/lap$i.log" $((HQP + i)) || bad "laptop $i's daemon starts"
done
# claims: HQ's control socket reads the replica
tries=0; st=0; want=$((3 * N))
while [ $tries -lt 4000 ]; do
	"$ZILA" -d "$HQ" status >/dev/null 2>&1 || st=$((st + 1))
	tries=$((tries + 1))
	[ $((tries % 20)) = 0 ] &&
		[ "$(sqlite3 "$HQ/zila.db" 'SELECT count(*) FROM people' 2>/dev/null)" = "$want" ] && break
done
[ "$(sqlite3 "$HQ/zila.db" 'SELECT count(*) FROM people')" = "$want" ] &&
	ok "HQ holds the laptops' $want rows" || bad "HQ holds $(sqlite3 "$HQ/zila.db" 'SELECT count(*) FROM people') of $want rows"
[ "$st" = 0 ] && ok "HQ answered status $tries times meanwhile" || bad "HQ's status failed $st of $tries times"
slices=$(grep -c "applied a window from" "$T/hq.log")
[ "$slices" -ge 3 ] && ok "HQ applied $slices windows off its loop" || bad "HQ applied $slices windows off its loop"
grep -q "another slice was lent" "$T/hq.log" &&
	bad "a slice started while another's result waited: $(grep -c 'another slice was lent' "$T/hq.log") times" ||
	ok "no slice started while another's result waited"
for i in 1 2 3; do
	eval "L=\$L$i"
	until_ok 100 "$ZILA" -d "$L" sync hq --wait >/dev/null && ok "laptop $i's sync completes" || bad "laptop $i's sync"
	n=$(sqlite3 "$HQ/zila.db" "SELECT count(*) FROM people WHERE district_id = 'd-$i'")
	[ "$n" = "$N" ] && ok "HQ holds laptop $i's $N rows" || bad "HQ holds $n of laptop $i's rows"
done
[ "$(sqlite3 "$HQ/zila.db" "PRAGMA integrity_check")" = ok ] && ok "integrity_check ok at HQ" || bad "integrity_check failed at HQ"
dup=$(sqlite3 "$HQ/zila.db" "SELECT count(*) FROM (SELECT feed, seq FROM zila_entries GROUP BY feed, seq HAVING count(*) > 1)")
[ "$dup" = 0 ] && ok "no entry stored twice" || bad "$dup entries stored twice"
finish
