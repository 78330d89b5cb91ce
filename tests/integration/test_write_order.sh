#!/bin/sh
# The order of writes is the order they were made (#16): two district laptops edit one
# member with plain sqlite3 while no daemon runs, B five seconds after A; B seals first, A
# seals later. After the exchange through HQ (bundles, no daemon either), B's edit holds on
# every replica, A's is kept as a conflict where it lost, each edit's entry is dated when it
# was made (to the second), and a transaction of A's (two updates and an insert, made half
# a second apart) goes out whole.
. "$(dirname "$0")/lib.sh"
HQ=$T/hq A=$T/a B=$T/b
cleanup() { stop_daemons; done_with_tmp; }
trap cleanup EXIT
command -v sqlite3 >/dev/null || { bad "sqlite3 is needed"; finish; exit 1; }
# a running daemon may hold the write lock a moment: wait for it, as an application would
q() { sqlite3 -cmd ".timeout 20000" "$1/zila.db" "$2"; }
give() { # give FROM TO: a bundle of what TO lacks, applied on TO
	"$ZILA" -d "$2" vector >"$T/to.vec" &&
		"$ZILA" -d "$1" bundle create "$T/x.bndl" --for "$T/to.vec" >/dev/null &&
		"$ZILA" -d "$2" bundle apply "$T/x.bndl" >/dev/null
	rc=$?
	rm -f "$T/x.bndl"
	return $rc
}

org_init "$HQ" || { bad "hq"; finish; exit 1; }
for x in "$A" "$B"; do
	rm -f "$T/.req" "$T/.cert"
	"$ZILA" -d "$x" init >/dev/null && enrol "$HQ" "$x" d-1 || { bad "enrol $x"; finish; exit 1; }
done
sqlite3 "$HQ/zila.db" "INSERT INTO people(id, district_id, name, phone) VALUES ('m1', 'd-1', 'Asha Devi', '9000000001')"
"$ZILA" -d "$HQ" seal >/dev/null
give "$HQ" "$A" && give "$HQ" "$B" || { bad "first exchange failed"; finish; exit 1; }
[ "$(q "$A" "SELECT name FROM people WHERE id = 'm1'")" = "Asha Devi" ] && ok "both laptops hold the member" || bad "the member did not reach A"

# No daemon runs: each laptop's clerk edits the member with sqlite3, A first.
ta=$(date +%s)
sqlite3 "$A/zila.db" "UPDATE people SET name = 'Asha Kumari (A, earlier)' WHERE id = 'm1'"
sleep 5
tb=$(date +%s)
sqlite3 "$B/zila.db" "UPDATE people SET name = 'Asha Kumari Devi (B, 5 s later)' WHERE id = 'm1'"
# B seals at once; A only two seconds later, after B's edit
"$ZILA" -d "$B" seal >/dev/null || bad "B's seal failed"
sleep 2
"$ZILA" -d "$A" seal >/dev/null || bad "A's seal failed"
da=$(q "$A" "SELECT e.hlc >> 16 FROM zila_entries e JOIN zila_feeds f ON f.id = e.feed ORDER BY e.rowid DESC LIMIT 1")
db=$(q "$B" "SELECT e.hlc >> 16 FROM zila_entries e JOIN zila_feeds f ON f.id = e.feed ORDER BY e.rowid DESC LIMIT 1")
[ $((da / 1000)) -ge "$ta" ] && [ $((da / 1000)) -le $((ta + 1)) ] && [ $((db / 1000)) -ge "$tb" ] && [ $((db / 1000)) -le $((tb + 1)) ] &&
	ok "each edit is dated when it was made, not when it was sealed (A $((da / 1000 - ta)) s, B $((db / 1000 - tb)) s after the edit)" ||
	bad "A's entry dated $da (edit at $ta s), B's $db (edit at $tb s)"

# The exchange, A's bundle first: HQ, then each laptop, gets everything.
give "$A" "$HQ" && give "$B" "$HQ" && give "$HQ" "$A" && give "$HQ" "$B" || bad "the exchange failed"
for x in "$HQ" "$A" "$B"; do
	n=$(q "$x" "SELECT name FROM people WHERE id = 'm1'")
	[ "$n" = "Asha Kumari Devi (B, 5 s later)" ] && ok "$(basename "$x") holds B's later edit" || bad "$(basename "$x") holds '$n'"
done
same_hash "$HQ" "$A" && same_hash "$HQ" "$B" && ok "every replica holds the same state" || bad "the replicas differ"
[ "$(q "$A" "SELECT count(*) FROM zila_conflicts WHERE lost = 'Asha Kumari (A, earlier)'")" = 1 ] &&
	ok "A's earlier edit is kept for review where it lost" || bad "A's edit is not among A's conflicts"

# One transaction of A's, its statements half a second apart (an insert no trigger dates
# between two updates): one entry, dated by its first change, applied whole on HQ.
n0=$(q "$A" "SELECT count(*) FROM zila_entries")
python3 - "$A/zila.db" <<'PY' || bad "A's transaction failed"
import sqlite3, sys, time
c = sqlite3.connect(sys.argv[1], isolation_level=None)
c.execute("BEGIN")
c.execute("UPDATE people SET phone = '9000000002' WHERE id = 'm1'")
c.execute("INSERT INTO people(id, district_id, name, phone) VALUES ('m2', 'd-1', 'Ravi Kumar', '9000000003')")
time.sleep(0.5)
c.execute("UPDATE people SET address = 'Ward 4' WHERE id = 'm1'")
c.execute("COMMIT")
PY
"$ZILA" -d "$A" seal >/dev/null
n1=$(q "$A" "SELECT count(*) FROM zila_entries")
[ $((n1 - n0)) = 1 ] && ok "A's transaction went out as one entry" || bad "A's transaction went out as $((n1 - n0)) entries"
give "$A" "$HQ" && [ "$(q "$HQ" "SELECT phone || '|' || address FROM people WHERE id = 'm1'")|$(q "$HQ" "SELECT count(*) FROM people WHERE id = 'm2'")" = "9000000002|Ward 4|1" ] &&
	ok "HQ applied it whole" || bad "HQ holds $(q "$HQ" "SELECT phone, address FROM people WHERE id = 'm1'")"
finish
