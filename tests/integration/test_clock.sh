#!/bin/sh
# Wrong clocks (proto/PROTOCOL.md, "Clocks"), with real daemons on loopback: laptop "fast" runs
# 5 years ahead and laptop "slow" 5 years behind (ZILA_CLOCK_SKEW), laptop "good" and HQ three
# days after enrolment. Out of touch, neither wrong laptop dates an edit outside [enrolment,
# enrolment + 2 days]; each is told plainly; at its first session with HQ it learns HQ's clock
# and is told by how much it is off; good's later edits win over fast's on every replica.
# Each wrong laptop also writes ROWS rows while out of touch, and good edits all of fast's.
#
# Short form (make check): 50 rows on each wrong laptop.
# Long form:  CLOCK_ROWS=20000 sh tests/integration/test_clock.sh
. "$(dirname "$0")/lib.sh"
ROWS=${CLOCK_ROWS:-50}
P=$((20000 + ($$ + 7000) % 20000))
HQ=$T/hq FAST=$T/fast SLOW=$T/slow GOOD=$T/good
AHEAD=$((5 * 365 * 86400)) BEHIND=$((-5 * 365 * 86400)) LATER=$((3 * 86400))
cleanup() { stop_daemons; done_with_tmp; }
trap cleanup EXIT
# skewed SECONDS CMD...: runs CMD with this computer's clock moved by SECONDS
skewed() { s=$1; shift; ZILA_CLOCK_SKEW=$s "$@"; }
start() { # start SKEW DIR LOG ARGS...
	skew=$1 dir=$2 log=$3; shift 3
	ZILA_CLOCK_SKEW=$skew "$ZILA" -d "$dir" daemon "$@" 2>>"$log" &
	pids="$pids $!"
	until_ok 50 test -S "$dir/zila.sock"
}
# year_of DIR SKEW ID: the year of the latest change to person ID, as the log dates it
year_of() { ZILA_CLOCK_SKEW=$2 "$ZILA" -d "$1" --json log --table people --id "$3" | grep -o '"time":"[0-9]*' | tail -1 | cut -d'"' -f4; }
name_of() { sqlite3 "$1/zila.db" "SELECT name FROM people WHERE id = '$2'"; }
year=$(date -u +%Y)

printf 'correct horse battery\n' >"$T/pw"
for d in "$HQ" "$FAST" "$SLOW" "$GOOD"; do "$ZILA" -d "$d" init >/dev/null; done
"$ZILA" -d "$HQ" org init --name Party --passphrase-file "$T/pw" >/dev/null
"$ZILA" -d "$HQ" sql "INSERT INTO states(id, name) VALUES ('s1', 'S'); INSERT INTO districts(id, state_id, name) VALUES ('d1', 's1', 'D1')"
start 0 "$HQ" "$T/hq.log" --listen "127.0.0.1:$P" --beacon-port 0
code=$("$ZILA" -d "$HQ" invite --district d1 | head -1)
expect 1 "a laptop 5 years ahead cannot join" -- skewed $AHEAD "$ZILA" -d "$FAST" join "$code" --hq "127.0.0.1:$P" --name fast
has "$T/err" "clock" "the refusal says to look at the clock"
i=1
for n in fast slow good; do
	code=$("$ZILA" -d "$HQ" invite --district d1 | head -1)
	expect 0 "$n joins with a right clock" -- "$ZILA" -d "$T/$n" join "$code" --hq "127.0.0.1:$P" --name "$n"
	start 0 "$T/$n" "$T/$n.log" --listen "127.0.0.1:$((P + i))" --beacon-port 0
	expect 0 "$n syncs" -- "$ZILA" -d "$T/$n" sync hq --wait --timeout 30
	i=$((i + 1))
done
for p in $pids; do kill "$p"; done
wait 2>/dev/null
pids=""

# Out of touch, the clocks go wrong.
expect 0 "fast writes 5 years ahead" -- skewed $AHEAD "$ZILA" -d "$FAST" sql "INSERT INTO people(id, district_id, name) VALUES ('p1', 'd1', 'from fast')"
has "$T/err" "warning: no news of HQ's time since" "fast is told it is out of touch or ahead"
many() { # many DIR SKEW PREFIX: ROWS rows PREFIX1 .. PREFIX<ROWS>
	skewed "$2" "$ZILA" -d "$1" sql "WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n WHERE x < $ROWS)
	  INSERT INTO people(id, district_id, name) SELECT '$3' || x, 'd1', 'from $3' FROM n"
}
expect 0 "fast writes $ROWS more rows" -- many "$FAST" $AHEAD f
expect 0 "fast seals" -- skewed $AHEAD "$ZILA" -d "$FAST" seal
y=$(year_of "$FAST" $AHEAD p1)
[ -n "$y" ] && [ "$y" -le $((year + 1)) ] && ok "fast's edit is dated $y, not $((year + 5))" || bad "fast's edit is dated '$y'"
expect 0 "slow writes 5 years behind" -- skewed $BEHIND "$ZILA" -d "$SLOW" sql "INSERT INTO people(id, district_id, name) VALUES ('p2', 'd1', 'from slow')"
has "$T/err" "warning: this computer's clock is behind" "slow is told its clock is behind"
expect 0 "slow writes $ROWS more rows" -- many "$SLOW" $BEHIND s
expect 0 "slow seals" -- skewed $BEHIND "$ZILA" -d "$SLOW" seal
y=$(year_of "$SLOW" $BEHIND p2)
[ -n "$y" ] && [ "$y" -ge "$year" ] && ok "slow's edit is dated $y, not $((year - 5))" || bad "slow's edit is dated '$y'"
expect 0 "good, 3 days without news of HQ" -- skewed $LATER "$ZILA" -d "$GOOD" hash
has "$T/err" "warning: no news of HQ's time since" "good is told it is out of touch"

# Three days on: everyone meets HQ.
start $LATER "$HQ" "$T/hq.log" --listen "127.0.0.1:$P" --beacon-port 0
start $AHEAD "$FAST" "$T/fast.log" --listen "127.0.0.1:$((P + 1))" --beacon-port 0
start $BEHIND "$SLOW" "$T/slow.log" --listen "127.0.0.1:$((P + 2))" --beacon-port 0
start $LATER "$GOOD" "$T/good.log" --listen "127.0.0.1:$((P + 3))" --beacon-port 0
for n in fast slow good; do
	case $n in fast) s=$AHEAD ;; slow) s=$BEHIND ;; *) s=$LATER ;; esac
	expect 0 "$n syncs with hq" -- skewed $s "$ZILA" -d "$T/$n" sync hq --wait --timeout 30
done
expect 0 "fast's status" -- skewed $AHEAD "$ZILA" -d "$FAST" status
has "$T/out" "4 years 362 days ahead of HQ's" "fast's status says by how much its clock is ahead"
expect 0 "fast's status --json" -- skewed $AHEAD "$ZILA" -d "$FAST" --json status
has "$T/out" '"state":"ahead"' "json status gives the clock state"
has "$T/fast.log" "ahead of HQ's" "fast's daemon logs it"
expect 0 "good's status" -- skewed $LATER "$ZILA" -d "$GOOD" status
if grep -qi "clock\|no news" "$T/out" "$T/err"; then bad "good is warned after its sync: $(grep -i "clock\|no news" "$T/out" "$T/err")"; else ok "good, in touch again, is not warned"; fi
expect 0 "slow's status" -- skewed $BEHIND "$ZILA" -d "$SLOW" status
has "$T/out" "behind HQ's" "slow's status says its clock is behind"
has "$T/hq.log" "the clock of 'fast' .* differs from HQ's time by 1574[0-9]* s" "hq logs fast's clock"
expect 0 "slow writes again" -- skewed $BEHIND "$ZILA" -d "$SLOW" sql "UPDATE people SET name = 'slow again' WHERE id = 'p2'"
expect 0 "slow seals" -- skewed $BEHIND "$ZILA" -d "$SLOW" seal
y=$(year_of "$SLOW" $BEHIND p2)
[ "$y" -ge "$year" ] && ok "slow's next edit is dated by HQ's time ($y)" || bad "slow's next edit is dated '$y'"

# good edits fast's row after fast's edit could reach: the later edit wins everywhere.
[ "$(name_of "$GOOD" p1)" = "from fast" ] && ok "good has fast's row" || bad "good lacks fast's row"
expect 0 "good edits it" -- skewed $LATER "$ZILA" -d "$GOOD" sql "UPDATE people SET name = 'from good' WHERE id = 'p1'"
[ "$(sqlite3 "$GOOD/zila.db" "SELECT count(*) FROM people WHERE name = 'from f'")" = "$ROWS" ] && ok "good has fast's $ROWS rows" || bad "good lacks some of fast's rows"
expect 0 "good edits fast's $ROWS rows" -- skewed $LATER "$ZILA" -d "$GOOD" sql "UPDATE people SET name = 'from good' WHERE id GLOB 'f[0-9]*'"
# All laptops dial HQ from 127.0.0.1, whose handshake rate HQ limits (1/s, burst 10): a sync
# may be refused, so syncs are asked for until every replica holds the same state (30 rounds
# at most); the checks below say what each one holds.
skew_of() { case $1 in fast) echo $AHEAD ;; slow) echo $BEHIND ;; *) echo $LATER ;; esac; }
in_step() {
	h=$(skewed $LATER "$ZILA" -d "$HQ" hash)
	for n in fast slow good; do [ "$(skewed "$(skew_of $n)" "$ZILA" -d "$T/$n" hash)" = "$h" ] || return 1; done
}
round=0
until in_step; do
	round=$((round + 1))
	[ $round -le 30 ] || break
	for n in good fast slow; do skewed "$(skew_of $n)" "$ZILA" -d "$T/$n" sync hq --wait --timeout 10 >/dev/null 2>&1; done
	sleep 1
done
for n in hq fast slow good; do
	[ "$(name_of "$T/$n" p1)" = "from good" ] && ok "$n keeps good's later edit" || bad "$n has '$(name_of "$T/$n" p1)'"
	got=$(sqlite3 "$T/$n/zila.db" "SELECT sum(name = 'from good'), sum(name = 'from s') FROM people WHERE id GLOB '[fs][0-9]*'")
	[ "$got" = "$ROWS|$ROWS" ] && ok "$n: good's edits of fast's $ROWS rows won, slow's $ROWS rows are there" || bad "$n: good's wins|slow's rows = $got, wanted $ROWS|$ROWS"
done
h=$(skewed $LATER "$ZILA" -d "$HQ" hash)
for n in fast slow good; do
	case $n in fast) s=$AHEAD ;; slow) s=$BEHIND ;; *) s=$LATER ;; esac
	[ "$(skewed $s "$ZILA" -d "$T/$n" hash)" = "$h" ] && ok "$n's hash equals hq's" || bad "$n's hash differs"
done
if grep -q "rejected [1-9]" "$T/hq.log"; then bad "hq rejected entries: $(grep rejected "$T/hq.log" | head -2)"; else ok "hq rejected nothing"; fi
echo "# clock test: edits of laptops 5 years ahead and behind dated within the 2-day lead; good's later edits of $((ROWS + 1)) rows won on 4 replicas ($((4 * (ROWS + 1))) row copies checked)"
finish
