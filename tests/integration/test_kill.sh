#!/bin/sh
# Crash safety: `zila seal` and `zila bundle apply` are killed with SIGKILL at random
# points, then run again: nothing is lost, nothing duplicated, integrity_check is ok.
# KILL_ROUNDS sets the kills per phase (default 8).
. "$(dirname "$0")/lib.sh"
A=$T/a; B=$T/b
ROUNDS=${KILL_ROUNDS:-8}
ROWS=${KILL_ROWS:-20000}
org_init "$A" && "$ZILA" -d "$B" init >/dev/null && enrol "$A" "$B" d1 || { bad "init"; finish; exit 1; }
sqlite3 "$A/zila.db" "CREATE TABLE members(id TEXT PRIMARY KEY, district_id TEXT NOT NULL, name TEXT, phone TEXT);"
# HQ distributes the table (#17): B gets it from the bundle, with its rows
"$ZILA" -d "$A" schema track members --partition district_id >/dev/null
sqlite3 "$A/zila.db" "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < $ROWS)
  INSERT INTO members SELECT printf('m%06d', i), 'd1', 'member ' || i, printf('9%09d', i) FROM n;"

# kill_at CMD...: runs the command and SIGKILLs it after a random delay (0-400 ms).
kills=0
kill_at() {
	"$@" >/dev/null 2>&1 &
	pid=$!
	ms=$(awk -v s="$(od -An -N2 -tu2 /dev/urandom)" 'BEGIN { printf "%.3f", (s % 400) / 1000 }')
	sleep "$ms"
	if kill -9 "$pid" 2>/dev/null; then kills=$((kills + 1)); fi
	wait "$pid" 2>/dev/null
}

i=0
while [ $i -lt "$ROUNDS" ]; do kill_at "$ZILA" -d "$A" seal; i=$((i + 1)); done
# Some rows change between kills too, as a user keeps working.
sqlite3 "$A/zila.db" "UPDATE members SET name = name || ' (edited)' WHERE id IN ('m000001', 'm000002')"
i=0
while [ $i -lt "$ROUNDS" ]; do kill_at "$ZILA" -d "$A" seal; i=$((i + 1)); done
expect 0 "seal completes after $kills kills" -- "$ZILA" -d "$A" seal
n=$(sqlite3 "$A/zila.db" "SELECT count(*) FROM zila_pending")
[ "$n" = 0 ] && ok "nothing left unsealed" || bad "$n changes left unsealed"
# Each row's latest state is sealed exactly once per change: count changes in the log.
"$ZILA" -d "$A" --json log --table members > "$T/log.json"
ins=$(grep -o '"op":"insert"' "$T/log.json" | wc -l)
[ "$ins" = "$ROWS" ] && ok "every row sealed exactly once as an insert ($ins)" || bad "$ins inserts sealed, wanted $ROWS"

"$ZILA" -d "$A" bundle create "$T/a.bndl" --all >/dev/null
k0=$kills
i=0
while [ $i -lt "$ROUNDS" ]; do kill_at "$ZILA" -d "$B" bundle apply "$T/a.bndl"; i=$((i + 1)); done
expect 0 "apply completes after $((kills - k0)) kills" -- "$ZILA" -d "$B" bundle apply "$T/a.bndl"
[ "$("$ZILA" -d "$A" hash)" = "$("$ZILA" -d "$B" hash)" ] && ok "hashes equal after killed applies" || bad "hashes differ"
nb=$(sqlite3 "$B/zila.db" "SELECT count(*) FROM members")
[ "$nb" = "$ROWS" ] && ok "all $ROWS rows present once" || bad "$nb rows on b, wanted $ROWS"
for r in "$A" "$B"; do
	[ "$(sqlite3 "$r/zila.db" "PRAGMA integrity_check")" = ok ] && ok "integrity_check ok on $(basename "$r")" || bad "integrity_check failed on $r"
done
dup=$(sqlite3 "$B/zila.db" "SELECT count(*) FROM (SELECT feed, seq FROM zila_entries GROUP BY feed, seq HAVING count(*) > 1)")
[ "$dup" = 0 ] && ok "no entry stored twice" || bad "$dup entries stored twice"
echo "kill test: $kills SIGKILLs delivered"
finish
