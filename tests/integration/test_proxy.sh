#!/bin/sh
# zila_proxy between a python3 echo/sink server and client on loopback: clean forwarding,
# each fault counted and visible in the bytes, cuts at exact counts, seeds that repeat,
# SIGUSR1 turning faults off, bounded memory against a receiver that does not read.
. "$(dirname "$0")/lib.sh"
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
PROXY=${ZILA_PROXY:-$ROOT/build/tools/zila_proxy}
PEER=$ROOT/tests/integration/proxy_peer.py
pids=""
trap 'for p in $pids; do kill "$p" 2>/dev/null; done; rm -rf "$T"' EXIT
[ -x "$PROXY" ] || { bad "no $PROXY (make build/tools/zila_proxy)"; finish; exit 1; }

# wait_for FILE [PATTERN]: up to 20 s for the file to exist (and hold the pattern).
wait_for() {
	_w=0
	while [ $_w -lt 200 ]; do
		if [ -e "$1" ] && { [ -z "${2:-}" ] || grep -q -- "$2" "$1"; }; then return 0; fi
		sleep 0.1
		_w=$((_w + 1))
	done
	return 1
}
# start_server echo|sink DIR [WAIT]: sets sport; the sink keeps connection N in DIR/conn.N.
start_server() {
	mkdir -p "$2"
	python3 "$PEER" server "$1" "$2/port" "$2" ${3:-} &
	pids="$pids $!"
	wait_for "$2/port" || { bad "$1 server did not start"; finish; exit 1; }
	sport=$(cat "$2/port")
}
# start_proxy LOG TARGETPORT OPTIONS...: sets ppid and pport.
start_proxy() {
	log=$1; to=$2; shift 2
	"$PROXY" --listen 127.0.0.1:0 --to "127.0.0.1:$to" --log "$log" "$@" &
	ppid=$!
	pids="$pids $ppid"
	wait_for "$log" "listening on" || { bad "proxy did not start: $*"; finish; exit 1; }
	pport=$(sed -n 's/.*listening on 127\.0\.0\.1:\([0-9]*\),.*/\1/p' "$log")
}
# stop_proxy: SIGTERM, sets prc to its exit status.
stop_proxy() {
	kill -TERM "$ppid"
	wait "$ppid"
	prc=$?
}
# count LOG FAULT: the summary's count for one fault type.
count() { sed -n "s/^faults:.* $2=\([0-9]*\).*/\1/p" "$1"; }
# through FILE OPTIONS...: sends FILE through a fresh proxy to the sink; sets got (the
# received file) and log.
nconn=0
through() {
	f=$1; shift
	nconn=$((nconn + 1))
	log=$T/proxy.$nconn.log
	start_proxy "$log" "$sink" "$@"
	python3 "$PEER" client "$pport" "$f" >/dev/null
	got=$T/sink/conn.$nconn
	wait_for "$got" || bad "sink never saw connection $nconn end"
	stop_proxy
}

head -c 4000000 /dev/urandom >"$T/in"
start_server echo "$T/echo"
echo_port=$sport
start_server sink "$T/sink"
sink=$sport

# Clean link: both directions intact.
start_proxy "$T/clean.log" "$echo_port"
python3 "$PEER" client "$pport" "$T/in" "$T/back" >/dev/null
stop_proxy
cmp -s "$T/in" "$T/back" && ok "no faults: 4 MB echoed through intact" || bad "no faults: echo differs"
[ "$prc" = 0 ] && ok "SIGTERM exits 0" || bad "SIGTERM exit $prc"
has "$T/clean.log" "faults: drop=0 delay=0 flip=0 dup=0 reorder=0 truncate=0 cut=0" "summary with zero counts"
has "$T/clean.log" "8000000 bytes in, 8000000 bytes out" "summary counts bytes both ways"

# Flips: every flipped bit is logged and counted, and nothing else changes.
through "$T/in" --seed 5 --flip 0.1
flip1=$got; flog1=$log
n=$(count "$log" flip)
lines=$(grep -c ' flip bit ' "$log")
bits=$(python3 "$PEER" bitdiff "$T/in" "$got")
[ "${n:-0}" -gt 0 ] && [ "$n" = "$lines" ] && [ "$n" = "$bits" ] &&
	ok "--flip 0.1: $n flips counted, logged and found in the bytes" ||
	bad "--flip: summary $n, log lines $lines, differing bits $bits"

# The same seed gives the same faults; another seed other ones.
through "$T/in" --seed 5 --flip 0.1
cmp -s "$flip1" "$got" && ok "--seed 5 twice: same bytes" || bad "--seed 5 twice: bytes differ"
grep ' flip bit ' "$flog1" >"$T/f1"
grep ' flip bit ' "$log" >"$T/f2"
cmp -s "$T/f1" "$T/f2" && ok "--seed 5 twice: same fault log" || bad "--seed 5 twice: fault logs differ"
through "$T/in" --seed 6 --flip 0.1
cmp -s "$flip1" "$got" && bad "--seed 6 gave the bytes of --seed 5" || ok "another seed, other faults"

# Every fault at once, with delays and reordering: still repeatable.
mixed="--seed 9 --drop 0.02 --dup 0.02 --reorder 0.02 --flip 0.02 --delay 3"
# shellcheck disable=SC2086
through "$T/in" $mixed
m1=$got; mlog=$log
# shellcheck disable=SC2086
through "$T/in" $mixed
cmp -s "$m1" "$got" && ok "all faults with delays, twice: same bytes ($(grep '^faults:' "$mlog"))" ||
	bad "all faults with delays, twice: bytes differ"

# Drops shorten the stream by exactly the dropped chunks; dups lengthen it.
through "$T/in" --seed 2 --drop 0.05
dropped=$(grep ' drop chunk ' "$log" | sed 's/.* of \([0-9]*\) bytes/\1/' | awk '{ s += $1 } END { print s + 0 }')
[ "$(count "$log" drop)" -gt 0 ] && [ $(($(wc -c <"$T/in") - dropped)) = "$(wc -c <"$got")" ] &&
	ok "--drop: $(count "$log" drop) chunks, $dropped bytes missing" || bad "--drop: sizes do not add up"
through "$T/in" --seed 2 --dup 0.05
[ "$(count "$log" dup)" -gt 0 ] && [ "$(wc -c <"$got")" -gt "$(wc -c <"$T/in")" ] &&
	ok "--dup: $(count "$log" dup) chunks sent twice" || bad "--dup: stream not longer"
through "$T/in" --seed 2 --reorder 0.05
[ "$(count "$log" reorder)" -gt 0 ] && [ "$(wc -c <"$got")" = "$(wc -c <"$T/in")" ] && ! cmp -s "$got" "$T/in" &&
	ok "--reorder: $(count "$log" reorder) swaps, same length, other order" || bad "--reorder"
through "$T/in" --chunk 65536 --delay 40
cmp -s "$got" "$T/in" && [ "$(count "$log" delay)" -gt 0 ] &&
	ok "--delay 40: $(count "$log" delay) chunks delayed, order kept" || bad "--delay: bytes differ"

# Cuts.
through "$T/in" --cut-after 100000
[ "$(wc -c <"$got")" = 100000 ] && [ "$(count "$log" cut)" = 1 ] &&
	ok "--cut-after 100000: the receiver got exactly 100000 bytes" || bad "--cut-after: got $(wc -c <"$got")"
head -c 250000 "$T/in" >"$T/q"
nconn=$((nconn + 1))
start_proxy "$T/every.log" "$sink" --cut-every 300000
sizes=""
for i in 1 2 3 4; do
	python3 "$PEER" client "$pport" "$T/q" >/dev/null
	wait_for "$T/sink/conn.$nconn" || bad "sink never saw connection $nconn end"
	sizes="$sizes $(wc -c <"$T/sink/conn.$nconn")"
	[ $i = 4 ] || nconn=$((nconn + 1))
done
stop_proxy
# Bytes never read after a cut do not count: the cuts fall in the second and fourth.
[ "$sizes" = " 250000 50000 250000 50000" ] && [ "$(count "$T/every.log" cut)" = 2 ] &&
	ok "--cut-every 300000 over 4 x 250000 bytes: cuts at 300000 and 600000" ||
	bad "--cut-every: connections got$sizes"
through "$T/in" --seed 3 --truncate 0.01
n=$(wc -c <"$got")
head -c "$n" "$T/in" >"$T/prefix"
[ "$(count "$log" truncate)" = 1 ] && [ "$n" -lt 4000000 ] && cmp -s "$T/prefix" "$got" &&
	ok "--truncate: closed after $n bytes, all of them a prefix of what was sent" ||
	bad "--truncate: $n bytes, $(grep '^faults:' "$log")"

# SIGUSR1: the link behaves, then misbehaves again.
nconn=$((nconn + 1))
start_proxy "$T/usr1.log" "$sink" --drop 1
python3 "$PEER" client "$pport" "$T/q" >/dev/null
wait_for "$T/sink/conn.$nconn" && [ "$(wc -c <"$T/sink/conn.$nconn")" = 0 ] &&
	ok "--drop 1: nothing arrives" || bad "--drop 1: something arrived"
kill -USR1 "$ppid"
wait_for "$T/usr1.log" "faults off" || bad "no 'faults off' in the log"
nconn=$((nconn + 1))
python3 "$PEER" client "$pport" "$T/q" >/dev/null
wait_for "$T/sink/conn.$nconn" && cmp -s "$T/sink/conn.$nconn" "$T/q" &&
	ok "after SIGUSR1 the link behaves: bytes intact" || bad "after SIGUSR1: bytes differ"
kill -USR1 "$ppid"
wait_for "$T/usr1.log" "faults on" || bad "no 'faults on' in the log"
nconn=$((nconn + 1))
python3 "$PEER" client "$pport" "$T/q" >/dev/null
wait_for "$T/sink/conn.$nconn" && [ "$(wc -c <"$T/sink/conn.$nconn")" = 0 ] &&
	ok "a second SIGUSR1 turns faults back on" || bad "faults still off after a second SIGUSR1"
stop_proxy

# Backpressure: a receiver that reads nothing for 3 s does not make the proxy buffer 32 MB.
start_server sink "$T/slow" 3
head -c 33554432 /dev/urandom >"$T/big"
start_proxy "$T/slow.log" "$sport"
python3 "$PEER" client "$pport" "$T/big" >/dev/null &
cpid=$!
rss=0
i=0
while [ $i -lt 25 ]; do
	r=$(awk '/^VmRSS/ { print $2 }' "/proc/$ppid/status")
	[ "$r" -gt "$rss" ] && rss=$r
	sleep 0.1
	i=$((i + 1))
done
wait "$cpid"
wait_for "$T/slow/conn.1" && cmp -s "$T/slow/conn.1" "$T/big" && [ "$rss" -lt 16384 ] &&
	ok "slow receiver: 32 MB intact, proxy peaked at ${rss} kB" || bad "slow receiver: rss ${rss} kB or bytes differ"
stop_proxy

# Misuse and failures.
expect 2 "no arguments: usage" -- "$PROXY"
expect 2 "a probability above 1 is refused" -- "$PROXY" --listen 127.0.0.1:0 --to 127.0.0.1:9 --drop 2
expect 2 "a host name is refused" -- "$PROXY" --listen 127.0.0.1:0 --to example.org:80
expect 2 "--cut-after and --cut-every together are refused" -- "$PROXY" --listen 127.0.0.1:0 --to 127.0.0.1:9 --cut-after 1 --cut-every 1
expect 1 "a busy port is an error" -- "$PROXY" --listen "127.0.0.1:$sink" --to 127.0.0.1:9
has "$T/err" "cannot listen on '127.0.0.1:$sink'" "the busy port is named"
# A target that refuses: the client's connection is closed and the reason logged.
python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])' >"$T/deadport"
start_proxy "$T/dead.log" "$(cat "$T/deadport")"
python3 "$PEER" client "$pport" "$T/q" >/dev/null
stop_proxy
has "$T/dead.log" "cannot connect to 127.0.0.1:$(cat "$T/deadport")" "a refused target is logged"
finish
