#!/bin/sh
# Issue #17: HQ changes the schema and every laptop follows, with real daemons on loopback.
# HQ adds a column to people and a new table while laptop B is offline (its daemon not
# running); laptop A's daemon syncs; B takes a USB bundle. Both end with the new column
# filled and the new table's rows, with no command run on them but the sync and the bundle;
# A's writes to the new column and table reach HQ; HQ's daemon, running while `zila schema`
# changed its replica, seals HQ's writes to them at once. A laptop's own table stays local
# and `status` says so; refused changes are refused at the command line with their reason.
. "$(dirname "$0")/lib.sh"
P=$((20000 + ($$ + 7300) % 20000))
HQ=$T/hq A=$T/a B=$T/b
cleanup() { stop_daemons; done_with_tmp; }
trap cleanup EXIT
# a running daemon may hold the write lock a moment: wait for it, as an application would
q() { sqlite3 -cmd ".timeout 20000" "$1/zila.db" "$2"; }

org_init "$HQ"
for d in "$A" "$B"; do "$ZILA" -d "$d" init >/dev/null; done
expect 0 "A is enrolled for d1" -- enrol "$HQ" "$A" d1
rm -f "$T/.req" "$T/.cert"
expect 0 "B is enrolled for d1" -- enrol "$HQ" "$B" d1
"$ZILA" -d "$A" peer add --hq "127.0.0.1:$P" >/dev/null
daemon_up "$HQ" "$T/hq.log" "$P"
daemon_up "$A" "$T/a.log" $((P + 1))
"$ZILA" -d "$HQ" sql "INSERT INTO people(id, district_id, name) VALUES ('p1', 'd1', 'Asha'), ('p2', 'd1', 'Ravi')" >/dev/null
expect 0 "A syncs with HQ" -- "$ZILA" -d "$A" sync hq --wait --timeout 30
"$ZILA" -d "$HQ" vector >"$T/hq.vec"
"$ZILA" -d "$B" vector >"$T/b.vec"
expect 0 "HQ makes a bundle for B" -- "$ZILA" -d "$HQ" bundle create "$T/b1.bndl" --for "$T/b.vec"
expect 0 "B applies it" -- "$ZILA" -d "$B" bundle apply "$T/b1.bndl"

# --- HQ changes the schema (B is away; A's and HQ's daemons run) ------------------------
expect 1 "dropping a column is refused" -- "$ZILA" -d "$HQ" schema sql "ALTER TABLE people DROP COLUMN phone"
has "$T/err" "dropping a column of 'people' is refused" "with its reason"
expect 1 "renaming a column is refused" -- "$ZILA" -d "$HQ" schema sql "ALTER TABLE people RENAME COLUMN name TO full_name"
has "$T/err" "copy the values across" "with the way to rename: add, copy, retire"
expect 1 "a NOT NULL column without a default is refused" -- "$ZILA" -d "$HQ" schema add-column people voter_id TEXT --not-null
expect 1 "a laptop cannot change the organisation's schema" -- "$ZILA" -d "$A" schema add-column people x TEXT
has "$T/err" "changed at HQ" "and is told so"
sqlite3 "$HQ/zila.db" "CREATE TABLE hq_own (id TEXT PRIMARY KEY, v TEXT)"
expect 1 "plain 'zila track' at HQ is refused: it would reach no laptop" -- "$ZILA" -d "$HQ" track hq_own
has "$T/err" "zila schema track hq_own --org-wide" "and names 'zila schema track'"
expect 0 "HQ adds people.voter_id" -- "$ZILA" -d "$HQ" schema add-column people voter_id TEXT
has "$T/out" "schema version 2" "as schema version 2"
expect 0 "HQ adds a volunteers table" -- "$ZILA" -d "$HQ" schema add-table volunteers \
	"person_id TEXT REFERENCES people(id)" "skill TEXT NOT NULL DEFAULT 'any'" "UNIQUE (district_id, person_id)"
has "$T/out" "schema version 3" "as schema version 3"
expect 0 "HQ adds an index" -- "$ZILA" -d "$HQ" schema add-index volunteers_person volunteers person_id
# HQ's daemon was running: its writes to the new column and table are sealed and sent
"$ZILA" -d "$HQ" sql "UPDATE people SET voter_id = 'BR/01/001' WHERE id = 'p1';
	INSERT INTO volunteers(id, district_id, person_id, skill) VALUES ('v1', 'd1', 'p1', 'driving')" >/dev/null
expect 0 "A syncs with HQ" -- "$ZILA" -d "$A" sync hq --wait --timeout 30
until_ok 50 [ "$(q "$A" "SELECT voter_id FROM people WHERE id = 'p1'")" = BR/01/001 ]
[ "$(q "$A" "SELECT voter_id FROM people WHERE id = 'p1'")" = BR/01/001 ] && ok "A has the new column, filled" ||
	bad "A lacks people.voter_id of p1: $(q "$A" "SELECT voter_id FROM people WHERE id = 'p1'" 2>&1)"
[ "$(q "$A" "SELECT skill FROM volunteers WHERE id = 'v1'")" = driving ] && ok "A has the new table's row" ||
	bad "A lacks volunteers v1"
[ "$(q "$A" "SELECT count(*) FROM sqlite_schema WHERE name = 'volunteers_person'")" = 1 ] && ok "A has the index" ||
	bad "A lacks the index"
expect 0 "A's schema" -- "$ZILA" -d "$A" schema
has "$T/out" "schema version 4" "A is at schema version 4"
# A writes the new column and table with plain SQL: A's daemon captures and syncs them
q "$A" "UPDATE people SET voter_id = 'BR/01/002' WHERE id = 'p2';
	INSERT INTO volunteers(id, district_id, person_id) VALUES ('v2', 'd1', 'p2')"
expect 0 "A syncs with HQ" -- "$ZILA" -d "$A" sync hq --wait --timeout 30
until_ok 50 [ "$(q "$HQ" "SELECT voter_id FROM people WHERE id = 'p2'")" = BR/01/002 ]
[ "$(q "$HQ" "SELECT voter_id FROM people WHERE id = 'p2'")" = BR/01/002 ] && ok "HQ has A's value of the new column" ||
	bad "HQ lacks A's voter_id"
[ "$(q "$HQ" "SELECT skill FROM volunteers WHERE id = 'v2'")" = any ] && ok "HQ has A's row of the new table" ||
	bad "HQ lacks volunteers v2"
grep -q "holding entry" "$T/hq.log" "$T/a.log" && bad "an entry waited for a schema: $(grep -h 'holding entry' "$T/hq.log" "$T/a.log" | head -2)" ||
	ok "no entry waited for a schema"

# --- B by USB stick --------------------------------------------------------------------
"$ZILA" -d "$B" vector >"$T/b.vec"
expect 0 "HQ makes a bundle for B" -- "$ZILA" -d "$HQ" bundle create "$T/b2.bndl" --for "$T/b.vec"
expect 0 "B applies it" -- "$ZILA" -d "$B" bundle apply "$T/b2.bndl"
[ "$(q "$B" "SELECT group_concat(voter_id) FROM (SELECT voter_id FROM people ORDER BY id)")" = "BR/01/001,BR/01/002" ] &&
	ok "B has the new column, filled" || bad "B: $(q "$B" "SELECT id, voter_id FROM people" 2>&1)"
[ "$(q "$B" "SELECT group_concat(id) FROM (SELECT id FROM volunteers ORDER BY id)")" = "v1,v2" ] &&
	ok "B has the new table's rows" || bad "B lacks volunteers"
for d in "$A" "$B"; do
	same_hash "$HQ" "$d" && ok "$(basename "$d") is in step with HQ" || bad "$(basename "$d") differs from HQ"
done

# --- a laptop's own table and column stay local, and status says so ----------------------
q "$A" "CREATE TABLE my_calls (id TEXT PRIMARY KEY, who TEXT); ALTER TABLE people ADD COLUMN my_note TEXT;
	UPDATE people SET my_note = 'call back' WHERE id = 'p1'"
expect 0 "A syncs with HQ" -- "$ZILA" -d "$A" sync hq --wait --timeout 30
expect 0 "A's status" -- "$ZILA" -d "$A" status
has "$T/out" "'my_calls'; not synced" "status says A's own table is not synced"
has "$T/out" "'people.my_note'; not synced" "status says A's own column is not synced"
expect 1 "A cannot track its own table (it would reach nobody)" -- "$ZILA" -d "$A" track my_calls
has "$T/err" "stays local to this laptop" "and is told it stays local"
[ "$(q "$A" "SELECT my_note FROM people WHERE id = 'p1'")" = "call back" ] && ok "A's own column keeps its value" ||
	bad "A's own column lost its value"
grep -q "holding entry" "$T/hq.log" && bad "HQ holds an entry of A's own column" || ok "HQ holds nothing for A's own column"
finish
