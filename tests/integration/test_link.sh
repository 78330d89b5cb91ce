#!/bin/sh
# tools/zila_link, the link bench's field link (#24; root): two namespaces joined by it
# ping each other, a TCP transfer takes the time its rate says, the statistics count what
# each direction carried (frames, and the TCP payload once however often it was sent), a link that loses everything carries nothing, bad options are
# refused in plain words, and the namespaces and devices go away with it. Skips when not root.
. "$(dirname "$0")/lib.sh"
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
LINK=${ZILA_LINK:-$ROOT/build/tools/zila_link}
PEER=$ROOT/tests/integration/netns_peer.py
if [ "$(id -u)" != 0 ]; then
	echo "ok - skipped: needs root for network namespaces"
	finish
	exit 0
fi
[ -x "$LINK" ] || { bad "no $LINK (make build/tools/zila_link)"; finish; exit 1; }
NS=zk$$
LPID=""
cleanup() {
	[ -n "$LPID" ] && kill "$LPID" 2>/dev/null && wait "$LPID" 2>/dev/null
	ip netns del "$NS-a" 2>/dev/null
	ip netns del "$NS-b" 2>/dev/null
	rm -rf "$T"
}
trap cleanup EXIT

expect 2 "a jitter over the delay is refused" -- "$LINK" --a x:y --b x:z --delay 10 --jitter 20
grep -q "jitter 20 ms exceeds the delay 10 ms" "$T/err" && ok "and says why" || bad "said: $(cat "$T/err")"
expect 2 "a loss over 1 is refused" -- "$LINK" --a x:y --b x:z --loss 2
expect 1 "a namespace that does not exist is named" -- "$LINK" --a "$NS-none:t0" --b "$NS-none:t1"
grep -q "cannot enter network namespace '$NS-none'" "$T/err" && ok "in plain words" || bad "said: $(cat "$T/err")"

# up RATE LOSS: fresh namespaces a (10.97.0.1) and b (10.97.0.2) joined by the link.
up() {
	[ -n "$LPID" ] && kill "$LPID" 2>/dev/null && wait "$LPID" 2>/dev/null
	ip netns del "$NS-a" 2>/dev/null
	ip netns del "$NS-b" 2>/dev/null
	ip netns add "$NS-a" && ip netns add "$NS-b" || return 1
	"$LINK" --a "$NS-a:zka" --b "$NS-b:zkb" --rate "$1" --delay 20 --jitter 10 --loss "$2" --seed 5 \
		--stats "$T/stats" >"$T/link.out" 2>&1 &
	LPID=$!
	until_ok 50 grep -q ready "$T/link.out" || return 1
	ip -n "$NS-a" addr add 10.97.0.1/24 dev zka && ip -n "$NS-a" link set zka up &&
		ip -n "$NS-b" addr add 10.97.0.2/24 dev zkb && ip -n "$NS-b" link set zkb up
}
# stat DIR FIELD: from the statistics file (FIELD 2 bytes, 3 frames, 4 lost, 6 TCP payload)
stat() {
	rm -f "$T/stats"
	kill -USR1 "$LPID"
	until_ok 25 test -s "$T/stats"
	awk -v d="$1" -v f="$2" '$1 == d {print $f}' "$T/stats"
}

up 1000000 0 && ok "two namespaces joined by zila_link" || bad "the link did not come up: $(cat "$T/link.out")"
ip netns exec "$NS-a" python3 "$PEER" ping 10.97.0.2 5 && ok "a pings b through it" || bad "no ping through the link"
[ "$(stat ab 2)" -gt 0 ] && [ "$(stat ba 2)" -gt 0 ] && ok "both directions counted ($(stat ab 3) and $(stat ba 3) frames)" ||
	bad "statistics: $(cat "$T/stats")"

# 200 KB at 400 kbit/s (50 KB/s) take at least 4 s; on a free link far less.
up 400000 0
ip netns exec "$NS-b" python3 "$PEER" sink 47800 "$T/sink.ready" >"$T/sink.out" 2>&1 &
sink=$!
until_ok 50 test -e "$T/sink.ready"
s=$(date +%s.%N)
ip netns exec "$NS-a" python3 "$PEER" send 10.97.0.2 47800 200000 >/dev/null 2>&1
e=$(date +%s.%N)
wait "$sink" 2>/dev/null
took=$(awk -v a="$s" -v b="$e" 'BEGIN {printf "%.1f", b - a}')
echo "# 200000 bytes at 400 kbit/s: $took s; link bytes a->b $(stat ab 2)"
[ "$(awk -v t="$took" 'BEGIN {print (t >= 3.5) ? 1 : 0}')" = 1 ] && ok "the rate holds ($took s for 4 s of data)" ||
	bad "200 KB crossed 400 kbit/s in $took s"
[ "$(stat ab 2)" -ge 200000 ] && ok "the bytes each way are counted ($(stat ab 2) a->b)" || bad "a->b counted $(stat ab 2)"
[ "$(stat ab 6)" = 200000 ] && ok "the TCP payload a->b is the 200000 bytes sent ($(stat ba 6) b->a)" ||
	bad "TCP payload a->b counted $(stat ab 6), not 200000"

# With loss, TCP sends lost segments again: the link carries them, the payload counts each
# byte once (what the sender's program wrote), as the link bench reports zila's bytes.
up 1000000 0.05
ip netns exec "$NS-b" python3 "$PEER" sink 47801 "$T/sink2.ready" >"$T/sink2.out" 2>&1 &
sink=$!
until_ok 50 test -e "$T/sink2.ready"
ip netns exec "$NS-a" python3 "$PEER" send 10.97.0.2 47801 100000 >/dev/null 2>&1
wait "$sink" 2>/dev/null
echo "# 100000 bytes with 5% loss: $(stat ab 4) frames lost, link bytes a->b $(stat ab 2), payload $(stat ab 6)"
[ "$(stat ab 4)" -gt 0 ] && [ "$(stat ab 6)" = 100000 ] &&
	ok "with frames lost, the payload still counts each byte once ($(stat ab 6))" ||
	bad "with $(stat ab 4) frames lost the payload counted $(stat ab 6), not 100000"

up 1000000 1
if ip netns exec "$NS-a" python3 "$PEER" ping 10.97.0.2 2; then bad "a link losing everything carried a ping"; else ok "a link losing everything carries nothing"; fi
[ "$(stat ab 4)" -gt 0 ] && ok "its losses are counted ($(stat ab 4))" || bad "no loss counted: $(cat "$T/stats")"

kill "$LPID" && wait "$LPID" 2>/dev/null
LPID=""
ip netns del "$NS-a"
ip netns del "$NS-b"
[ -z "$(ip netns list | grep "^$NS-")" ] && ok "namespaces gone" || bad "namespaces left: $(ip netns list | grep "^$NS-")"
ip -o link | grep -q "zk[ab]" && bad "a TAP device is left" || ok "no TAP device left behind"
finish
