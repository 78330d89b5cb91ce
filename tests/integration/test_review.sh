#!/bin/sh
# Review on two replicas: a concurrent edit becomes a conflict that `conflicts resolve`
# settles, a UNIQUE collision parks a duplicate that `duplicates merge` folds into the row
# holding the slot (references repointed); both converge after exchanging bundles.
. "$(dirname "$0")/lib.sh"
A=$T/a; B=$T/b

# exchange: bundles from B to A and from A to B, each for what the other lacks
exchange() {
	"$ZILA" -d "$A" vector > "$T/a.vec" &&
	"$ZILA" -d "$B" bundle create "$T/ba.bndl" --for "$T/a.vec" >/dev/null &&
	"$ZILA" -d "$A" bundle apply "$T/ba.bndl" >/dev/null &&
	"$ZILA" -d "$B" vector > "$T/b.vec" &&
	"$ZILA" -d "$A" bundle create "$T/ab.bndl" --for "$T/b.vec" >/dev/null &&
	"$ZILA" -d "$B" bundle apply "$T/ab.bndl" >/dev/null
}
same_hash() {
	ha=$("$ZILA" -d "$A" hash); hb=$("$ZILA" -d "$B" hash)
	if [ -n "$ha" ] && [ "$ha" = "$hb" ]; then ok "$1"; else bad "$1 ($ha vs $hb)"; fi
}
# val DIR SQL: one value through plain sqlite3
val() { sqlite3 "$1/zila.db" "$2"; }

expect 0 "a is hq of an organisation" -- org_init "$A"
expect 0 "init b" -- "$ZILA" -d "$B" init
val "$A" "INSERT INTO states(id, name) VALUES ('s1', 'Bihar');
  INSERT INTO districts(id, state_id, name) VALUES ('d1', 's1', 'Patna');"
expect 0 "b is enrolled for district d1" -- enrol "$A" "$B" d1
val "$A" "INSERT INTO org_units(id, level, district_id, name) VALUES ('b1', 'booth', 'd1', 'Booth 1');
  INSERT INTO people(id, district_id, name, phone) VALUES ('p0', 'd1', 'Mohan', '9000000000');"
expect 0 "first exchange" -- exchange
same_hash "replicas start equal"

# Concurrent work: the same new member on both, and the same cell edited on both.
val "$A" "INSERT INTO people(id, district_id, name, phone) VALUES ('pa', 'd1', 'Ram', '9000000001');"
sleep 0.05
val "$B" "INSERT INTO people(id, district_id, name, phone, address) VALUES ('pb', 'd1', 'Ram Kumar', '9000000001', 'Gaya Road');
  INSERT INTO booth_agents(id, district_id, booth_id, person_id) VALUES ('ag1', 'd1', 'b1', 'pb');"
val "$A" "UPDATE people SET name = 'Mohan Lal' WHERE id = 'p0';"
sleep 0.05
val "$B" "UPDATE people SET name = 'Mohan Prasad' WHERE id = 'p0';"
expect 0 "exchange concurrent work" -- exchange
same_hash "replicas agree after the concurrent work"

# Conflicts
expect 0 "conflicts on a" -- "$ZILA" -d "$A" conflicts
has "$T/out" "people p0 name" "conflicts names the table, row and column"
has "$T/out" "kept: Mohan Prasad" "conflicts shows the kept value"
has "$T/out" "lost: Mohan Lal" "conflicts shows the lost value"
expect 0 "conflicts --json" -- "$ZILA" -d "$A" --json conflicts
has "$T/out" '"lost":{"value":"Mohan Lal"' "json has the lost value"
cid=$(sed -n 's/.*"conflicts":\[{"id":\([0-9]*\).*/\1/p' "$T/out")
[ -n "$cid" ] && ok "conflict id is $cid" || bad "no conflict id in json"
expect 2 "resolve without --keep is misuse" -- "$ZILA" -d "$A" conflicts resolve "$cid"
expect 2 "resolve of a non-number is misuse" -- "$ZILA" -d "$A" conflicts resolve x --keep lost
expect 1 "resolve of an unknown id fails" -- "$ZILA" -d "$A" conflicts resolve 999 --keep lost
has "$T/err" "no conflict '999'" "unknown id is named"
expect 0 "resolve --keep lost" -- "$ZILA" -d "$A" conflicts resolve "$cid" --keep lost
expect 1 "resolving twice fails" -- "$ZILA" -d "$A" conflicts resolve "$cid" --keep lost
has "$T/err" "already resolved" "second resolve says already resolved"
expect 0 "conflicts after resolve" -- "$ZILA" -d "$A" conflicts
if grep -q "people p0 name" "$T/out"; then bad "resolved conflict is no longer listed"; else ok "resolved conflict is no longer listed"; fi
expect 0 "exchange the resolution" -- exchange
same_hash "replicas agree after the resolution"
[ "$(val "$A" "SELECT name FROM people WHERE id = 'p0'")" = "Mohan Lal" ] && ok "a has the chosen value" || bad "a has $(val "$A" "SELECT name FROM people WHERE id = 'p0'")"
[ "$(val "$B" "SELECT name FROM people WHERE id = 'p0'")" = "Mohan Lal" ] && ok "b has the chosen value" || bad "b has $(val "$B" "SELECT name FROM people WHERE id = 'p0'")"
# On b the same conflict was recorded too; a's resolution travelled with its write (#16).
expect 0 "conflicts on b" -- "$ZILA" -d "$B" conflicts
if grep -q "people p0 name" "$T/out"; then bad "b still lists the conflict a resolved"; else ok "b no longer lists the conflict a resolved"; fi
# A new conflict on the same member; b settles it with a value of its own.
val "$A" "UPDATE people SET address = 'Station Road' WHERE id = 'p0';"
sleep 0.05
val "$B" "UPDATE people SET address = 'Station Rd.' WHERE id = 'p0';"
expect 0 "exchange the address edits" -- exchange
bid=$("$ZILA" -d "$B" --json conflicts | sed -n 's/.*"conflicts":\[{"id":\([0-9]*\).*/\1/p')
expect 2 "a typo for kept or lost is refused, not written" -- "$ZILA" -d "$B" conflicts resolve "$bid" --keep theirs
has "$T/err" "'theirs' is not 'kept' or 'lost'" "the refusal says what --keep takes"
has "$T/err" "--value TEXT" "and how to give a value"
expect 0 "b resolves with an explicit VALUE" -- "$ZILA" -d "$B" conflicts resolve "$bid" --value "12 Station Road"
expect 0 "exchange the second resolution" -- exchange
same_hash "replicas agree after the second resolution"
[ "$(val "$A" "SELECT address FROM people WHERE id = 'p0'")" = "12 Station Road" ] && ok "a has b's value" || bad "a has $(val "$A" "SELECT address FROM people WHERE id = 'p0'")"
expect 0 "conflicts on a after b's resolution" -- "$ZILA" -d "$A" conflicts
if grep -q "people p0 address" "$T/out"; then bad "a still lists the conflict b resolved"; else ok "a no longer lists the conflict b resolved"; fi
# A conflict on a row deleted since cannot be resolved by writing.
val "$A" "INSERT INTO people(id, district_id, name) VALUES ('p9', 'd1', 'Gone');"
expect 0 "exchange p9" -- exchange
val "$A" "UPDATE people SET address = 'A' WHERE id = 'p9';"
sleep 0.05
val "$B" "UPDATE people SET address = 'B' WHERE id = 'p9';"
expect 0 "exchange the p9 edits" -- exchange
val "$A" "DELETE FROM people WHERE id = 'p9';"
did=$("$ZILA" -d "$A" --json conflicts | sed -n 's/.*"conflicts":\[{"id":\([0-9]*\).*/\1/p')
expect 1 "resolving a conflict of a deleted row fails" -- "$ZILA" -d "$A" conflicts resolve "$did" --keep lost
has "$T/err" "row 'p9' of 'people' no longer exists (deleted)" "the error says the row is gone"
expect 0 "exchange the deletion" -- exchange

# --keep kept travels too: the value the table shows, written again.
val "$A" "UPDATE org_units SET name = 'Booth One' WHERE id = 'b1';"
sleep 0.05
val "$B" "UPDATE org_units SET name = 'Booth No. 1' WHERE id = 'b1';"
expect 0 "exchange the booth edits" -- exchange
kid=$("$ZILA" -d "$A" --json conflicts | python3 -c "import json,sys; print([c['id'] for c in json.load(sys.stdin)['conflicts'] if c['table'] == 'org_units'][0])")
kept=$(val "$A" "SELECT name FROM org_units WHERE id = 'b1'")
expect 0 "a keeps the shown value" -- "$ZILA" -d "$A" conflicts resolve "$kid" --keep kept
expect 0 "exchange the kept resolution" -- exchange
expect 0 "conflicts on b after a kept" -- "$ZILA" -d "$B" conflicts
if grep -q "org_units b1 name" "$T/out"; then bad "b still lists what a kept"; else ok "b no longer lists what a kept"; fi
[ "$(val "$B" "SELECT name FROM org_units WHERE id = 'b1'")" = "$kept" ] && ok "b shows the kept value" || bad "b shows $(val "$B" "SELECT name FROM org_units WHERE id = 'b1'")"

# Orphans: shown with their content and the parent they lack; linked to another, or dropped.
val "$A" "INSERT INTO booth_agents(id, district_id, booth_id, person_id) VALUES ('ag8', 'd1', 'b1', 'nobody8'), ('ag9', 'd1', 'b1', 'nobody');"
expect 0 "exchange the agents of a missing person" -- exchange
expect 0 "conflicts on b lists the orphans" -- "$ZILA" -d "$B" conflicts
has "$T/out" "booth_agents ag9  orphan" "the orphan is named"
has "$T/out" "row: id=ag9 district_id=d1 booth_id=b1 person_id=nobody" "with its content"
has "$T/out" "missing parent: person_id = nobody (no such row in people)" "and the parent it lacks"
has "$T/out" "zila conflicts relink booth_agents:ag9 person_id=ID" "and what to do"
expect 1 "a relink to a parent that is not there either is refused" -- "$ZILA" -d "$B" conflicts relink booth_agents:ag9 person_id=ghost
has "$T/err" "FOREIGN KEY" "the refusal says why"
expect 0 "b links ag9 to p0" -- "$ZILA" -d "$B" conflicts relink booth_agents:ag9 person_id=p0
[ "$(val "$B" "SELECT person_id FROM booth_agents WHERE id = 'ag9'")" = p0 ] && ok "ag9 is back in its table on b" || bad "ag9 not back on b"
expect 0 "b drops ag8" -- "$ZILA" -d "$B" conflicts drop booth_agents:ag8
expect 0 "exchange the fixes" -- exchange
[ "$(val "$A" "SELECT person_id FROM booth_agents WHERE id = 'ag9'")" = p0 ] && ok "a has ag9 linked to p0" || bad "a has ag9 -> $(val "$A" "SELECT person_id FROM booth_agents WHERE id = 'ag9'")"
[ "$(val "$A" "SELECT count(*) FROM booth_agents WHERE id = 'ag8'")" = 0 ] && ok "ag8 is gone on a too" || bad "ag8 still on a"
same_hash "replicas agree after the orphans are settled"

# Duplicates: pb collided with pa on (district_id, phone); pa's row is older and holds the slot.
expect 0 "duplicates on a" -- "$ZILA" -d "$A" duplicates
has "$T/out" "people:pb  duplicate of people:pa" "duplicates names the duplicate and the holder"
has "$T/out" "district_id, phone" "duplicates names the UNIQUE columns"
has "$T/out" "address .*Gaya Road .*NULL" "duplicates shows both rows side by side"
expect 0 "duplicates --json on b" -- "$ZILA" -d "$B" --json duplicates
has "$T/out" '"id":"people:pb","table":"people","row":"pb","holder":"pa"' "json names the duplicate and the holder"
[ "$(val "$A" "SELECT count(*) FROM booth_agents WHERE id = 'ag1'")" = 0 ] && ok "the duplicate's agent is parked as an orphan" || bad "agent visible before the merge"
expect 1 "merge of an unknown duplicate fails" -- "$ZILA" -d "$B" duplicates merge people:nobody
has "$T/err" "no parked duplicate 'people:nobody'" "unknown duplicate is named"
expect 2 "merge without a name is misuse" -- "$ZILA" -d "$B" duplicates merge
expect 1 "merge into a missing row fails" -- "$ZILA" -d "$B" duplicates merge people:pb --into nobody
expect 0 "merge on b" -- "$ZILA" -d "$B" duplicates merge people:pb
has "$T/out" "1 empty column filled, 1 reference repointed" "merge reports what it did"
expect 0 "exchange the merge" -- exchange
same_hash "replicas agree after the merge"
for d in "$A" "$B"; do
	n=$(basename "$d")
	[ "$(val "$d" "SELECT count(*) FROM people WHERE phone = '9000000001'")" = 1 ] && ok "$n: one person with the phone" || bad "$n: people with the phone: $(val "$d" "SELECT id FROM people WHERE phone = '9000000001'")"
	[ "$(val "$d" "SELECT count(*) FROM zila_parked")" = 0 ] && ok "$n: nothing parked" || bad "$n: parked rows remain"
	[ "$(val "$d" "SELECT person_id FROM booth_agents WHERE id = 'ag1'")" = pa ] && ok "$n: the agent points at the holder" || bad "$n: agent points at '$(val "$d" "SELECT person_id FROM booth_agents WHERE id = 'ag1'")'"
	[ "$(val "$d" "SELECT address FROM people WHERE id = 'pa'")" = "Gaya Road" ] && ok "$n: the holder got the duplicate's address" || bad "$n: holder address not filled"
done
expect 0 "duplicates after the merge" -- "$ZILA" -d "$A" duplicates
has "$T/out" "no duplicates" "no duplicates are left"
finish
