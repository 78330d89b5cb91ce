#!/bin/sh
# Issue #22, also seen, with real daemons on loopback:
#  - `zila sync hq --wait` right after the daemon's own syncs is not turned away by HQ's
#    per-address handshake limit: twenty-five explicit syncs in a row all complete.
#  - A peer's clock warning blames the peer only: laptop A, its clock an hour ahead, syncs with
#    HQ (learning HQ's time) and then with laptop B, whose clock is right; A's status warns of
#    its own clock, not of B's; B's status warns of A's, until A's clock is set right and A
#    syncs with B again.
. "$(dirname "$0")/lib.sh"
P=$((20000 + ($$ + 5300) % 20000))
HQ=$T/hq A=$T/a B=$T/b
cleanup() { stop_daemons; done_with_tmp; }
trap cleanup EXIT
start() { # start SKEW DIR PORT
	ZILA_CLOCK_SKEW=$1 "$ZILA" -d "$2" daemon --listen "127.0.0.1:$3" --beacon-port 0 2>>"$2.log" &
	eval "pid_$(basename "$2")=$!"
	pids="$pids $!"
	until_ok 100 env ZILA_CLOCK_SKEW="$1" "$ZILA" -d "$2" status
}
org_init "$HQ"
"$ZILA" -d "$HQ" sql "INSERT INTO states(id, name) VALUES ('s1', 'S'); INSERT INTO districts(id, state_id, name) VALUES ('d1', 's1', 'D1')" >/dev/null
for d in "$A" "$B"; do
	"$ZILA" -d "$d" init >/dev/null
	rm -f "$T/.req" "$T/.cert"
	enrol "$HQ" "$d" d1 || bad "enrol $d"
	"$ZILA" -d "$d" peer add --hq "127.0.0.1:$P" >/dev/null 2>&1
done
"$ZILA" -d "$A" peer add "127.0.0.1:$((P + 2))" >/dev/null 2>&1
start 0 "$HQ" "$P"
start 3600 "$A" $((P + 1))
start 0 "$B" $((P + 2))

# --- explicit syncs, one after another ------------------------------------------------
nok=0
i=0
while [ $i -lt 25 ]; do
	ZILA_CLOCK_SKEW=3600 "$ZILA" -d "$A" sql "INSERT INTO people(id, district_id, name) VALUES ('p$i', 'd1', 'x')" >/dev/null 2>&1
	if ZILA_CLOCK_SKEW=3600 "$ZILA" -d "$A" sync hq --wait --timeout 30 >"$T/out" 2>"$T/err"; then
		nok=$((nok + 1))
	else
		echo "# sync $i: $(cat "$T/err")"
	fi
	i=$((i + 1))
done
[ $nok = 25 ] && ok "25 explicit syncs in a row complete" || bad "only $nok of 25 explicit syncs completed"
grep -q "another organisation, revoked, or busy" "$T/err" && bad "a sync blamed another organisation" || ok "no sync blamed another organisation"

# --- clock warnings ----------------------------------------------------------------------
expect 0 "A syncs with B" -- env ZILA_CLOCK_SKEW=3600 "$ZILA" -d "$A" sync "127.0.0.1:$((P + 2))" --wait --timeout 30
expect 0 "A's status" -- env ZILA_CLOCK_SKEW=3600 "$ZILA" -d "$A" status
has "$T/out" "this computer's clock is wrong" "A is told its own clock is wrong"
grep -q "clock of peer 'b'" "$T/out" && bad "A blames B's clock for its own: $(grep 'clock of peer' "$T/out")" || ok "A does not blame B's clock"
expect 0 "B's status" -- "$ZILA" -d "$B" status
has "$T/out" "the clock of peer 'a' differs from HQ's time by 3[56][0-9][0-9] s" "B warns of A's clock"
eval "kill \$pid_a; wait \$pid_a" 2>/dev/null
start 0 "$A" $((P + 1))
expect 0 "A, its clock set right, syncs with HQ" -- "$ZILA" -d "$A" sync hq --wait --timeout 30
expect 0 "A syncs with B again" -- "$ZILA" -d "$A" sync "127.0.0.1:$((P + 2))" --wait --timeout 30
expect 0 "B's status" -- "$ZILA" -d "$B" status
grep -q "clock of peer 'a'" "$T/out" && bad "B still warns of A's clock, set right since" || ok "B's warning about A's clock is gone"
expect 0 "A's status" -- "$ZILA" -d "$A" status
grep -q "clock" "$T/out" && bad "A still has a clock warning: $(grep clock "$T/out")" || ok "A has no clock warning any more"
finish
