#!/bin/sh
# A slow link (tools/zila_proxy --rate) and an idle deadline of 3 s (#24): a clone whose
# bytes take many times the deadline to cross finishes in one session with no cut, its rows
# showing and kept as they arrive; a peer that stops (SIGSTOP), sender or receiver, is cut
# within the deadline and a little: a stopped sender's kernel still sends what its socket
# holds (a paced sender keeps about 2 s of its link queued, and a chunk may be on top: up to
# 3 s of this link), and the deadline counts from the last byte; `date +%s` and the polls
# add up to a second and a half. An entry HQ acknowledged counts as delivered in
# status at once, and stays so when the session is cut after.
. "$(dirname "$0")/lib.sh"
PROXY=${ZILA_PROXY:-$(dirname "$ZILA")/../tools/zila_proxy}
[ -x "$PROXY" ] || PROXY=$(dirname "$0")/../../build/tools/zila_proxy
ROWS=${SLOW_ROWS:-20000}
RATE=${SLOW_RATE:-20000} # bytes per second, each way
IDLE=3
P=$((20000 + ($$ * 7) % 20000))
HQP=$P LP=$((P + 1)) XP=$((P + 2))
HQ=$T/hq L=$T/lap
cleanup() {
	[ -n "${HQPID:-}" ] && kill -CONT "$HQPID" 2>/dev/null
	[ -n "${LPID:-}" ] && kill -CONT "$LPID" 2>/dev/null
	stop_daemons
	done_with_tmp
}
trap cleanup EXIT

# rows DIR FROM TO: people FROM..TO of district d-1, written at DIR, sealed 2,000 at a time
# (an entry is the unit that shows at once).
rows() {
	_a=$2
	while [ "$_a" -le "$3" ]; do
		_b=$((_a + 1999))
		[ "$_b" -gt "$3" ] && _b=$3
		rows1 "$1" "$_a" "$_b"
		"$ZILA" -d "$1" seal >/dev/null
		_a=$((_b + 1))
	done
}
rows1() {
	"$ZILA" -d "$1" sql "WITH RECURSIVE n(x) AS (SELECT $2 UNION ALL SELECT x + 1 FROM n WHERE x < $3)
	  INSERT INTO people(id, district_id, name, phone, address)
	  SELECT printf('p%08d', x), 'd-1', 'Person ' || x || ' ' || hex(randomblob(6)), printf('9%09d', x),
	  'Ward ' || (x % 97) || ', house ' || (x * 7919 % 1000) FROM n" >/dev/null
}
count() { "$ZILA" -d "$L" sql "SELECT count(*) FROM people" 2>/dev/null | tail -1; }
# watch_rows FILE: every 0.5 s, "SECONDS ROWS" of the laptop's people, until killed.
watch_rows() {
	_s=0
	while :; do
		echo "$_s $(count)" >>"$1"
		sleep 0.5
		_s=$((_s + 1))
	done
}

printf 'correct horse battery\n' >"$T/pw"
for d in "$HQ" "$L"; do "$ZILA" -d "$d" init >/dev/null; done
"$ZILA" -d "$HQ" org init --name Party --passphrase-file "$T/pw" >/dev/null
"$ZILA" -d "$HQ" sql "INSERT INTO states(id, name) VALUES ('s1', 'S');
  INSERT INTO districts(id, state_id, name) VALUES ('d-1', 's1', 'One')" >/dev/null
rows "$HQ" 1 "$ROWS"
"$ZILA" -d "$HQ" seal >/dev/null
"$ZILA" -d "$HQ" daemon --listen "127.0.0.1:$HQP" --beacon-port 0 --idle-timeout $IDLE 2>>"$T/hq.log" &
HQPID=$!
pids="$pids $HQPID"
until_ok 50 test -S "$HQ/zila.sock"
code=$("$ZILA" -d "$HQ" invite --district d-1 | head -1)
expect 0 "the laptop joins (directly)" -- "$ZILA" -d "$L" join "$code" --hq "127.0.0.1:$HQP" --name lap
"$PROXY" --listen "127.0.0.1:$XP" --to "127.0.0.1:$HQP" --rate "$RATE" --seed 3 --log "$T/proxy.log" &
pids="$pids $!"
expect 0 "hq is now reached through a link of $RATE bytes/s" -- "$ZILA" -d "$L" peer add --hq "127.0.0.1:$XP"

# 1. The clone: many times the deadline long, in one session.
start=$(date +%s)
"$ZILA" -d "$L" daemon --listen "127.0.0.1:$LP" --beacon-port 0 --idle-timeout $IDLE 2>>"$T/lap.log" &
LPID=$!
pids="$pids $LPID"
watch_rows "$T/rows" &
WPID=$!
until_ok 50 test -S "$L/zila.sock"
"$ZILA" -d "$L" sync hq --wait >"$T/wait.out" 2>&1
kill "$WPID" 2>/dev/null
wait "$WPID" 2>/dev/null
secs=$(($(date +%s) - start))
first=$(awk '$2 > 0 {print $1 / 2; exit}' "$T/rows")
steps=$(awk '$2 > 0 {print $2}' "$T/rows" | sort -un | wc -l)
echo "# clone of $ROWS rows at $RATE B/s, idle deadline $IDLE s: $secs s; first rows after ${first:-never} s; $steps distinct counts seen"
[ "$(count)" = "$ROWS" ] && ok "every row arrived" || bad "the laptop holds $(count) of $ROWS rows"
[ "$secs" -gt $((3 * IDLE)) ] && ok "the clone took $secs s, over three idle deadlines" ||
	bad "the clone took $secs s: too fast to test liveness (lower SLOW_RATE)"
if grep -q "no progress" "$T/hq.log" "$T/lap.log"; then
	bad "a moving session was cut: $(grep -h "no progress" "$T/hq.log" "$T/lap.log" | head -2)"
else
	ok "no side cut the moving session"
fi
n=$(grep -c "sync with" "$T/lap.log")
[ "$n" = 0 ] && grep -q "synced with.*received [1-9]" "$T/lap.log" && ok "one session brought it all" ||
	bad "$n sessions failed: $(grep -h "sync with" "$T/lap.log" | head -3)"
grep -q "kept .* entries received" "$T/lap.log" && bad "the laptop salvaged a cut" || ok "nothing salvaged: no cut"
[ -n "$first" ] && [ "$(awk -v f="$first" -v s="$secs" 'BEGIN {print (f <= s / 3) ? 1 : 0}')" = 1 ] &&
	ok "rows showed after $first s of $secs" || bad "rows showed only after ${first:-never} s of $secs"
[ "$steps" -ge 4 ] && ok "rows kept appearing ($steps distinct counts)" || bad "rows appeared in $steps steps"

# moving FROM TO: the laptop holds more than FROM people and fewer than TO (rows are on
# their way); waits up to 30 s for it.
between() { _n=$(count); [ "${_n:-0}" -gt "$1" ] && [ "$_n" -lt "$2" ]; }
moving() { until_ok 150 between "$1" "$2" || bad "no transfer seen between $1 and $2 rows (at $(count))"; }

# 2. The sender stops: the laptop cuts within the deadline and a little.
rows "$HQ" $((ROWS + 1)) $((ROWS * 2))
"$ZILA" -d "$HQ" seal >/dev/null
"$ZILA" -d "$L" sync hq --wait >/dev/null 2>&1 &
SPID=$!
moving "$ROWS" $((ROWS * 2 - 4000))
kill -STOP "$HQPID"
stopped=$(date +%s)
until_ok 100 grep -q "no progress in state session\|connection cut" "$T/lap.log"
took=$(($(date +%s) - stopped))
kill -CONT "$HQPID"
wait "$SPID" 2>/dev/null
grep -q "no progress in state session for $IDLE s" "$T/lap.log" && [ "$took" -le $((IDLE + 6)) ] &&
	ok "a stopped sender was cut after $took s (deadline $IDLE s)" ||
	bad "a stopped sender: cut after $took s ($(grep -h "no progress\|cut" "$T/lap.log" | tail -2))"

# 3. The receiver stops: HQ cuts within the deadline and a little.
rows "$HQ" $((ROWS * 2 + 1)) $((ROWS * 3))
"$ZILA" -d "$HQ" seal >/dev/null
before=$(grep -c "no progress in state session" "$T/hq.log")
"$ZILA" -d "$L" sync hq --wait >/dev/null 2>&1 &
SPID=$!
moving $((ROWS * 2)) $((ROWS * 3 - 4000))
kill -STOP "$LPID"
stopped=$(date +%s)
hq_cut() { [ "$(grep -c "no progress in state session" "$T/hq.log")" -gt "$before" ]; }
until_ok 100 hq_cut
took=$(($(date +%s) - stopped))
kill -CONT "$LPID"
wait "$SPID" 2>/dev/null
[ "$(grep -c "no progress in state session for $IDLE s" "$T/hq.log")" -gt "$before" ] && [ "$took" -le $((IDLE + 4)) ] &&
	ok "a stopped receiver was cut by HQ after $took s (deadline $IDLE s)" ||
	bad "a stopped receiver: HQ cut after $took s ($(grep -h "no progress\|cut" "$T/hq.log" | tail -2))"

# Then everything arrives.
tries=0
until same_hash "$HQ" "$L" || [ $tries -ge 10 ]; do
	"$ZILA" -d "$L" sync hq --wait >/dev/null 2>&1
	tries=$((tries + 1))
done
same_hash "$HQ" "$L" && ok "in step after the stops" || bad "hashes differ"

# 4. Delivered is delivered: the laptop's entry that HQ applied and acknowledged counts as at
# HQ within one poll, while HQ's own rows still stream down, and after the session is cut.
unsent() {
	"$ZILA" -d "$L" status --json 2>/dev/null |
		python3 -c 'import json,sys; print(json.load(sys.stdin)["local"]["unsent_to_hq"])' 2>/dev/null
}
rows "$HQ" $((ROWS * 3 + 1)) $((ROWS * 4))
"$ZILA" -d "$HQ" seal >/dev/null
"$ZILA" -d "$L" sql "INSERT INTO people(id, district_id, name) VALUES ('lap-1', 'd-1', 'Sita Devi')" >/dev/null
"$ZILA" -d "$L" seal >/dev/null
# The daemon may have begun a sync of its own (HQ's new rows, its schedule) before this looks:
# then HQ's acknowledgement must already count while HQ's rows still arrive.
u=$(unsent) n=$(count)
if [ "$u" = 1 ]; then
	ok "one entry unsent to HQ before the sync"
elif [ "$u" = 0 ] && [ "$n" -lt $((ROWS * 4 + 1)) ]; then
	ok "the daemon's own sync had HQ acknowledge the entry already, while HQ's rows still arrive ($n of $((ROWS * 4 + 1)))"
else
	bad "unsent to HQ before the sync: $u (HQ's rows here: $n of $((ROWS * 4 + 1)))"
fi
"$ZILA" -d "$L" sync hq >/dev/null 2>&1
zero() { [ "$(unsent)" = 0 ]; }
if until_ok 50 zero; then
	n=$(count)
	if [ "$n" -lt $((ROWS * 4 + 1)) ]; then
		ok "HQ's acknowledgement shows at once: 0 unsent while HQ's rows still arrive ($n of $((ROWS * 4 + 1)))"
	else
		bad "0 unsent only once every row had arrived ($n rows), not while the session ran"
	fi
else
	bad "status still says $(unsent) unsent to HQ while the session runs"
fi
kill -9 "$HQPID"
until_ok 50 grep -q "connection cut\|no progress" "$T/lap.log"
sleep 1
[ "$(unsent)" = 0 ] && ok "still 0 unsent to HQ after the session was cut" || bad "after the cut: $(unsent) unsent to HQ"
[ "$("$ZILA" -d "$HQ" sql "SELECT name FROM people WHERE id = 'lap-1'" | tail -1)" = "Sita Devi" ] &&
	ok "and HQ holds it" || bad "HQ does not hold the laptop's row"
finish
