#!/bin/sh
# Collecting deleted rows (#20 part 2, proto/CHECKPOINT.md "Collecting deleted rows"): HQ and a
# district laptop, both daemons, in step; HQ deletes 20 of the district's 50 members and
# checkpoints it. A second laptop of the district, enrolled and never seen since, holds
# collection back (`zila history prune` at HQ collects nothing; `zila history` names it, says
# why and what to do; `zila status` says it in one line) until HQ revokes it; the laptop's two
# completed syncs acknowledge the checkpoint; then HQ collects the 20, and the laptop drops
# them when it takes HQ's next checkpoint: the same rows, the same hash; both compacted
# (`zila history compact`, and the laptop's daemon by itself), the same hash again.
. "$(dirname "$0")/lib.sh"
P=$((21000 + ($$ * 17) % 20000))
HQP=$P L1P=$((P + 1))
HQ=$T/hq L1=$T/l1 L2=$T/l2
cleanup() { stop_daemons; done_with_tmp; }
trap cleanup EXIT
command -v sqlite3 >/dev/null || { bad "sqlite3 is needed"; finish; exit 1; }
q() { sqlite3 "$1/zila.db" "$2"; }
write() { sqlite3 "$1/zila.db" "PRAGMA foreign_keys = ON; $2" && "$ZILA" -d "$1" seal >/dev/null; }
tombs() { q "$1" "SELECT count(*) FROM zila_rows r WHERE NOT EXISTS (SELECT 1 FROM zila_parked p WHERE p.tid = r.tid AND p.pk = r.pk)"; }

org_init "$HQ" || { bad "org init"; finish; exit 1; }
for d in "$L1" "$L2"; do
	rm -f "$T/.req" "$T/.cert"
	"$ZILA" -d "$d" init >/dev/null && enrol "$HQ" "$d" d-1 || { bad "enrol $d"; finish; exit 1; }
done
write "$HQ" "WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n WHERE x < 50)
  INSERT INTO people(id, district_id, name, phone) SELECT printf('m-%04d', x), 'd-1', 'Member ' || x, '9' || x FROM n"
daemon_up "$HQ" "$T/hq.log" "$HQP" || { bad "HQ daemon"; finish; exit 1; }
"$ZILA" -d "$L1" peer add --hq "127.0.0.1:$HQP" >/dev/null
daemon_up "$L1" "$T/l1.log" "$L1P" || { bad "laptop daemon"; finish; exit 1; }
expect 0 "the laptop syncs with HQ" -- "$ZILA" -d "$L1" sync hq --wait --timeout 60
write "$HQ" "DELETE FROM people WHERE id <= 'm-0020'"
expect 0 "HQ checkpoints the district" -- "$ZILA" -d "$HQ" checkpoint d-1
for k in 1 2; do
	expect 0 "the laptop syncs with HQ ($k)" -- "$ZILA" -d "$L1" sync hq --wait --timeout 60
done
[ "$(tombs "$L1")" = 20 ] && ok "the laptop keeps the 20 deleted rows' registers" || bad "the laptop keeps $(tombs "$L1") deleted rows"
expect 0 "zila history prune at HQ" -- "$ZILA" -d "$HQ" history prune
has "$T/out" "collected 0 deleted rows" "a laptop never seen since enrolment holds collection back"
[ "$(tombs "$HQ")" = 20 ] && ok "HQ keeps them" || bad "HQ keeps $(tombs "$HQ") deleted rows"
L2ID=$("$ZILA" -d "$L2" whoami | grep -o '[0-9A-Z]\{4\}-[0-9A-Z]\{4\}-[0-9A-Z]\{4\}-[0-9A-Z]\{4\}-[0-9A-Z]\{2\}' | head -1)
expect 0 "zila history at HQ" -- "$ZILA" -d "$HQ" history
cp "$T/out" "$T/history"
has "$T/history" "deleted rows of 1 district (20 rows) wait for 1 device" "it says deleted rows wait, and for how many devices"
has "$T/history" "district 'd-1': 20 deleted rows wait for collection, held back by:" "it names the district and the rows"
has "$T/history" "'l2' ($L2ID): never seen since enrolment" "it names the laptop never seen since enrolment, and why"
has "$T/history" "if this laptop is lost or replaced: zila revoke $L2ID" "it says what to do"
grep -q "'l1'" "$T/history" && bad "it names the laptop that acknowledged the checkpoint" || ok "the laptop that acknowledged the checkpoint is not named"
expect 0 "zila history --json at HQ" -- "$ZILA" -d "$HQ" --json history
has "$T/out" '"why":"never_seen"' "--json gives the reason"
python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["collection"]["districts"][0]["held_by"][0]["name"] == "l2"' "$T/out" &&
	ok "--json is JSON and names the laptop" || bad "--json: $(head -c 300 "$T/out")"
expect 0 "zila status at HQ" -- "$ZILA" -d "$HQ" status
has "$T/out" "collection: deleted rows of 1 district wait for 1 device: see 'zila history'" "zila status says it in one line"
expect 0 "HQ revokes the laptop it never saw" -- "$ZILA" -d "$HQ" revoke "$L2ID"
expect 0 "zila history prune at HQ again" -- "$ZILA" -d "$HQ" history prune
has "$T/out" "collected 20 deleted rows" "HQ collects the 20 deleted rows"
[ "$(tombs "$HQ")" = 0 ] && ok "HQ keeps none" || bad "HQ keeps $(tombs "$HQ") deleted rows"
expect 0 "zila history at HQ again" -- "$ZILA" -d "$HQ" history
has "$T/out" "deleted rows: no device holds their collection back" "nothing held back: one line"
expect 0 "zila status at HQ again" -- "$ZILA" -d "$HQ" status
grep -q "^collection:" "$T/out" && bad "zila status still says collection is held back" || ok "zila status says nothing of it"
write "$HQ" "UPDATE people SET name = 'After' WHERE id = 'm-0030'"
expect 0 "HQ checkpoints the district again" -- "$ZILA" -d "$HQ" checkpoint d-1
expect 0 "the laptop syncs with HQ (3)" -- "$ZILA" -d "$L1" sync hq --wait --timeout 60
[ "$(tombs "$L1")" = 0 ] && ok "the laptop dropped them with HQ's next checkpoint" || bad "the laptop keeps $(tombs "$L1") deleted rows"
[ "$(q "$L1" "SELECT count(*) FROM people WHERE district_id = 'd-1'")" = 30 ] && ok "it shows the 30 members left" || bad "it shows $(q "$L1" "SELECT count(*) FROM people WHERE district_id = 'd-1'") members"
stop_daemons
pids=""
same_hash "$HQ" "$L1" && ok "HQ and the laptop hash alike" || bad "HQ and the laptop differ"
expect 0 "zila history prune on the laptop" -- "$ZILA" -d "$L1" history prune
has "$T/out" "was not compacted: [0-9]*% of it is free or part-empty pages (it pays from 40%)" \
	"a laptop's prune compacts only when that pays, and says so"
expect 0 "zila history compact on the laptop" -- "$ZILA" -d "$L1" history compact
has "$T/out" "compacted the replica from [0-9.]* MiB to [0-9.]* MiB in" "it says what compaction did"
expect 0 "zila history compact --json at HQ" -- "$ZILA" -d "$HQ" --json history compact
has "$T/out" '"compacted":true,"before_bytes":[0-9]*' "and in JSON"
same_hash "$HQ" "$L1" && ok "compacted, they still hash alike" || bad "compacted, HQ and the laptop differ"
# The laptop's daemon compacts by itself (at its start, then hourly) when that pays: 1.8 MB of
# a table made and dropped by another program.
q "$L1" "CREATE TABLE scratch(x); WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 6000)
  INSERT INTO scratch SELECT randomblob(300) FROM n; DROP TABLE scratch"
pages=$(q "$L1" "PRAGMA page_count")
daemon_up "$L1" "$T/l1b.log" "$L1P" || bad "the laptop's daemon again"
until_ok 50 grep -q "compacted the replica from" "$T/l1b.log" && ok "the laptop's daemon compacts its replica" ||
	bad "the laptop's daemon did not compact: $(tail -c 300 "$T/l1b.log")"
stop_daemons
pids=""
[ "$(q "$L1" "PRAGMA page_count")" -lt $((pages / 2)) ] && ok "its file is less than half what it was" ||
	bad "its file went from $pages pages to $(q "$L1" "PRAGMA page_count")"
same_hash "$HQ" "$L1" && ok "and it still hashes as HQ" || bad "compacted by its daemon, the laptop differs from HQ"
finish
