#!/bin/sh
# Long offline: laptop A (district d-1) syncs with HQ, then stays offline for 90 simulated
# days while laptop B (d-1), laptop C (d-2) and HQ are busy: every day each writes a batch
# (new members, events, HQ's org-wide posts, updates and deletes, in its own district and in
# others), sealed as that day's entries; every 10 days they exchange bundles through HQ. A
# works offline too (new members every third day, edits of rows B edits later, edits of rows
# HQ deletes). Then A's daemon catches up with HQ in ONE session: exactly one completed
# session in A's log and no failed one, A's hash equal to B's once B has A's entries too, A's
# rows of d-1 and the org-wide ones exactly HQ's, nothing of d-2 on A, A's overwritten
# values recorded as conflicts (B edited later: B's values kept, A's recorded as lost),
# deleted rows stay deleted, integrity_check and foreign_key_check clean.
#
# Short form (make check): OFFLINE_DAYS=90, OFFLINE_ROWS=20 new members per writer per day.
# Long form: OFFLINE_LONG=1 sh tests/integration/test_offline.sh (200 members per writer per
# day, exchanges every 5 days).
. "$(dirname "$0")/lib.sh"
if [ -n "${OFFLINE_LONG:-}" ]; then
	: "${OFFLINE_ROWS:=200}" "${OFFLINE_EVERY:=5}"
fi
DAYS=${OFFLINE_DAYS:-90}
R=${OFFLINE_ROWS:-20}
EVERY=${OFFLINE_EVERY:-10}
K=20 # rows A and B both edit; rows A edits that HQ deletes
P=$((20000 + ($$ * 17) % 20000))
HQP=$P AP=$((P + 1))
HQ=$T/hq A=$T/a B=$T/b C=$T/c
cleanup() { stop_daemons; done_with_tmp; }
trap cleanup EXIT
command -v sqlite3 >/dev/null || { bad "sqlite3 is needed"; finish; exit 1; }
# a running daemon may hold the write lock a moment: wait for it, as an application would
q() { sqlite3 -cmd ".timeout 20000" "$1/zila.db" "$2"; }
# write DIR SQL: plain SQL from another program (captured by the triggers), sealed as entries.
write() { sqlite3 "$1/zila.db" "PRAGMA foreign_keys = ON; $2" && "$ZILA" -d "$1" seal >/dev/null; }
# give FROM TO: a bundle of what TO lacks, applied on TO.
give() {
	"$ZILA" -d "$2" vector >"$T/to.vec" &&
		"$ZILA" -d "$1" bundle create "$T/x.bndl" --for "$T/to.vec" >/dev/null &&
		"$ZILA" -d "$2" bundle apply "$T/x.bndl" >/dev/null
	rc=$?
	rm -f "$T/x.bndl"
	return $rc
}
# members PREFIX DISTRICT N: SQL for N new members.
members() {
	echo "WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n WHERE x < $3)
	  INSERT INTO people(id, district_id, name, phone, address)
	  SELECT printf('$1-%05d', x), '$2', '$1 member ' || x, '$1' || x, 'Ward ' || (x % 31) FROM n;"
}

printf 'correct horse battery\n' >"$T/pw"
"$ZILA" -d "$HQ" init >/dev/null
"$ZILA" -d "$HQ" org init --name Party --passphrase-file "$T/pw" >/dev/null
write "$HQ" "INSERT INTO states(id, name) VALUES ('s1', 'S');
  INSERT INTO districts(id, state_id, name) VALUES ('d-1', 's1', 'One'), ('d-2', 's1', 'Two')"
for x in "$A:d-1" "$B:d-1" "$C:d-2"; do
	rm -f "$T/.req" "$T/.cert"
	"$ZILA" -d "${x%%:*}" init >/dev/null && enrol "$HQ" "${x%%:*}" "${x#*:}" || { bad "enrol ${x%%:*}"; finish; exit 1; }
done
"$ZILA" -d "$A" peer add --hq "127.0.0.1:$HQP" >/dev/null

# Day 0: the laptops get the catalogue; A registers its district's members; B gets them.
give "$HQ" "$A" && give "$HQ" "$B" && give "$HQ" "$C" && write "$A" "$(members a0 d-1 $((3 * K + 20)))" &&
	give "$A" "$HQ" && give "$HQ" "$B" || { bad "day 0 exchange failed"; finish; exit 1; }
[ "$(q "$B" "SELECT count(*) FROM people")" = $((3 * K + 20)) ] && ok "day 0: A's $((3 * K + 20)) members reached B through HQ" ||
	bad "day 0: B has $(q "$B" "SELECT count(*) FROM people") members"

t0=$(date +%s)
day=1
while [ "$day" -le "$DAYS" ]; do
	d=$(printf '%03d' "$day")
	e=$(printf '%03d' $((day - EVERY)))
	# Each writer's day is one transaction: new rows, and updates and deletes of rows
	# written earlier (by itself or by others, known from the last exchange).
	sb="$(members "b$d" d-1 "$R")
	  UPDATE people SET address = 'Moved on day $d' WHERE id LIKE 'b$e-%' AND id LIKE '%1';
	  DELETE FROM people WHERE id LIKE 'b$e-%' AND id LIKE '%7';"
	sc="$(members "c$d" d-2 "$R")
	  UPDATE people SET address = 'Moved on day $d' WHERE id LIKE 'c$e-%' AND id LIKE '%1';
	  DELETE FROM people WHERE id LIKE 'c$e-%' AND id LIKE '%7';"
	sh="INSERT INTO posts(id, name, level, rank) VALUES ('post-$d', 'Post of day $d', 'block', $day);
	  INSERT INTO events(id, district_id, kind, title, held_on) VALUES
	    ('ev1-$d', 'd-1', 'workshop', 'Workshop $d', '2026-$d'), ('ev2-$d', 'd-2', 'training', 'Training $d', '2026-$d');
	  INSERT INTO people(id, district_id, name, phone) VALUES ('h$d-1', 'd-1', 'HQ pick $d', 'h$d-1'), ('h$d-2', 'd-2', 'HQ pick $d', 'h$d-2');
	  UPDATE people SET name = name || ' (checked by HQ)' WHERE (id LIKE 'b$e-%' OR id LIKE 'c$e-%') AND id LIKE '%3';
	  UPDATE events SET place = 'Hall $d' WHERE id IN ('ev1-$e', 'ev2-$e');"
	sa=""
	# A, offline: edits rows B edits later, and rows HQ deletes later; new members every third day.
	[ "$day" = 1 ] && sa="UPDATE people SET name = 'A renamed ' || id WHERE id <= printf('a0-%05d', $K);"
	[ "$day" = 2 ] && sa="UPDATE people SET phone = 'a-new-' || id WHERE id > printf('a0-%05d', $K) AND id <= printf('a0-%05d', $((2 * K)));"
	[ "$day" = 60 ] && sa="UPDATE people SET address = 'A late edit' WHERE id > printf('a0-%05d', $K) AND id <= printf('a0-%05d', $((2 * K)));"
	[ $((day % 3)) = 0 ] && sa="$sa $(members "a$d" d-1 "$R")"
	[ "$day" = 30 ] && sh="$sh DELETE FROM people WHERE id > printf('a0-%05d', $K) AND id <= printf('a0-%05d', $((2 * K)));"
	[ "$day" = 50 ] && sb="$sb UPDATE people SET name = 'B renamed ' || id WHERE id <= printf('a0-%05d', $K);"
	write "$B" "$sb" && write "$C" "$sc" && write "$HQ" "$sh" || bad "day $day: a write failed"
	[ -z "$sa" ] || write "$A" "$sa" || bad "day $day: A's write failed"
	if [ $((day % EVERY)) = 0 ] || [ "$day" = "$DAYS" ]; then
		give "$B" "$HQ" && give "$C" "$HQ" && give "$HQ" "$B" || bad "exchange on day $day failed"
	fi
	day=$((day + 1))
done
[ "$(q "$B" "SELECT count(*) FROM people")" = "$(q "$HQ" "SELECT count(*) FROM people WHERE district_id = 'd-1'")" ] &&
	ok "$DAYS days written in $(($(date +%s) - t0)) s; B and HQ in step for d-1" || bad "B and HQ differ before the catch-up"
hq_entries=$(q "$HQ" "SELECT count(*) FROM zila_entries")
a_own=$(q "$A" "SELECT count(*) FROM zila_entries")
echo "# hq holds $hq_entries entries, $(q "$HQ" "SELECT count(*) FROM people") members; A holds $a_own entries, $(q "$A" "SELECT count(*) FROM people") members"

# The catch-up: one session.
"$ZILA" -d "$HQ" daemon --listen "127.0.0.1:$HQP" --beacon-port 0 2>>"$T/hq.log" &
pids="$pids $!"
until_ok 50 test -S "$HQ/zila.sock" || { bad "hq did not start"; finish; exit 1; }
t1=$(date +%s%3N)
"$ZILA" -d "$A" daemon --listen "127.0.0.1:$AP" --beacon-port 0 2>>"$T/a.log" &
pids="$pids $!"
until_ok 50 test -S "$A/zila.sock"
until_ok 300 grep -q "synced with\|warn: sync with" "$T/a.log"
t2=$(date +%s%3N)
sleep 1
"$ZILA" -d "$A" stop >/dev/null 2>&1
"$ZILA" -d "$HQ" stop >/dev/null 2>&1
wait
pids=""
nok=$(grep -c "info: synced with" "$T/a.log")
nfail=$(grep -c "warn: sync with" "$T/a.log")
echo "# catch-up: $(grep -h "synced with" "$T/a.log" | sed 's/^zila\[[0-9]*\]: info: //') (wall $((t2 - t1)) ms from the daemon's start)"
[ "$nok" = 1 ] && [ "$nfail" = 0 ] && ok "A caught up in one session (one completed, none failed)" ||
	bad "A's log shows $nok completed and $nfail failed sessions"
recv=$(sed -n 's/.*received \([0-9]*\) (applied.*/\1/p' "$T/a.log" | head -1)
sent=$(sed -n 's/.*sent \([0-9]*\) entries.*/\1/p' "$T/a.log" | head -1)
want_recv=$(($(q "$HQ" "SELECT count(*) FROM zila_entries e JOIN zila_feeds f ON f.id = e.feed WHERE f.part IN ('', 'd-1')") - a_own))
[ "$recv" = "$want_recv" ] && ok "A received the $recv entries of d-1 and org-wide it lacked, and sent its $sent" ||
	bad "A received $recv entries, wanted $want_recv"

# B gets A's entries through HQ; then A and B hold the same.
give "$HQ" "$B"
[ "$("$ZILA" -d "$A" hash)" = "$("$ZILA" -d "$B" hash)" ] && ok "A's hash equals B's" || bad "A and B differ"
diff=$(sqlite3 "$A/zila.db" "ATTACH '$HQ/zila.db' AS h;
  SELECT (SELECT count(*) FROM (SELECT * FROM main.people EXCEPT SELECT * FROM h.people WHERE district_id = 'd-1'))
       + (SELECT count(*) FROM (SELECT * FROM h.people WHERE district_id = 'd-1' EXCEPT SELECT * FROM main.people))
       + (SELECT count(*) FROM (SELECT * FROM main.events EXCEPT SELECT * FROM h.events WHERE district_id = 'd-1'))
       + (SELECT count(*) FROM (SELECT * FROM h.events WHERE district_id = 'd-1' EXCEPT SELECT * FROM main.events))
       + (SELECT count(*) FROM (SELECT * FROM main.posts EXCEPT SELECT * FROM h.posts))
       + (SELECT count(*) FROM (SELECT * FROM h.posts EXCEPT SELECT * FROM main.posts))")
[ "$diff" = 0 ] && ok "A's rows are HQ's: $(q "$A" "SELECT count(*) FROM people") members, $(q "$A" "SELECT count(*) FROM events") events of d-1, $(q "$A" "SELECT count(*) FROM posts") org-wide posts" ||
	bad "A's rows differ from HQ's in $diff rows"
[ "$(q "$A" "SELECT count(*) FROM people WHERE district_id = 'd-2'")" = 0 ] && ok "nothing of d-2 reached A" || bad "d-2 rows on A"
# Conflicts: B renamed later than A, so B's names are kept everywhere and A's are recorded
# on A as lost; the rows HQ deleted stay deleted although A edited them before and after.
kept=$(q "$A" "SELECT count(*) FROM people WHERE id <= printf('a0-%05d', $K) AND name = 'B renamed ' || id")
conf=$(q "$A" "SELECT count(*) FROM zila_conflicts WHERE tbl = 'people' AND col = 'name' AND kept = 'B renamed ' || pk AND lost = 'A renamed ' || pk")
echo "# conflicts recorded: A $(q "$A" "SELECT count(*) FROM zila_conflicts"), B $(q "$B" "SELECT count(*) FROM zila_conflicts"), HQ $(q "$HQ" "SELECT count(*) FROM zila_conflicts")"
[ "$kept" = "$K" ] && [ "$conf" = "$K" ] && ok "the $K names both edited: B's (later) kept, A's recorded as lost conflicts on A" ||
	bad "names: $kept of $K are B's, $conf conflicts recorded on A"
for x in "$B" "$HQ"; do
	n=$(q "$x" "SELECT count(*) FROM zila_conflicts WHERE tbl = 'people' AND col = 'name' AND kept = 'B renamed ' || pk AND lost = 'A renamed ' || pk")
	[ "$n" = "$K" ] && ok "$(basename "$x") recorded A's $K late-arriving names as lost conflicts" || bad "$(basename "$x") recorded $n of $K conflicts"
done
gone=$(q "$A" "SELECT count(*) FROM people WHERE id > printf('a0-%05d', $K) AND id <= printf('a0-%05d', $((2 * K)))")
[ "$gone" = 0 ] && [ "$(q "$B" "SELECT count(*) FROM people WHERE id > printf('a0-%05d', $K) AND id <= printf('a0-%05d', $((2 * K)))")" = 0 ] &&
	ok "the $K rows HQ deleted stay deleted on A and B (A's edits before and after do not revive them)" || bad "$gone deleted rows are back on A"
for x in "$A" "$B" "$HQ"; do
	[ "$(q "$x" "PRAGMA integrity_check; PRAGMA foreign_key_check;")" = ok ] || bad "integrity or foreign keys of $(basename "$x")"
done
ok "integrity_check ok and foreign keys clean on A, B and HQ"
if grep -q "error:" "$T/hq.log" "$T/a.log"; then bad "error lines: $(grep -h error: "$T"/*.log | head -3)"; else ok "no error in the logs"; fi
finish
