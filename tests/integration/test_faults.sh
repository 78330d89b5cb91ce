#!/bin/sh
# Faulty links: tools/zila_proxy between an HQ daemon and a laptop daemon, one run per fault
# (drop, delay, cut, truncate, flip, dup, reorder). HQ's data was written in batches, each
# sealed as one entry, and HQ's hash was recorded after each: while faults are on, the
# laptop's hash is sampled and must only ever be one of those states (never a corrupted or
# half-applied one), its rows must equal HQ's, integrity_check must be ok, and every fault
# that breaks the byte stream must show as a failed session or refused frame in the logs.
# Then the proxy is made clean (SIGUSR1) and the sync must complete. Last, a session cut at
# 99% of the bytes resumes without receiving any entry twice: the resumed session receives
# exactly what the cut one did not apply (about 1% of the entries).
#
# Short form (make check): FAULT_BATCHES=24 batches of FAULT_ROWS=750 rows, one seed, two
# attempts with faults on (FAULT_ATTEMPTS), idle deadline FAULT_IDLE=3 s.
# Long form: FAULTS_LONG=1 sh tests/integration/test_faults.sh (120 batches of 500 rows,
# seeds 1..5 per fault); FAULT_SEEDS="1 2 3" picks seeds, FAULT_TYPES="flip dup" faults.
. "$(dirname "$0")/lib.sh"
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
PROXY=${ZILA_PROXY:-$ROOT/build/tools/zila_proxy}
if [ -n "${FAULTS_LONG:-}" ]; then
	: "${FAULT_BATCHES:=120}" "${FAULT_ROWS:=500}" "${FAULT_SEEDS:=1 2 3 4 5}"
fi
NB=${FAULT_BATCHES:-24}
NR=${FAULT_ROWS:-750}
SEEDS=${FAULT_SEEDS:-1}
# A byte lost inside a frame leaves both sides waiting: the idle deadline notices it.
IDLE=${FAULT_IDLE:-3}
P=$((20000 + ($$ * 11) % 20000))
HQP=$P
HQ=$T/hq
cleanup() { stop_daemons; done_with_tmp; }
trap cleanup EXIT
[ -x "$PROXY" ] || { bad "no $PROXY (make build/tools/zila_proxy)"; finish; exit 1; }
command -v sqlite3 >/dev/null || { bad "sqlite3 is needed"; finish; exit 1; }
hash_of() { "$ZILA" -d "$1" hash 2>/dev/null; }

# HQ: NB batches, each inserting NR members, updating a tenth of the previous batch and
# deleting a tenth of the one before, sealed as its own entry; its hash after each.
t_start=$(date +%s)
printf 'correct horse battery\n' >"$T/pw"
"$ZILA" -d "$HQ" init >/dev/null
"$ZILA" -d "$HQ" org init --name Party --passphrase-file "$T/pw" >/dev/null
"$ZILA" -d "$HQ" sql "INSERT INTO states(id, name) VALUES ('s1', 'S');
  INSERT INTO districts(id, state_id, name) VALUES ('d-1', 's1', 'One')" >/dev/null
"$ZILA" -d "$HQ" seal >/dev/null
# states: "BATCH HASH" per line; snap.db: HQ's people after each batch, to compare rows with.
# A laptop holds nothing of hq's before its first sync: that state (-1) is consistent too.
"$ZILA" -d "$T/empty" init >/dev/null && echo "-1 $(hash_of "$T/empty")" >"$T/states"
echo "0 $(hash_of "$HQ")" >>"$T/states"
sqlite3 "$T/snap.db" "CREATE TABLE s(b, id, district_id, name, phone, address)"
b=1
while [ $b -le "$NB" ]; do
	"$ZILA" -d "$HQ" sql "WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n WHERE x < $NR)
	  INSERT INTO people(id, district_id, name, phone, address)
	  SELECT printf('p%04d-%05d', $b, x), 'd-1', 'Person ' || hex(randomblob(8)), printf('9%09d', $b * 100000 + x),
	         'Ward ' || hex(randomblob(24)) FROM n;
	  UPDATE people SET name = 'Renamed ' || hex(randomblob(4)) WHERE id LIKE printf('p%04d-%%', $b - 1) AND id LIKE '%0';
	  DELETE FROM people WHERE id LIKE printf('p%04d-%%', $b - 2) AND id LIKE '%5'" >/dev/null
	"$ZILA" -d "$HQ" seal >/dev/null
	echo "$b $(hash_of "$HQ")" >>"$T/states"
	sqlite3 "$T/snap.db" "ATTACH '$HQ/zila.db' AS h;
	  INSERT INTO s SELECT $b, id, district_id, name, phone, address FROM h.people"
	b=$((b + 1))
done
nentries=$("$ZILA" -d "$HQ" sql "SELECT count(*) FROM zila_entries" 2>/dev/null | tail -1)
NROWS=$("$ZILA" -d "$HQ" sql "SELECT count(*) FROM people" | tail -1)
echo "# hq ($(($(date +%s) - t_start)) s): $NB batches of $NR rows (with updates and deletes), $NROWS rows, $nentries entries, $(sort -u "$T/states" | wc -l) states"
"$ZILA" -d "$HQ" daemon --listen "127.0.0.1:$HQP" --beacon-port 0 --idle-timeout "$IDLE" 2>>"$T/hq.log" &
pids="$pids $!"
until_ok 50 test -S "$HQ/zila.sock" || { bad "hq daemon did not start"; finish; exit 1; }

# consistent DIR: the laptop's hash is the hash of one of HQ's states, its rows are HQ's
# rows of that state value for value (both ways), integrity_check ok. Prints what is wrong.
# The laptop's daemon may apply more meanwhile (it retries by itself): the rows count only
# when the hash is the same before and after they were read.
consistent() {
	n=0
	while [ $n -lt 20 ]; do
		consistent_once "$1" && [ "$(hash_of "$1")" = "$h" ] && return 0
		[ "$(hash_of "$1")" = "$h" ] && return 1
		n=$((n + 1))
	done
	echo "the laptop never stood still"
	return 1
}
consistent_once() {
	h=$(hash_of "$1")
	k=$(awk -v h="$h" '$2 == h { print $1; exit }' "$T/states")
	[ -n "$k" ] || { echo "hash $h is no state of hq"; return 1; }
	out=$(sqlite3 "$1/zila.db" "ATTACH '$T/snap.db' AS h; BEGIN;
	  SELECT count(*) FROM (SELECT id, district_id, name, phone, address FROM main.people
	                        EXCEPT SELECT id, district_id, name, phone, address FROM h.s WHERE b = $k);
	  SELECT count(*) FROM (SELECT id, district_id, name, phone, address FROM h.s WHERE b = $k
	                        EXCEPT SELECT id, district_id, name, phone, address FROM main.people);
	  PRAGMA main.integrity_check; COMMIT;" 2>&1)
	[ "$out" = "$(printf '0\n0\nok')" ] || { echo "rows or integrity at state $k: $out"; return 1; }
	echo "state $k"
}
# exact DIR: the laptop's rows are HQ's, both ways.
exact() {
	out=$(sqlite3 "$1/zila.db" "ATTACH '$HQ/zila.db' AS h;
	  SELECT count(*) FROM (SELECT * FROM main.people EXCEPT SELECT * FROM h.people);
	  SELECT count(*) FROM (SELECT * FROM h.people EXCEPT SELECT * FROM main.people);")
	[ "$out" = "$(printf '0\n0')" ]
}
# sampler DIR FILE: records the laptop's hash every 0.4 s until killed.
sampler() {
	while :; do hash_of "$1" >>"$2"; sleep 0.4; done
}

nlap=0
# laptop: a fresh replica enrolled for d-1 whose HQ is reached through port $1.
new_laptop() {
	nlap=$((nlap + 1))
	L=$T/lap$nlap
	rm -f "$T/.req" "$T/.cert"
	"$ZILA" -d "$L" init >/dev/null && enrol "$HQ" "$L" d-1 && "$ZILA" -d "$L" peer add --hq "127.0.0.1:$1" >/dev/null
}
start_laptop() {
	"$ZILA" -d "$L" daemon --listen "127.0.0.1:$(($1 + 1))" --beacon-port 0 --idle-timeout "$IDLE" 2>>"$L.log" &
	LPID=$!
	pids="$pids $LPID"
	until_ok 50 test -S "$L/zila.sock"
}
stop_laptop() {
	"$ZILA" -d "$L" stop >/dev/null 2>&1
	wait "$LPID" 2>/dev/null
}
start_proxy() { # start_proxy PORT LOG OPTIONS...
	pp=$1 plog=$2; shift 2
	"$PROXY" --listen "127.0.0.1:$pp" --to "127.0.0.1:$HQP" --log "$plog" "$@" &
	PXPID=$!
	pids="$pids $PXPID"
	until_ok 50 grep -q "listening on" "$plog"
}
stop_proxy() {
	kill -TERM "$PXPID" 2>/dev/null
	wait "$PXPID" 2>/dev/null
}

# run NAME OPTIONS...: one fault type through a fresh laptop.
run=0
fault_run() {
	name=$1; seed=$2; shift 2
	run=$((run + 1))
	run_t0=$(date +%s)
	xp=$((P + 10 + run * 3))
	new_laptop "$xp" || { bad "$name: laptop not enrolled"; return; }
	hq_lines=$(wc -l <"$T/hq.log")
	plog=$T/proxy.$run.log
	start_proxy "$xp" "$plog" --seed "$seed" "$@"
	start_laptop "$xp"
	: >"$T/samples"
	sampler "$L" "$T/samples" &
	spid=$!
	pids="$pids $spid"
	# Faults on: a few attempts (each may fail); the daemon also retries by itself.
	t0=$(date +%s)
	i=0
	while [ $i -lt "${FAULT_ATTEMPTS:-2}" ] && [ "$(hash_of "$L")" != "$(hash_of "$HQ")" ]; do
		"$ZILA" -d "$L" sync hq --wait --timeout 20 >/dev/null 2>&1
		i=$((i + 1))
	done
	kill "$spid" 2>/dev/null
	wait "$spid" 2>/dev/null
	on_secs=$(($(date +%s) - t0))
	# The faults and what caught them.
	injected=$(grep -E "^conn [0-9]+ (.* )?(drop|dup|reorder|truncate|flip|cut) " "$plog" | awk '{ print $2 }' | sort -u | wc -l)
	nfaults=$(grep -cE "^conn [0-9]+ (.* )?(drop|dup|reorder|truncate|flip|delay|cut) " "$plog")
	conns=$(grep -c "^conn [0-9]* from" "$plog")
	lfail=$(grep -c "warn: sync with" "$L.log")
	tail -n +"$((hq_lines + 1))" "$T/hq.log" >"$T/hq.run.log"
	hfail=$(grep -c "warn: sync with" "$T/hq.run.log")
	done_on=$(grep -c "info: synced with" "$L.log")
	nsamples=$(sort -u "$T/samples" | wc -l)
	awk '{ print $2 }' "$T/states" >"$T/hashes"
	badstate=$(sort -u "$T/samples" | grep -vxF -f "$T/hashes" | head -1)
	why=$(consistent "$L") && [ -z "$badstate" ] &&
		ok "$name (seed $seed): $(wc -l <"$T/samples") samples, $nsamples distinct hashes, each a state of hq; now at hq's $why: rows equal hq's then, integrity ok" ||
		bad "$name (seed $seed): corrupted or partial state: ${badstate:+sampled hash $badstate is no state of hq; }$why"
	reasons=$(sed -n 's/.*warn: sync with [^)]*): \(.*\)/\1/p' "$L.log" "$T/hq.run.log" | sed 's/ [0-9][0-9]* s$//' | sort | uniq -c | sort -rn | head -3 | awk '{c=$1; $1=""; printf "%s%s x%s", sep, substr($0,2), c; sep="; "}')
	echo "# $name: $nfaults faults on $injected of $conns connections in ${on_secs} s; failed sessions: laptop $lfail, hq $hfail; completed while faulty: $done_on; reasons: ${reasons:-none}"
	if [ "$name" = delay ]; then
		# Delays corrupt nothing: the sync completes while they are on.
		[ "$nfaults" -gt 0 ] && [ "$(hash_of "$L")" = "$(hash_of "$HQ")" ] &&
			ok "delay: $nfaults chunks delayed, the sync completed through the delays ($lfail sessions failed)" ||
			bad "delay: $nfaults faults; the sync did not complete while they were on"
	else
		# Every connection that carried a breaking fault ended with a failed session on
		# one side at least (a fault in the closing frames, after both sides finished,
		# breaks nothing: those sessions count as completed on both sides).
		[ "$injected" -gt 0 ] && [ $((lfail + hfail)) -gt 0 ] && [ "$done_on" -le $((conns - injected + lfail + hfail)) ] &&
			ok "$name: every fault detected ($injected connections faulted, $((lfail + hfail)) session failures logged)" ||
			bad "$name: $injected faulted connections, $lfail + $hfail failures logged, $done_on completed"
	fi
	# Clean link: the sync completes.
	kill -USR1 "$PXPID"
	until_ok 25 grep -q "faults off" "$plog"
	i=0
	while [ $i -lt 5 ] && [ "$(hash_of "$L")" != "$(hash_of "$HQ")" ]; do
		"$ZILA" -d "$L" sync hq --wait --timeout 30 >/dev/null 2>&1
		i=$((i + 1))
	done
	[ "$(hash_of "$L")" = "$(hash_of "$HQ")" ] && exact "$L" &&
		ok "$name: once the link behaves the sync completes: hashes equal, $NROWS rows exact" ||
		bad "$name: no convergence after the link was made clean"
	dups=$(sed -n 's/.*, duplicate \([0-9]*\).*/\1/p' "$L.log" | awk '{s += $1} END {print s + 0}')
	echo "# $name: entries received twice over all sessions: $dups; $(($(date +%s) - run_t0)) s for this run"
	stop_laptop
	stop_proxy
}

for seed in $SEEDS; do
	for f in ${FAULT_TYPES:-drop delay cut truncate flip dup reorder}; do
		case $f in
		drop) fault_run drop "$seed" --drop 0.01 ;;
		delay) fault_run delay "$seed" --delay 20 ;;
		cut) fault_run cut "$seed" --cut-every 400000 ;;
		truncate) fault_run truncate "$seed" --truncate 0.01 ;;
		flip) fault_run flip "$seed" --flip 0.003 ;;
		dup) fault_run dup "$seed" --dup 0.01 ;;
		reorder) fault_run reorder "$seed" --reorder 0.01 ;;
		*) bad "unknown fault type '$f'" ;;
		esac
	done
done

# A session cut at 99%: measure a clean sync's bytes, cut the next laptop's first session
# at 99% of them; the resumed session must receive only what was not applied.
xp=$((P + 5))
new_laptop "$xp"
start_proxy "$xp" "$T/clean.log"
start_laptop "$xp"
"$ZILA" -d "$L" sync hq --wait --timeout 60 >/dev/null 2>&1
stop_laptop
stop_proxy
total=$(sed -n 's/.* \([0-9]*\) bytes in, .*/\1/p' "$T/clean.log" | tail -1)
[ "$(hash_of "$L")" = "$(hash_of "$HQ")" ] && [ "${total:-0}" -gt 0 ] || { bad "clean sync for the 99% cut failed"; finish; exit 1; }
cut=$((total * 99 / 100))
xp=$((P + 7))
new_laptop "$xp"
start_proxy "$xp" "$T/cut99.log" --cut-after "$cut"
start_laptop "$xp"
i=0
while [ $i -lt 5 ] && [ "$(hash_of "$L")" != "$(hash_of "$HQ")" ]; do
	"$ZILA" -d "$L" sync hq --wait --timeout 60 >/dev/null 2>&1
	i=$((i + 1))
done
stop_laptop
stop_proxy
grep "received .* entries, applied" "$L.log" | sed 's/.*session with [^ ]* //' >"$T/cutlines"
first=$(sed -n 1p "$T/cutlines")
second=$(sed -n 2p "$T/cutlines")
r1=$(echo "$first" | sed -n 's/.*received \([0-9]*\) entries.*/\1/p')
a1=$(echo "$first" | sed -n 's/.*applied \([0-9]*\),.*/\1/p')
r2=$(echo "$second" | sed -n 's/.*received \([0-9]*\) entries.*/\1/p')
d2=$(echo "$second" | sed -n 's/.*duplicate \([0-9]*\).*/\1/p')
echo "# 99% cut: $total bytes clean, cut after $cut; first session: $first; resumed: $second; $nentries entries in all"
[ "$(hash_of "$L")" = "$(hash_of "$HQ")" ] && exact "$L" && ok "the sync cut at 99% completed" || bad "the sync cut at 99% did not complete"
case "$first" in *"ended early"*) ok "the first session was cut" ;; *) bad "the first session was not cut: $first" ;; esac
# What may come again: the last 1% and the chunk (at most 256 KiB) that was in flight.
allowed=$((nentries * (total / 100 + 262144) / total + 1))
[ -n "$r2" ] && [ "$d2" = 0 ] && [ $((a1 + r2)) = "$nentries" ] && [ "$r2" -le "$allowed" ] &&
	ok "the resumed session received $r2 of $nentries entries ($((r2 * 1000 / nentries / 10)).$((r2 * 1000 / nentries % 10))%), none twice; at most $allowed allowed (1% + one chunk)" ||
	bad "resumed session: received ${r2:-?} of $nentries after $a1 applied, duplicate ${d2:-?}"
if grep -q "error:" "$T/hq.log" "$T"/lap*.log; then bad "error lines in the logs: $(grep -h error: "$T"/*.log | head -3)"; else ok "no error line in the daemons' logs"; fi
finish
