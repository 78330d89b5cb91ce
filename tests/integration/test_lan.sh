#!/bin/sh
# Real daemons on a LAN of network namespaces: HQ (host 1), four laptops (hosts 2-5) and a
# device of another organisation (host 6) on one bridge. Laptops join HQ over the network,
# then meet in two block meetings with HQ out of reach: they find each other by broadcast with
# no configuration and merge; one laptop of each meeting later reaches HQ carrying the other's
# changes; HQ ends with everything and every hash is equal. The outsider learns and changes
# nothing; a revoked laptop is refused by everyone.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/netns.sh"
NS_ON_EXIT='rm -rf "$T"'
ns_setup zl 6
HQ=$T/hq X=$T/outsider
L2=$T/l2 L3=$T/l3 L4=$T/l4 L5=$T/l5
HQA=$(ns_addr 1):7400

# until N CMD...: retries CMD every 0.5 s, N times at most
until_ok() {
	n=$1; shift
	while [ "$n" -gt 0 ]; do "$@" >/dev/null 2>&1 && return 0; sleep 0.5; n=$((n - 1)); done
	return 1
}
same_hash() { [ "$("$ZILA" -d "$1" hash)" = "$("$ZILA" -d "$2" hash)" ]; }
people() { "$ZILA" -d "$1" sql "SELECT count(*) FROM people WHERE id LIKE '$2'" | tail -1; }
has_row() { [ "$(people "$1" "$2")" = 1 ]; }
# up I DIR: the daemon of replica DIR in namespace I (default ports, beacons on every interface)
up() {
	ns_exec "$1" "$ZILA" -d "$2" daemon --listen 0.0.0.0:7400 2>>"$2.log" &
	until_ok 40 test -S "$2/zila.sock"
}
down() { "$ZILA" -d "$1" stop >/dev/null 2>&1; }

printf 'correct horse battery\n' >"$T/pw"
for d in "$HQ" "$X" "$L2" "$L3" "$L4" "$L5"; do "$ZILA" -d "$d" init >/dev/null; done
expect 0 "hq creates the organisation" -- "$ZILA" -d "$HQ" org init --name Party --passphrase-file "$T/pw"
expect 0 "an outsider creates another" -- "$ZILA" -d "$X" org init --name Other --passphrase-file "$T/pw"
expect 0 "hq writes the catalogue" -- "$ZILA" -d "$HQ" sql \
	"INSERT INTO states(id, name) VALUES ('s1', 'S'); INSERT INTO districts(id, state_id, name) VALUES ('d-1', 's1', 'One')"
up 1 "$HQ"
up 6 "$X"
for i in 2 3 4 5; do
	code=$("$ZILA" -d "$HQ" invite --district d-1 --role block | head -1)
	expect 0 "laptop $i joins hq over the LAN" -- ns_exec $i "$ZILA" -d "$T/l$i" join "$code" --hq "$HQA" --name "lap-$i"
	up $i "$T/l$i"
	expect 0 "laptop $i gets the catalogue from hq" -- "$ZILA" -d "$T/l$i" sync hq --wait
	down "$T/l$i"
done

# Block meeting A: laptops 2 and 3, HQ and the others out of reach; edits made offline.
ns_cut 1; ns_cut 4; ns_cut 5
"$ZILA" -d "$L2" sql "INSERT INTO people(id, district_id, name) VALUES ('p-2', 'd-1', 'Asha')" >/dev/null
"$ZILA" -d "$L3" sql "INSERT INTO people(id, district_id, name) VALUES ('p-3', 'd-1', 'Bina')" >/dev/null
up 2 "$L2"
up 3 "$L3"
if until_ok 60 same_hash "$L2" "$L3"; then ok "meeting A: laptops 2 and 3 found each other and merged"; else bad "meeting A did not merge"; fi
has_row "$L2" p-3 && has_row "$L3" p-2 && ok "each has the other's row" || bad "rows missing after meeting A"
has "$L2.log" "10.77.0.3" "laptop 2 learnt laptop 3's address by broadcast"
"$ZILA" -d "$X" sql "INSERT INTO states(id, name) VALUES ('x1', 'Outsider')" >/dev/null
sleep 2
[ "$(people "$X" '%')" = 0 ] && ok "the outsider learnt nothing" || bad "the outsider holds people rows"
[ "$("$ZILA" -d "$L2" sql "SELECT count(*) FROM states WHERE id = 'x1'" | tail -1)" = 0 ] &&
	ok "the outsider changed nothing" || bad "the outsider's row reached a laptop"
down "$L2"; down "$L3"

# Block meeting B: laptops 4 and 5.
ns_cut 2; ns_cut 3; ns_heal 4; ns_heal 5
"$ZILA" -d "$L4" sql "INSERT INTO people(id, district_id, name) VALUES ('p-4', 'd-1', 'Chitra')" >/dev/null
"$ZILA" -d "$L5" sql "INSERT INTO people(id, district_id, name) VALUES ('p-5', 'd-1', 'Devi')" >/dev/null
up 4 "$L4"
up 5 "$L5"
if until_ok 60 same_hash "$L4" "$L5"; then ok "meeting B: laptops 4 and 5 merged"; else bad "meeting B did not merge"; fi
down "$L4"; down "$L5"

# Laptop 3 reaches HQ with laptop 2's change; then laptop 5 with laptop 4's.
ns_heal 1; ns_heal 3; ns_cut 4; ns_cut 5
up 3 "$L3"
expect 0 "laptop 3 syncs with hq" -- "$ZILA" -d "$L3" sync hq --wait
if until_ok 20 has_row "$HQ" p-2; then ok "hq has laptop 2's row, relayed by laptop 3"; else bad "hq lacks p-2"; fi
down "$L3"
ns_cut 3; ns_heal 5
up 5 "$L5"
expect 0 "laptop 5 syncs with hq" -- "$ZILA" -d "$L5" sync hq --wait
if until_ok 20 has_row "$HQ" p-4; then ok "hq has laptop 4's row, relayed by laptop 5"; else bad "hq lacks p-4"; fi
[ "$(people "$HQ" 'p-%')" = 4 ] && ok "hq ends with everything" || bad "hq holds $(people "$HQ" 'p-%') of 4 rows"
down "$L5"

# Everyone back: every hash equal.
ns_heal 2; ns_heal 3; ns_heal 4
for i in 2 3 4 5; do up $i "$T/l$i"; done
for i in 2 3 4 5; do "$ZILA" -d "$T/l$i" sync hq --wait >/dev/null 2>&1; done
all_equal() { for i in 2 3 4 5; do same_hash "$HQ" "$T/l$i" || return 1; done; }
if until_ok 60 all_equal; then ok "all hashes equal"; else bad "hashes differ"; fi
expect 0 "hq's progress report" -- "$ZILA" -d "$HQ" report
has "$T/out" "lap-3 20[0-9-]* [0-9:]* UTC" "the report gives each laptop's last sync time"

# A revoked laptop is refused by everyone.
ID5=$("$ZILA" -d "$L5" whoami | awk '/^device:/ {print $2}')
expect 0 "hq revokes laptop 5" -- "$ZILA" -d "$HQ" revoke "$ID5"
for i in 2 3 4; do "$ZILA" -d "$T/l$i" sync hq --wait >/dev/null 2>&1; done
"$ZILA" -d "$L5" sql "INSERT INTO people(id, district_id, name) VALUES ('p-rev', 'd-1', 'After revocation')" >/dev/null
expect 1 "the revoked laptop's sync with hq fails" -- "$ZILA" -d "$L5" sync hq --wait
"$ZILA" -d "$L5" sync --wait >/dev/null 2>&1
sleep 2
for d in "$HQ" "$L2" "$L3" "$L4"; do
	has_row "$d" p-rev && bad "$(basename "$d") accepted the revoked laptop's row" || ok "$(basename "$d") refused the revoked laptop"
done
for d in "$HQ" "$L2" "$L3" "$L4" "$L5" "$X"; do down "$d"; done
finish
