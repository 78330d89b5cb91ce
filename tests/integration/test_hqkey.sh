#!/bin/sh
# The HQ key story (#15 items 12 and 13) as the organisation lives it: HQ's laptop is stolen.
# The root key (org.key and its passphrase) makes a new HQ device, revokes the stolen one, and
# the new HQ certifies the district laptops again; a revoked laptop's rows taken past its mark
# are undone; a laptop enrolled by USB knows the revocations from its certificate file.
. "$(dirname "$0")/lib.sh"
cd "$T" || exit 1
echo "correct horse battery staple" > pass
"$ZILA" -d hq init >/dev/null
"$ZILA" -d hq org init --name "Bihar Unit" --passphrase-file pass >/dev/null || bad "org init"
"$ZILA" -d a init >/dev/null
"$ZILA" -d b init >/dev/null
"$ZILA" -d n init >/dev/null
sqlite3 hq/zila.db "INSERT INTO states(id, name) VALUES ('s1', 'Bihar');
  INSERT INTO districts(id, state_id, name) VALUES ('d1', 's1', 'Patna');"
for x in a b; do
	"$ZILA" -d $x enrol request $x.req --name laptop-$x >/dev/null &&
		"$ZILA" -d hq enrol sign $x.req $x.cert --district d1 --role district >/dev/null &&
		"$ZILA" -d $x enrol install $x.cert >/dev/null || bad "enrol $x"
done
HQID=$("$ZILA" -d hq whoami | awk '/^device:/ {print $2}')
AID=$("$ZILA" -d a whoami | awk '/^device:/ {print $2}')
BID=$("$ZILA" -d b whoami | awk '/^device:/ {print $2}')

expect 0 "devices at hq" -- "$ZILA" -d hq devices
has "$T/out" "ISSUER" "devices has an issuer column"
grep "laptop-a" "$T/out" | grep -q "$HQID" && ok "a laptop's issuer is the HQ device" || bad "issuer: $(cat "$T/out")"
expect 0 "devices as json" -- "$ZILA" -d hq --json devices
has "$T/out" '"issuer":"root"' "json: HQ's certificate is the root's"
has "$T/out" '"issued_here":true' "json: HQ lists what it issued"
expect 1 "HQ cannot revoke itself with its device key" -- "$ZILA" -d hq revoke "$HQID"
has "$T/err" "root key" "it is told to use the root key"
echo "not the right passphrase at all" > wrong
expect 1 "a wrong passphrase unlocks nothing" -- "$ZILA" -d n org add-hq --org-key hq/org.key --passphrase-file wrong
has "$T/err" "wrong passphrase" "the wrong passphrase is named"

sqlite3 a/zila.db "INSERT INTO people(id, district_id, name, phone) VALUES ('a1', 'd1', 'Sita', '9000000003');"
"$ZILA" -d a bundle create a0.bndl --all >/dev/null
"$ZILA" -d hq bundle apply a0.bndl >/dev/null || bad "hq takes a's first bundle"

# HQ's laptop is stolen. A new laptop becomes HQ with the root key and clones the old HQ.
expect 0 "org add-hq with the root key" -- "$ZILA" -d n org add-hq --org-key hq/org.key --passphrase-file pass --name hq2 --org-name "Bihar Unit"
cmp -s hq/org.secret n/org.secret && ok "the new HQ took the organisation secret beside the root key" || bad "n/org.secret: $(ls -l n/org.secret 2>&1)"
# A root key copied somewhere without its secret: the new HQ says what to copy, makes none.
mkdir -p safe && cp hq/org.key safe/
"$ZILA" -d m init >/dev/null
expect 1 "org add-hq with no secret beside the root key" -- "$ZILA" -d m org add-hq --org-key safe/org.key --passphrase-file pass --name hq3
has "$T/err" "no organisation secret beside the root key" "it names the missing secret"
[ ! -e m/org.secret ] && ok "it made no secret of its own" || bad "m made a secret"
expect 0 "whoami at the new HQ" -- "$ZILA" -d n whoami
has "$T/out" "hq of all districts" "the new HQ has an HQ certificate"
"$ZILA" -d hq bundle create hq.bndl --all >/dev/null
expect 0 "the new HQ takes the old HQ's data" -- "$ZILA" -d n bundle apply hq.bndl
expect 0 "org revoke of the stolen HQ" -- "$ZILA" -d n org revoke "$HQID" --org-key hq/org.key --passphrase-file pass
expect 0 "devices at the new HQ" -- "$ZILA" -d n devices
grep "laptop-a" "$T/out" | grep -q "issuer REVOKED" && ok "a laptop certified by the stolen HQ is marked" || bad "devices: $(cat "$T/out")"

# The stolen key certifies a laptop of its own after the revocation: refused.
sleep 1
"$ZILA" -d x init >/dev/null
"$ZILA" -d x enrol request x.req --name thief >/dev/null
"$ZILA" -d hq enrol sign x.req x.cert --district d1 --role district >/dev/null || bad "the stolen HQ signs"
"$ZILA" -d x enrol install x.cert >/dev/null
sqlite3 x/zila.db "INSERT INTO people(id, district_id, name, phone) VALUES ('x1', 'd1', 'Fake', '9000000009');"
"$ZILA" -d x bundle create x.bndl --all >/dev/null
"$ZILA" -d n bundle apply x.bndl >/dev/null 2>x.err
[ "$(sqlite3 n/zila.db "SELECT count(*) FROM people WHERE id = 'x1'")" = 0 ] && ok "the stolen key's new laptop writes nothing" || bad "x1 taken"

# A laptop's edits after the revocation wait until the new HQ certifies it again.
sqlite3 a/zila.db "INSERT INTO people(id, district_id, name, phone) VALUES ('a2', 'd1', 'Gita', '9000000004');"
"$ZILA" -d a bundle create a1.bndl --all >/dev/null
"$ZILA" -d n bundle apply a1.bndl >/dev/null 2>/dev/null
[ "$(sqlite3 n/zila.db "SELECT group_concat(id) FROM people WHERE id LIKE 'a%' ORDER BY id")" = a1 ] &&
	ok "before reissue: the edit before the revocation stands, the later one waits" ||
	bad "before reissue: $(sqlite3 n/zila.db "SELECT group_concat(id) FROM people")"
expect 0 "enrol reissue at the new HQ" -- "$ZILA" -d n enrol reissue "$AID" a2.cert
expect 1 "reissue once only" -- "$ZILA" -d n enrol reissue "$AID"
expect 0 "the laptop installs it" -- "$ZILA" -d a enrol install a2.cert
"$ZILA" -d n bundle apply a1.bndl >/dev/null 2>/dev/null
[ "$(sqlite3 n/zila.db "SELECT count(*) FROM people WHERE id = 'a2'")" = 1 ] && ok "after reissue the later edit is taken" || bad "a2 missing"

# Item 13: b is revoked at the new HQ; its row past the mark reached a before the revocation.
expect 0 "the new HQ reissues b" -- "$ZILA" -d n enrol reissue "$BID"
"$ZILA" -d n bundle create n.bndl --all >/dev/null
"$ZILA" -d b bundle apply n.bndl >/dev/null 2>/dev/null
"$ZILA" -d a bundle apply n.bndl >/dev/null 2>/dev/null
expect 0 "the new HQ revokes b" -- "$ZILA" -d n revoke "$BID"
sqlite3 b/zila.db "UPDATE people SET name = 'Evil' WHERE id = 'a1'; INSERT INTO people(id, district_id, name, phone) VALUES ('b9', 'd1', 'Late', '9000000008');"
"$ZILA" -d b bundle create b.bndl --all >/dev/null
"$ZILA" -d a bundle apply b.bndl >/dev/null 2>/dev/null
[ "$(sqlite3 a/zila.db "SELECT name FROM people WHERE id = 'a1'")" = Evil ] && ok "a took b's edit before the revocation" || bad "a1 at a: $(sqlite3 a/zila.db "SELECT name FROM people WHERE id = 'a1'")"
"$ZILA" -d n bundle create n2.bndl --all >/dev/null
expect 0 "a learns the revocation" -- "$ZILA" -d a bundle apply n2.bndl
[ "$(sqlite3 a/zila.db "SELECT name FROM people WHERE id = 'a1'")" = Sita ] && ok "b's edit past its mark is undone" || bad "a1 at a: $(sqlite3 a/zila.db "SELECT name FROM people WHERE id = 'a1'")"
[ "$(sqlite3 a/zila.db "SELECT count(*) FROM people WHERE id = 'b9'")" = 0 ] && ok "b's row past its mark is gone" || bad "b9 stays"
"$ZILA" -d n bundle apply b.bndl >/dev/null 2>/dev/null
"$ZILA" -d a bundle create a3.bndl --all >/dev/null
"$ZILA" -d n bundle apply a3.bndl >/dev/null 2>/dev/null
"$ZILA" -d n bundle create n3.bndl --all >/dev/null
"$ZILA" -d a bundle apply n3.bndl >/dev/null 2>/dev/null
same_hash a n && ok "the replica that took b's rows first and the one that refused them agree" || bad "a and n differ"

# A laptop enrolled by USB after the revocation knows it at once.
"$ZILA" -d c init >/dev/null
"$ZILA" -d c enrol request c.req --name laptop-c >/dev/null
"$ZILA" -d n enrol sign c.req c.cert --district d1 --role district >/dev/null || bad "n signs c"
expect 0 "c installs its certificate" -- "$ZILA" -d c enrol install c.cert
"$ZILA" -d b bundle create b2.bndl --all >/dev/null
"$ZILA" -d c bundle apply b2.bndl >/dev/null 2>/dev/null
expect 0 "devices at c" -- "$ZILA" -d c devices
grep "laptop-b" "$T/out" | grep -q "REVOKED" && ok "the certificate file carried b's revocation" || bad "c devices: $(cat "$T/out")"
[ "$(sqlite3 c/zila.db "SELECT count(*) FROM people WHERE id = 'b9'")" = 0 ] && ok "c refuses b's rows past its mark" || bad "b9 at c"
[ "$(sqlite3 c/zila.db "SELECT name FROM people WHERE id = 'a1'")" != Evil ] && ok "c refuses b's edit past its mark" || bad "a1 Evil at c"
if "$ZILA" -d a status 2>&1 | grep -q "clock is behind"; then bad "a reissued certificate moved a laptop's idea of HQ's time ahead"; else ok "a's clock is left alone"; fi

finish
