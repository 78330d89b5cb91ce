#!/bin/sh
# Issue #17: two HQ devices change the schema at once, as an HQ admin would: HQ 1 adds
# people.voter_id and a volunteers table, HQ 2 (made with 'zila org add-hq', not having
# seen them) adds people.caste and another volunteers table. A district laptop takes HQ 2's
# bundle first, then HQ 1's; the HQ devices take each other's. All three end alike: the same
# hash, both columns in one order, one volunteers table (the one whose HQ's key ranks
# first), the same export; 'zila schema' shows the change not applied and why, and so does
# the laptop's daemon status. Then the root revokes HQ 2 from before its changes: the laptop
# undoes them (its column and table go; HQ 1's stay) and its own other edits stand.
. "$(dirname "$0")/lib.sh"
cd "$T" || exit 1
P=$((20000 + ($$ + 9100) % 20000))
cleanup() { stop_daemons; done_with_tmp; }
trap cleanup EXIT
# a running daemon may hold the write lock a moment: wait for it, as an application would
q() { sqlite3 -cmd ".timeout 20000" "$1/zila.db" "$2"; }

echo "a passphrase for tests only" > pass
"$ZILA" -d hq init >/dev/null
"$ZILA" -d hq org init --name "Bihar Unit" --passphrase-file pass >/dev/null || bad "org init"
"$ZILA" -d hq catalogue add state Bihar --id s1 >/dev/null
"$ZILA" -d hq catalogue add district Patna --state s1 --id d1 >/dev/null
"$ZILA" -d hq sql "INSERT INTO people(id, district_id, name) VALUES ('p1', 'd1', 'Asha'), ('p2', 'd1', 'Ravi')" >/dev/null
"$ZILA" -d hq2 init >/dev/null
expect 0 "a second HQ device" -- "$ZILA" -d hq2 org add-hq --org-key hq/org.key --passphrase-file pass --name hq2 --org-name "Bihar Unit"
"$ZILA" -d lap init >/dev/null
"$ZILA" -d lap enrol request lap.req --name patna-1 >/dev/null &&
	"$ZILA" -d hq enrol sign lap.req lap.cert --district d1 --role district >/dev/null &&
	"$ZILA" -d lap enrol install lap.cert >/dev/null || bad "enrol the laptop"
"$ZILA" -d hq bundle create h0.bndl --all >/dev/null
"$ZILA" -d hq2 bundle apply h0.bndl >/dev/null || bad "HQ 2 takes HQ 1's rows"
"$ZILA" -d lap bundle apply h0.bndl >/dev/null || bad "the laptop takes HQ 1's rows"
"$ZILA" -d hq2 bundle create h2a.bndl --all >/dev/null
"$ZILA" -d hq bundle apply h2a.bndl >/dev/null || bad "HQ 1 meets HQ 2"

# --- both HQ admins change the schema, neither having seen the other's --------------------
expect 0 "HQ 1 adds voter_id" -- "$ZILA" -d hq schema add-column people voter_id TEXT
has "$T/out" "schema version 2" "as version 2"
expect 0 "HQ 1 adds volunteers" -- "$ZILA" -d hq schema add-table volunteers "person_id TEXT REFERENCES people(id)" "skill TEXT"
expect 0 "HQ 2 adds caste" -- "$ZILA" -d hq2 schema add-column people caste TEXT
has "$T/out" "schema version 2" "also as version 2"
expect 0 "HQ 2 adds another volunteers" -- "$ZILA" -d hq2 schema add-table volunteers "person_id TEXT REFERENCES people(id)" "hours INTEGER"
"$ZILA" -d hq sql "UPDATE people SET voter_id = 'BR/01/1' WHERE id = 'p1'" >/dev/null
"$ZILA" -d hq2 sql "UPDATE people SET caste = 'OBC' WHERE id = 'p2'" >/dev/null
"$ZILA" -d hq bundle create h1.bndl --all >/dev/null
"$ZILA" -d hq2 bundle create h2.bndl --all >/dev/null
# the root key's holder keeps a replica of HQ 1 as it is now (before HQ 2's changes reach it)
cp -a hq root
expect 0 "the laptop takes HQ 2's first" -- "$ZILA" -d lap bundle apply h2.bndl
expect 0 "then HQ 1's" -- "$ZILA" -d lap bundle apply h1.bndl
has "$T/out" "applied 3 of 5" "every entry of HQ 1 is applied or stands behind the one that won (not 'held')"
expect 0 "HQ 1 takes HQ 2's" -- "$ZILA" -d hq bundle apply h2.bndl
expect 0 "HQ 2 takes HQ 1's" -- "$ZILA" -d hq2 bundle apply h1.bndl

for d in hq2 lap; do
	same_hash hq $d && ok "$d has HQ 1's hash" || bad "$d differs from HQ 1"
	[ "$(q $d "SELECT group_concat(name) FROM pragma_table_info('people')")" = \
		"$(q hq "SELECT group_concat(name) FROM pragma_table_info('people')")" ] &&
		ok "$d has people's columns in HQ 1's order" || bad "$d: $(q $d "SELECT group_concat(name) FROM pragma_table_info('people')")"
	[ "$(q $d "SELECT group_concat(name) FROM pragma_table_info('volunteers')")" = \
		"$(q hq "SELECT group_concat(name) FROM pragma_table_info('volunteers')")" ] &&
		ok "$d has the same volunteers table" || bad "$d: volunteers differ"
	"$ZILA" -d $d export --table people >"$T/$d.csv" 2>/dev/null
done
"$ZILA" -d hq export --table people >"$T/hq.csv" 2>/dev/null
cmp -s "$T/hq.csv" "$T/lap.csv" && cmp -s "$T/hq.csv" "$T/hq2.csv" && ok "the same export everywhere" || bad "exports differ"
[ "$(q lap "SELECT voter_id || '/' || coalesce(caste, '') FROM people WHERE id = 'p1'")" = "BR/01/1/" ] &&
	[ "$(q lap "SELECT coalesce(voter_id, '') || '/' || caste FROM people WHERE id = 'p2'")" = "/OBC" ] &&
	ok "both new columns, filled by each HQ" || bad "people: $(q lap "SELECT * FROM people")"
K1=$(q hq "SELECT hex(origin) FROM zila_schema WHERE version = 2 AND sql LIKE '%voter_id%'")
K2=$(q hq "SELECT hex(origin) FROM zila_schema WHERE version = 2 AND sql LIKE '%caste%'")
if [ "$K1" \< "$K2" ]; then first=skill; else first=hours; fi
[ "$(q lap "SELECT count(*) FROM pragma_table_info('volunteers') WHERE name = '$first'")" = 1 ] &&
	ok "volunteers is the one of the HQ whose key ranks first" || bad "volunteers: $(q lap "SELECT group_concat(name) FROM pragma_table_info('volunteers')")"
expect 0 "zila schema on the laptop" -- "$ZILA" -d lap schema
has "$T/out" "NOT APPLIED: table 'volunteers' was made otherwise" "shows the change not applied, and why"
daemon_up lap "$T/lap.log" "$P"
expect 0 "the laptop's status" -- "$ZILA" -d lap status
has "$T/out" "schema version 3 by HQ device" "status says which version was not applied"
stop_daemons

# --- the root revokes HQ 2 from before its changes --------------------------------------
"$ZILA" -d lap sql "UPDATE people SET phone = '9000000001' WHERE id = 'p1'" >/dev/null
H2ID=$("$ZILA" -d hq2 whoami | awk '/^device:/ {print $2}')
expect 0 "the root revokes HQ 2, holding none of its changes" -- "$ZILA" -d root org revoke "$H2ID" --org-key hq/org.key --passphrase-file pass
"$ZILA" -d root bundle create h3.bndl --all >/dev/null
expect 0 "the laptop takes the revocation" -- "$ZILA" -d lap bundle apply h3.bndl
[ "$(q lap "SELECT count(*) FROM pragma_table_info('people') WHERE name = 'caste'")" = 0 ] &&
	ok "HQ 2's column is undone on the laptop" || bad "caste is still there"
[ "$(q lap "SELECT count(*) FROM pragma_table_info('people') WHERE name = 'voter_id'")" = 1 ] &&
	ok "HQ 1's column stays" || bad "voter_id is gone"
[ "$(q lap "SELECT phone FROM people WHERE id = 'p1'")" = 9000000001 ] && ok "the laptop's own edit stands" ||
	bad "phone: $(q lap "SELECT phone FROM people WHERE id = 'p1'")"
finish
