#!/bin/sh
# The field-link bench (#24): an HQ daemon and a district laptop's daemon, each in a network
# namespace of its own, joined by tools/zila_link (a user-space link: rate, delay +- jitter,
# loss, a bounded queue; this kernel has no netem). Scenarios, on fresh replicas per link:
#   clone   a laptop's first sync of a district of PEOPLE people (tools/zila_gen: Devanagari
#           local names, office bearers, booth agents, sign-ups...)
#   day     a day's work on the laptop: 200 new people, 500 edited, 20 deleted, then a sync
#   return  the laptop back after weeks away: RETURN changes (new people and edits, sealed in
#           batches of 2,000 as its daemon would have while offline), then a sync
# Reported per scenario: seconds; zila's bytes each way (what the two daemons wrote to their
# sockets, handshake included, each byte once: the TCP payload zila_link carried, counted
# as bench_bytes counts it); the link's bytes each way (Ethernet frames: TCP/IP headers,
# ACKs and retransmissions too); sessions; cuts (must be 0); for the clone the seconds until
# the first people rows show, the longest wait for more rows after them (sampled every half
# second) and the CSV floor (every table as `zila export` writes CSV, zstd -19, as
# bench_bytes takes it); for the day's
# work (tools/bench/day.sql, bench_bytes's too) the bytes per changed row, zila's bytes both
# ways over the 720 rows, beside SQLite's session changeset of the same changes
# (tools/zila_changeset).
#   photos  attachments (#25), after a clone: ROUNDS rounds of a day's work (day.sql) written
#           while the laptop's daemon is down, alone and then with PHOTOS photos of SIZE
#           bytes (random: photos do not compress), alternated; the laptop's daemon starts
#           and the clock with it. Reported: the seconds until HQ holds the day's rows (the
#           attachments' rows too), until the first photo bytes reach HQ and until every
#           photo is there; zila's and the link's bytes up beside the photos' bytes. Then
#           rows written while photos move (LIVE photos): their seconds to HQ beside the
#           same rows on an idle link; then a cut of the connection (ss -K at both ends)
#           mid-photo (CUT photos): the bytes of photo chunks the laptop sent, all sessions
#           summed, beyond the photos' bytes (what the cut made it send twice).
#   usage: sh tools/bench/link.sh [short|long|photos]     (root; make bench / make bench-link)
#   short: 2G only, a district of 2,000 people, the day's work (about a minute)
#   long:  2G and 32 kbit/s, 20,000 people, all three scenarios (tens of minutes)
#   photos: 2G, 2,000 people, the photos scenario (make bench-link-photos; about 40 minutes:
#           6 MB of photos cross a 64 kbit/s link twice)
# LINKS="2g 32k 256k", PEOPLE, RETURN, SEED, PHOTOS, SIZE, ROUNDS, LIVE, LIVE_REPS, CUT override;
# KEEP=1 keeps the work directory.
set -u
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
ZILA=${ZILA:-$ROOT/build/zila}
LINK=$ROOT/build/tools/zila_link
GEN=$ROOT/build/tools/zila_gen
CSET=$ROOT/build/tools/zila_changeset
FORM=${1:-short}
case $FORM in
short)
	LINKS=${LINKS:-2g}
	PEOPLE=${PEOPLE:-2000}
	SCEN=${SCEN:-clone day}
	;;
long)
	LINKS=${LINKS:-2g 32k}
	PEOPLE=${PEOPLE:-20000}
	SCEN=${SCEN:-clone day return}
	;;
photos)
	LINKS=${LINKS:-2g}
	PEOPLE=${PEOPLE:-2000}
	SCEN=${SCEN:-photos}
	;;
*)
	echo "usage: sh tools/bench/link.sh [short|long|photos]" >&2
	exit 2
	;;
esac
RETURN=${RETURN:-50000}
SEED=${SEED:-1}
if [ "$(id -u)" != 0 ]; then
	echo "link bench: skipped (needs root for network namespaces)"
	exit 0
fi
for b in "$ZILA" "$LINK" "$GEN" "$CSET"; do
	[ -x "$b" ] || {
		echo "link bench: no $b (make build/zila build/tools/zila_link build/tools/zila_gen build/tools/zila_changeset)" >&2
		exit 1
	}
done
W=$(mktemp -d /tmp/zila-link-XXXXXX)
NS=zl$$
LINKPID=""
HQPID=""
LPID=""
HQA=10.98.0.2
LA=10.98.0.1
cleanup() {
	for p in $LPID $HQPID; do kill "$p" 2>/dev/null; done
	for p in $LPID $HQPID; do wait "$p" 2>/dev/null; done
	[ -n "$LINKPID" ] && kill "$LINKPID" 2>/dev/null && wait "$LINKPID" 2>/dev/null
	ip netns del "$NS-hq" 2>/dev/null
	ip netns del "$NS-lap" 2>/dev/null
	if [ -n "${KEEP:-}" ]; then echo "link bench: kept $W"; else rm -rf "$W"; fi
}
trap cleanup EXIT
trap 'exit 1' INT TERM
fail() {
	echo "link bench: $*" >&2
	exit 1
}

# link_up RATE DELAY JITTER LOSS: fresh namespaces joined by zila_link.
link_up() {
	link_down
	ip netns add "$NS-hq" && ip netns add "$NS-lap" || fail "cannot make namespaces"
	"$LINK" --a "$NS-lap:zla" --b "$NS-hq:zlb" --rate "$1" --delay "$2" --jitter "$3" --loss "$4" \
		--seed "$SEED" --stats "$W/link.stats" >"$W/link.out" 2>&1 &
	LINKPID=$!
	i=0
	until grep -q ready "$W/link.out" 2>/dev/null; do
		i=$((i + 1))
		[ $i -gt 50 ] && fail "zila_link did not start: $(cat "$W/link.out")"
		sleep 0.1
	done
	for x in "lap zla $LA" "hq zlb $HQA"; do
		set -- $x
		ip -n "$NS-$1" link set lo up
		ip netns exec "$NS-$1" sysctl -q -w net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
		ip -n "$NS-$1" addr add "$3/24" dev "$2"
		ip -n "$NS-$1" link set "$2" up
	done
}
link_down() {
	for p in $LPID $HQPID; do kill "$p" 2>/dev/null; done
	for p in $LPID $HQPID; do wait "$p" 2>/dev/null; done
	LPID="" HQPID=""
	[ -n "$LINKPID" ] && kill "$LINKPID" 2>/dev/null && wait "$LINKPID" 2>/dev/null
	LINKPID=""
	ip netns del "$NS-hq" 2>/dev/null
	ip netns del "$NS-lap" 2>/dev/null
	return 0
}
# stats: sets AB (laptop to HQ) and BA (HQ to laptop), the link's bytes so far, and ABP, BAP
# zila's (TCP payload, each byte once).
stats() {
	rm -f "$W/link.stats"
	kill -USR1 "$LINKPID"
	i=0
	until [ -s "$W/link.stats" ]; do
		i=$((i + 1))
		[ $i -gt 50 ] && fail "zila_link wrote no statistics"
		sleep 0.1
	done
	AB=$(awk '$1 == "ab" {print $2}' "$W/link.stats")
	BA=$(awk '$1 == "ba" {print $2}' "$W/link.stats")
	ABP=$(awk '$1 == "ab" {print $6}' "$W/link.stats")
	BAP=$(awk '$1 == "ba" {print $6}' "$W/link.stats")
}
now() { date +%s.%N | cut -c1-14; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.1f", b - a}'; }
people() { sqlite3 "file:$L/zila.db?mode=ro" "SELECT count(*) FROM people" 2>/dev/null || echo 0; }
all_rows() {
	sqlite3 "$1/zila.db" "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'zila%' AND name NOT LIKE 'sqlite%'" |
		while read -r t; do sqlite3 "$1/zila.db" "SELECT count(*) FROM \"$t\""; done | awk '{s += $1} END {print s}'
}
cuts() { cat "$W/hq.log" "$W/lap.log" 2>/dev/null | grep -c "no progress in state\|connection cut\|kept .* entries received\|channel failed"; }
sessions() { grep -cE "synced with.*(sent [1-9]|received [1-9])" "$W/lap.log" 2>/dev/null; }
# sync_until_done LIMIT: waits until the laptop logged another completed sync with HQ
# (at most LIMIT s); sets SECS.
wait_synced() {
	_n0=$1
	_lim=$2
	_t0=$3
	while [ "$(grep -c "synced with 'hq'.*received" "$W/lap.log")" -le "$_n0" ]; do
		[ "$(elapsed "$_t0" "$(now)" | cut -d. -f1)" -ge "$_lim" ] && return 1
		sleep 0.5
	done
	return 0
}

# replicas PEOPLE: HQ with a generated district, a laptop of it enrolled by USB stick.
replicas() {
	HQ=$W/hq L=$W/lap
	rm -rf "$HQ" "$L"
	printf 'a passphrase for the bench\n' >"$W/pw"
	"$ZILA" -d "$HQ" init >/dev/null && "$ZILA" -d "$HQ" org init --name Party --passphrase-file "$W/pw" >/dev/null ||
		fail "cannot make HQ"
	"$GEN" --districts 1 --people-per-district "$1" --seed "$SEED" --db "$HQ/zila.db" >/dev/null || fail "zila_gen failed"
	"$ZILA" -d "$HQ" seal >/dev/null || fail "HQ's seal failed"
	rm -f "$W/req" "$W/cert"
	"$ZILA" -d "$L" init >/dev/null && "$ZILA" -d "$L" enrol request "$W/req" --name lap >/dev/null &&
		"$ZILA" -d "$HQ" enrol sign "$W/req" "$W/cert" --district Patna --role district >/dev/null &&
		"$ZILA" -d "$L" enrol install "$W/cert" >/dev/null || fail "cannot enrol the laptop"
	"$ZILA" -d "$L" peer add --hq "$HQA:7400" >/dev/null || fail "cannot set HQ's address"
	: >"$W/hq.log"
	: >"$W/lap.log"
	ip netns exec "$NS-hq" "$ZILA" -d "$HQ" daemon --listen "$HQA:7400" --beacon-port 0 2>>"$W/hq.log" &
	HQPID=$!
	i=0
	until "$ZILA" -d "$HQ" status >/dev/null 2>&1; do
		i=$((i + 1))
		[ $i -gt 100 ] && fail "HQ's daemon did not start"
		sleep 0.1
	done
}
lap_up() {
	ip netns exec "$NS-lap" "$ZILA" -d "$L" daemon --listen "$LA:7400" --beacon-port 0 2>>"$W/lap.log" &
	LPID=$!
}
lap_down() {
	kill "$LPID" 2>/dev/null
	wait "$LPID" 2>/dev/null
	LPID=""
}
report() { printf '%-7s %-4s %s\n' "$1" "$2" "$3" | tee -a "$W/report"; }

scen_clone() {
	link=$1
	stats
	ab0=$AB ba0=$BA abp0=$ABP bap0=$BAP c0=$(cuts) s0=$(sessions)
	t0=$(now)
	lap_up
	first=""
	lim=$((PEOPLE / 8 + 300))
	# rows keep appearing: the longest wait for more rows (any table) after the first
	# people rows, until the last rows came
	q=$(sqlite3 "$HQ/zila.db" "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'zila%' AND name NOT LIKE 'sqlite%'" |
		awk 'BEGIN {printf "SELECT 0"} {printf " + (SELECT count(*) FROM \"%s\")", $1}')
	gap=0 lastn=0 lastt=""
	while [ "$(grep -c "synced with 'hq'.*received" "$W/lap.log")" -le "$s0" ]; do
		t=$(elapsed "$t0" "$(now)")
		if [ -z "$first" ] && [ "$(people)" -gt 0 ]; then first=$t; fi
		n=$(sqlite3 "file:$L/zila.db?mode=ro" "$q" 2>/dev/null || echo "$lastn")
		if [ -n "$first" ] && [ "$n" -gt "$lastn" ]; then
			[ -n "$lastt" ] && gap=$(awk -v g="$gap" -v a="$lastt" -v b="$t" 'BEGIN {print (b - a > g) ? b - a : g}')
			lastt=$t
		fi
		[ "$n" -gt "$lastn" ] && lastn=$n
		[ "$(elapsed "$t0" "$(now)" | cut -d. -f1)" -ge "$lim" ] && break
		sleep 0.5
	done
	secs=$(elapsed "$t0" "$(now)")
	[ -z "$first" ] && [ "$(people)" -gt 0 ] && first=$secs
	stats
	rows=$(all_rows "$HQ")
	got=$(all_rows "$L")
	up=$((AB - ab0)) down=$((BA - ba0)) zup=$((ABP - abp0)) zdown=$((BAP - bap0))
	# the floor as bench_bytes takes it: every table as `zila export` writes CSV, by name
	floor=$(sqlite3 "$HQ/zila.db" "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'zila%' AND name NOT LIKE 'sqlite%' ORDER BY name" |
		while read -r t; do "$ZILA" -d "$HQ" export --table "$t"; done | zstd -19 -q -c | wc -c)
	report "$link" clone "$(printf '%s s, %s of %s rows; first people rows after %s s, then new rows at most %.1f s apart; zila %s B down, %s B up: %s x the CSV zstd -19 floor of %s B, %s B/row; link %s B down, %s B up (%s x); sessions %s; cuts %s' \
		"$secs" "$got" "$rows" "${first:-never}" "$gap" "$zdown" "$zup" \
		"$(awk -v a="$((zdown + zup))" -v b="$floor" 'BEGIN {printf "%.2f", a / b}')" "$floor" \
		"$(awk -v a="$((zdown + zup))" -v b="$rows" 'BEGIN {printf "%.1f", a / (b > 0 ? b : 1)}')" "$down" "$up" \
		"$(awk -v a="$((down + up))" -v b="$floor" 'BEGIN {printf "%.2f", a / b}')" "$(($(sessions) - s0))" "$(($(cuts) - c0))")"
	[ "$got" = "$rows" ] || echo "link bench: the laptop holds $got of $rows rows" >&2
}

scen_day() {
	link=$1
	sqlite3 "$L/zila.db" "PRAGMA wal_checkpoint(TRUNCATE)" >/dev/null 2>&1
	cp "$L/zila.db" "$W/before.db"
	cp "$ROOT/tools/bench/day.sql" "$W/day.sql"
	cs=$("$CSET" "$W/before.db" "$W/day.sql" people) || fail "changeset: $cs"
	stats
	ab0=$AB ba0=$BA abp0=$ABP bap0=$BAP c0=$(cuts) s0=$(sessions)
	t0=$(now)
	sqlite3 "$L/zila.db" <"$W/day.sql" || fail "the day's work did not commit"
	"$ZILA" -d "$L" sync hq --wait >/dev/null 2>&1
	secs=$(elapsed "$t0" "$(now)")
	stats
	up=$((AB - ab0)) down=$((BA - ba0)) zup=$((ABP - abp0)) zdown=$((BAP - bap0))
	raw=$(echo "$cs" | awk '{print $2}')
	z=$(echo "$cs" | awk '{print $4}')
	same=no
	[ "$("$ZILA" -d "$HQ" hash)" = "$("$ZILA" -d "$L" hash)" ] && same=yes
	report "$link" day "$(printf '%s s; zila %s B up, %s B down: %s B per changed row both ways (720 rows); link %s B up, %s B down; session changeset %s B (%s B/row), zstd -19 %s B (%s B/row); in step %s; sessions %s; cuts %s' \
		"$secs" "$zup" "$zdown" "$(awk -v a="$((zup + zdown))" 'BEGIN {printf "%.1f", a / 720}')" "$up" "$down" \
		"$raw" "$(awk -v a="$raw" 'BEGIN {printf "%.1f", a / 720}')" "$z" "$(awk -v a="$z" 'BEGIN {printf "%.1f", a / 720}')" \
		"$same" "$(($(sessions) - s0))" "$(($(cuts) - c0))")"
}

scen_return() {
	link=$1
	lap_down
	b=0
	total=0
	# New people and edits of held ones, 2,000 a batch, sealed as the daemon would have.
	while [ $total -lt "$RETURN" ]; do
		b=$((b + 1))
		if [ $((b % 5)) -lt 2 ]; then
			sqlite3 "$L/zila.db" "WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n WHERE x < 2000)
			  INSERT INTO people(id, district_id, name, name_local, phone, gender, birth_year, address, org_unit_id, joined_on)
			  SELECT lower(hex(randomblob(16))), p.district_id, p.name || ' ' || x, p.name_local || ' ' || x,
			    printf('5%04d%05d', $b, x), p.gender, p.birth_year, p.address, p.org_unit_id, '2026-12-0' || ($b % 9 + 1)
			  FROM n JOIN (SELECT * FROM people ORDER BY rowid LIMIT 1 OFFSET $b) p" || fail "return: insert batch $b"
		else
			sqlite3 "$L/zila.db" "UPDATE people SET address = address || ' ($b)', birth_year = 1950 + ($b + rowid) % 50
			  WHERE rowid IN (SELECT rowid FROM people ORDER BY rowid LIMIT 2000 OFFSET ($b * 2000) % 20000)" ||
				fail "return: update batch $b"
		fi
		"$ZILA" -d "$L" seal >/dev/null || fail "return: seal $b"
		total=$((total + 2000))
	done
	stats
	ab0=$AB ba0=$BA abp0=$ABP bap0=$BAP c0=$(cuts) s0=$(sessions)
	t0=$(now)
	lap_up
	wait_synced "$s0" $((RETURN / 20 + 300)) "$t0"
	secs=$(elapsed "$t0" "$(now)")
	stats
	up=$((AB - ab0)) down=$((BA - ba0)) zup=$((ABP - abp0)) zdown=$((BAP - bap0))
	same=no
	[ "$("$ZILA" -d "$HQ" hash)" = "$("$ZILA" -d "$L" hash)" ] && same=yes
	report "$link" return "$(printf '%s s; %s changes; zila %s B up, %s B down: %s B per change both ways; link %s B up, %s B down; in step %s; sessions %s; cuts %s' \
		"$secs" "$total" "$zup" "$zdown" "$(awk -v a="$((zup + zdown))" -v b="$total" 'BEGIN {printf "%.1f", a / b}')" \
		"$up" "$down" "$same" "$(($(sessions) - s0))" "$(($(cuts) - c0))")"
}

# --- attachments (#25) -------------------------------------------------------------------
PHOTOS=${PHOTOS:-20}
SIZE=${SIZE:-307200}
ROUNDS=${ROUNDS:-2}
LIVE=${LIVE:-3}
CUT=${CUT:-3}
at_hq() { sqlite3 "file:$HQ/zila.db?mode=ro" "$1" 2>/dev/null || echo 0; }
blobs_done() { find "$HQ/blobs" -type f ! -name '*.part' ! -name '*.man' ! -name '*.tmp' 2>/dev/null | wc -l; }
# bytes of photo chunks HQ holds (whole blobs and verified .part chunks)
blob_bytes() { find "$HQ/blobs" -type f ! -name '*.man' ! -name '*.tmp' -printf '%s\n' 2>/dev/null | awk '{s += $1} END {print s + 0}'; }
part_bytes() { find "$HQ/blobs" -type f -name '*.part' -printf '%s\n' 2>/dev/null | awk '{s += $1} END {print s + 0}'; }
# the photo chunk bytes the laptop's daemon logged as sent, all sessions so far
lap_sent() { grep -o "attachments with .*: received [0-9]* ([0-9]* bytes), sent [0-9]* ([0-9]* bytes)" "$W/lap.log" |
	sed 's/.*sent [0-9]* (\([0-9]*\) bytes)/\1/' | awk '{s += $1} END {print s + 0}'; }
photos_add() { # photos_add N TAG
	_i=0
	while [ $_i -lt "$1" ]; do
		head -c "$SIZE" /dev/urandom >"$W/p.jpg"
		"$ZILA" -d "$L" attach "$W/p.jpg" --district "$DIST" --name "$2-$_i.jpg" >/dev/null 2>"$W/attach.err" ||
			fail "cannot attach a photo: $(cat "$W/attach.err")"
		_i=$((_i + 1))
	done
}
day_work() { # day_work TAG SALT: day.sql on the laptop (new phone numbers per SALT), with a
	# marker row in its transaction
	sed -e "s/'8%09d', (a.rowid \\* 2654435761)/'8%09d', ((a.rowid + $2) * 2654435761)/" \
		-e "s/'7%09d', (rowid \\* 40503)/'7%09d', (rowid * 40503 + $2)/" \
		-e "s/^COMMIT;/INSERT INTO people(id, district_id, name) VALUES ('mark-$1', '$DIST', 'marker $1');\nCOMMIT;/" \
		"$ROOT/tools/bench/day.sql" >"$W/dayp.sql"
	grep -q "mark-$1" "$W/dayp.sql" && grep -q "rowid + $2" "$W/dayp.sql" && grep -q "40503 + $2" "$W/dayp.sql" ||
		fail "day.sql is not as this bench expects"
	sqlite3 -cmd ".timeout 20000" "$L/zila.db" <"$W/dayp.sql" || fail "the day's work did not commit"
}
rows_in() { # rows_in TAG NPHOTOS: HQ holds the day's marker and the round's attachments' rows
	[ "$(at_hq "SELECT (SELECT count(*) FROM people WHERE id = 'mark-$1') + (SELECT count(*) FROM attachments WHERE name LIKE '$1-%')")" -ge $(($2 + 1)) ]
}
few_rows() { # few_rows TAG: 20 people written on the laptop while its daemon runs
	sqlite3 -cmd ".timeout 20000" "$L/zila.db" "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 20)
		INSERT INTO people(id, district_id, name) SELECT '$1-' || i, '$DIST', 'Person ' || i || ' of $1' FROM n" ||
		fail "cannot write rows"
}
few_in() { [ "$(at_hq "SELECT count(*) FROM people WHERE id LIKE '$1-%'")" -ge 20 ]; }
# wait_for LIMIT CMD...: until CMD succeeds (at most LIMIT s after T0); sets WT (seconds)
wait_for() {
	_lim=$1
	shift
	until "$@"; do
		[ "$(elapsed "$T0" "$(now)" | cut -d. -f1)" -ge "$_lim" ] && { WT=never; return 1; }
		sleep 0.25
	done
	WT=$(elapsed "$T0" "$(now)")
}
photos_at_least() { [ "$(blobs_done)" -ge "$1" ]; }
lap_sent_at_least() { [ "$(lap_sent)" -ge "$1" ]; }
part_at_least() { [ "$(part_bytes)" -ge "$1" ] || [ "$(blobs_done)" -ge "$2" ]; }
first_bytes() { [ "$(blob_bytes)" -gt "$1" ]; }

scen_photos() {
	link=$1
	DIST=$(sqlite3 "$L/zila.db" "SELECT district_id FROM people LIMIT 1")
	[ -n "$DIST" ] || { scen_clone "$link"; DIST=$(sqlite3 "$L/zila.db" "SELECT district_id FROM people LIMIT 1"); }
	lim=$((PHOTOS * SIZE / 2000 + 600))
	salt=0
	# a warm-up day: the first sync after the clone carries more (about 16 KB) and takes
	# about twice as long as the next; it is reported, not a round
	lap_down
	salt=$((salt + 1000003))
	day_work warm "$salt"
	T0=$(now)
	lap_up
	wait_for "$lim" rows_in warm 0 || fail "the warm-up day's rows did not reach HQ"
	report "$link" photos "warm-up day without photos: the day's rows at HQ after $WT s"
	r=0
	while [ $r -lt "$ROUNDS" ]; do
		r=$((r + 1))
		for kind in plain photos; do
			tag=r$r$kind
			n=0
			[ $kind = photos ] && n=$PHOTOS
			lap_down
			salt=$((salt + 1000003))
			day_work "$tag" "$salt"
			[ $n -gt 0 ] && photos_add "$n" "$tag"
			b0=$(blobs_done) bb0=$(blob_bytes) sent0=$(lap_sent)
			stats
			ab0=$AB abp0=$ABP c0=$(cuts)
			T0=$(now)
			lap_up
			wait_for "$lim" rows_in "$tag" "$n" || fail "round $r ($kind): the day's rows did not reach HQ"
			trows=$WT
			if [ $n -eq 0 ]; then
				stats
				report "$link" photos "$(printf 'round %s without photos: the day'\''s rows at HQ after %s s; zila %s B up, link %s B up; cuts %s' \
					"$r" "$trows" "$((ABP - abp0))" "$((AB - ab0))" "$(($(cuts) - c0))")"
				continue
			fi
			wait_for "$lim" first_bytes "$bb0"
			tfirst=$WT
			wait_for "$lim" photos_at_least $((b0 + n))
			tall=$WT
			T0=$(now)
			wait_for 60 lap_sent_at_least $((sent0 + n * SIZE))
			stats
			pb=$((n * SIZE))
			report "$link" photos "$(printf 'round %s with %s photos of %s B: the day'\''s rows at HQ after %s s, the first photo bytes after %s s, all %s photos after %s s (%s B/s of photos); zila %s B up, link %s B up: %s x the photos'\'' %s B; chunks sent %s B; cuts %s' \
				"$r" "$n" "$SIZE" "$trows" "$tfirst" "$(($(blobs_done) - b0))" "$tall" \
				"$(awk -v a="$pb" -v t="$tall" 'BEGIN {printf "%.0f", a / t}')" "$((ABP - abp0))" "$((AB - ab0))" \
				"$(awk -v a="$((AB - ab0))" -v b="$pb" 'BEGIN {printf "%.3f", a / b}')" "$pb" "$(($(lap_sent) - sent0))" "$(($(cuts) - c0))")"
		done
	done
	[ "$LIVE" -gt 0 ] || return 0
	# rows written while photos move, beside the same rows on an idle link (LIVE_REPS times)
	[ -n "$LPID" ] || lap_up
	rep=0
	while [ $rep -lt "${LIVE_REPS:-1}" ]; do
		rep=$((rep + 1))
		sleep 3
		T0=$(now)
		few_rows "idle$rep"
		wait_for 300 few_in "idle$rep"
		tidle=$WT
		b0=$(blobs_done)
		photos_add "$LIVE" "live$rep"
		T0=$(now)
		wait_for 600 part_at_least $((2 * 65536)) $((b0 + 1))
		sleep 3
		T0=$(now)
		few_rows "busy$rep"
		wait_for 300 few_in "busy$rep"
		tbusy=$WT
		T0=$(now)
		wait_for $((LIVE * SIZE / 2000 + 300)) photos_at_least $((b0 + LIVE))
		report "$link" photos "$(printf '20 rows written on the laptop: at HQ after %s s on an idle link, after %s s while %s photos move (those then all at HQ: %s)' \
			"$tidle" "$tbusy" "$LIVE" "$(($(blobs_done) - b0))")"
	done
	[ "$CUT" -gt 0 ] || return 0
	# CUT photos without a cut, then CUT more with one mid-photo
	sleep 3
	b0=$(blobs_done)
	stats
	abp0=$ABP
	photos_add "$CUT" ref
	T0=$(now)
	wait_for $((CUT * SIZE / 2000 + 600)) photos_at_least $((b0 + CUT))
	tref=$WT
	sleep 3
	stats
	zref=$((ABP - abp0))
	b0=$(blobs_done) sent0=$(lap_sent) abp0=$ABP
	photos_add "$CUT" cut
	T0=$(now)
	wait_for 600 part_at_least $((2 * 65536)) $((b0 + 1))
	sleep 3
	pre=$(part_bytes)
	ip netns exec "$NS-lap" ss -K dst "$HQA" >/dev/null 2>&1
	ip netns exec "$NS-hq" ss -K dst "$LA" >/dev/null 2>&1
	T0=$(now)
	wait_for $((CUT * SIZE / 2000 + 600)) photos_at_least $((b0 + CUT))
	tcut=$WT
	# the laptop logs what its blob phase sent when its session ends, after HQ has it all
	T0=$(now)
	wait_for 60 lap_sent_at_least $((sent0 + CUT * SIZE))
	stats
	sent=$(($(lap_sent) - sent0))
	pb=$((CUT * SIZE))
	report "$link" photos "$(printf '%s photos of %s B: at HQ after %s s, zila %s B up; %s more with a cut mid-photo (%s B of them verified at HQ then): at HQ %s s after the cut, zila %s B up (%s B more than without the cut: %.2f chunks of 65536, a new session'\''s handshake and rows included); photo chunks the laptop handed to its socket: %s B for %s B of photos, %s B twice (%.2f chunks)' \
		"$CUT" "$SIZE" "$tref" "$zref" "$CUT" "$pre" "$tcut" "$((ABP - abp0))" "$((ABP - abp0 - zref))" \
		"$(awk -v a="$((ABP - abp0 - zref))" 'BEGIN {print a / 65536}')" "$sent" "$pb" "$((sent - pb))" \
		"$(awk -v a="$((sent - pb))" 'BEGIN {print a / 65536}')")"
}

echo "link bench ($FORM): $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null), people $PEOPLE, links: $LINKS"
for link in $LINKS; do
	case $link in
	2g) link_up 64000 300 100 0.02 ;;
	32k) link_up 32000 400 200 0.03 ;;
	256k) link_up 256000 150 50 0.01 ;;
	*) fail "unknown link '$link' (2g, 32k, 256k)" ;;
	esac
	replicas "$PEOPLE"
	for s in $SCEN; do "scen_$s" "$link"; done
	link_down
done
c=$(grep -o "cuts [0-9]*" "$W/report" | awk '{s += $2} END {print s + 0}')
echo "link bench: cuts in all: $c"
[ "$c" = 0 ]
