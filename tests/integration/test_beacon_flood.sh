#!/bin/sh
# Forged LAN beacons (#15 item 9). An outsider who holds only the organisation's public root
# key (a found bundle or certificate file shows it) forges beacons keyed from it: the laptop
# acts on none of them (no peer, no dial), since the beacon key comes from the organisation
# secret. Then an enrolled laptop's own tool, which holds the secret, forges them: first from
# a source on none of the laptop's networks (a raw socket, as root): ignored. Then for
# BEACON_FAKES (200) made-up devices, each naming a port nobody listens on, from the laptop's
# own network (loopback here), for BEACON_SECONDS (12). Asserts: the laptop knows at most 64
# LAN peers at any time, logs a failed dial at most once per address and at most 10 such
# lines for LAN peers in all (the rest counted) and at most 10 lines of LAN peers found, and
# still syncs with HQ meanwhile and after; its log stays small.
. "$(dirname "$0")/lib.sh"
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
ATTACK=${ZILA_ATTACK:-$ROOT/build/tools/zila_attack}
FAKES=${BEACON_FAKES:-200}
SECS=${BEACON_SECONDS:-12}
P=$((20000 + ($$ * 17) % 20000))
HQP=$P LP=$((P + 1)) UP=$((P + 2)) FP=$((P + 100))
HQ=$T/hq L=$T/lap
cleanup() {
	[ -n "${apid:-}" ] && kill "$apid" 2>/dev/null
	stop_daemons
	done_with_tmp
}
trap cleanup EXIT
[ -x "$ATTACK" ] || { bad "no $ATTACK (make build/tools/zila_attack)"; finish; exit 1; }
lan_peers() { "$ZILA" -d "$L" peers --json | grep -o '"source": *"lan"' | wc -l; }

org_init "$HQ"
"$ZILA" -d "$HQ" sql "INSERT INTO states(id, name) VALUES ('s1', 'S');
  INSERT INTO districts(id, state_id, name) VALUES ('d-1', 's1', 'One')" >/dev/null
"$ZILA" -d "$L" init >/dev/null && enrol "$HQ" "$L" d-1 || { bad "laptop not enrolled"; finish; exit 1; }
"$ZILA" -d "$L" peer add --hq "127.0.0.1:$HQP" >/dev/null
daemon_up "$HQ" "$T/hq.log" "$HQP"
# The laptop hears beacons on UP; its own go to a port nobody uses (not onto real networks).
"$ZILA" -d "$L" daemon --listen "127.0.0.1:$LP" --beacon-port "$UP" --beacon-to "127.0.0.1:$((UP + 1))" 2>>"$T/lap.log" &
pids="$pids $!"
until_ok 100 "$ZILA" -d "$L" status || { bad "the laptop's daemon did not start"; finish; exit 1; }
expect 0 "the laptop syncs with hq before the flood" -- "$ZILA" -d "$L" sync hq --wait --timeout 30

root=$(sqlite3 "$HQ/zila.db" "SELECT v FROM zila_meta WHERE k = 'trust.org_pk'")
# The outsider: the public root key only.
"$ATTACK" --to "127.0.0.1:$UP" --from 127.0.0.1 --seconds 4 beacons --root "$root" --count 20 --port "$FP" \
	>"$T/outsider.out" 2>&1 || bad "zila_attack (root key only) failed: $(cat "$T/outsider.out")"
sleep 1
[ "$(lan_peers)" = 0 ] && ok "beacons keyed from the public root key make no peer" || bad "$(lan_peers) LAN peers from the outsider's beacons"
grep -q "127.0.0.1:$FP\|found device" "$T/lap.log" && bad "the laptop acted on the outsider's beacons: $(grep -m1 -e "found device" -e ":$FP" "$T/lap.log")" ||
	ok "nobody was dialled for them ($(cat "$T/outsider.out"))"
# From here on an enrolled laptop's tool, which holds the organisation secret.
# A beacon whose source is on none of the laptop's networks (198.51.100.7, TEST-NET-2, forged:
# a datagram's source costs nothing to forge) is ignored: nobody is dialled there.
if [ "$(id -u)" != 0 ]; then
	echo "# skipped the forged source: raw sockets need root"
elif ip -4 addr 2>/dev/null | grep -q " 198\.51\.100\."; then
	echo "# skipped the forged source: this host is on 198.51.100.0/24"
else
	"$ATTACK" --to "127.0.0.1:$UP" --seconds 3 beacons --secret-file "$L/org.secret" --count 5 --port "$FP" --spoof 198.51.100.7 \
		>"$T/spoof.out" 2>&1 || bad "zila_attack --spoof failed: $(cat "$T/spoof.out")"
	sleep 1
	if "$ZILA" -d "$L" peers --json | grep -q "198\.51\.100\.7" || grep -q "198\.51\.100\.7" "$T/lap.log"; then
		bad "a beacon from 198.51.100.7, on none of the laptop's networks, made a peer there"
	else
		ok "a beacon from a source on none of the laptop's networks is ignored ($(cat "$T/spoof.out"))"
	fi
fi
"$ATTACK" --to "127.0.0.1:$UP" --from 127.0.0.1 --seconds "$SECS" beacons --secret-file "$L/org.secret" --count "$FAKES" \
	--port "$FP" >"$T/attack.out" 2>&1 &
apid=$!
most=0
i=0
while [ $i -lt $((SECS * 2)) ]; do
	sleep 0.5
	n=$(lan_peers)
	[ "$n" -gt "$most" ] && most=$n
	i=$((i + 1))
done
"$ZILA" -d "$L" sql "INSERT INTO people(id, district_id, name) VALUES ('p-flood', 'd-1', 'Asha')" >/dev/null
expect 0 "the laptop syncs with hq during the flood" -- "$ZILA" -d "$L" sync hq --wait --timeout 30
wait "$apid"
apid=""
echo "# $(cat "$T/attack.out"); at most $most LAN peers known at once"
[ "$most" -gt 0 ] && ok "the laptop heard the forged beacons ($most LAN peers at most)" || bad "no forged beacon was heard"
[ "$most" -le 64 ] && ok "at most 64 LAN peers are kept ($most)" || bad "$most LAN peers kept (the cap is 64)"
[ "$("$ZILA" -d "$HQ" sql "SELECT count(*) FROM people WHERE id = 'p-flood'" | tail -1)" = 1 ] &&
	ok "hq has the row written during the flood" || bad "hq lacks the row written during the flood"

grep "warn: sync with 127.0.0.1:" "$T/lap.log" | grep -v "127.0.0.1:$HQP" >"$T/fails"
nlines=$(wc -l <"$T/fails")
nrepeat=$(sed 's/.*sync with \(127\.0\.0\.1:[0-9]*\).*/\1/' "$T/fails" | sort | uniq -d | wc -l)
echo "# failed dials logged: $nlines lines; $(wc -l <"$T/lap.log") log lines in all"
[ "$nrepeat" = 0 ] && ok "each made-up peer's failed dials are logged once" || bad "$nrepeat made-up peers were logged more than once"
# At most the budget (10); none at all when no dial to a made-up peer had failed yet by
# the time the flood ended (the dials race the flood: a timing, not a fault).
[ "$nlines" -le 10 ] && ok "failed dials of unproven LAN peers: $nlines lines (10 at most)" ||
	bad "$nlines lines of failed dials to made-up peers (wanted 10 at most)"
nlog=$(wc -l <"$T/lap.log")
[ "$nlog" -le 100 ] && ok "the laptop's log stays small ($nlog lines)" || bad "the laptop's log grew by $nlog lines in ${SECS} s of forged beacons"
# The made-up peers are forgotten once they fall silent (6 beacon intervals); that takes 3
# minutes, so only the cap is checked here: test_sched checks the ageing.
expect 0 "the laptop still syncs with hq after the flood" -- "$ZILA" -d "$L" sync hq --wait --timeout 30
grep -q "ERROR\|error: " "$T/lap.log" && bad "errors in the laptop's log: $(grep -m1 'error' "$T/lap.log")" || ok "no error in the laptop's log"
finish
