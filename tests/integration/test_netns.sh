#!/bin/sh
# netns.sh, the multi-host harness: three namespaces on a private bridge ping each other,
# a UDP broadcast reaches the others, ns_cut/ns_heal stop and restore traffic, tc tbf limits
# throughput, and teardown leaves no namespace or link behind. Skips when not root.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/netns.sh"
PEER="$(cd "$(dirname "$0")" && pwd)/netns_peer.py"
# shellcheck disable=SC2016,SC2034 # netns.sh evaluates it in its exit trap
NS_ON_EXIT='rm -rf "$T"'
ns_require
ip -o link | sed 's/^[0-9]*: \([^:@]*\).*/\1/' | sort >"$T/links.before"

ns_setup zt 3 && ok "ns_setup zt 3" || { bad "ns_setup failed"; finish; exit 1; }
n=$(ip netns list | grep -c "^zt-$$-")
[ "$n" = 4 ] && ok "three namespaces and a bridge namespace, named with the PID" || bad "$n namespaces named zt-$$-*"
ip -o link | sed 's/^[0-9]*: \([^:@]*\).*/\1/' | sort >"$T/links.during"
new=$(comm -13 "$T/links.before" "$T/links.during" | grep -E '^(v[0-9]+|br0|eth0)$')
[ -z "$new" ] && ok "the bridge and veths live in namespaces, none in the root one" || bad "root links appeared: $new"
[ "$(ns_addr 2)" = 10.77.0.2 ] && ok "ns_addr 2 is 10.77.0.2" || bad "ns_addr 2 is $(ns_addr 2)"
ns_exec 1 ip route >"$T/routes"
if [ "$(wc -l <"$T/routes")" = 1 ]; then
	has "$T/routes" "10.77.0.0/24 dev eth0" "a namespace reaches its subnet and nothing else"
else
	bad "namespace 1 has routes: $(cat "$T/routes")"
fi
ns_exec 2 ip -o addr show lo >"$T/lo"
has "$T/lo" "127.0.0.1" "lo is up in the namespaces"
expect 2 "ns_exec with a bad index fails" -- ns_exec 9 true

# Everyone reaches everyone.
pings=0
for a in 1 2 3; do
	for b in 1 2 3; do
		[ $a = $b ] && continue
		if ns_exec $a python3 "$PEER" ping "$(ns_addr $b)" 5; then pings=$((pings + 1)); else bad "ping $a -> $b"; fi
	done
done
[ $pings = 6 ] && ok "all 6 pairs ping each other"

# A broadcast from 1 reaches 2 and 3.
for r in 2 3; do
	ns_exec $r python3 "$PEER" recv 47700 10 "$T/ready.$r" >"$T/bcast.$r" &
done
for r in 2 3; do
	i=0
	while [ ! -e "$T/ready.$r" ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
done
ns_exec 1 python3 "$PEER" bcast 10.77.0.255 47700 "hello from 1" 3
wait
for r in 2 3; do
	has "$T/bcast.$r" "10.77.0.1 hello from 1" "broadcast to 10.77.0.255 reaches namespace $r"
done

# A pulled cable and its return.
ns_cut 2
if ns_exec 1 python3 "$PEER" ping "$(ns_addr 2)" 2; then bad "ns_cut 2: 2 still answers"; else ok "ns_cut 2: 2 does not answer"; fi
ns_exec 1 python3 "$PEER" ping "$(ns_addr 3)" 3 && ok "ns_cut 2: 1 still reaches 3" || bad "ns_cut 2 cut 3 off too"
ns_heal 2
ns_exec 1 python3 "$PEER" ping "$(ns_addr 2)" 5 && ok "ns_heal 2: 2 answers again" || bad "ns_heal 2: 2 still silent"

# Shaping: 2 MB into a namespace limited to 8 mbit/s (1 MB/s) takes about 2 s.
# transfer FROM TO BYTES: prints "bytes seconds bytes/s" as the receiver measured them.
transfer() {
	rm -f "$T/sink.ready"
	ns_exec "$2" python3 "$PEER" sink 47701 "$T/sink.ready" >"$T/rate" &
	spid=$!
	i=0
	while [ ! -e "$T/sink.ready" ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
	ns_exec "$1" python3 "$PEER" send "$(ns_addr "$2")" 47701 "$3"
	wait $spid
	cat "$T/rate"
}
fast=$(transfer 1 3 20000000 | awk '{ print $3 }')
ns_shape 2 8mbit && ok "ns_shape 2 8mbit" || bad "ns_shape 2 8mbit failed"
slow=$(transfer 1 2 2000000 | awk '{ print $3 }')
echo "throughput: unshaped ${fast} B/s, under tbf 8mbit ${slow} B/s"
[ "${slow:-0}" -gt 700000 ] && [ "$slow" -lt 1150000 ] && ok "tbf 8mbit: $slow B/s (1000000 nominal)" ||
	bad "tbf 8mbit: $slow B/s, wanted about 1000000"
[ "${fast:-0}" -gt $((slow * 5)) ] && ok "unshaped is faster: $fast B/s" || bad "unshaped $fast B/s not well above $slow"
ns_unshape 2
back=$(transfer 1 2 20000000 | awk '{ print $3 }')
[ "${back:-0}" -gt $((slow * 5)) ] && ok "ns_unshape 2 lifts the limit: $back B/s" || bad "after ns_unshape: $back B/s"

# Teardown, with something left running inside: nothing remains.
(ns_exec 3 sleep 60 2>/dev/null) 2>/dev/null &
inside=$!
sleep 0.2
ns_teardown
n=$(ip netns list | grep -c "^zt-$$-")
[ "$n" = 0 ] && ok "teardown removed every namespace" || bad "$n namespaces left: $(ip netns list | grep "^zt-$$-")"
# Other runs may add their own namespaces meanwhile; ours (and the probe) must be gone.
ip netns list | grep -q -e "^zila-probe-$$" -e "-$$-" && bad "ip netns list still shows ours" || ok "ip netns list shows none of ours"
ip -o link | sed 's/^[0-9]*: \([^:@]*\).*/\1/' | sort >"$T/links.after"
new=$(comm -13 "$T/links.before" "$T/links.after" | grep -E '^(v[0-9]+|br0|eth0)$')
[ -z "$new" ] && ok "no link of ours in the root namespace after teardown" || bad "links appeared: $new"
kill -0 $inside 2>/dev/null && bad "the process left in namespace 3 still runs" || ok "the process left inside was ended"
wait 2>/dev/null

# The trap: a run killed by SIGTERM leaves nothing behind either.
# (The sleep is waited for in the background: sh runs a trap only once its foreground
# command is done.)
sh -c '. "$1"; ns_setup zk 2; sleep 30 & NS_ON_EXIT="kill $!"; wait' sh "$(dirname "$0")/netns.sh" &
kpid=$!
i=0
while [ "$(ip netns list | grep -c "^zk-$kpid-")" != 3 ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
[ "$(ip netns list | grep -c "^zk-$kpid-")" = 3 ] && ok "a second harness runs alongside under its own names" || bad "second harness did not start"
kill -TERM $kpid
wait $kpid
n=$(ip netns list | grep -c "^zk-$kpid-")
[ "$n" = 0 ] && ok "SIGTERM: the trap tore everything down" || bad "SIGTERM left $n namespaces"
finish
