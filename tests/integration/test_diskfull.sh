#!/bin/sh
# Disk full: the laptop's replica lives on a small tmpfs that fills while it applies a large
# sync from HQ. The daemon logs a clear error naming the replica, `zila status` (and --json,
# field last_error) shows it, nothing partial is applied (same hash as before, integrity_check
# ok), the daemon keeps serving and retries with backoff (no tight loop); once space is freed
# the sync finishes by itself with equal hashes and exact counts. The rows are written by a
# second laptop, so the failed batch is the first the laptop sees of that device: its origin,
# recorded in the rolled-back transaction, must not be remembered. On the full disk `zila
# history compact` says it needs room and changes nothing. Needs root (mount); skipped
# otherwise.
#
# Short form (make check): 30,000 rows, 1 fill.
# Long form:  FULL_ROUNDS=20 FULL_ROWS=100000 sh tests/integration/test_diskfull.sh
#   (the disk fills and is freed FULL_ROUNDS times, each round with FULL_ROWS more rows)
. "$(dirname "$0")/lib.sh"
if [ "$(id -u)" != 0 ]; then
	echo "skipped: needs root (mounts a small tmpfs)"
	exit 0
fi
ROUNDS=${FULL_ROUNDS:-1}
ROWS=${FULL_ROWS:-30000}
P=$((20000 + ($$ * 17) % 20000))
HQP=$P LP=$((P + 1)) L2P=$((P + 2))
HQ=$T/hq MNT=$T/small L=$T/small/lap L2=$T/lap2
mounted=""
cleanup() {
	stop_daemons -9
	[ -n "$mounted" ] && umount "$MNT" 2>/dev/null
	done_with_tmp
}
trap cleanup EXIT
trap 'exit 1' INT TERM
mkdir -p "$MNT"
# 32 MiB, and room for every round's rows (about 400 bytes a row in the replica) besides:
# each round fills what is left but 1 MiB.
SIZE_MB=$((32 + ROUNDS * ROWS / 2500))
if ! mount -t tmpfs -o size=${SIZE_MB}m tmpfs "$MNT" 2>/dev/null; then
	echo "skipped: needs root that may mount (mount -t tmpfs failed)"
	exit 0
fi
mounted=1
same() { same_hash "$HQ" "$L"; }
avail_kb() { df -k --output=avail "$MNT" | tail -1 | tr -d ' '; }

printf 'correct horse battery\n' >"$T/pw"
for d in "$HQ" "$L" "$L2"; do "$ZILA" -d "$d" init >/dev/null; done
"$ZILA" -d "$HQ" org init --name Party --passphrase-file "$T/pw" >/dev/null
"$ZILA" -d "$HQ" sql "INSERT INTO states(id, name) VALUES ('s1', 'S');
  INSERT INTO districts(id, state_id, name) VALUES ('d-1', 's1', 'One')" >/dev/null
daemon_up "$HQ" "$T/hq.log" "$HQP" || { bad "hq daemon starts"; finish; exit 1; }
code=$("$ZILA" -d "$HQ" invite --district d-1 | head -1)
expect 0 "the laptop (replica on a $SIZE_MB MiB tmpfs) joins" -- "$ZILA" -d "$L" join "$code" --hq "127.0.0.1:$HQP" --name lap
daemon_up "$L" "$T/lap.log" "$LP" || { bad "laptop daemon starts"; finish; exit 1; }
LPID=$last
expect 0 "the laptop syncs the catalogue" -- "$ZILA" -d "$L" sync hq --wait
code=$("$ZILA" -d "$HQ" invite --district d-1 | head -1)
expect 0 "a second laptop joins" -- "$ZILA" -d "$L2" join "$code" --hq "127.0.0.1:$HQP" --name lap2
daemon_up "$L2" "$T/lap2.log" "$L2P" || { bad "second laptop's daemon starts"; finish; exit 1; }
RL=$(realpath "$L")

round=0 nfull=0 total=0
while [ "$round" -lt "$ROUNDS" ]; do
	round=$((round + 1))
	from=$((total + 1)) total=$((total + ROWS))
	"$ZILA" -d "$L2" sql "WITH RECURSIVE n(x) AS (SELECT $from UNION ALL SELECT x + 1 FROM n WHERE x < $total)
	  INSERT INTO people(id, district_id, name, phone, address)
	  SELECT printf('p%08d', x), 'd-1', 'Person ' || x, printf('9%09d', x), 'Ward ' || (x % 97) || ', a long address line' FROM n" >/dev/null
	expect 0 "round $round: the second laptop sends $ROWS rows to hq" -- "$ZILA" -d "$L2" sync hq --wait --timeout 120
	before=$("$ZILA" -d "$L" hash)
	nbefore=$(sqlite3 "$L/zila.db" "SELECT count(*) FROM people")
	# Odd rounds leave nothing free (not even for the session's small writes before the
	# batch), even rounds 1 MiB: the batch (several MiB in the replica) cannot fit.
	if [ $((round % 2)) = 1 ]; then
		head -c $(( $(avail_kb) * 1024 )) /dev/zero >"$MNT/filler" 2>/dev/null
	else
		head -c $(( ($(avail_kb) - 1024) * 1024 )) /dev/zero >"$MNT/filler" 2>/dev/null
	fi
	echo "# round $round: $ROWS rows of the second laptop at hq, $(avail_kb) KiB free on the laptop's filesystem"
	n0=$(wc -l <"$T/lap.log")
	expect 1 "round $round: the sync fails while the disk is full" -- "$ZILA" -d "$L" sync hq --wait --timeout 120
	has "$T/err" "disk full\|disk is full" "round $round: sync --wait says the disk is full"
	if tail -n +$((n0 + 1)) "$T/lap.log" | grep -q "error: disk full: no space left on device for the replica '$RL/zila.db'"; then
		ok "round $round: the daemon logs 'disk full' naming the replica"
		nfull=$((nfull + 1))
	else
		bad "round $round: no disk-full line in the log: $(tail -n +$((n0 + 1)) "$T/lap.log" | tail -3)"
	fi
	kill -0 "$LPID" 2>/dev/null && ok "round $round: the daemon keeps running" || bad "round $round: the daemon died"
	expect 0 "round $round: status answers" -- "$ZILA" -d "$L" status
	has "$T/out" "warning: disk full: no space left on device for the replica '$RL/zila.db'" "round $round: status shows the error"
	expect 0 "round $round: status --json answers" -- "$ZILA" -d "$L" --json status
	has "$T/out" '"last_error":"disk full: no space left on device' "round $round: json status has last_error"
	[ "$("$ZILA" -d "$L" hash)" = "$before" ] && ok "round $round: nothing partial applied (hash as before)" || bad "round $round: the replica changed"
	[ "$(sqlite3 "$L/zila.db" "SELECT count(*) FROM people")" = "$nbefore" ] && ok "round $round: row count as before ($nbefore)" || bad "round $round: rows changed"
	[ "$(sqlite3 "$L/zila.db" "PRAGMA integrity_check")" = ok ] && ok "round $round: integrity_check ok while full" || bad "round $round: integrity_check fails"
	# Retries back off: in 4 s, at most 4 more attempts (1 s, 2 s, 4 s, ... apart).
	sleep 4
	tries=$(tail -n +$((n0 + 1)) "$T/lap.log" | grep -c "error: disk full")
	echo "# round $round: $tries attempts failed on the full disk in about 4 s"
	[ "$tries" -ge 2 ] && [ "$tries" -le 5 ] && ok "round $round: the daemon retries with backoff ($tries attempts)" ||
		bad "round $round: $tries failed attempts in 4 s (wanted 2 to 5: a retry, no tight loop)"
	rm -f "$MNT/filler"
	# No kick: the daemon's own retry finishes the sync.
	if until_ok 200 same; then ok "round $round: once space is freed the sync finishes by itself"; else bad "round $round: hashes differ after space was freed"; fi
	n=$(sqlite3 "$L/zila.db" "SELECT count(*) FROM people WHERE id GLOB 'p[0-9]*'")
	[ "$n" = "$total" ] && ok "round $round: all $total rows on the laptop" || bad "round $round: $n rows on the laptop, wanted $total"
	orphans=$(sqlite3 "$L/zila.db" "SELECT count(*) FROM zila_feeds WHERE origin NOT IN (SELECT id FROM zila_origins)")
	[ "$orphans" = 0 ] && ok "round $round: every feed names a recorded origin" || bad "round $round: $orphans feeds name an origin that was rolled back"
	n0=$(wc -l <"$T/lap.log")
	expect 0 "round $round: one more sync" -- "$ZILA" -d "$L" sync hq --wait
	tail -n +$((n0 + 1)) "$T/lap.log" | grep -q "synced with.*already in step" && ok "round $round: the laptop is in step (nothing sent again)" ||
		bad "round $round: not in step after the sync: $(tail -n +$((n0 + 1)) "$T/lap.log" | grep synced)"
	# The daemon has written a little since (the peer table): checkpoint the WAL so the
	# next round starts from a small file.
	sqlite3 "$L/zila.db" "PRAGMA wal_checkpoint(TRUNCATE)" >/dev/null
done
expect 0 "status after recovery" -- "$ZILA" -d "$L" --json status
has "$T/out" '"last_error":null' "the error is cleared after a completed sync"
# Compacting needs room for a copy of the replica: on the full disk it says so and changes
# nothing; with room it compacts.
before=$("$ZILA" -d "$L" hash)
head -c $(( ($(avail_kb) - 1024) * 1024 )) /dev/zero >"$MNT/filler" 2>/dev/null
expect 1 "zila history compact fails on the full disk" -- "$ZILA" -d "$L" history compact
has "$T/err" "not enough free disk space to compact the replica: it needs [0-9.]* MiB free beside '.*', there is [0-9.]* MiB" \
	"it says there is not enough room, and how much it needs"
[ "$("$ZILA" -d "$L" hash)" = "$before" ] && ok "the replica is as it was" || bad "the replica changed"
rm -f "$MNT/filler"
expect 0 "with room, zila history compact compacts" -- "$ZILA" -d "$L" history compact
has "$T/out" "compacted the replica from" "and says what it did"
[ "$("$ZILA" -d "$L" hash)" = "$before" ] && ok "compacted, the replica hashes as before" || bad "compacted, the replica changed"
[ "$(sqlite3 "$L/zila.db" "PRAGMA integrity_check")" = ok ] && ok "integrity_check ok at the end" || bad "integrity_check fails at the end"
dup=$(sqlite3 "$L/zila.db" "SELECT count(*) FROM (SELECT feed, seq FROM zila_entries GROUP BY feed, seq HAVING count(*) > 1)")
[ "$dup" = 0 ] && ok "no entry stored twice" || bad "$dup entries stored twice"
if grep -q "AddressSanitizer\|runtime error" "$T/lap.log"; then bad "sanitizer reports"; else ok "no sanitizer report"; fi
echo "# disk-full test: $round rounds, disk full $nfull times, $total rows verified on the laptop after freeing space"
finish
