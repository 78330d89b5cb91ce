#!/bin/sh
# `make demo`: HQ and two district laptops as real daemons on loopback. HQ creates the
# organisation and loads generated sample data; the laptops join with invite codes over the
# network and get their district; offline edits on both (a concurrent one included); the
# laptops find each other by beacon and merge, then reach HQ; the merged result. Everything
# lives in ./zila-demo; run it again to start over. Beacons go to 127.255.255.255 only.
set -eu
Z=${ZILA:-build/zila}
G=${ZILA_GEN:-build/tools/zila_gen}
D=${DEMO_DIR:-zila-demo}
P=$((30000 + $$ % 10000))
rm -rf "$D"
mkdir -p "$D"
say() { printf '\n== %s\n' "$*"; }
started=""
cleanup() { for r in $started; do $Z -d "$D/$r" stop >/dev/null 2>&1 || true; done; }
trap cleanup EXIT
# up NAME PORT: starts NAME's daemon on loopback, logging to zila-demo/NAME.log
up() {
	$Z -d "$D/$1" daemon --listen "127.0.0.1:$2" --beacon-port $((P + 9)) --beacon-to 127.255.255.255 \
		2>>"$D/$1.log" &
	started="$started $1"
	n=0
	while [ ! -S "$D/$1/zila.sock" ] && [ $n -lt 50 ]; do sleep 0.1; n=$((n + 1)); done
}
down() { $Z -d "$D/$1" stop >/dev/null; }

say "three replicas: hq, laptop-a, laptop-b"
for r in hq laptop-a laptop-b; do $Z -d "$D/$r" init; done

say "hq creates the organisation (root key protected by a passphrase)"
echo "demo passphrase: keep the real one secret" > "$D/passphrase"
$Z -d "$D/hq" org init --name "Bihar Pradesh Unit" --passphrase-file "$D/passphrase"

say "hq loads sample data: a district with its blocks, booths and members (Hindi and English names)"
$G --districts 1 --people-per-district 300 --seed 7 --db "$D/hq/zila.db"
$Z -d "$D/hq" sql "SELECT d.name, count(p.id) AS people FROM districts d LEFT JOIN people p ON p.district_id = d.id GROUP BY d.id"
D1=$($Z -d "$D/hq" sql "SELECT id FROM districts ORDER BY name LIMIT 1")

say "hq's daemon listens on 127.0.0.1:$P"
up hq "$P"

say "the laptops join with one-time invite codes, over the network"
for r in laptop-a laptop-b; do
	code=$($Z -d "$D/hq" invite --district "$D1" --role district | head -1)
	echo "invite for $r: $code"
	# the code on stdin (or typed at the prompt): never in argv, where ps shows it
	printf '%s\n' "$code" | $Z -d "$D/$r" join - --hq "127.0.0.1:$P" --name "$r"
done

say "their daemons start and pull the district from hq"
up laptop-a $((P + 1))
up laptop-b $((P + 2))
$Z -d "$D/laptop-a" sync hq --wait
$Z -d "$D/laptop-b" sync hq --wait
$Z -d "$D/laptop-a" status
down laptop-a
down laptop-b
down hq

P1=$($Z -d "$D/hq" sql "SELECT id FROM people WHERE district_id = '$D1' ORDER BY id LIMIT 1")

say "offline edits (daemons stopped): both laptops change the same member; each adds members"
sqlite3 "$D/laptop-a/zila.db" "UPDATE people SET address = 'Ward 4, Danapur' WHERE id = '$P1';
  INSERT INTO people(district_id, name, name_local, phone) VALUES ('$D1', 'Meena Devi', 'मीना देवी', '9123400001');"
sqlite3 "$D/laptop-b/zila.db" "UPDATE people SET address = 'Ward 9, Phulwari' WHERE id = '$P1';
  INSERT INTO people(district_id, name, name_local, phone) VALUES ('$D1', 'Rakesh Yadav', 'राकेश यादव', '9123400002');
  DELETE FROM attendance WHERE rowid IN (SELECT rowid FROM attendance LIMIT 3);"
echo "laptop-a edited with plain sqlite3; zila captured it:"
$Z -d "$D/laptop-a" log --table people --id "$P1" | tail -3

say "block meeting, no HQ: the laptops' daemons find each other by beacon and merge"
up laptop-a $((P + 1))
up laptop-b $((P + 2))
n=0
until [ "$($Z -d "$D/laptop-a" hash)" = "$($Z -d "$D/laptop-b" hash)" ] || [ $n -ge 100 ]; do sleep 0.2; n=$((n + 1)); done
$Z -d "$D/laptop-b" peers
down laptop-b

say "laptop-a reaches hq and carries both laptops' changes"
up hq "$P"
$Z -d "$D/laptop-a" sync hq --wait
up laptop-b $((P + 2))
$Z -d "$D/laptop-b" sync hq --wait

say "merged result: the same content hash everywhere"
for r in hq laptop-a laptop-b; do printf '%-9s %s\n' "$r" "$($Z -d "$D/$r" hash)"; done
say "the concurrent edit is kept for review at hq"
$Z -d "$D/hq" conflicts
$Z -d "$D/hq" sql "SELECT name, name_local, phone FROM people WHERE phone LIKE '91234%' ORDER BY phone"
say "hq's status and progress report"
$Z -d "$D/hq" status
$Z -d "$D/hq" report || true
a=$($Z -d "$D/hq" hash); b=$($Z -d "$D/laptop-a" hash); c=$($Z -d "$D/laptop-b" hash)
if [ "$a" = "$b" ] && [ "$b" = "$c" ]; then echo; echo "demo: all three replicas converged"; else echo "demo: replicas differ" >&2; exit 1; fi
