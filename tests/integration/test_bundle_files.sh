#!/bin/sh
# USB bundles that carry attachments' files (#25): laptop A's bundle, made with
# --with-attachments, brings its rows and then its files to HQ and to the district's other
# laptop B byte-identical; district d2's laptop C imports the rows it is given and keeps no
# file of d1; a damaged file is refused plainly while the rows and the other files arrive;
# importing twice is harmless; a bundle that does not fit (the disk fills mid-write) leaves
# no bundle behind; a bundle without the option is the format of before (version 3); status
# names what is missing; the daemon collects a file no row refers to after the horizon.
. "$(dirname "$0")/lib.sh"
trap 'stop_daemons; done_with_tmp' EXIT
HQ=$T/hq A=$T/a B=$T/b C=$T/c
org_init "$HQ"
for d in "$A" "$B" "$C"; do
	"$ZILA" -d "$d" init >/dev/null
	rm -f "$T/.req" "$T/.cert"
	dist=d1
	[ "$d" = "$C" ] && dist=d2
	enrol "$HQ" "$d" $dist || bad "enrol $d"
done
# everyone holds the catalogue (HQ's bundle for another HQ would be everything: it is the catalogue)
"$ZILA" -d "$HQ" bundle create "$T/hq0.bndl" --all >/dev/null 2>&1 || bad "HQ's catalogue bundle"
for d in "$A" "$B" "$C"; do "$ZILA" -d "$d" bundle apply "$T/hq0.bndl" >/dev/null 2>&1 || bad "catalogue to $d"; done

head -c 307200 /dev/urandom >"$T/photo.jpg"
head -c 204800 /dev/urandom >"$T/form.pdf"
"$ZILA" -d "$A" sql "INSERT INTO people(id, district_id, name) VALUES ('p1', 'd1', 'Sita')" >/dev/null
REF1=$("$ZILA" -d "$A" attach "$T/photo.jpg" --to people:p1) || bad "attach the photo"
REF2=$("$ZILA" -d "$A" attach "$T/form.pdf" --district d1) || bad "attach the form"

# --- without the option: the bundle of before, and it says its size ------------------------
expect 0 "A writes a bundle without files" -- "$ZILA" -d "$A" bundle create "$T/rows.bndl"
has "$T/out" "KiB)" "the bundle says how large it is"
[ "$(od -An -tu1 -j8 -N1 "$T/rows.bndl" | tr -d ' ')" = 3 ] && ok "without the option it is format version 3, as before" ||
	bad "format version $(od -An -tu1 -j8 -N1 "$T/rows.bndl")"
[ "$(wc -c <"$T/rows.bndl")" -lt 100000 ] && ok "and carries no file" || bad "rows bundle is $(wc -c <"$T/rows.bndl") bytes"

# --- with files --------------------------------------------------------------------------
expect 0 "A writes a bundle with its files" -- "$ZILA" -d "$A" bundle create "$T/a.bndl" --with-attachments
has "$T/err" "now 2 files, 50[0-9] KiB" "before writing the files it says how large they will be"
has "$T/out" "and 2 files (50[0-9] KiB)" "its output gives the rows and the files separately"
sz=$(wc -c <"$T/a.bndl")
[ "$sz" -gt 512000 ] && ok "the bundle holds the files ($sz bytes)" || bad "bundle of $sz bytes"
[ "$(od -An -tu1 -j8 -N1 "$T/a.bndl" | tr -d ' ')" = 5 ] && ok "with files it is format version 5" || bad "version"
"$ZILA" -d "$A" --json bundle create "$T/a.json.bndl" --with-attachments >"$T/json" 2>/dev/null
python3 -c '
import json,sys
j = json.load(open(sys.argv[1]))
assert j["files"] == 2 and j["files_bytes"] > 512000 and j["rows_bytes"] > 0 and j["bytes"] == j["rows_bytes"] + j["files_bytes"], j
' "$T/json" && ok "--json gives rows_bytes, files, files_bytes and bytes" || bad "json: $(cat "$T/json")"

expect 0 "HQ applies A's bundle" -- "$ZILA" -d "$HQ" bundle apply "$T/a.bndl"
has "$T/out" "2 kept" "HQ keeps both files"
expect 0 "HQ copies the photo out without a sync" -- "$ZILA" -d "$HQ" attachment get "$REF1" "$T/hq.jpg" --wait 0
cmp -s "$T/photo.jpg" "$T/hq.jpg" && ok "HQ's copy is byte-identical" || bad "HQ's copy differs"
expect 0 "HQ applies the same bundle again" -- "$ZILA" -d "$HQ" bundle apply "$T/a.bndl"
has "$T/out" "0 kept.*2 here already" "the second time, both files are skipped as held"

# --- district d2's laptop: the rows it is given, no file of d1 ----------------------------
expect 0 "C (district d2) applies A's bundle" -- "$ZILA" -d "$C" bundle apply "$T/a.bndl"
has "$T/out" "2 not for this device" "C keeps no file of district d1"
[ -n "$(find "$C/blobs" -type f 2>/dev/null)" ] && bad "C holds blob files: $(find "$C/blobs" -type f)" ||
	ok "C's blob directory holds nothing"
"$ZILA" -d "$C" vector >"$T/c.vec"
expect 0 "A writes a bundle for C with --for" -- "$ZILA" -d "$A" bundle create "$T/ac.bndl" --for "$T/c.vec" --with-attachments
has "$T/out" "and 0 files" "a bundle for C carries no file of d1"

# --- a damaged file: refused, the rows and the other file arrive --------------------------
cp "$T/a.bndl" "$T/bad.bndl"
# a byte in the last file's chunks (the trailer is the last 69 bytes)
python3 -c '
import sys
p = sys.argv[1]; b = bytearray(open(p, "rb").read()); b[len(b) - 40000] ^= 0x55; open(p, "wb").write(b)
' "$T/bad.bndl"
expect 1 "B applies a bundle with a damaged file: exit 1" -- "$ZILA" -d "$B" bundle apply "$T/bad.bndl"
has "$T/err" "did not arrive (.*damaged" "it says plainly that a file was damaged"
has "$T/err" "the rows were applied" "and that the rows were applied"
has "$T/out" "1 kept" "the other file is kept"
[ "$("$ZILA" -d "$B" sql "SELECT name FROM people WHERE id = 'p1'" 2>/dev/null | tail -1)" = Sita ] &&
	ok "B holds A's row" || bad "B lacks the row"
n=$("$ZILA" -d "$B" --json attachment ls | python3 -c 'import json,sys; print(sum(1 for a in json.load(sys.stdin)["attachments"] if a["state"] == "here"))')
[ "$n" = 1 ] && ok "B holds one file whole, not the damaged one" || bad "B holds $n files whole"
expect 0 "B lists what is missing" -- "$ZILA" -d "$B" attachment ls --missing --limit 10
[ "$(grep -c ' missing \| partial' "$T/out")" = 1 ] && ok "ls --missing lists the one file not here" || bad "ls --missing: $(cat "$T/out")"
P=$((20000 + ($$ * 17 + 3300) % 20000))
daemon_up "$B" "$T/b.log" "$P"
expect 0 "B's status" -- "$ZILA" -d "$B" status
has "$T/out" "1 not here yet" "status counts the file not here"
has "$T/out" "not here: .*(d1, " "and names it"
stop_daemons
pids=""
expect 0 "B applies the good bundle" -- "$ZILA" -d "$B" bundle apply "$T/a.bndl"
has "$T/out" "1 kept.*1 here already" "the missing file comes, the held one is skipped"
expect 0 "B copies the photo out" -- "$ZILA" -d "$B" attachment get "$REF1" "$T/b.jpg" --wait 0
expect 0 "B copies the form out" -- "$ZILA" -d "$B" attachment get "$REF2" "$T/b.pdf" --wait 0
cmp -s "$T/photo.jpg" "$T/b.jpg" && cmp -s "$T/form.pdf" "$T/b.pdf" && ok "B's copies are byte-identical" ||
	bad "B's copies differ"

# --- cut short: the files it lacks are said ------------------------------------------------
head -c $((sz - 100)) "$T/a.bndl" >"$T/cut.bndl"
expect 1 "a bundle cut in its files: exit 1" -- "$ZILA" -d "$HQ" bundle apply "$T/cut.bndl"
has "$T/err" "the rows were applied" "a cut in the files still applies the rows and says so"

# --- --attachments-below -------------------------------------------------------------------
expect 0 "A writes a bundle with files below 250K" -- "$ZILA" -d "$A" bundle create "$T/small.bndl" --attachments-below 250K
has "$T/out" "and 1 file " "only the form travels"
has "$T/out" "left out: 1 files of 256000 bytes or more" "the photo is named as left out"
expect 2 "a size that is not one is misuse" -- "$ZILA" -d "$A" bundle create "$T/x.bndl" --attachments-below lots

# --- the disk fills mid-write: no bundle, no temp file ----------------------------------
rm -f "$T/full.bndl"
(
	trap '' XFSZ
	ulimit -f 300 # 150 or 300 KiB (the shell's unit): the rows fit, the files do not
	exec "$ZILA" -d "$A" bundle create "$T/full.bndl" --with-attachments
) >"$T/out" 2>"$T/err"
rc=$?
[ "$rc" = 1 ] && ok "a bundle that does not fit fails (exit 1)" || bad "exit $rc: $(cat "$T/err")"
has "$T/err" "cannot write\|too large\|full" "it says why"
ls "$T" | grep -q '^full\.bndl' && bad "left behind: $(ls "$T" | grep full)" || ok "nothing that looks like a bundle is left"
# --- a stick too small: said before the files are written, and nothing is left -----------
mkdir -p "$T/stick"
if unshare -m sh -c "mount -t tmpfs -o size=400k tmpfs '$T/stick' && '$ZILA' -d '$A' bundle create '$T/stick/a.bndl' --with-attachments; echo \$? >'$T/stick.rc'; ls -A '$T/stick' >'$T/stick.ls'" >"$T/out" 2>"$T/err"; then
	[ "$(cat "$T/stick.rc")" = 1 ] && ok "a bundle for a 400 KiB stick is refused (exit 1)" || bad "exit $(cat "$T/stick.rc")"
	has "$T/err" "would not fit: its files need 50[0-9] KiB more" "it says the files would not fit, with their size"
	has "$T/err" "no bundle was written" "and that no bundle was written"
	[ -s "$T/stick.ls" ] && bad "the stick holds: $(cat "$T/stick.ls")" || ok "the stick holds nothing"
else
	echo "# no mount namespace here (needs root): the small stick is not tried"
fi

# --- the daemon collects, a directory at a time: a file no row refers to goes once the
# horizon (history_days, here 1: HQ keeps all history unless told) passes the time it was
# first seen so; the daemon's second start is two days on (ZILA_CLOCK_SKEW) ---------------
sqlite3 "$HQ/zila.db" "INSERT OR REPLACE INTO zila_meta(k, v) VALUES ('history_days', 1)"
"$ZILA" -d "$HQ" sql "DELETE FROM attachments WHERE id = '$REF2'" >/dev/null 2>&1 || bad "delete the form's row"
HQHASH=$("$ZILA" -d "$B" --json attachment ls | python3 -c 'import json,sys; print([a["hash"] for a in json.load(sys.stdin)["attachments"] if a["name"] == "form.pdf"][0])')
P2=$((P + 1))
daemon_up "$HQ" "$T/hq.log" "$P2"
# the first pass (256 ticks of 20 ms) notes it as unreferenced from now
noted() { [ "$(sqlite3 "$HQ/zila.db" "SELECT count(*) FROM zila_blob_gone WHERE hash = '$HQHASH'" 2>/dev/null)" = 1 ]; }
until_ok 150 noted && ok "the daemon's first pass notes the form's blob" || bad "the first pass noted nothing"
stop_daemons
pids=""
export ZILA_CLOCK_SKEW=172800
daemon_up "$HQ" "$T/hq.log" "$P2"
unset ZILA_CLOCK_SKEW
i=0
while [ $i -lt 150 ] && ! grep -q "removed 1 attachments" "$T/hq.log"; do sleep 0.2; i=$((i + 1)); done
has "$T/hq.log" "removed 1 attachments (204800 bytes)" "HQ's daemon removes the file no row refers to since the horizon"
[ -e "$HQ/blobs/$(echo "$HQHASH" | cut -c1-2)/$(echo "$HQHASH" | cut -c3-)" ] && bad "the form's blob is still at HQ" ||
	ok "its blob is gone from HQ's disk"
expect 0 "HQ still copies the photo out" -- "$ZILA" -d "$HQ" attachment get "$REF1" "$T/hq2.jpg" --wait 0
stop_daemons
pids=""
finish
