#!/bin/sh
# A large sync over a link that is cut again and again (tools/zila_proxy --cut-every): the
# laptop keeps asking, every session commits what it got, and the sync completes with
# nothing that was applied sent twice (no duplicate ever arrives) and equal hashes.
. "$(dirname "$0")/lib.sh"
PROXY=${ZILA_PROXY:-$(dirname "$ZILA")/../tools/zila_proxy}
[ -x "$PROXY" ] || PROXY=$(dirname "$0")/../../build/tools/zila_proxy
ROWS=${CUT_ROWS:-120000}
CUT=${CUT_BYTES:-100000}
P=$((20000 + ($$ * 7) % 20000))
HQP=$P LP=$((P + 1)) XP=$((P + 2))
HQ=$T/hq L=$T/lap
cleanup() { stop_daemons; done_with_tmp; }
trap cleanup EXIT

printf 'correct horse battery\n' >"$T/pw"
for d in "$HQ" "$L"; do "$ZILA" -d "$d" init >/dev/null; done
"$ZILA" -d "$HQ" org init --name Party --passphrase-file "$T/pw" >/dev/null
"$ZILA" -d "$HQ" sql "INSERT INTO states(id, name) VALUES ('s1', 'S');
  INSERT INTO districts(id, state_id, name) VALUES ('d-1', 's1', 'One');
  WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n WHERE x < $ROWS)
  INSERT INTO people(id, district_id, name, phone, address)
  SELECT printf('p%08d', x), 'd-1', 'Person ' || x, printf('9%09d', x), 'Ward ' || (x % 97) FROM n" >/dev/null
"$ZILA" -d "$HQ" seal >/dev/null
"$ZILA" -d "$HQ" daemon --listen "127.0.0.1:$HQP" --beacon-port 0 2>>"$T/hq.log" &
pids="$pids $!"
until_ok 50 test -S "$HQ/zila.sock"
code=$("$ZILA" -d "$HQ" invite --district d-1 | head -1)
expect 0 "the laptop joins (directly)" -- "$ZILA" -d "$L" join "$code" --hq "127.0.0.1:$HQP" --name lap
# From now on the laptop reaches HQ only through the proxy, which cuts the connection
# carrying every CUT-th byte.
"$PROXY" --listen "127.0.0.1:$XP" --to "127.0.0.1:$HQP" --cut-every "$CUT" --seed 7 --log "$T/proxy.log" &
PROXYPID=$!
pids="$pids $PROXYPID"
expect 0 "hq is now reached through the proxy" -- "$ZILA" -d "$L" peer add --hq "127.0.0.1:$XP"
"$ZILA" -d "$L" daemon --listen "127.0.0.1:$LP" --beacon-port 0 2>>"$T/lap.log" &
pids="$pids $!"
until_ok 50 test -S "$L/zila.sock"
same() { [ "$("$ZILA" -d "$HQ" hash)" = "$("$ZILA" -d "$L" hash)" ]; }
tries=0
while ! same && [ $tries -lt 60 ]; do
	"$ZILA" -d "$L" sync hq --wait >/dev/null 2>&1
	tries=$((tries + 1))
done
cuts=$(grep -c "cut" "$T/proxy.log" 2>/dev/null || echo 0)
echo "# $ROWS rows; $tries sync attempts; proxy log lines naming a cut: $cuts"
same && ok "the sync completed over a link cut again and again" || bad "hashes differ after $tries attempts"
[ "$cuts" -ge 3 ] && ok "the link was cut ($cuts times)" || bad "the link was cut only $cuts times"
dups=$(sed -n 's/.*duplicate \([0-9]*\).*/\1/p' "$T/lap.log" | awk '{s += $1} END {print s + 0}')
applied=$(sed -n 's/.*applied \([0-9]*\), duplicate.*/\1/p' "$T/lap.log" | awk '{s += $1} END {print s + 0}')
echo "# entries applied across sessions: $applied; duplicates received: $dups"
# The per-session log lines must be there, or a count of 0 duplicates would prove nothing.
[ "$dups" = 0 ] && [ "$applied" -gt 0 ] && ok "nothing that was applied was sent again" ||
	bad "$dups entries arrived twice (applied $applied per the log)"
[ "$("$ZILA" -d "$L" sql "SELECT count(*) FROM people" | tail -1)" = "$ROWS" ] && ok "every row arrived once" || bad "row count differs"
finish
