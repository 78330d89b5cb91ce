#!/bin/sh
# The replica's command line as a user drives it: init, track refusals, capture from plain
# sqlite3, the audit trail, bundles (twice, truncated, altered), exit codes.
. "$(dirname "$0")/lib.sh"
A=$T/a; B=$T/b; C=$T/c

expect 0 "help lists commands" -- "$ZILA" help
has "$T/out" "bundle" "help names the bundle command"
expect 2 "an unknown command is misuse" -- "$ZILA" frobnicate
has "$T/err" "'frobnicate' is not a zila command" "unknown command is named"
expect 1 "a missing replica is an error" -- "$ZILA" -d "$T/none" hash
has "$T/err" "no replica in" "missing replica says how to create one"
expect 0 "init a" -- "$ZILA" -d "$A" init
expect 0 "init b" -- env ZILA_DIR="$B" "$ZILA" init
expect 1 "init twice refuses" -- "$ZILA" -d "$A" init
[ "$(stat -c %a "$A/device.key")" = 600 ] && ok "device key is 0600" || bad "device key mode $(stat -c %a "$A/device.key")"
# Every connection to the replica gets a 32 MiB page cache from its header, old replicas too.
[ "$(sqlite3 "$B/zila.db" "PRAGMA default_cache_size")" = 8192 ] && ok "a new replica asks connections for 8192 pages" || bad "default_cache_size $(sqlite3 "$B/zila.db" "PRAGMA default_cache_size")"
sqlite3 "$B/zila.db" "PRAGMA default_cache_size = 0"
expect 0 "hash of b" -- "$ZILA" -d "$B" hash
[ "$(sqlite3 "$B/zila.db" "PRAGMA default_cache_size")" = 8192 ] && ok "an older replica gets it when opened" || bad "default_cache_size $(sqlite3 "$B/zila.db" "PRAGMA default_cache_size") after open"

expect 0 "org init on a" -- "$ZILA" -d "$A" org init --name "Test Org" --passphrase-file "$(echo 'a passphrase for tests only' > "$T/pass"; echo "$T/pass")"
sqlite3 "$A/zila.db" "INSERT INTO states(id, name) VALUES ('s1', 'Bihar');
  INSERT INTO districts(id, state_id, name) VALUES ('d1', 's1', 'Patna');"
expect 0 "b is enrolled by usb for d1" -- enrol "$A" "$B" d1

expect 0 "init c" -- "$ZILA" -d "$C" init
sqlite3 "$C/zila.db" "CREATE TABLE nopk(a TEXT); CREATE TABLE comp(a TEXT, b TEXT, PRIMARY KEY(a, b));
  CREATE TABLE auto(id INTEGER PRIMARY KEY AUTOINCREMENT, x TEXT); CREATE TABLE good(id TEXT PRIMARY KEY, zone TEXT, x TEXT);"
expect 1 "no primary key is refused" -- "$ZILA" -d "$C" track nopk
has "$T/err" "has no primary key" "refusal names the reason"
expect 1 "composite key is refused" -- "$ZILA" -d "$C" track comp
has "$T/err" "make the old key UNIQUE" "refusal names the fix"
expect 1 "rowid key is refused" -- "$ZILA" -d "$C" track auto
has "$T/err" "rowid" "rowid refusal explains"
expect 1 "missing partition column is refused" -- "$ZILA" -d "$C" track good --partition district_id
expect 2 "track without a table is misuse" -- "$ZILA" -d "$C" track
expect 0 "a good table is tracked" -- "$ZILA" -d "$C" track good --partition zone
expect 1 "tracking twice refuses" -- "$ZILA" -d "$C" track good --partition zone

sqlite3 "$A/zila.db" "INSERT INTO people(id, district_id, name, phone) VALUES ('p1', 'd1', 'Ram', '9000000001'), ('p2', 'd1', 'Sita', '9000000002');"
expect 0 "seal the inserts" -- "$ZILA" -d "$A" seal
sqlite3 "$A/zila.db" "UPDATE people SET name = 'Ram Kumar' WHERE id = 'p1';"
if sqlite3 "$A/zila.db" "UPDATE people SET district_id = 'd2' WHERE id = 'p1'" 2>"$T/err"; then
	bad "moving a row to another partition is refused"
else
	ok "moving a row to another partition is refused"
fi
expect 0 "log of one record" -- "$ZILA" -d "$A" log --table people --id p1
has "$T/out" "Ram -> Ram Kumar" "log shows old and new value"
expect 0 "vector" -- "$ZILA" -d "$A" vector
has "$T/out" " d1 2" "vector has the d1 feed at seq 2"

expect 1 "a replica that is not enrolled writes no bundle" -- "$ZILA" -d "$C" bundle create "$T/c.bndl"
has "$T/err" "not enrolled" "the refusal says why"
[ ! -e "$T/c.bndl" ] && ok "no bundle file was left" || bad "a bundle file was written"
expect 1 "hq makes no bundle for no one in particular" -- "$ZILA" -d "$A" bundle create "$T/a.bndl"
has "$T/err" "carry them all to whoever finds the stick" "the refusal says why"
expect 0 "bundle create --all" -- "$ZILA" -d "$A" bundle create "$T/a.bndl" --all
expect 1 "a replica that is not enrolled applies no bundle" -- "$ZILA" -d "$C" bundle apply "$T/a.bndl"
has "$T/err" "exchanges nothing" "the refusal says a lone replica exchanges nothing"
[ "$(sqlite3 "$C/zila.db" "SELECT count(*) FROM zila_entries")" = 0 ] && ok "nothing reached the lone replica" || bad "entries reached c"
hb0=$("$ZILA" -d "$B" hash)
# A truncated copy and one with a flipped byte are refused and apply nothing.
size=$(stat -c %s "$T/a.bndl")
head -c $((size - 7)) "$T/a.bndl" > "$T/trunc.bndl"
expect 1 "truncated bundle is refused" -- "$ZILA" -d "$B" bundle apply "$T/trunc.bndl"
has "$T/err" "nothing was applied" "truncation error says nothing was applied"
for off in 12 $((size / 2)) $((size - 40)); do
	cp "$T/a.bndl" "$T/flip.bndl"
	# every bit of the byte inverted: writing a fixed value left it unchanged where it was already that value
	b=$(od -An -tu1 -j "$off" -N1 "$T/a.bndl" | tr -d ' ')
	printf "\\$(printf '%03o' $((b ^ 255)))" | dd of="$T/flip.bndl" bs=1 seek=$off conv=notrunc 2>/dev/null
	cmp -s "$T/a.bndl" "$T/flip.bndl" && bad "the byte at $off was not changed"
	expect 1 "bundle with a flipped byte at $off is refused" -- "$ZILA" -d "$B" bundle apply "$T/flip.bndl"
done
[ "$("$ZILA" -d "$B" hash)" = "$hb0" ] && ok "refused bundles changed nothing" || bad "refused bundles changed the replica"
expect 1 "a file that is no bundle is refused" -- "$ZILA" -d "$B" bundle apply "$A/device.key"
expect 0 "bundle apply" -- "$ZILA" -d "$B" bundle apply "$T/a.bndl"
expect 0 "bundle apply again" -- "$ZILA" -d "$B" bundle apply "$T/a.bndl"
has "$T/out" "applied 0 of" "second apply changes nothing"
[ "$("$ZILA" -d "$A" hash)" = "$("$ZILA" -d "$B" hash)" ] && ok "hashes equal after bundle" || bad "hashes differ"
[ "$(sqlite3 "$B/zila.db" "SELECT name FROM people WHERE id = 'p1'")" = "Ram Kumar" ] && ok "row arrived" || bad "row missing"

# --for sends only what the other side lacks.
sqlite3 "$A/zila.db" "UPDATE people SET phone = '9000000009' WHERE id = 'p2'"
"$ZILA" -d "$B" vector > "$T/b.vec"
expect 0 "bundle create --for" -- "$ZILA" -d "$A" bundle create "$T/inc.bndl" --for "$T/b.vec"
has "$T/out" "wrote 1 entry" "incremental bundle holds one entry"
expect 0 "incremental apply" -- "$ZILA" -d "$B" bundle apply "$T/inc.bndl"
[ "$("$ZILA" -d "$A" hash)" = "$("$ZILA" -d "$B" hash)" ] && ok "hashes equal after incremental" || bad "hashes differ"
echo "garbage" > "$T/bad.vec"
expect 1 "a bad vector file is refused" -- "$ZILA" -d "$A" bundle create "$T/x.bndl" --for "$T/bad.vec"
expect 0 "sql through zila is captured" -- "$ZILA" -d "$B" sql "UPDATE people SET name = 'Sita Devi' WHERE id = 'p2'"
expect 0 "seal" -- "$ZILA" -d "$B" seal
has "$T/out" "sealed 1 entry" "the sql change was sealed"
expect 0 "conflicts (none)" -- "$ZILA" -d "$B" conflicts
has "$T/out" "no conflicts" "no conflicts reported"
expect 0 "integrity" -- sqlite3 "$B/zila.db" "PRAGMA integrity_check"
has "$T/out" "^ok" "integrity_check ok"
finish
