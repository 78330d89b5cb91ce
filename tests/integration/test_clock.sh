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
# The clock jumped while this computer ran: zila knows how far (its uptime), and says so.
has "$T/err" "warning: this computer's clock is wrong: it is 5 years 0 days ahead of HQ's" "fast is told its clock is 5 years ahead"
many() { # many DIR SKEW PREFIX: ROWS rows PREFIX1 .. PREFIX<ROWS>
	skewed "$2" "$ZILA" -d "$1" sql "WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n WHERE x < $ROWS)
	  INSERT INTO people(id, district_id, name) SELECT '$3' || x, 'd1', 'from $3' FROM n"
}
expect 0 "fast writes $ROWS more rows" -- many "$FAST" $AHEAD f
expect 0 "fast seals" -- skewed $AHEAD "$ZILA" -d "$FAST" seal
y=$(year_of "$FAST" $AHEAD p1)
[ -n "$y" ] && [ "$y" -le $((year + 1)) ] && ok "fast's edit is dated $y, not $((year + 5))" || bad "fast's edit is dated '$y'"
expect 0 "slow writes 5 years behind" -- skewed $BEHIND "$ZILA" -d "$SLOW" sql "INSERT INTO people(id, district_id, name) VALUES ('p2', 'd1', 'from slow')"
has "$T/err" "behind HQ's" "slow is told its clock is behind"
expect 0 "slow writes $ROWS more rows" -- many "$SLOW" $BEHIND s
expect 0 "slow seals" -- skewed $BEHIND "$ZILA" -d "$SLOW" seal
y=$(year_of "$SLOW" $BEHIND p2)
[ -n "$y" ] && [ "$y" -ge "$year" ] && ok "slow's edit is dated $y, not $((year - 5))" || bad "slow's edit is dated '$y'"
# Three days really pass (the uptime says so too).
export ZILA_UPTIME_SKEW=$LATER
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
# #26: a clock set right is believed. HQ's time here is 3 days on ($LATER); laptop "mend"
# joins, runs 5 years behind and syncs with HQ, which then goes out of reach; its clock is
# set right (a) across a restart of its daemon, (b) while its daemon runs (a file the daemon
# reads its skew from). Its edits are then dated by the true time and nothing calls its clock
# wrong; (c) after a restart of the computer too.
MEND=$T/mend RIGHT=$LATER WRONG=$((LATER + BEHIND))
stop_daemons
pids=""
"$ZILA" -d "$MEND" init >/dev/null
start $LATER "$HQ" "$T/hq.log" --listen "127.0.0.1:$P" --beacon-port 0
code=$(skewed $LATER "$ZILA" -d "$HQ" invite --district d1 | head -1)
expect 0 "mend joins" -- skewed $RIGHT "$ZILA" -d "$MEND" join "$code" --hq "127.0.0.1:$P" --name mend
mend_start() { ZILA_CLOCK_SKEW_FILE="$T/mend.skew" "$ZILA" -d "$MEND" daemon --listen "127.0.0.1:$((P + 4))" --beacon-port 0 2>>"$T/mend.log" & mend=$!; until_ok 50 test -S "$MEND/zila.sock"; }
mend_stop() { kill "$mend"; wait "$mend" 2>/dev/null; }
mend_cli() { ZILA_CLOCK_SKEW_FILE="$T/mend.skew" "$ZILA" -d "$MEND" "$@"; }
# minutes_off DIR ID: how many minutes person ID's latest change is dated from HQ's time now
minutes_off() {
	t=$(mend_cli --json log --table people --id "$2" | grep -o '"time":"[^"]*' | tail -1 | cut -d'"' -f4)
	[ -n "$t" ] || { echo 99999; return; }
	m=$(( ($(date -u -d "$t" +%s) - $(date -u +%s) - LATER) / 60 ))
	echo ${m#-}
}
no_clock_warning() { # no_clock_warning WHAT
	mend_cli status >"$T/out" 2>"$T/err" || true
	if grep -qi "clock" "$T/out" "$T/err"; then bad "$1: $(grep -hi clock "$T/out" "$T/err" | head -2)"; else ok "$1"; fi
}
# mend_learns WHAT: mend's daemon, 5 years behind, syncs with HQ and is told; both stop
mend_learns() {
	echo $WRONG >"$T/mend.skew"
	mend_start
	expect 0 "mend, 5 years behind$1, syncs with hq" -- mend_cli sync hq --wait --timeout 30
	expect 0 "mend's status" -- mend_cli status
	has "$T/out" "behind HQ's" "mend is told its clock is behind$1"
	mend_stop
	stop_daemons
	pids=""
}
# written_now ID: a row inserted and sealed now is dated by the true time
written_now() {
	sqlite3 "$MEND/zila.db" "INSERT INTO people(id, district_id, name) VALUES ('$1', 'd1', 'written now')"
	expect 0 "mend seals" -- mend_cli seal
	m=$(minutes_off "$MEND" "$1")
	[ "$m" -le 5 ] && ok "$1 is dated by the true time ($m min off)" || bad "$1 is dated $m min from the true time"
}
mend_learns ""
# (a) across a restart of the daemon
echo $RIGHT >"$T/mend.skew"
mend_start
no_clock_warning "a clock set right (daemon restarted) is not called wrong"
written_now r1
# (b) wrong again, then set right while the daemon runs
echo $WRONG >"$T/mend.skew"
sleep 1
expect 0 "mend's status, set wrong again while running" -- mend_cli status
has "$T/out" "behind HQ's" "mend is told at once that its clock is behind again"
echo $RIGHT >"$T/mend.skew"
sleep 1
no_clock_warning "a clock set right while the daemon runs is not called wrong"
sqlite3 "$MEND/zila.db" "INSERT INTO people(id, district_id, name) VALUES ('r2', 'd1', 'while running')"
start $LATER "$HQ" "$T/hq.log" --listen "127.0.0.1:$P" --beacon-port 0
expect 0 "mend's daemon seals and syncs" -- mend_cli sync hq --wait --timeout 30
m=$(minutes_off "$MEND" r2)
[ "$m" -le 5 ] && ok "r2, sealed by the running daemon, is dated by the true time ($m min off)" || bad "r2 is dated $m min from the true time"
mend_stop
stop_daemons
pids=""
# (c) after a restart of the computer (another boot id), the clock right
start $LATER "$HQ" "$T/hq.log" --listen "127.0.0.1:$P" --beacon-port 0
mend_learns " again"
echo $RIGHT >"$T/mend.skew"
export ZILA_BOOT_ID=another-boot
mend_start
no_clock_warning "a clock set right across a restart of the computer is not called wrong"
written_now r3
mend_stop
unset ZILA_BOOT_ID

echo "# clock test: edits of laptops 5 years ahead and behind dated within the 2-day lead; good's later edits of $((ROWS + 1)) rows won on 4 replicas ($((4 * (ROWS + 1))) row copies checked)"
finish
