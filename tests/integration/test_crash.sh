#!/bin/sh
# Crash safety with daemons: an HQ daemon and a laptop daemon (enrolled by invite over the
# network) on loopback, both with many local writes (a large two-way sync). Each cycle both
# sides write more rows, then HQ or the laptop (chosen at random) is SIGKILLed at a random
# moment — while sealing, in the handshake, while entries stream or are applied — and
# restarted. At the end: every committed row is present on both replicas exactly once with
# the value written, no entry is stored twice, every feed is gapless, hashes are equal and
# integrity_check is ok on both.
#
# Short form (make check): 12 cycles, 20,000 rows written on each side.
# Long form:  CYCLES=1000 CRASH_ROWS=200000 sh tests/integration/test_crash.sh
# CRASH_SEED=N replays the kill schedule (the seed is printed).
. "$(dirname "$0")/lib.sh"
CYCLES=${CYCLES:-12}
ROWS=${CRASH_ROWS:-20000}
SEED=${CRASH_SEED:-$$}
P=$((20000 + ($$ * 13) % 20000))
HQP=$P LP=$((P + 1))
HQ=$T/hq L=$T/lap
cleanup() { stop_daemons -9; done_with_tmp; }
trap cleanup EXIT
trap 'exit 1' INT TERM
# A deterministic random stream from the seed: rnd N sets R to 0 .. N-1 (no subshell, so
# the state advances).
rstate=$SEED
rnd() {
	rstate=$(( (rstate * 1103515245 + 12345) % 2147483648 ))
	R=$(( (rstate / 65536) % $1 ))
}
# write DIR PREFIX FROM TO: rows PREFIX000FROM .. PREFIXTO, committed by plain sqlite3
# while the daemon may hold the replica (busy timeout).
write() {
	sqlite3 -cmd ".timeout 20000" "$1/zila.db" "WITH RECURSIVE n(x) AS (SELECT $3 UNION ALL SELECT x + 1 FROM n WHERE x < $4)
	  INSERT INTO people(id, district_id, name, phone)
	  SELECT printf('$2%08d', x), 'd-1', '$2 value ' || x, printf('$2%09d', x) FROM n" >/dev/null
}
same() { same_hash "$HQ" "$L"; }

echo "# crash test: seed $SEED, $CYCLES cycles, $ROWS rows written on each side"
printf 'correct horse battery\n' >"$T/pw"
for d in "$HQ" "$L"; do "$ZILA" -d "$d" init >/dev/null; done
"$ZILA" -d "$HQ" org init --name Party --passphrase-file "$T/pw" >/dev/null
"$ZILA" -d "$HQ" sql "INSERT INTO states(id, name) VALUES ('s1', 'S');
  INSERT INTO districts(id, state_id, name) VALUES ('d-1', 's1', 'One')" >/dev/null
daemon_up "$HQ" "$T/hq.log" "$HQP" || { bad "hq daemon starts"; finish; exit 1; }
HQPID=$last
code=$("$ZILA" -d "$HQ" invite --district d-1 | head -1)
expect 0 "the laptop joins over the network" -- "$ZILA" -d "$L" join "$code" --hq "127.0.0.1:$HQP" --name lap
daemon_up "$L" "$T/lap.log" "$LP" || { bad "laptop daemon starts"; finish; exit 1; }
LPID=$last
until_ok 100 "$ZILA" -d "$L" sync hq --wait || { bad "first sync"; finish; exit 1; }

# Half of the rows are written up front (a large first sync to kill in), the rest in
# slices, one per cycle, while both daemons run.
half=$((ROWS / 2))
write "$HQ" h 1 "$half"
write "$L" l 1 "$half"
done_h=$half done_l=$half
slice=$(( (ROWS - half + CYCLES - 1) / CYCLES ))
kills_hq=0 kills_lap=0 cyc=0 cuts=0
while [ "$cyc" -lt "$CYCLES" ]; do
	cyc=$((cyc + 1))
	wpids=""
	if [ "$done_h" -lt "$ROWS" ]; then
		# Written while the kill comes: the daemons seal and send these as they arrive.
		to=$((done_h + slice)); [ "$to" -gt "$ROWS" ] && to=$ROWS
		write "$HQ" h $((done_h + 1)) "$to" & wpids="$wpids $!"; done_h=$to
		to=$((done_l + slice)); [ "$to" -gt "$ROWS" ] && to=$ROWS
		write "$L" l $((done_l + 1)) "$to" & wpids="$wpids $!"; done_l=$to
	fi
	# The laptop notices its own write by itself; kick it too, so HQ's travels now.
	"$ZILA" -d "$L" sync hq >/dev/null 2>&1
	# Half of the kills come within 20 ms of that kick, while its session runs (a slice's
	# session takes some milliseconds), the others anywhere in 600 ms.
	rnd 2
	if [ "$R" = 0 ]; then rnd 20; else rnd 600; fi
	ms=$R
	rnd 2; victim=$R
	if [ "$victim" = 0 ]; then other=$T/lap.log; else other=$T/hq.log; fi
	n0=$(wc -l <"$other")
	sleep "$(printf '%d.%03d' $((ms / 1000)) $((ms % 1000)))"
	if [ "$victim" = 0 ]; then
		kill -9 "$HQPID" 2>/dev/null && kills_hq=$((kills_hq + 1))
		wait "$HQPID" 2>/dev/null
	else
		kill -9 "$LPID" 2>/dev/null && kills_lap=$((kills_lap + 1))
		wait "$LPID" 2>/dev/null
	fi
	for w in $wpids; do wait "$w" || bad "a write of cycle $cyc failed"; done
	sleep 0.1
	# The survivor saw a session in progress cut (or a handshake) by the kill.
	if tail -n +$((n0 + 1)) "$other" | grep -q "connection cut\|ended early\|handshake"; then cuts=$((cuts + 1)); fi
	if [ "$victim" = 0 ]; then
		daemon_up "$HQ" "$T/hq.log" "$HQP" || bad "hq restarts after kill $cyc"
		HQPID=$last
	else
		daemon_up "$L" "$T/lap.log" "$LP" || bad "laptop restarts after kill $cyc"
		LPID=$last
	fi
done
[ "$done_h" = "$ROWS" ] && [ "$done_l" = "$ROWS" ] || bad "only $done_h/$done_l rows written"

# Sync until in step (each try waits for its session); a daemon keeps nothing in memory
# that the replica does not hold, so a few tries must do.
tries=0
while ! same && [ "$tries" -lt 20 ]; do
	"$ZILA" -d "$L" sync hq --wait --timeout 120 >/dev/null 2>&1
	tries=$((tries + 1))
done
same && ok "hashes equal after $((kills_hq + kills_lap)) kills ($tries final syncs)" || bad "hashes differ after $tries syncs"
echo "# $cyc cycles: SIGKILLed hq $kills_hq times, the laptop $kills_lap times; $cuts kills cut a session in progress"
[ $((kills_hq + kills_lap)) = "$cyc" ] && ok "every cycle killed a running daemon" || bad "only $((kills_hq + kills_lap)) of $cyc kills hit a daemon"

nver=0
for r in "$HQ" "$L"; do
	n=$(basename "$r")
	db=$r/zila.db
	for p in h l; do
		got=$(sqlite3 "$db" "SELECT count(*), coalesce(sum(name = '$p value ' || CAST(substr(id, 2) AS INTEGER)
		  AND phone = printf('$p%09d', CAST(substr(id, 2) AS INTEGER))), 0),
		  min(CAST(substr(id, 2) AS INTEGER)), max(CAST(substr(id, 2) AS INTEGER))
		  FROM people WHERE id GLOB '$p[0-9]*' AND length(id) = 9")
		if [ "$got" = "$ROWS|$ROWS|1|$ROWS" ]; then
			nver=$((nver + ROWS))
		else
			bad "$n: rows written on $([ $p = h ] && echo hq || echo the laptop): count|right values|min|max = $got, wanted $ROWS|$ROWS|1|$ROWS"
		fi
	done
	dup=$(sqlite3 "$db" "SELECT count(*) FROM (SELECT feed, seq FROM zila_entries GROUP BY feed, seq HAVING count(*) > 1)")
	[ "$dup" = 0 ] && ok "$n: no entry stored twice" || bad "$n: $dup entries stored twice"
	gaps=$(sqlite3 "$db" "SELECT count(*) FROM zila_feeds f WHERE f.head != (SELECT count(*) FROM zila_entries e WHERE e.feed = f.id)
	  OR f.head != (SELECT coalesce(max(seq), 0) FROM zila_entries e WHERE e.feed = f.id)")
	[ "$gaps" = 0 ] && ok "$n: every feed holds 1 .. head without a gap" || bad "$n: $gaps feeds with gaps"
	pend=$(sqlite3 "$db" "SELECT count(*) FROM zila_pending")
	[ "$pend" = 0 ] && ok "$n: nothing left unsealed" || bad "$n: $pend changes unsealed"
	ic=$(sqlite3 "$db" "PRAGMA integrity_check")
	[ "$ic" = ok ] && ok "$n: integrity_check ok" || bad "$n: integrity_check: $ic"
done
[ "$nver" = $((4 * ROWS)) ] && ok "every committed row present once with its value on both sides ($nver checks)" ||
	bad "$nver of $((4 * ROWS)) rows verified"
# Each row was inserted once: sealed exactly once, as one insert, by its author.
"$ZILA" -d "$HQ" --json log --table people >"$T/log.json"
ins=$(grep -o '"op":"insert"' "$T/log.json" | wc -l)
[ "$ins" = $((2 * ROWS)) ] && ok "every row sealed exactly once as an insert ($ins)" || bad "$ins inserts in hq's log, wanted $((2 * ROWS))"
if grep -q "AddressSanitizer\|runtime error" "$T/hq.log" "$T/lap.log"; then bad "sanitizer reports in the logs"; else ok "no sanitizer report"; fi
echo "# crash test: $cyc cycles, $((kills_hq + kills_lap)) SIGKILLs (hq $kills_hq, laptop $kills_lap; $cuts in a session), $((2 * ROWS)) rows written, $nver row copies verified"
finish
