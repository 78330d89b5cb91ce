#!/bin/sh
# Real daemons for the browser test (tests/web/ui_test.mjs): an HQ and an enrolled laptop of
# district d1 ("Gaya") with a booth "110 — Kishunpur" and N members written at HQ and synced
# to the laptop, whose daemon serves the web interface; one conflict waits for review there.
# HQ serves its web interface too, and holds a sign-up drive for Gaya (target 100, none signed
# up yet). Prints one JSON line {"url": login link, "hq_url": HQ's login link, "hq": dir,
# "lap": dir} and keeps the daemons until its stdin closes.
# usage: ZILA=build/asan/zila sh tests/web/real_daemons.sh [N]
. "$(dirname "$0")/../integration/lib.sh"
N=${1:-2000}
P=$((20000 + ($$ * 17) % 20000))
HQP=$P LP=$((P + 1)) WP=$((P + 2)) HWP=$((P + 3))
HQ=$T/hq L=$T/lap
cleanup() {
	stop_daemons
	done_with_tmp
}
trap cleanup EXIT
trap 'exit 1' TERM INT
fail() {
	echo "real_daemons: $*" >&2
	tail -20 "$T"/*.log >&2 2>/dev/null
	exit 1
}

org_init "$HQ" || fail "org init"
"$ZILA" -d "$HQ" sql "INSERT INTO states(id, name) VALUES ('s1', 'Bihar');
  INSERT INTO districts(id, state_id, name, code, name_local) VALUES ('d1', 's1', 'Gaya', 'GAY', 'गया');
  INSERT INTO org_units(id, level, district_id, name, name_local, code) VALUES
    ('b110', 'booth', 'd1', 'Kishunpur', 'किशुनपुर', '110'), ('b111', 'booth', 'd1', 'Belaganj', 'बेलागंज', '111');
  WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < $N)
  INSERT INTO people(id, district_id, name, name_local, phone, gender, org_unit_id)
    SELECT printf('p%05d', i), 'd1', CASE i % 3 WHEN 0 THEN 'Ramesh Kumar' WHEN 1 THEN 'Sunita Devi' ELSE 'Anil Yadav' END,
      CASE i % 3 WHEN 0 THEN 'रमेश कुमार' WHEN 1 THEN 'सुनीता देवी' ELSE 'अनिल यादव' END,
      printf('90%08d', i), CASE i % 2 WHEN 0 THEN 'male' ELSE 'female' END, CASE i % 2 WHEN 0 THEN 'b110' ELSE 'b111' END
    FROM n;
  INSERT INTO drives(id, district_id, name, starts_on, deadline) VALUES
    ('dr1', 'd1', 'Membership drive', date('now', '-10 days'), date('now', '+20 days'));
  INSERT INTO drive_targets(id, district_id, drive_id, org_unit_id, target) VALUES ('dt1', 'd1', 'dr1', 'b110', 100)" >/dev/null || fail "seed"
"$ZILA" -d "$L" init >/dev/null || fail "init"
enrol "$HQ" "$L" d1 || fail "enrol"
"$ZILA" -d "$L" peer add --hq "127.0.0.1:$HQP" >/dev/null || fail "peer add"
# HQ's daemon serves its web interface (as lib.sh's daemon_up, with --web)
"$ZILA" -d "$HQ" daemon --listen "127.0.0.1:$HQP" --beacon-port 0 --web "127.0.0.1:$HWP" 2>>"$T/hq.log" &
pids="$pids $!"
until_ok 100 "$ZILA" -d "$HQ" status || fail "hq daemon"
lap_up() {
	"$ZILA" -d "$L" daemon --listen "127.0.0.1:$LP" --beacon-port 0 --web "127.0.0.1:$WP" 2>>"$T/lap.log" &
	lpid=$!
	pids="$pids $lpid"
	until_ok 100 "$ZILA" -d "$L" status || fail "laptop daemon"
}
lap_up
"$ZILA" -d "$L" sync hq --wait --timeout 60 >/dev/null || fail "first sync"
# A conflict waiting for review: with the laptop's daemon stopped, the laptop and then HQ
# change one member's address; HQ's later write wins, the laptop keeps its own for review.
kill "$lpid" && wait "$lpid"
"$ZILA" -d "$L" sql "UPDATE people SET address = 'Ward 4, Kishunpur' WHERE id = 'p00003'" >/dev/null || fail "laptop edit"
"$ZILA" -d "$L" seal >/dev/null || fail "laptop seal"
"$ZILA" -d "$HQ" sql "UPDATE people SET address = 'Ward 5, Kishunpur' WHERE id = 'p00003'" >/dev/null || fail "hq edit"
"$ZILA" -d "$HQ" seal >/dev/null || fail "hq seal"
lap_up
"$ZILA" -d "$L" sync hq --wait --timeout 60 >/dev/null || fail "second sync"
[ "$("$ZILA" -d "$L" sql "SELECT count(*) FROM zila_conflicts" 2>/dev/null)" != 0 ] || echo "real_daemons: no conflict at the laptop" >&2
"$ZILA" -d "$L" --json open >"$T/open" || fail "zila open"
url=$(sed -n 's/.*"url" *: *"\([^"]*\)".*/\1/p' "$T/open")
[ -n "$url" ] || fail "no url in: $(cat "$T/open")"

"$ZILA" -d "$HQ" --json open >"$T/hqopen" || fail "zila open at HQ"
hq_url=$(sed -n 's/.*"url" *: *"\([^"]*\)".*/\1/p' "$T/hqopen")
[ -n "$hq_url" ] || fail "no url in: $(cat "$T/hqopen")"
printf '{"url": "%s", "hq_url": "%s", "hq": "%s", "lap": "%s"}\n' "$url" "$hq_url" "$HQ" "$L"
cat >/dev/null
