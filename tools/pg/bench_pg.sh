#!/bin/sh
# The PostgreSQL mirror's figures (#20, README "Figures"): a private PostgreSQL server
# (tests/integration/pg_lib.sh), HQ with one generated district of PEOPLE people
# (tools/zila_gen, default 20,000), then
#   load  the mirror's first copy of everything (`zila mirror once`): rows and rows/s;
#   lag   a laptop of that district does a day's work (200 new people, 500 edited, 20
#         deleted: link.sh's day) and syncs with HQ, whose daemon runs the mirror: the
#         seconds from the end of the sync until PostgreSQL holds HQ's rows.
# usage: ZILA=build/zila ZILA_GEN=build/tools/zila_gen sh tools/pg/bench_pg.sh   (PEOPLE=N)
set -u
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
: "${ZILA:=$ROOT/build/zila}" "${ZILA_GEN:=$ROOT/build/tools/zila_gen}" "${PEOPLE:=20000}"
. "$ROOT/tests/integration/lib.sh"
. "$ROOT/tests/integration/pg_lib.sh"
P=$((20000 + ($$ + 4100) % 20000))
HQ=$T/hq L=$T/lap
cleanup() { stop_daemons; pg_down; rm -rf "$T"; }
trap cleanup EXIT
trap 'exit 1' INT TERM HUP PIPE
fail() { echo "bench_pg: $*" >&2; exit 1; }
now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", b - a}'; }

pg_up $((P + 5)) || fail "PostgreSQL did not start"
org_init "$HQ" || fail "cannot make HQ"
"$ZILA_GEN" --districts 1 --people-per-district "$PEOPLE" --seed 7 --db "$HQ/zila.db" >/dev/null || fail "zila_gen failed"
"$ZILA" -d "$HQ" seal >/dev/null || fail "HQ's seal failed"
out=$("$ZILA" -d "$HQ" --json mirror once "$PGCONN") || fail "the first copy failed"
rows=$(echo "$out" | sed -n 's/.*"rows":\([0-9]*\).*/\1/p')
secs=$(echo "$out" | sed -n 's/.*"seconds":\([0-9.]*\).*/\1/p')
printf 'bench_pg load: %s people, %s rows in %s s, %s rows/s\n' "$PEOPLE" "$rows" "$secs" \
	"$(awk -v r="$rows" -v s="$secs" 'BEGIN {printf "%.0f", r / s}')"

district=$(sqlite3 "$HQ/zila.db" "SELECT name FROM districts LIMIT 1")
"$ZILA" -d "$L" init >/dev/null && "$ZILA" -d "$L" enrol request "$T/req" --name lap >/dev/null &&
	"$ZILA" -d "$HQ" enrol sign "$T/req" "$T/cert" --district "$district" --role district >/dev/null &&
	"$ZILA" -d "$L" enrol install "$T/cert" >/dev/null || fail "cannot enrol the laptop"
"$ZILA" -d "$L" peer add --hq "127.0.0.1:$P" >/dev/null
"$ZILA" -d "$HQ" mirror set "$PGCONN" >/dev/null
daemon_up "$HQ" "$T/hq.log" "$P" || fail "HQ's daemon did not start"
daemon_up "$L" "$T/lap.log" $((P + 1)) || fail "the laptop's daemon did not start"
"$ZILA" -d "$L" sync hq --wait --timeout 300 >/dev/null || fail "the laptop's clone failed"
sqlite3 "$L/zila.db" <<SQL || fail "the day's work did not commit"
BEGIN;
WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n WHERE x < 200)
INSERT INTO people(id, district_id, name, name_local, phone, gender, birth_year, address, org_unit_id, joined_on)
SELECT lower(hex(randomblob(16))), p.district_id, p.name || ' ' || x, p.name_local || ' ' || x,
  printf('6%09d', x + 100000), p.gender, p.birth_year, p.address, p.org_unit_id, '2026-12-07'
FROM n JOIN (SELECT * FROM people ORDER BY rowid LIMIT 1) p;
UPDATE people SET phone = printf('8%09d', rowid + 100000), address = address || ', new lane'
WHERE rowid IN (SELECT rowid FROM people ORDER BY rowid LIMIT 500 OFFSET 1000);
DELETE FROM people WHERE rowid IN (SELECT rowid FROM people
  WHERE id NOT IN (SELECT person_id FROM office_bearers) AND id NOT IN (SELECT person_id FROM booth_agents)
  AND id NOT IN (SELECT person_id FROM committee_members) AND id NOT IN (SELECT person_id FROM signups)
  AND id NOT IN (SELECT person_id FROM attendance) ORDER BY rowid DESC LIMIT 20 OFFSET 300);
COMMIT;
SQL
t0=$(now)
"$ZILA" -d "$L" sync hq --wait --timeout 120 >/dev/null || fail "the day's sync failed"
t1=$(now)
want=$(sqlite3 "$HQ/zila.db" "SELECT count(*), sum(address LIKE '%, new lane') FROM people")
i=0
while [ "$($PSQL -d zila -At -F'|' -c "SELECT count(*), sum((address LIKE '%, new lane')::int) FROM zila.people")" != "$want" ]; do
	i=$((i + 1))
	[ $i -gt 1200 ] && fail "PostgreSQL did not catch up in 60 s (HQ: $want)"
	sleep 0.05
done
t2=$(now)
printf 'bench_pg lag: a day'"'"'s work (720 changed rows) synced in %s s; at PostgreSQL %s s after the sync ended\n' \
	"$(elapsed "$t0" "$t1")" "$(elapsed "$t1" "$t2")"
