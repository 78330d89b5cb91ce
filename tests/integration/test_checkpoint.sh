#!/bin/sh
# Checkpoints end to end (#20 part 2): HQ's district of 300 members, each edited 5 times;
# `zila checkpoint` at HQ (a laptop may not); a new laptop's daemon syncs with HQ's and gets
# the checkpoint and only the entries after it: the same rows as HQ, a few entries held, and
# `zila log` says the history before is at HQ; a second new laptop gets the same by USB
# bundle; a changed byte in an exported checkpoint is refused by `zila checkpoint apply` with
# a plain message and nothing changed; `zila history --days`.
. "$(dirname "$0")/lib.sh"
P=$((21000 + ($$ * 13) % 20000))
HQP=$P L1P=$((P + 1))
HQ=$T/hq L1=$T/l1 L2=$T/l2 L3=$T/l3
cleanup() { stop_daemons; done_with_tmp; }
trap cleanup EXIT
command -v sqlite3 >/dev/null || { bad "sqlite3 is needed"; finish; exit 1; }
q() { sqlite3 "$1/zila.db" "$2"; }
write() { sqlite3 "$1/zila.db" "PRAGMA foreign_keys = ON; $2" && "$ZILA" -d "$1" seal >/dev/null; }
rows() { q "$1" "SELECT id || '|' || name || '|' || coalesce(phone, '') FROM people WHERE district_id = 'd-1' ORDER BY id"; }

org_init "$HQ" || { bad "org init"; finish; exit 1; }
for d in "$L1" "$L2" "$L3"; do
	rm -f "$T/.req" "$T/.cert"
	"$ZILA" -d "$d" init >/dev/null && enrol "$HQ" "$d" d-1 || { bad "enrol $d"; finish; exit 1; }
done
write "$HQ" "WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n WHERE x < 300)
  INSERT INTO people(id, district_id, name, phone) SELECT printf('m-%04d', x), 'd-1', 'Member ' || x, '9' || x FROM n"
for k in 1 2 3 4 5; do
	write "$HQ" "UPDATE people SET phone = '8$k' || substr(id, 3) WHERE district_id = 'd-1'"
	sleep 1.1 # a group of its own
done
expect 1 "a laptop makes no checkpoint" -- "$ZILA" -d "$L1" checkpoint d-1
has "$T/err" "only an HQ device" "it says only HQ makes them"
expect 0 "HQ checkpoints the district" -- "$ZILA" -d "$HQ" checkpoint d-1
has "$T/out" "300 rows" "of its 300 members"
write "$HQ" "UPDATE people SET name = 'After' WHERE id = 'm-0001'"
hq_entries=$(q "$HQ" "SELECT count(*) FROM zila_entries e JOIN zila_feeds f ON f.id = e.feed WHERE f.part = 'd-1'")

# a new laptop's daemon syncs with HQ's
daemon_up "$HQ" "$T/hq.log" "$HQP" || { bad "HQ daemon"; finish; exit 1; }
"$ZILA" -d "$L1" peer add --hq "127.0.0.1:$HQP" >/dev/null
daemon_up "$L1" "$T/l1.log" "$L1P" || { bad "laptop daemon"; finish; exit 1; }
expect 0 "the new laptop syncs with HQ" -- "$ZILA" -d "$L1" sync hq --wait --timeout 60
if [ "$(rows "$L1")" = "$(rows "$HQ")" ] && [ -n "$(rows "$L1")" ]; then ok "its members are HQ's"; else bad "its members differ from HQ's"; fi
l1_entries=$(q "$L1" "SELECT count(*) FROM zila_entries e JOIN zila_feeds f ON f.id = e.feed WHERE f.part = 'd-1'")
if [ "$l1_entries" -lt "$hq_entries" ] && [ "$l1_entries" -le 2 ]; then ok "it holds $l1_entries of the district's $hq_entries entries"; else bad "it holds $l1_entries entries of $hq_entries"; fi
expect 0 "it lists the checkpoint" -- "$ZILA" -d "$L1" checkpoint list
has "$T/out" "300 rows" "the checkpoint it keeps"
stop_daemons
pids=""
expect 0 "zila log on the laptop" -- "$ZILA" -d "$L1" log
has "$T/out" "kept at HQ" "says the history before the checkpoint is at HQ"

# by USB stick
"$ZILA" -d "$L2" vector >"$T/l2.vec"
expect 0 "HQ writes a bundle for another new laptop" -- "$ZILA" -d "$HQ" bundle create "$T/l2.bndl" --for "$T/l2.vec"
expect 0 "the laptop applies it" -- "$ZILA" -d "$L2" bundle apply "$T/l2.bndl"
if [ "$(rows "$L2")" = "$(rows "$HQ")" ]; then ok "the bundle's laptop has HQ's members"; else bad "the bundle's laptop differs"; fi
[ "$(q "$L2" "SELECT count(*) FROM zila_checkpoints")" = 1 ] && ok "it keeps the checkpoint" || bad "no checkpoint kept from the bundle"

# a damaged or forged checkpoint
expect 0 "HQ exports its checkpoint" -- "$ZILA" -d "$HQ" checkpoint export d-1 "$T/d1.ckpt"
expect 0 "another laptop merges the file" -- "$ZILA" -d "$L3" checkpoint apply "$T/d1.ckpt"
has "$T/out" "300 rows" "all the rows"
cp "$T/d1.ckpt" "$T/bad.ckpt"
size=$(wc -c <"$T/bad.ckpt")
printf 'X' | dd of="$T/bad.ckpt" bs=1 seek=$((size - 10)) conv=notrunc 2>/dev/null
before=$("$ZILA" -d "$L2" hash)
expect 1 "a changed byte is refused" -- "$ZILA" -d "$L2" checkpoint apply "$T/bad.ckpt"
has "$T/err" "nothing changed" "with a plain message"
[ "$("$ZILA" -d "$L2" hash)" = "$before" ] && ok "and nothing changed" || bad "the refused checkpoint changed the replica"

expect 0 "history --days" -- "$ZILA" -d "$L1" history --days 30
expect 0 "history" -- "$ZILA" -d "$L1" history
has "$T/out" "history from" "it says from when it keeps history"
expect 2 "history --days rejects a word" -- "$ZILA" -d "$L1" history --days soon
finish
