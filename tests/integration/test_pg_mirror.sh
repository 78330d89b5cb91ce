#!/bin/sh
# Issue #20 (3): HQ's merged state in PostgreSQL. A real PostgreSQL server (Debian's
# postgresql, run by pg_lib.sh as a non-root user on a private socket), HQ's daemon with
# --postgres, two laptops' daemons syncing into it. After each step every row of every table
# and the parked rows are compared between HQ's replica and PostgreSQL (pg_compare.py):
# inserts with awkward text, updates, deletes, a duplicate parked on a UNIQUE key and then
# settled, PostgreSQL stopped while laptops sync and started again, a schema change (a
# column, a table, an index) with rows in it, HQ's daemon restarted (the mark resumes: no
# row copied twice, none lost), and a password in the connection string refused; the
# readable views (zila.T_named) name the parents of foreign-key ids.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/pg_lib.sh"
P=$((20000 + ($$ + 9100) % 20000))
HQ=$T/hq A=$T/a B=$T/b
cleanup() { stop_daemons; pg_down; done_with_tmp; }
trap cleanup EXIT
trap 'exit 1' INT TERM HUP PIPE
# a running daemon may hold the write lock a moment: wait for it, as an application would
q() { sqlite3 -cmd ".timeout 20000" "$1/zila.db" "$2"; }
DIR=$(cd "$(dirname "$0")" && pwd)
compare() { python3 "$DIR/pg_compare.py" "$HQ/zila.db" $PSQL -d zila >"$T/cmp" 2>&1; }
# in_step: HQ's daemon says the mirror holds everything it has (no entry behind, no error)
in_step() {
	"$ZILA" -d "$HQ" --json status >"$T/st" 2>/dev/null &&
		python3 -c 'import json,sys; m=json.load(open(sys.argv[1]))["mirror"]; sys.exit(0 if m["loaded"] and m["behind"]==0 and m["last_error"] is None else 1)' "$T/st"
}
# settled DESC: waits until the mirror is in step and the rows compare equal
settled() {
	until_ok 150 in_step && until_ok 25 compare
	if [ -s "$T/cmp" ] && grep -q '^same' "$T/cmp"; then ok "$1: $(cat "$T/cmp")"; else bad "$1: $(head -c 600 "$T/cmp")"; fi
}

pg_up $((P + 5)) || { echo "not ok - PostgreSQL did not start"; exit 1; }
org_init "$HQ"
for d in "$A" "$B"; do "$ZILA" -d "$d" init >/dev/null; done
expect 0 "A is enrolled for d1" -- enrol "$HQ" "$A" d1
rm -f "$T/.req" "$T/.cert"
expect 0 "B is enrolled for d2" -- enrol "$HQ" "$B" d2
for d in "$A" "$B"; do "$ZILA" -d "$d" peer add --hq "127.0.0.1:$P" >/dev/null; done

expect 2 "a password in the connection string is refused" -- "$ZILA" -d "$HQ" mirror set "$PGCONN password=secret"
has "$T/err" "password file" "and the message says where a password goes"
grep -q secret "$T/err" && bad "the refusal shows the password" || ok "the refusal does not show the password"
expect 2 "a connection string that does not parse is refused" -- "$ZILA" -d "$HQ" daemon --postgres "host=x nonsense"
expect 0 "HQ's setting takes a connection string" -- "$ZILA" -d "$HQ" mirror set "$PGCONN"
daemon_up "$HQ" "$T/hq.log" "$P"
daemon_up "$A" "$T/a.log" $((P + 1))
daemon_up "$B" "$T/b.log" $((P + 2))

# --- rows from both laptops ----------------------------------------------------------------
q "$A" "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 300)
	INSERT INTO people(id, district_id, name, phone, birth_year, address)
	SELECT 'a' || i, 'd1', 'Asha ' || i, '98' || (10000000 + i), 1950 + i % 50,
	       CASE i % 4 WHEN 0 THEN NULL WHEN 1 THEN 'tab	and' || char(10) || 'newline \\ back' WHEN 2 THEN 'quote '' and \"' ELSE 'हिन्दी' END
	FROM n"
q "$B" "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 200)
	INSERT INTO people(id, district_id, name, phone) SELECT 'b' || i, 'd2', 'Ravi ' || i, '97' || (10000000 + i) FROM n"
expect 0 "A syncs with HQ" -- "$ZILA" -d "$A" sync hq --wait --timeout 60
expect 0 "B syncs with HQ" -- "$ZILA" -d "$B" sync hq --wait --timeout 60
settled "both laptops' rows are at PostgreSQL"
$PSQL -d zila -At -c "SELECT address FROM zila.people WHERE id = 'a1'" >"$T/a1"
printf 'tab\tand\nnewline \\ back\n' | cmp -s - "$T/a1" && ok "a tab, a newline and a backslash arrive as written" ||
	bad "a1's address at PostgreSQL: $(cat "$T/a1")"
[ "$($PSQL -d zila -At -c "SELECT data_type FROM information_schema.columns WHERE table_schema = 'zila' AND table_name = 'people' AND column_name = 'birth_year'")" = bigint ] &&
	ok "an INTEGER column is a bigint" || bad "birth_year is not a bigint"

# --- updates, deletes, and a duplicate parked at HQ ---------------------------------------
q "$A" "UPDATE people SET name = name || ' (moved)', birth_year = NULL WHERE id IN ('a1', 'a2', 'a3');
	DELETE FROM people WHERE id IN ('a10', 'a11')"
"$ZILA" -d "$HQ" sql "INSERT INTO people(id, district_id, name, phone) VALUES ('hq1', 'd1', 'Meena', '9900000001')" >/dev/null
q "$A" "INSERT INTO people(id, district_id, name, phone) VALUES ('a-dup', 'd1', 'Meena K', '9900000001')"
expect 0 "A syncs with HQ" -- "$ZILA" -d "$A" sync hq --wait --timeout 60
settled "updates, deletes and a parked duplicate"
[ "$($PSQL -d zila -At -c "SELECT count(*) FROM zila.zila_parked_rows WHERE kind = 'duplicate'")" = 1 ] &&
	ok "the duplicate is in the parked table" || bad "no duplicate in zila.zila_parked_rows"

# --- PostgreSQL stops while laptops sync -----------------------------------------------------
pg_stop
q "$B" "UPDATE people SET name = 'Ravi the second' WHERE id = 'b2'; DELETE FROM people WHERE id = 'b3';
	INSERT INTO people(id, district_id, name) VALUES ('b-late', 'd2', 'late')"
expect 0 "B syncs with HQ while PostgreSQL is down" -- "$ZILA" -d "$B" sync hq --wait --timeout 60
until_ok 50 sh -c "'$ZILA' -d '$HQ' status | grep -q 'mirror:.*not connected'"
"$ZILA" -d "$HQ" status >"$T/status"
has "$T/status" "mirror: .*not connected" "status says the mirror is not connected"
has "$T/status" "cannot reach PostgreSQL" "and why, in plain words"
pg_start
settled "PostgreSQL started again: what arrived meanwhile is there"

# --- a schema change at HQ ------------------------------------------------------------------------
expect 0 "HQ adds people.voter_id" -- "$ZILA" -d "$HQ" schema add-column people voter_id TEXT
expect 0 "HQ adds a volunteers table" -- "$ZILA" -d "$HQ" schema add-table volunteers \
	"person_id TEXT REFERENCES people(id)" "skill TEXT NOT NULL DEFAULT 'any'" "hours REAL"
expect 0 "HQ adds an index" -- "$ZILA" -d "$HQ" schema add-index volunteers_person volunteers person_id
expect 0 "A syncs with HQ" -- "$ZILA" -d "$A" sync hq --wait --timeout 60
until_ok 50 [ "$(q "$A" "SELECT count(*) FROM pragma_table_info('people') WHERE name = 'voter_id'")" = 1 ]
q "$A" "UPDATE people SET voter_id = 'BR/01/' || substr(id, 2) WHERE id IN ('a4', 'a5');
	INSERT INTO volunteers(id, district_id, person_id, skill, hours) VALUES ('v1', 'd1', 'a4', 'driving', 2.5), ('v2', 'd1', 'a5', 'any', NULL)"
expect 0 "A syncs with HQ" -- "$ZILA" -d "$A" sync hq --wait --timeout 60
settled "the new column, table and index are followed"
[ "$($PSQL -d zila -At -c "SELECT data_type FROM information_schema.columns WHERE table_schema = 'zila' AND table_name = 'volunteers' AND column_name = 'hours'")" = "double precision" ] &&
	ok "a REAL column is double precision" || bad "volunteers.hours is not double precision"
[ "$($PSQL -d zila -At -c "SELECT person_id_name FROM zila.volunteers_named WHERE id = 'v1'")" = "Asha 4" ] &&
	ok "the new table's readable view names the person" ||
	bad "volunteers_named: $($PSQL -d zila -At -c "SELECT * FROM zila.volunteers_named" 2>&1 | head -3)"

# --- HQ's daemon restarts: the mark resumes ------------------------------------------------------
mark1=$($PSQL -d zila -At -c "SELECT mark FROM zila.zila_mirror_state")
kill "$(sed -n 's/.*"pid":\([0-9]*\).*/\1/p' "$T/st")"
until_ok 50 sh -c "! '$ZILA' -d '$HQ' status"
q "$B" "UPDATE people SET name = 'after the restart' WHERE id = 'b4'"
daemon_up "$HQ" "$T/hq.log" "$P"
expect 0 "B syncs with the restarted HQ" -- "$ZILA" -d "$B" sync hq --wait --timeout 60
settled "after HQ's restart"
[ "$($PSQL -d zila -At -c "SELECT mark FROM zila.zila_mirror_state")" -gt "$mark1" ] &&
	ok "the mark moved on from where it was" || bad "the mark did not move past $mark1"
expect 0 "one more pass by hand changes nothing" -- "$ZILA" -d "$HQ" mirror once
has "$T/out" "mirrored 0 rows" "it copies no row again"

# two mirrors of one replica take turns (an advisory lock at PostgreSQL): passes by hand
# while the daemon's mirror follows a sync
q "$B" "UPDATE people SET name = name || ' again' WHERE id IN ('b5', 'b6', 'b7')"
once_pids=""
for i in 1 2 3; do "$ZILA" -d "$HQ" mirror once >"$T/once$i" 2>&1 & once_pids="$once_pids $!"; done
expect 0 "B syncs with HQ during passes by hand" -- "$ZILA" -d "$B" sync hq --wait --timeout 60
nonce=0
for p in $once_pids; do wait "$p" || nonce=$((nonce + 1)); done
[ "$nonce" = 0 ] && ok "three passes by hand beside the daemon's all succeed" || bad "$nonce passes failed: $(cat "$T"/once*)"
settled "after passes side by side"

# --- the duplicate settled at HQ: it leaves the parked table --------------------------------------
dup=$($PSQL -d zila -At -c "SELECT pk FROM zila.zila_parked_rows")
expect 0 "HQ discards the duplicate" -- "$ZILA" -d "$HQ" conflicts drop "people:$dup"
settled "the settled duplicate leaves the parked table"
[ "$($PSQL -d zila -At -c "SELECT count(*) FROM zila.zila_parked_rows")" = 0 ] && ok "no parked row left at PostgreSQL" ||
	bad "the parked row stayed at PostgreSQL"
# --- a value PostgreSQL's type cannot take: the mirror stops and says which, then resumes --------
expect 0 "HQ writes a text into a REAL column" -- "$ZILA" -d "$HQ" sql "UPDATE volunteers SET hours = 'lots' WHERE id = 'v1'"
until_ok 100 sh -c "'$ZILA' -d '$HQ' status | grep -q 'refused row .v1. of .volunteers.'"
"$ZILA" -d "$HQ" status >"$T/status"
has "$T/status" "PostgreSQL refused row 'v1' of 'volunteers': invalid input syntax for type double precision" \
	"status names the row, the table and PostgreSQL's reason"
expect 0 "HQ sets it right" -- "$ZILA" -d "$HQ" sql "UPDATE volunteers SET hours = 3 WHERE id = 'v1'"
settled "the value set right, the mirror is in step again"
[ -n "${PG_PAUSE:-}" ] && sleep "$PG_PAUSE"
finish
