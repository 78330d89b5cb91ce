#!/bin/sh
# `make demo`: HQ creates the organisation and enrols two district laptops (by
# request/certificate files), loads generated sample data, and the three replicas merge by
# USB bundles (no network needed); then the merged result. Everything lives in ./zila-demo;
# run it again to start over.
set -eu
Z=${ZILA:-build/zila}
G=${ZILA_GEN:-build/tools/zila_gen}
D=${DEMO_DIR:-zila-demo}
rm -rf "$D"
mkdir -p "$D"
say() { printf '\n== %s\n' "$*"; }

say "three replicas: hq, laptop-a, laptop-b"
for r in hq laptop-a laptop-b; do $Z -d "$D/$r" init; done

say "hq creates the organisation (root key protected by a passphrase)"
echo "demo passphrase: keep the real one secret" > "$D/passphrase"
$Z -d "$D/hq" org init --name "Bihar Pradesh Unit" --passphrase-file "$D/passphrase"

say "hq loads sample data: a district with its blocks, booths and members (Hindi and English names)"
$G --districts 1 --people-per-district 300 --seed 7 --db "$D/hq/zila.db"
$Z -d "$D/hq" sql "SELECT d.name, count(p.id) AS people FROM districts d LEFT JOIN people p ON p.district_id = d.id GROUP BY d.id"
D1=$($Z -d "$D/hq" sql "SELECT id FROM districts ORDER BY name LIMIT 1")

say "the laptops enrol for that district: request file -> hq signs -> certificate file"
for r in laptop-a laptop-b; do
	$Z -d "$D/$r" enrol request "$D/$r.req" --name "$r"
	$Z -d "$D/hq" enrol sign "$D/$r.req" "$D/$r.cert" --district "$D1" --role district
	$Z -d "$D/$r" enrol install "$D/$r.cert"
done

say "laptops receive their district's data by bundle (USB stick), made for each"
for r in laptop-a laptop-b; do
	$Z -d "$D/$r" vector > "$D/$r.vec"
	$Z -d "$D/hq" bundle create "$D/hq-$r.bndl" --for "$D/$r.vec"
	$Z -d "$D/$r" bundle apply "$D/hq-$r.bndl"
done

P1=$($Z -d "$D/hq" sql "SELECT id FROM people WHERE district_id = '$D1' ORDER BY id LIMIT 1")

say "offline edits: both laptops change the same member; each adds members; one deletes one"
sqlite3 "$D/laptop-a/zila.db" "UPDATE people SET address = 'Ward 4, Danapur' WHERE id = '$P1';
  INSERT INTO people(district_id, name, name_local, phone) VALUES ('$D1', 'Meena Devi', 'मीना देवी', '9123400001');"
sqlite3 "$D/laptop-b/zila.db" "UPDATE people SET address = 'Ward 9, Phulwari' WHERE id = '$P1';
  INSERT INTO people(district_id, name, name_local, phone) VALUES ('$D1', 'Rakesh Yadav', 'राकेश यादव', '9123400002');
  DELETE FROM attendance WHERE rowid IN (SELECT rowid FROM attendance LIMIT 3);"
echo "laptop-a edited with plain sqlite3; zila captured it:"
$Z -d "$D/laptop-a" log --table people --id "$P1" | tail -3

say "block meeting: the laptops swap bundles, made for what the other lacks"
$Z -d "$D/laptop-a" vector > "$D/a.vec"
$Z -d "$D/laptop-b" vector > "$D/b.vec"
$Z -d "$D/laptop-a" bundle create "$D/a-to-b.bndl" --for "$D/b.vec"
$Z -d "$D/laptop-b" bundle create "$D/b-to-a.bndl" --for "$D/a.vec"
$Z -d "$D/laptop-b" bundle apply "$D/a-to-b.bndl"
$Z -d "$D/laptop-a" bundle apply "$D/b-to-a.bndl"

say "laptop-a reaches hq and carries both laptops' changes"
$Z -d "$D/hq" vector > "$D/hq.vec"
$Z -d "$D/laptop-a" bundle create "$D/a-to-hq.bndl" --for "$D/hq.vec"
$Z -d "$D/hq" bundle apply "$D/a-to-hq.bndl"

say "merged result: the same content hash everywhere"
for r in hq laptop-a laptop-b; do printf '%-9s %s\n' "$r" "$($Z -d "$D/$r" hash)"; done
say "the concurrent edit is kept for review at hq"
$Z -d "$D/hq" conflicts
$Z -d "$D/hq" sql "SELECT name, name_local, phone FROM people WHERE phone LIKE '91234%' ORDER BY phone"
say "hq's progress report"
$Z -d "$D/hq" report || true
a=$($Z -d "$D/hq" hash); b=$($Z -d "$D/laptop-a" hash); c=$($Z -d "$D/laptop-b" hash)
if [ "$a" = "$b" ] && [ "$b" = "$c" ]; then echo; echo "demo: all three replicas converged"; else echo "demo: replicas differ" >&2; exit 1; fi
