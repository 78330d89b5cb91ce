#!/bin/sh
# #16 "status, peers and the report never contradict each other", with real daemons: after
# the laptop's daemon restarts while HQ is out of reach, status still gives HQ's last sync
# (it said "never" while peers said "44 s ago"), and peers lists HQ once (it listed it twice,
# once as "? never"); a configured peer likewise.
. "$(dirname "$0")/lib.sh"
P=$((20000 + ($$ + 7700) % 20000))
HQ=$T/hq A=$T/a B=$T/b
cleanup() { stop_daemons; done_with_tmp; }
trap cleanup EXIT
start() { # start DIR PORT
	"$ZILA" -d "$1" daemon --listen "127.0.0.1:$2" --beacon-port 0 2>>"$1.log" &
	eval "pid_$(basename "$1")=$!"
	pids="$pids $!"
	until_ok 100 "$ZILA" -d "$1" status
}
jget() { "$ZILA" -d "$1" --json "$2" | python3 -c "import json,sys; d=json.load(sys.stdin); print(eval(sys.argv[1]))" "$3"; }
org_init "$HQ"
for d in "$A" "$B"; do
	"$ZILA" -d "$d" init >/dev/null
	rm -f "$T/.req" "$T/.cert"
	enrol "$HQ" "$d" d1 || bad "enrol $d"
	"$ZILA" -d "$d" peer add --hq "127.0.0.1:$P" >/dev/null 2>&1
done
"$ZILA" -d "$A" peer add "127.0.0.1:$((P + 2))" >/dev/null 2>&1
start "$HQ" "$P"
start "$A" $((P + 1))
start "$B" $((P + 2))
expect 0 "a syncs with hq" -- "$ZILA" -d "$A" sync hq --wait --timeout 30
expect 0 "a syncs with b" -- "$ZILA" -d "$A" sync "127.0.0.1:$((P + 2))" --wait --timeout 30
# HQ and b out of reach, a's daemon restarted
kill "$pid_hq" "$pid_b" "$pid_a" 2>/dev/null
wait "$pid_hq" "$pid_b" "$pid_a" 2>/dev/null
start "$A" $((P + 1))
[ "$(jget "$A" status "d['hq']['last_sync'] is not None")" = True ] && ok "status keeps hq's last sync across a restart" ||
	bad "status says hq was never synced after a restart"
expect 0 "status" -- "$ZILA" -d "$A" status
if grep -q "last sync never" "$T/out"; then bad "status says 'last sync never'"; else ok "status does not say 'never'"; fi
[ "$(jget "$A" peers "len([p for p in d if p.get('source') == 'hq'])")" = 1 ] && ok "peers lists hq once" || bad "peers lists hq $(jget "$A" peers "len([p for p in d if p.get('source') == 'hq'])") times"
[ "$(jget "$A" peers "len([p for p in d if p.get('address') == '127.0.0.1:$((P + 2))'])")" = 1 ] && ok "peers lists b once" ||
	bad "peers lists b $(jget "$A" peers "len([p for p in d if p.get('address') == '127.0.0.1:$((P + 2))'])") times"
[ "$(jget "$A" peers "[p['last_sync'] is not None for p in d if p.get('source') == 'hq'][0]")" = True ] && ok "and with its last sync" || bad "peers forgets hq's last sync"

# #24: something that is not zila answers HQ's address (a captive portal's web server).
W=$((P + 3))
python3 -c "
import socket
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind(('127.0.0.1', $W)); s.listen(8)
while True:
    c, _ = s.accept()
    try:
        c.recv(4096); c.sendall(b'HTTP/1.1 400 Bad Request\\r\\nContent-Length: 0\\r\\n\\r\\n')
    except OSError:
        pass
    c.close()
" &
pids="$pids $!"
until_ok 50 python3 -c "import socket; socket.create_connection(('127.0.0.1', $W), 1).close()"
"$ZILA" -d "$A" peer add --hq "127.0.0.1:$W" >/dev/null 2>&1
"$ZILA" -d "$A" sync hq --wait --timeout 15 >"$T/out" 2>"$T/err"
has "$T/err" "something that is not a zila peer answered at 127.0.0.1:$W" "a web server at HQ's address is named as such"
has "$T/err" "captive portal" "with what it may be"

# #24: a laptop alone on its uplink, whose beacons reach nobody, is not warned of "Wi-Fi
# client isolation" (it was, once its daemon had run a minute: the clock is moved on 2 min)
kill "$pid_a" 2>/dev/null
wait "$pid_a" 2>/dev/null
echo 0 >"$T/a.skew"
ZILA_CLOCK_SKEW_FILE="$T/a.skew" "$ZILA" -d "$A" daemon --listen "127.0.0.1:$((P + 1))" --beacon-port $((P + 4)) \
	--beacon-to "127.0.0.1:$((P + 5))" 2>>"$A.log" &
pid_a=$!
pids="$pids $!"
until_ok 100 "$ZILA" -d "$A" status
echo 120 >"$T/a.skew"
sleep 1
[ "$(ZILA_CLOCK_SKEW_FILE="$T/a.skew" jget "$A" status "len([w for w in d['warnings'] if 'beacon' in w or 'isolation' in w])")" = 0 ] &&
	ok "no beacon heard in 2 min is no warning" ||
	bad "warned: $(ZILA_CLOCK_SKEW_FILE="$T/a.skew" "$ZILA" -d "$A" --json status | grep -o '"warnings":[^]]*')"
finish
