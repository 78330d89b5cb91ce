#!/bin/sh
# HQ's loop does not stall on a large window (#20): a laptop's 60,000 new rows arrive at HQ
# in one window, which HQ's daemon applies in slices of whole entries, one transaction each,
# its loop turning between them (so other laptops' handshakes wait a slice, not the window;
# bench_stall measures that). Seen from outside: HQ's row count grows in many steps while
# the window is applied, not 0 then all of it; everything arrives once, hashes equal, and
# HQ answers status meanwhile, and tells the laptop it is there (Progress) while it applies. Then a second laptop clones the rows from HQ: HQ makes its
# chunks a turn of the loop at a time (PUMP_TURN_MS), not a window's worth in one turn, and
# says so in its debug log; the clone arrives whole. While HQ applies, a third laptop (of
# another district: nothing to receive) syncs with it again and again: every sync completes,
# and HQ answered handshakes while a slice was being applied on its worker thread (the loop
# is not held by a slice, #20; bench_stall measures the latency); HQ's loop turned between
# its reads of the window.
. "$(dirname "$0")/lib.sh"
HQ=$T/hq; L=$T/lap; L2=$T/lap2; L3=$T/lap3
HQP=$((20000 + ($$ * 11) % 20000)); LP=$((HQP + 1)); LP2=$((HQP + 2)); LP3=$((HQP + 3))
N=${SLICE_ROWS:-60000}
cleanup() { stop_daemons -9; done_with_tmp; }
trap cleanup EXIT
trap 'exit 1' INT TERM

printf 'correct horse battery\n' >"$T/pw"
for d in "$HQ" "$L" "$L2" "$L3"; do "$ZILA" -d "$d" init >/dev/null; done
"$ZILA" -d "$HQ" org init --name Party --passphrase-file "$T/pw" >/dev/null
"$ZILA" -d "$HQ" sql "INSERT INTO states(id, name) VALUES ('s1', 'S');
  INSERT INTO districts(id, state_id, name) VALUES ('d-1', 's1', 'One'), ('d-2', 's1', 'Two')" >/dev/null
# HQ logs at debug level (-v): what its loop did between chunks
"$ZILA" -v -d "$HQ" daemon --listen "127.0.0.1:$HQP" --beacon-port 0 2>>"$T/hq.log" &
pids="$pids $!"
until_ok 100 "$ZILA" -d "$HQ" status || { bad "hq daemon starts"; finish; exit 1; }
code=$("$ZILA" -d "$HQ" invite --district d-1 | head -1)
expect 0 "the laptop joins over the network" -- "$ZILA" -d "$L" join "$code" --hq "127.0.0.1:$HQP" --name lap
code=$("$ZILA" -d "$HQ" invite --district d-2 | head -1)
expect 0 "a laptop of another district joins" -- "$ZILA" -d "$L3" join "$code" --hq "127.0.0.1:$HQP" --name lap3
daemon_up "$L3" "$T/lap3.log" "$LP3" || bad "the third laptop's daemon starts"
until_ok 100 "$ZILA" -d "$L3" sync hq --wait >/dev/null
sqlite3 "$L/zila.db" "WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n WHERE x < $N)
  INSERT INTO people(id, district_id, name, phone)
  SELECT printf('%032x', x * 2654435761 % 4294967291) || x, 'd-1', 'Person ' || x, printf('9%09d', x) FROM n"
"$ZILA" -d "$L" seal >/dev/null

# HQ's count of people, read by another process every 20 ms while the laptop's daemon syncs.
python3 - "$HQ/zila.db" "$N" "$T/span" >"$T/counts" <<'PY' &
import sqlite3, sys, time
db, n = sys.argv[1], int(sys.argv[2])
seen, end, first = [], time.time() + 300, None
while time.time() < end:
    try:
        c = sqlite3.connect(db, timeout=5)
        v = c.execute("SELECT count(*) FROM people").fetchone()[0]
        c.close()
    except sqlite3.Error:
        v = None
    if v is not None and (not seen or seen[-1] != v):
        seen.append(v)
        if first is None and v > 0:
            first = time.time()
    if v == n:
        break
    time.sleep(0.02)
print(" ".join(map(str, seen)))
# how long HQ applied the window: from its first rows showing to the last, in ms
print(int((time.time() - first) * 1000) if first else 0, file=open(sys.argv[3], "w"))
PY
watcher=$!
daemon_up "$L" "$T/lap.log" "$LP" || bad "laptop daemon starts"
# The third laptop syncs with HQ while HQ applies (one line per sync: its exit status).
(while kill -0 "$watcher" 2>/dev/null; do
	"$ZILA" -d "$L3" sync hq --wait --timeout 120 >/dev/null 2>&1; echo $?
done) >"$T/probe" &
prober=$!
# HQ answers its control socket while the window is applied (and after).
st=0; tries=0
while kill -0 "$watcher" 2>/dev/null && [ $tries -lt 3000 ]; do
	"$ZILA" -d "$HQ" status >/dev/null 2>&1 || st=$((st + 1))
	tries=$((tries + 1))
done
wait "$watcher"
wait "$prober"
counts=$(cat "$T/counts")
last=${counts##* }
[ "$last" = "$N" ] && ok "HQ holds the laptop's $N rows" || bad "HQ's counts: $counts"
mid=$(echo "$counts" | tr ' ' '\n' | awk -v n="$N" '$1 > 0 && $1 < n' | wc -l)
[ "$mid" -ge 3 ] && ok "HQ's count grew in $((mid + 1)) steps while it applied the window (slices)" ||
	bad "HQ's count grew in $((mid + 1)) steps: $counts (one window, one transaction: the loop stalls)"
[ "$st" = 0 ] && ok "HQ answered status $tries times meanwhile" || bad "HQ's status failed $st of $tries times"
until_ok 100 "$ZILA" -d "$L" sync hq --wait >/dev/null
same_hash "$HQ" "$L" && ok "hashes equal" || bad "hashes differ"
dup=$(sqlite3 "$HQ/zila.db" "SELECT count(*) FROM (SELECT feed, seq FROM zila_entries GROUP BY feed, seq HAVING count(*) > 1)")
[ "$dup" = 0 ] && ok "no entry stored twice" || bad "$dup entries stored twice"
[ "$(sqlite3 "$HQ/zila.db" "PRAGMA integrity_check")" = ok ] && ok "integrity_check ok at HQ" || bad "integrity_check failed at HQ"
# While HQ applies the window it reads nothing, and the laptop's writes stop draining: HQ
# tells it every second that it is there (Progress), or a window applied for longer than
# the laptop's idle deadline would have the laptop cut the session.
span=$(cat "$T/span")
told=$(grep "applying a window from .* told it .* times we are there" "$T/hq.log" | sed 's/.*told it \([0-9]*\) times.*/\1/' | sort -n | tail -1)
if [ "$span" -ge 2500 ]; then
	[ "${told:-0}" -ge 1 ] && ok "HQ applied the window for $span ms and told the laptop $told times it was there" ||
		bad "HQ applied the window for $span ms and said nothing to the laptop meanwhile"
else
	ok "HQ applied the window in $span ms (under 2.5 s: nothing to tell; told ${told:-0} times)"
fi
nprobe=$(wc -l <"$T/probe"); pfail=$(grep -cv '^0$' "$T/probe")
[ "$nprobe" -ge 1 ] && [ "$pfail" = 0 ] && ok "the third laptop synced with HQ $nprobe times while HQ applied" ||
	bad "the third laptop's syncs while HQ applied: $nprobe, $pfail failed"
answered=$(grep "handshakes answered meanwhile" "$T/hq.log" | sed 's/.* slices, \([0-9]*\) handshakes.*/\1/' | sort -n | tail -1)
[ "${answered:-0}" -ge 1 ] && ok "HQ answered $answered handshakes while a slice was applied off its loop" ||
	bad "HQ answered no handshake while a slice was applied (its loop is held by each slice)"
# Reading the window: a read that completes a chunk decodes it; past PUMP_TURN_MS in a turn
# the rest is read in the next turn, not up to 32 reads of it in one.
rturns=$(grep "receiving from .* the loop turned .* times between reads" "$T/hq.log" | sed 's/.*turned \([0-9]*\) times.*/\1/' | sort -n | tail -1)
[ "${rturns:-0}" -ge 1 ] && ok "HQ's loop turned $rturns times between its reads of the window" ||
	bad "HQ read the window without the loop turning between reads"
grep -q "sync with 'lap'.*fail\|error:" "$T/hq.log" && bad "HQ logged: $(grep "fail\|error:" "$T/hq.log" | head -2)" || ok "no session failed"

# A second laptop clones the rows from HQ: a window of chunks is not made in one turn.
code=$("$ZILA" -d "$HQ" invite --district d-1 | head -1)
expect 0 "a second laptop joins" -- "$ZILA" -d "$L2" join "$code" --hq "127.0.0.1:$HQP" --name lap2
daemon_up "$L2" "$T/lap2.log" "$LP2" || bad "second laptop's daemon starts"
until_ok 600 sh -c "[ \"\$(sqlite3 '$L2/zila.db' 'SELECT count(*) FROM people')\" = $N ]" &&
	ok "the second laptop cloned the $N rows" || bad "the second laptop holds $(sqlite3 "$L2/zila.db" 'SELECT count(*) FROM people') rows"
until_ok 100 "$ZILA" -d "$L2" sync hq --wait >/dev/null
same_hash "$HQ" "$L2" && ok "hashes equal after the clone" || bad "hashes differ after the clone"
turns=$(grep "the loop turned .* times between chunks" "$T/hq.log" | sed 's/.*turned \([0-9]*\) times.*/\1/' | sort -n | tail -1)
[ "${turns:-0}" -ge 1 ] && ok "HQ's loop turned $turns times between its chunks to the clone" ||
	bad "HQ made its chunks without the loop turning between (a window's worth in one turn)"
finish
