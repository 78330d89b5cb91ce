#!/bin/sh
# Bundles between enrolled replicas: HQ sends a laptop only what its certificate may read,
# refuses entries outside a laptop's write scope and from devices it never enrolled, and
# sends nothing to a replica of another organisation.
. "$(dirname "$0")/lib.sh"
cd "$T" || exit 1
echo "correct horse battery staple" > pass
"$ZILA" -d hq init >/dev/null
expect 0 "org init at hq" -- "$ZILA" -d hq org init --name "Bihar Unit" --passphrase-file pass
"$ZILA" -d a init >/dev/null
"$ZILA" -d c init >/dev/null
"$ZILA" -d c org init --name "Another Party" --passphrase-file pass >/dev/null
sqlite3 hq/zila.db "INSERT INTO states(id, name) VALUES ('s1', 'Bihar');
  INSERT INTO districts(id, state_id, name) VALUES ('d1', 's1', 'Patna'), ('d2', 's1', 'Gaya');"
expect 0 "laptop writes an enrolment request" -- "$ZILA" -d a enrol request a.req --name laptop-a
expect 0 "hq signs it for district d1" -- "$ZILA" -d hq enrol sign a.req a.cert --district d1 --role district
expect 0 "laptop installs its certificate" -- "$ZILA" -d a enrol install a.cert
sqlite3 hq/zila.db "INSERT INTO people(id, district_id, name, phone) VALUES ('h1', 'd1', 'Ram', '9000000001'), ('h2', 'd2', 'Shyam', '9000000002');"

"$ZILA" -d a vector > a.vec
has a.vec "^# device " "a vector file names its replica"
expect 0 "hq makes a bundle for the laptop" -- "$ZILA" -d hq bundle create hq-a.bndl --for a.vec
expect 0 "laptop applies it" -- "$ZILA" -d a bundle apply hq-a.bndl
[ "$(sqlite3 a/zila.db "SELECT group_concat(id) FROM people")" = h1 ] && ok "laptop got district d1 only" ||
	bad "laptop got $(sqlite3 a/zila.db "SELECT group_concat(id) FROM people")"
[ "$(sqlite3 a/zila.db "SELECT count(*) FROM districts")" = 2 ] && ok "laptop got the org-wide catalogue" || bad "catalogue missing"

sqlite3 a/zila.db "INSERT INTO people(id, district_id, name, phone) VALUES ('a1', 'd1', 'Sita', '9000000003');"
# The laptop's own triggers refuse a row of another district when it is written (#16)...
if out=$(sqlite3 a/zila.db "INSERT INTO people(id, district_id, name, phone) VALUES ('a2', 'd2', 'Elsewhere', '9000000004');" 2>&1); then
	bad "the laptop wrote a row of another district"
else
	# (by the district's id: the catalogue came after the triggers; the next zila command names it)
	echo "$out" | grep -q "may write only district 'd1'; a row of 'people' for another district" &&
		ok "the laptop refuses a row of another district" ||
		bad "refusal: $out"
fi
# ...and HQ refuses one that a zila without those triggers (or a changed copy) sealed.
trig=$(sqlite3 a/zila.db "SELECT name FROM sqlite_schema WHERE type = 'trigger' AND tbl_name = 'people' AND name LIKE '%_wi'")
sqlite3 a/zila.db "DROP TRIGGER $trig; INSERT INTO people(id, district_id, name, phone) VALUES ('a2', 'd2', 'Elsewhere', '9000000004');"
"$ZILA" -d hq vector > hq.vec
"$ZILA" -d a bundle create a-hq.bndl --for hq.vec >/dev/null
expect 0 "hq applies the laptop's bundle" -- "$ZILA" -d hq bundle apply a-hq.bndl
has "$T/out" "1 rejected" "the out-of-scope entry is rejected"
has "$T/err" "outside its write scope" "the log line names the reason"
[ "$(sqlite3 hq/zila.db "SELECT group_concat(id) FROM (SELECT id FROM people ORDER BY id)")" = "a1,h1,h2" ] &&
	ok "hq has the in-scope row and not the other" || bad "hq people: $(sqlite3 hq/zila.db "SELECT group_concat(id) FROM people")"

sqlite3 c/zila.db "INSERT INTO states(id, name) VALUES ('s9', 'Fake'); INSERT INTO districts(id, state_id, name) VALUES ('d1x', 's9', 'X');"
"$ZILA" -d c bundle create c.bndl --all >/dev/null
h0=$("$ZILA" -d hq hash)
# Encrypted to the other organisation's secret (#15 item 10): it does not even open here.
expect 1 "an outsider's bundle does not open" -- "$ZILA" -d hq bundle apply c.bndl
has "$T/err" "does not open with this organisation's secret" "the refusal says why"
[ "$("$ZILA" -d hq hash)" = "$h0" ] && ok "the outsider changed nothing" || bad "the outsider changed hq"
"$ZILA" -d c vector > c.vec
expect 1 "hq sends nothing to a replica of another organisation" -- "$ZILA" -d hq bundle create hq-c.bndl --for c.vec
has "$T/err" "not enrolled" "the refusal says why"
# Two laptops enrolled apart meet before either has synced again with hq: the vector file
# carries the receiver's certificate, which the sender checks against the organisation.
"$ZILA" -d b init >/dev/null
"$ZILA" -d b enrol request b.req --name laptop-b >/dev/null
"$ZILA" -d hq enrol sign b.req b.cert --district d1 --role district >/dev/null
"$ZILA" -d b enrol install b.cert >/dev/null
"$ZILA" -d b vector > b.vec
has b.vec "^# cert " "an enrolled replica's vector carries its certificate"
expect 0 "a laptop makes a bundle for a laptop it has not met" -- "$ZILA" -d a bundle create a-b.bndl --for b.vec
expect 0 "which applies there" -- "$ZILA" -d b bundle apply a-b.bndl
[ "$(sqlite3 b/zila.db "SELECT count(*) FROM people WHERE id IN ('a1', 'h1')")" = 2 ] && ok "b has a's district rows" || bad "b lacks a's rows"
"$ZILA" -d e init >/dev/null
"$ZILA" -d e enrol request e.req --name laptop-e >/dev/null
"$ZILA" -d hq enrol sign e.req e.cert --district d2 --role district >/dev/null
"$ZILA" -d e enrol install e.cert >/dev/null
"$ZILA" -d e vector > e.vec
sed 's/^\(# cert .\{400\}\)../\100/' e.vec > forged.vec
expect 1 "a vector with a forged certificate is refused" -- "$ZILA" -d a bundle create x.bndl --for forged.vec
has "$T/err" "signature does not verify" "the refusal says the file is not the device's"
# #15 item 3: a laptop passes itself off as HQ: its own vector, HQ's device key in it.
HQKEY=$(grep '^# device' hq.vec | cut -d' ' -f3)
sed "s/^# device .*/# device $HQKEY/" b.vec > as-hq.vec
expect 1 "a vector file naming HQ but made by a laptop is refused" -- "$ZILA" -d hq bundle create x.bndl --for as-hq.vec
has "$T/err" "not made by the device it names" "the refusal says so"
[ ! -e x.bndl ] && ok "no bundle was written" || bad "a bundle was written for the forged vector"
grep -v '^# sig' b.vec > unsigned.vec
expect 1 "an unsigned vector file is refused" -- "$ZILA" -d a bundle create x.bndl --for unsigned.vec
has "$T/err" "not signed by the replica it names" "the refusal says how to make it again"

# Revocation: hq revokes laptop a; the revocation travels to b; a's later entries are refused.
AID=$("$ZILA" -d a whoami | grep -o '[0-9A-Z]\{4\}-[0-9A-Z]\{4\}-[0-9A-Z]\{4\}-[0-9A-Z]\{4\}-[0-9A-Z]\{2\}' | head -1)
expect 0 "hq revokes laptop a" -- "$ZILA" -d hq revoke "$AID"
"$ZILA" -d b vector > b.vec
"$ZILA" -d hq bundle create hq-b.bndl --for b.vec >/dev/null
expect 0 "b receives the revocation" -- "$ZILA" -d b bundle apply hq-b.bndl
sqlite3 a/zila.db "INSERT INTO people(id, district_id, name, phone) VALUES ('a9', 'd1', 'After revocation', '9000000099');"
"$ZILA" -d b vector > b.vec
"$ZILA" -d a bundle create a-b2.bndl --for b.vec >/dev/null
expect 0 "b reads a's new bundle" -- "$ZILA" -d b bundle apply a-b2.bndl
has "$T/out" "1 rejected" "the entry past the revocation mark is rejected"
[ "$(sqlite3 b/zila.db "SELECT count(*) FROM people WHERE id = 'a9'")" = 0 ] && ok "nothing of it was applied" || bad "a revoked device's row arrived"
"$ZILA" -d a vector > a2.vec
expect 1 "hq sends nothing to the revoked laptop" -- "$ZILA" -d hq bundle create hq-a2.bndl --for a2.vec
has "$T/err" "revoked" "the refusal says it is revoked"

grep -v '^# device' a.vec > anon.vec
expect 1 "a vector file without its device line is refused" -- "$ZILA" -d hq bundle create x.bndl --for anon.vec
finish
