#!/bin/sh
# The attachments bench (#25): an HQ daemon and a district laptop's daemon on loopback.
#   lan   PHOTOS photos of SIZE bytes (random: photos do not compress) attached on the laptop,
#         then `zila sync hq --wait`: HQ takes the rows, then fetches every photo. Beside it,
#         the same bytes over one raw TCP connection (python3, recv into a buffer), both
#         direct on loopback and through tools/zila_proxy at RATE bytes/s (a 100 Mbit/s LAN).
#         Throughput = photo bytes / wall seconds of the sync (rows, handshake and close in it).
#   2g    through zila_proxy at 8,000 bytes/s each way (64 kbit/s) with 300 ms of delay per
#         chunk: a day's work (DAY people added) alone, then another day's work with PHOTOS2G
#         photos: the seconds until HQ holds the day's rows, with and without photos, and
#         until HQ holds every photo.
#   usage: sh tools/bench/attach.sh [lan|2g|all]    (make bench-attach; KEEP=1 keeps the dir)
set -u
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
ZILA=${ZILA:-$ROOT/build/zila}
PROXY=${PROXY:-$ROOT/build/tools/zila_proxy}
WHAT=${1:-all}
PHOTOS=${PHOTOS:-100}
SIZE=${SIZE:-307200}
RATE=${RATE:-12500000}
PHOTOS2G=${PHOTOS2G:-20}
DAY=${DAY:-200}
for b in "$ZILA" "$PROXY"; do
	[ -x "$b" ] || { echo "attach bench: no $b (make build/zila build/tools/zila_proxy)" >&2; exit 1; }
done
. "$ROOT/tests/integration/lib.sh"
P=$((20000 + ($$ * 7) % 20000))
HQ=$T/hq L=$T/lap
proxy_pid=""
cleanup() { [ -n "$proxy_pid" ] && kill "$proxy_pid" 2>/dev/null; stop_daemons; done_with_tmp; }
trap cleanup EXIT
now() { python3 -c 'import time; print("%.3f" % time.time())'; }
secs() { python3 -c "print('%.2f' % ($2 - $1))"; }
mbs() { python3 -c "print('%.1f' % ($1 / ($3 - $2) / 1e6))"; }

org_init "$HQ"
"$ZILA" -d "$L" init >/dev/null
enrol "$HQ" "$L" d1 || { echo "enrol failed" >&2; exit 1; }
"$ZILA" -d "$L" peer add --hq "127.0.0.1:$P" >/dev/null 2>&1
daemon_up "$HQ" "$T/hq.log" "$P"
hqpid=$last
daemon_up "$L" "$T/lap.log" $((P + 1))
"$ZILA" -d "$L" sync hq --wait --timeout 60 >/dev/null 2>&1
lpid=$last
# The laptop's daemon syncs within a second of a write: it is stopped while the work is
# written, and the clock starts when it starts again (it dials HQ at once).
lap_down() { kill "$lpid" 2>/dev/null; wait "$lpid" 2>/dev/null; }
lap_up() { "$ZILA" -d "$L" daemon --listen "127.0.0.1:$((P + 1))" --beacon-port 0 2>>"$T/lap.log" & lpid=$!; pids="$pids $lpid"; }
# cpu seconds (user + system) a process has used so far
cpu() { python3 -c "import os; f = open('/proc/$1/stat').read().rsplit(')', 1)[1].split(); print('%.2f' % ((int(f[11]) + int(f[12])) / os.sysconf('SC_CLK_TCK')))"; }
blobs_at_hq() { find "$HQ/blobs" -type f ! -name '*.part' ! -name '*.man' 2>/dev/null | wc -l; }

# raw TCP: one connection carrying N bytes, the receiver's wall seconds from accept to EOF
raw_tcp() { # raw_tcp BYTES [VIA_PORT]
	python3 - "$1" "${2:-}" "$P" <<'EOF'
import socket, sys, threading, time
n = int(sys.argv[1]); via = sys.argv[2]; base = int(sys.argv[3])
srv = socket.socket(); srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
port = base + 7
srv.bind(("127.0.0.1", port)); srv.listen(1)
res = {}
def recv():
    c, _ = srv.accept(); t0 = time.time(); got = 0; buf = bytearray(1 << 20)
    while True:
        k = c.recv_into(buf)
        if k == 0: break
        got += k
    res["s"] = time.time() - t0; res["n"] = got
th = threading.Thread(target=recv); th.start()
s = socket.create_connection(("127.0.0.1", int(via) if via else port))
chunk = bytes(1 << 16); left = n
while left > 0:
    k = s.send(chunk[: min(left, len(chunk))]); left -= k
s.shutdown(socket.SHUT_WR); th.join(); s.close()
print("%.3f %d" % (res["s"], res["n"]))
EOF
}

photos() { # photos N PREFIX: attaches N random photos on the laptop
	i=0
	while [ $i -lt "$1" ]; do
		head -c "$SIZE" /dev/urandom >"$T/p.jpg"
		"$ZILA" -d "$L" attach "$T/p.jpg" --district d1 --name "$2-$i.jpg" >/dev/null 2>&1 || exit 1
		i=$((i + 1))
	done
}

if [ "$WHAT" = lan ] || [ "$WHAT" = all ]; then
	total=$((PHOTOS * SIZE))
	lap_down
	photos "$PHOTOS" lan
	echo "attach bench, lan: $PHOTOS photos of $SIZE bytes ($total bytes), laptop -> HQ (HQ fetches them after the rows)"
	first=1
	for via in direct proxy; do
		lap_down
		rm -rf "$HQ/blobs"
		if [ $via = proxy ]; then
			"$PROXY" --listen "127.0.0.1:$((P + 9))" --to "127.0.0.1:$P" --rate "$RATE" --chunk 65536 2>"$T/proxy.log" &
			proxy_pid=$!
			sleep 0.3
			"$ZILA" -d "$L" peer add --hq "127.0.0.1:$((P + 9))" >/dev/null 2>&1
		fi
		c0=$(cpu "$hqpid")
		t0=$(now)
		lap_up
		k=0
		while [ "$(blobs_at_hq)" -lt "$PHOTOS" ] && [ $k -lt 6000 ]; do sleep 0.05; k=$((k + 1)); done
		t1=$(now)
		hqcpu=$(python3 -c "print('%.2f' % ($(cpu "$hqpid") - $c0))")
		lapcpu=$(cpu "$lpid")
		have=$(blobs_at_hq)
		if [ $via = proxy ]; then
			kill "$proxy_pid" 2>/dev/null && wait "$proxy_pid" 2>/dev/null
			"$PROXY" --listen "127.0.0.1:$((P + 9))" --to "127.0.0.1:$((P + 7))" --rate "$RATE" --chunk 65536 2>>"$T/proxy.log" &
			proxy_pid=$!
			sleep 0.3
			raw=$(raw_tcp "$total" $((P + 9)))
		else
			raw=$(raw_tcp "$total")
		fi
		[ -n "$proxy_pid" ] && kill "$proxy_pid" 2>/dev/null && wait "$proxy_pid" 2>/dev/null
		proxy_pid=""
		"$ZILA" -d "$L" peer add --hq "127.0.0.1:$P" >/dev/null 2>&1
		rs=${raw% *}
		zr=$(mbs "$total" "$t0" "$t1")
		rr=$(python3 -c "print('%.1f' % ($total / $rs / 1e6))")
		# the blob phase alone, as the laptop's daemon logged it
		bms=$(grep -o 'sent [0-9]* ([0-9]* bytes), refused .* in [0-9]* ms' "$T/lap.log" | tail -1 | sed 's/.* in \([0-9]*\) ms/\1/')
		br=$(python3 -c "print('%.1f' % ($total / (${bms:-1} / 1000) / 1e6))")
		label="loopback"
		[ $via = proxy ] && label="zila_proxy at $RATE B/s"
		echo "  $label: zila $(secs "$t0" "$t1") s from the laptop daemon's start, $zr MB/s ($have of $PHOTOS at HQ);" \
			"the blob phase ${bms} ms, $br MB/s (zila/raw $(python3 -c "print('%.2f' % ($br / $rr))"));" \
			"raw TCP ${rs} s, $rr MB/s; zila/raw $(python3 -c "print('%.2f' % ($zr / $rr))");" \
			"cpu: HQ $hqcpu s, laptop $lapcpu s (load average $(cut -d' ' -f1 /proc/loadavg))"
		first=0
	done
fi

if [ "$WHAT" = 2g ] || [ "$WHAT" = all ]; then
	"$PROXY" --listen "127.0.0.1:$((P + 9))" --to "127.0.0.1:$P" --rate 8000 --delay 300 --chunk 1460 2>"$T/proxy2g.log" &
	proxy_pid=$!
	sleep 0.3
	lap_down
	"$ZILA" -d "$L" peer add --hq "127.0.0.1:$((P + 9))" >/dev/null 2>&1
	day() { # day TAG: DAY people on the laptop
		"$ZILA" -d "$L" sql "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < $DAY)
			INSERT INTO people(id, district_id, name) SELECT '$1-' || i, 'd1', 'Person ' || i || ' of $1' FROM n" >/dev/null
	}
	rows_at_hq() { [ "$(sqlite3 "$HQ/zila.db" "SELECT count(*) FROM people WHERE id LIKE '$1-%'")" = "$DAY" ]; }
	echo "attach bench, 2g (zila_proxy: 8,000 B/s each way, 300 ms per chunk): a day's work of $DAY people"
	base=$(blobs_at_hq)
	for run in plain photos; do
		lap_down
		day "$run"
		[ $run = photos ] && photos "$PHOTOS2G" g2
		t0=$(now)
		lap_up
		while ! rows_at_hq "$run"; do sleep 0.2; done
		t1=$(now)
		if [ $run = plain ]; then
			echo "  without photos: the day's rows at HQ $(secs "$t0" "$t1") s after the laptop's daemon started"
			continue
		fi
		k=0
		while [ "$(blobs_at_hq)" -lt $((base + PHOTOS2G)) ] && [ $k -lt 18000 ]; do sleep 0.5; k=$((k + 1)); done
		t2=$(now)
		echo "  with $PHOTOS2G photos of $SIZE bytes: the day's rows at HQ after $(secs "$t0" "$t1") s;" \
			"$(($(blobs_at_hq) - base)) of $PHOTOS2G photos at HQ after $(secs "$t0" "$t2") s"
	done
fi
