#!/bin/sh
# A fan-in within HQ's limits is not a warning (#24): 48 connections in the handshake at once
# (12 loopback addresses, 4 each), fewer than HQ's session cap of 64, are all kept: none is
# closed to make room and HQ logs no warning for it. Past the cap (72) the oldest are closed
# to make room once 500 ms old, as before, with the warning; newcomers while all are younger
# are refused.
. "$(dirname "$0")/lib.sh"
P=$((20000 + ($$ * 7) % 20000))
HQ=$T/hq
cleanup() { stop_daemons; done_with_tmp; }
trap cleanup EXIT

# hold N SECONDS [GAP]: N TCP connections to HQ from 127.0.3.1.., 4 per address, GAP seconds
# apart (0.01), each sending nothing (a handshake not begun yet, as a slow link's laptops
# are); prints how many HQ closed, and with GAP the indices of those closed.
hold() {
	python3 - "$P" "$1" "$2" "${3:-}" <<'EOF'
import socket, sys, time
port, n, secs = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
gap = float(sys.argv[4]) if sys.argv[4] else None
socks = []
for i in range(n):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.3.%d" % (i // 4 + 1), 0))
    s.connect(("127.0.0.1", port))
    socks.append(s)
    time.sleep(0.01 if gap is None else gap)
time.sleep(secs)
closed = []
for i, s in enumerate(socks):
    s.setblocking(False)
    try:
        if s.recv(1) == b"":
            closed.append(i)
    except BlockingIOError:
        pass
    except OSError:
        closed.append(i)
    s.close()
print(len(closed) if gap is None else " ".join(map(str, closed)))
EOF
}

org_init "$HQ"
"$ZILA" -d "$HQ" daemon --listen "127.0.0.1:$P" --beacon-port 0 2>>"$T/hq.log" &
pids="$pids $!"
until_ok 50 "$ZILA" -d "$HQ" status

n=$(hold 48 1)
[ "$n" = 0 ] && ok "48 handshakes at once under a cap of 64: none closed" || bad "$n of 48 handshakes closed"
grep -q "in the handshake: .* handshakes at once" "$T/hq.log" && bad "HQ warned: $(grep "in the handshake: .* handshakes at once" "$T/hq.log" | head -1)" ||
	ok "HQ logged no warning for it"
sleep 1
n=$(hold 72 1)
[ "$n" -ge 1 ] && [ "$n" -le 8 ] && ok "72 at once: the $n oldest closed to make room" || bad "72 at once: $n closed"
sleep 1
# 72 within ~70 ms: every handshake is young (under 500 ms), so none is closed to make
# room; the 8 newcomers past the cap are refused instead and dial again later (closing the
# oldest then made a fan-in of 1,000 laptops close 4,747 handshakes, each redial closing
# another one).
closed=$(hold 72 1 0.001)
[ "$closed" = "64 65 66 67 68 69 70 71" ] && ok "72 young handshakes: the 8 newcomers refused, none of the 64 closed" ||
	bad "72 young handshakes: closed '$closed' (want the newcomers 64-71)"
# One line each, or (past the log's budget of 10 lines in 10 s) counted in the window's summary.
until_ok 75 grep -q "in the handshake: 64 handshakes at once\|[0-9] closed to make room" "$T/hq.log" &&
	ok "and HQ says so" || bad "no warning past the cap: $(grep "in the handshake\|make room" "$T/hq.log" | head -2)"
finish
