#!/bin/sh
# Issue #22 (3): a certificate renewed while a laptop holds entries HQ has not seen, with
# real daemons on loopback and days passing (ZILA_CLOCK_SKEW, ZILA_UPTIME_SKEW).
#  1. Renewal after a day offline: HQ takes the offline entry and the later ones, and a
#     laptop enrolled after the renewal receives all of them (certificate history).
#  2. Entries written while the laptop had no valid certificate at all (its one-day
#     certificate expired, the renewal came a day later): HQ refuses them and the laptop is
#     told: `sync hq --wait` exits 1 and says why, `status` names what HQ refused and what
#     to do, and counts as not taken by HQ what HQ has not taken. The refused entry is not
#     offered again in every session, and HQ does not log it again and again.
. "$(dirname "$0")/lib.sh"
P=$((20000 + ($$ + 9100) % 20000))
HQ=$T/hq A=$T/a B=$T/b C=$T/c
DAY=86400
cleanup() { stop_daemons; done_with_tmp; }
trap cleanup EXIT
start() { # start SKEW DIR PORT
	ZILA_CLOCK_SKEW=$1 ZILA_UPTIME_SKEW=$1 "$ZILA" -d "$2" daemon --listen "127.0.0.1:$3" --beacon-port 0 2>>"$2.log" &
	eval "pid_$(basename "$2")=$!"
	pids="$pids $!"
	until_ok 100 env ZILA_CLOCK_SKEW="$1" ZILA_UPTIME_SKEW="$1" "$ZILA" -d "$2" status
}
halt() { # halt NAME: stops that daemon
	eval "kill \$pid_$1"
	eval "wait \$pid_$1" 2>/dev/null
}
# (the days really pass: the uptime moves with the clock, see src/store/clock.c)
at() { s=$1; shift; ZILA_CLOCK_SKEW=$s ZILA_UPTIME_SKEW=$s "$@"; }
has_row() { [ "$(sqlite3 "$1/zila.db" "SELECT count(*) FROM people WHERE id = '$2'")" = 1 ]; }
# renew SKEW DIR DAYS: HQ signs a new certificate for DIR's device, DIR installs it
renew() {
	rm -f "$T/.req" "$T/.cert"
	at "$1" "$ZILA" -d "$2" enrol request "$T/.req" --name "$(basename "$2")" >/dev/null &&
		at "$1" "$ZILA" -d "$HQ" enrol sign "$T/.req" "$T/.cert" --district d1 --role district --days "$3" >/dev/null &&
		at "$1" "$ZILA" -d "$2" enrol install "$T/.cert" >/dev/null
}
jget() { # jget DIR SKEW KEY: a number from status --json ("null" when absent)
	at "$2" "$ZILA" -d "$1" --json status | python3 -c "import json,sys; d=json.load(sys.stdin); print(eval('d' + sys.argv[1]))" "$3"
}

org_init "$HQ"
"$ZILA" -d "$HQ" sql "INSERT INTO states(id, name) VALUES ('s1', 'S'); INSERT INTO districts(id, state_id, name) VALUES ('d1', 's1', 'D1')" >/dev/null
for d in "$A" "$B" "$C"; do "$ZILA" -d "$d" init >/dev/null; done

# --- 1. renewal after a day offline --------------------------------------------------
expect 0 "A is enrolled for a year" -- enrol "$HQ" "$A" d1
"$ZILA" -d "$A" peer add --hq "127.0.0.1:$P" >/dev/null
start 0 "$HQ" "$P"
start 0 "$A" $((P + 1))
"$ZILA" -d "$A" sql "INSERT INTO people(id, district_id, name) VALUES ('p-synced', 'd1', 'x')" >/dev/null
expect 0 "A syncs with HQ" -- "$ZILA" -d "$A" sync hq --wait --timeout 30
has_row "$HQ" p-synced && ok "HQ holds p-synced" || bad "HQ lacks p-synced"
halt a
"$ZILA" -d "$A" sql "INSERT INTO people(id, district_id, name) VALUES ('p-offline', 'd1', 'x')" >/dev/null
"$ZILA" -d "$A" seal >/dev/null
halt hq
# A day later HQ renews A's certificate; A installs it, syncs, writes, syncs.
expect 0 "HQ renews A's certificate a day later" -- renew $DAY "$A" 365
start $DAY "$HQ" "$P"
start $DAY "$A" $((P + 1))
expect 0 "A syncs after the renewal" -- at $DAY "$ZILA" -d "$A" sync hq --wait --timeout 30
at $DAY "$ZILA" -d "$A" sql "INSERT INTO people(id, district_id, name) VALUES ('p-today', 'd1', 'x')" >/dev/null
expect 0 "A syncs again" -- at $DAY "$ZILA" -d "$A" sync hq --wait --timeout 30
for r in p-synced p-offline p-today; do
	has_row "$HQ" $r && ok "HQ holds $r" || bad "HQ lacks $r"
done
[ "$(jget "$A" $DAY "['local']['unsent_to_hq']")" = 0 ] && ok "A: nothing not taken by HQ" || bad "A counts entries HQ has"
[ "$(jget "$A" $DAY "['hq_refused']")" = "[]" ] && ok "A: HQ refused nothing" || bad "A says HQ refused something"
[ "$(jget "$HQ" $DAY "['local']['unsent_to_hq']")" = None ] && ok "HQ's status counts nothing as not at HQ" ||
	bad "HQ's status counts its own entries as not at HQ"
at $DAY "$ZILA" -d "$HQ" status >"$T/hqst" 2>&1
grep -q "HQ)" "$T/hqst" && bad "HQ's status speaks of entries not at HQ: $(grep HQ "$T/hqst")" || ok "HQ's status text says nothing of itself missing entries"
# A laptop enrolled today receives all three from HQ.
code=$(at $DAY "$ZILA" -d "$HQ" invite --district d1 | head -1)
expect 0 "B joins today" -- at $DAY "$ZILA" -d "$B" join "$code" --hq "127.0.0.1:$P" --name b
start $DAY "$B" $((P + 2))
expect 0 "B syncs" -- at $DAY "$ZILA" -d "$B" sync hq --wait --timeout 30
until_ok 50 has_row "$B" p-today
for r in p-synced p-offline p-today; do
	has_row "$B" $r && ok "B holds $r" || bad "B lacks $r"
done
grep -q "not valid at the entry's time" "$HQ.log" "$B.log" && bad "a replica refused A's entries" || ok "no replica refused A's entries"
halt a
halt b

# --- 2. entries written with no valid certificate: refused, and A is told -------------
expect 0 "C is enrolled for one day" -- renew $DAY "$C" 1
"$ZILA" -d "$C" peer add --hq "127.0.0.1:$P" >/dev/null 2>&1
start $DAY "$C" $((P + 3))
expect 0 "C's status" -- at $DAY "$ZILA" -d "$C" status
has "$T/out" "this device's certificate expires on" "C is told its certificate expires soon"
at $DAY "$ZILA" -d "$C" sql "INSERT INTO people(id, district_id, name) VALUES ('c-ok', 'd1', 'x')" >/dev/null 2>&1
expect 0 "C syncs while its certificate is valid" -- at $DAY "$ZILA" -d "$C" sync hq --wait --timeout 30
halt c
# Half a day after its certificate expired, C writes offline; HQ renews it half a day later.
HALF=$((2 * DAY + DAY / 2))
expect 0 "C writes with its certificate expired" -- at $HALF "$ZILA" -d "$C" sql "INSERT INTO people(id, district_id, name) VALUES ('c-gap', 'd1', 'x')"
has "$T/err" "this device's certificate expired on .* refused by HQ" "C is told, as it writes, that HQ will refuse it"
at $HALF "$ZILA" -d "$C" seal >/dev/null 2>&1
halt hq
expect 0 "HQ renews C three days on" -- renew $((3 * DAY)) "$C" 365
start $((3 * DAY)) "$HQ" "$P"
start $((3 * DAY)) "$C" $((P + 3))
expect 1 "C's sync with HQ exits 1: HQ refused an entry" -- at $((3 * DAY)) "$ZILA" -d "$C" sync hq --wait --timeout 30
has "$T/err" "did not take" "sync --wait says HQ did not take all changes"
has "$T/err" "not valid at the entry's time" "and why"
has_row "$HQ" c-gap && bad "HQ took c-gap" || ok "HQ refused c-gap"
at $((3 * DAY)) "$ZILA" -d "$C" sql "INSERT INTO people(id, district_id, name) VALUES ('c-after', 'd1', 'x')" >/dev/null
expect 1 "C's next sync exits 1 too" -- at $((3 * DAY)) "$ZILA" -d "$C" sync hq --wait --timeout 30
has "$T/err" "HQ refused entry" "it says what HQ refused"
expect 0 "C's status" -- at $((3 * DAY)) "$ZILA" -d "$C" status
has "$T/out" "HQ refused entry 2 of this device's changes in 'd1' (and 1 later entry of it waits behind it)" "status names the refused entry"
has "$T/out" "What to do: no certificate of this device was valid when they were written" "status says what to do"
has "$T/out" "(2 not yet taken by HQ)" "status counts 2 entries HQ has not taken"
for i in 1 2 3; do at $((3 * DAY)) "$ZILA" -d "$C" sync hq --wait --timeout 30 >/dev/null 2>&1; done
n=$(grep -c "rejected entry.*seq 2" "$HQ.log")
[ "$n" -le 1 ] && ok "HQ logged the refusal once ($n), not at every session" || bad "HQ logged the refusal $n times"
n=$(grep -c "did not take entry 2" "$C.log")
[ "$n" -le 1 ] && ok "C offered the refused entry once ($n)" || bad "C was refused $n times"
finish
