#!/bin/sh
# Busy replica: an application holds a long write transaction (BEGIN IMMEDIATE, kept open
# for HOLD seconds by python3's sqlite3 module) on a replica while its daemon
#   1. receives entries from HQ (the laptop's apply waits),
#   2. HQ receives the laptop's entries (HQ's apply waits, the laptop is told and retries),
#   3. local changes committed just before the lock are to be sealed (the seal waits).
# The daemon waits, says so in its log, gives up for a while and retries with backoff; it
# keeps answering `zila status`; nothing is dropped or skipped: after the release all rows
# (also those written inside the long transactions) are on both sides exactly once, hashes
# equal, feeds gapless, integrity_check ok.
#
# Short form (make check): 3 phases, 5 s holds, 20,000 + 2,000 rows.
# Long form:  BUSY_ROUNDS=50 BUSY_HOLD=8 sh tests/integration/test_busy.sh
. "$(dirname "$0")/lib.sh"
ROUNDS=${BUSY_ROUNDS:-1}
HOLD=${BUSY_HOLD:-5}
ROWS=${BUSY_ROWS:-20000}
P=$((20000 + ($$ * 19) % 20000))
HQP=$P LP=$((P + 1))
HQ=$T/hq L=$T/lap
cleanup() { stop_daemons -9; done_with_tmp; }
trap cleanup EXIT
trap 'exit 1' INT TERM
same() { same_hash "$HQ" "$L"; }
# The application: optionally commits FIRST rows, then BEGIN IMMEDIATE, inserts IN rows,
# touches READY, holds the lock for HOLD s, commits.
cat >"$T/hold.py" <<'EOF'
import sqlite3, sys, time
db, prefix, first, inside, ready, hold = sys.argv[1:7]
c = sqlite3.connect(db, timeout=60, isolation_level=None)
ins = ("WITH RECURSIVE n(x) AS (SELECT ? UNION ALL SELECT x + 1 FROM n WHERE x < ?)"
       " INSERT INTO people(id, district_id, name, phone)"
       " SELECT printf('%s%%08d', x), 'd-1', '%s value ' || x, printf('%s%%09d', x) FROM n") % (prefix, prefix, prefix)
a, b = (int(v) for v in first.split('-'))
if b >= a:
    c.execute(ins, (a, b))
c.execute("BEGIN IMMEDIATE")
a, b = (int(v) for v in inside.split('-'))
c.execute(ins, (a, b))
open(ready, "w").close()
time.sleep(float(hold))
c.execute("COMMIT")
EOF
# hold DIR PREFIX FIRST INSIDE: runs the application in the background until it holds the
# lock; sets $holder.
hold() {
	rm -f "$T/ready"
	python3 "$T/hold.py" "$1/zila.db" "$2" "$3" "$4" "$T/ready" "$HOLD" &
	holder=$!
	until_ok 100 test -e "$T/ready"
}
# rows DIR PREFIX N: N rows PREFIX00000001 .. with the values written, exactly once
rows() {
	[ "$(sqlite3 "$1/zila.db" "SELECT count(*), coalesce(sum(name = '$2 value ' || CAST(substr(id, 2) AS INTEGER)), 0),
	  min(CAST(substr(id, 2) AS INTEGER)), max(CAST(substr(id, 2) AS INTEGER)) FROM people WHERE id GLOB '$2[0-9]*'")" = "$3|$3|1|$3" ]
}
# waited LOG FROM: the log says, after line FROM, that the daemon waited for the lock
waited() { tail -n +$(($2 + 1)) "$1" | grep -q "is locked by another program's write transaction: waiting"; }

printf 'correct horse battery\n' >"$T/pw"
for d in "$HQ" "$L"; do "$ZILA" -d "$d" init >/dev/null; done
"$ZILA" -d "$HQ" org init --name Party --passphrase-file "$T/pw" >/dev/null
"$ZILA" -d "$HQ" sql "INSERT INTO states(id, name) VALUES ('s1', 'S');
  INSERT INTO districts(id, state_id, name) VALUES ('d-1', 's1', 'One')" >/dev/null
daemon_up "$HQ" "$T/hq.log" "$HQP" || { bad "hq daemon starts"; finish; exit 1; }
code=$("$ZILA" -d "$HQ" invite --district d-1 | head -1)
expect 0 "the laptop joins" -- "$ZILA" -d "$L" join "$code" --hq "127.0.0.1:$HQP" --name lap
daemon_up "$L" "$T/lap.log" "$LP" || { bad "laptop daemon starts"; finish; exit 1; }
expect 0 "the laptop syncs the catalogue" -- "$ZILA" -d "$L" sync hq --wait

round=0 nh=0 na=0 nl=0 nb=0 nwaits=0 slow=0
while [ "$round" -lt "$ROUNDS" ]; do
	round=$((round + 1))
	# 1. The laptop receives while an application holds its replica.
	"$ZILA" -d "$HQ" sql "WITH RECURSIVE n(x) AS (SELECT $((nh + 1)) UNION ALL SELECT x + 1 FROM n WHERE x < $((nh + ROWS)))
	  INSERT INTO people(id, district_id, name, phone) SELECT printf('h%08d', x), 'd-1', 'h value ' || x, printf('h%09d', x) FROM n" >/dev/null
	"$ZILA" -d "$HQ" seal >/dev/null
	nh=$((nh + ROWS))
	n0=$(wc -l <"$T/lap.log")
	hold "$L" a 1-0 "$((na + 1))-$((na + 500))" || bad "round $round: the application gets the lock"
	na=$((na + 500))
	"$ZILA" -d "$L" sync hq >/dev/null 2>&1
	sleep 1
	t0=$(date +%s%N)
	expect 0 "round $round: status answers while the replica is locked" -- timeout 10 "$ZILA" -d "$L" status
	ms=$(( ($(date +%s%N) - t0) / 1000000 ))
	[ "$ms" -gt "$slow" ] && slow=$ms
	wait "$holder" || bad "round $round: the application's transaction failed"
	if until_ok 300 same; then ok "round $round: laptop, locked while receiving: in step after the release"; else bad "round $round: not in step after the release (laptop locked)"; fi
	waited "$T/lap.log" "$n0" && ok "round $round: the laptop logged that it waited" || bad "round $round: no wait in the laptop's log"
	tail -n +$((n0 + 1)) "$T/lap.log" | grep -q "still locked after" && ok "round $round: it gave up for a while and retried" ||
		bad "round $round: no retry after the lock: $(tail -n +$((n0 + 1)) "$T/lap.log" | grep -v debug | tail -3)"

	# 2. HQ receives while an application holds HQ's replica.
	n0=$(wc -l <"$T/hq.log")
	hold "$HQ" b 1-0 "$((nb + 1))-$((nb + 300))" || bad "round $round: the application gets hq's lock"
	nb=$((nb + 300))
	sqlite3 "$L/zila.db" "WITH RECURSIVE n(x) AS (SELECT $((nl + 1)) UNION ALL SELECT x + 1 FROM n WHERE x < $((nl + 2000)))
	  INSERT INTO people(id, district_id, name, phone) SELECT printf('l%08d', x), 'd-1', 'l value ' || x, printf('l%09d', x) FROM n"
	nl=$((nl + 2000))
	wait "$holder" || bad "round $round: the application's transaction on hq failed"
	if until_ok 300 same; then ok "round $round: hq, locked while receiving: in step after the release"; else bad "round $round: not in step after the release (hq locked)"; fi
	waited "$T/hq.log" "$n0" && ok "round $round: hq logged that it waited" || bad "round $round: no wait in hq's log"

	# 3. Local changes to seal, then the lock: the seal waits.
	n0=$(wc -l <"$T/lap.log")
	hold "$L" a "$((na + 1))-$((na + 1000))" "$((na + 1001))-$((na + 1200))" || bad "round $round: the application gets the lock again"
	na=$((na + 1200))
	wait "$holder" || bad "round $round: the application's second transaction failed"
	if until_ok 300 same; then ok "round $round: local changes sealed and sent after the release"; else bad "round $round: not in step after the release (seal)"; fi
	waited "$T/lap.log" "$n0" && ok "round $round: the seal's wait is logged" || bad "round $round: no wait logged for the seal"
done

expect 0 "status --json" -- "$ZILA" -d "$L" --json status
nwaits=$(sed -n 's/.*"busy_waits":\([0-9]*\).*/\1/p' "$T/out")
[ "${nwaits:-0}" -gt 0 ] && ok "status counts the waits ($nwaits)" || bad "status shows no waits"
for r in "$HQ" "$L"; do
	n=$(basename "$r")
	rows "$r" h "$nh" && rows "$r" a "$na" && rows "$r" l "$nl" && rows "$r" b "$nb" &&
		ok "$n: every row present once with its value ($((nh + na + nl + nb)))" || bad "$n: rows missing or wrong"
	dup=$(sqlite3 "$r/zila.db" "SELECT count(*) FROM (SELECT feed, seq FROM zila_entries GROUP BY feed, seq HAVING count(*) > 1)")
	gaps=$(sqlite3 "$r/zila.db" "SELECT count(*) FROM zila_feeds f WHERE f.head != (SELECT count(*) FROM zila_entries e WHERE e.feed = f.id)")
	[ "$dup$gaps" = 00 ] && ok "$n: no entry twice, no feed with a gap" || bad "$n: $dup duplicate entries, $gaps feeds with gaps"
	[ "$(sqlite3 "$r/zila.db" "SELECT count(*) FROM zila_pending")" = 0 ] && ok "$n: nothing left unsealed" || bad "$n: changes left unsealed"
	[ "$(sqlite3 "$r/zila.db" "PRAGMA integrity_check")" = ok ] && ok "$n: integrity_check ok" || bad "$n: integrity_check fails"
done
if grep -q "AddressSanitizer\|runtime error" "$T/hq.log" "$T/lap.log"; then bad "sanitizer reports"; else ok "no sanitizer report"; fi
echo "# busy test: $round rounds, locks held $((3 * round)) x $HOLD s; the daemons waited $nwaits times (laptop); status answered in at most $slow ms while locked; $((nh + na + nl + nb)) rows verified on both sides"
finish
