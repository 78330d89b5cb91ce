#!/bin/sh
# zila attach --shrink (#25, proto/ATTACH.md "Shrinking"): a phone photo is stored at most
# 1600 px on its long side and smaller, its row naming the original's hash and size; a small
# JPEG and a file that is not a JPEG are attached as they are and zila says so; the office's
# setting makes shrinking the default and --no-shrink overrides it; a JPEG cut short is refused
# and nothing is attached (no row, no blob). JPEGs from build/tools/zila_mkjpeg (libjpeg).
. "$(dirname "$0")/lib.sh"
MK=${ZILA_MKJPEG:-$(dirname "$ZILA")/../tools/zila_mkjpeg}
[ -x "$MK" ] || MK=$(dirname "$0")/../../build/tools/zila_mkjpeg
trap 'done_with_tmp' EXIT
[ -x "$MK" ] || { echo "no zila_mkjpeg (make build/tools/zila_mkjpeg)"; exit 1; }
D=$T/r
"$ZILA" -d "$D" init >/dev/null || { echo "init failed"; exit 1; }
"$ZILA" -d "$D" sql "INSERT INTO states(id, name) VALUES ('s1', 'Bihar');
  INSERT INTO districts(id, state_id, name) VALUES ('d1', 's1', 'Gaya')" >/dev/null || { echo "seed failed"; exit 1; }
"$MK" 4000 3000 95 exif >"$T/phone.jpg"
"$MK" 1200 900 90 >"$T/small.jpg"
printf 'not a photo\n' >"$T/notes.txt"
head -c 300000 "$T/phone.jpg" >"$T/cut.jpg"
size() { wc -c <"$1" | tr -d ' '; }
blobs() { find "$D/blobs" -type f 2>/dev/null | wc -l | tr -d ' '; }
rows() { "$ZILA" -d "$D" sql "SELECT count(*) FROM attachments"; }

expect 0 "a phone photo is attached with --shrink" -- "$ZILA" -d "$D" --json attach "$T/phone.jpg" --district d1 --shrink
has "$T/err" "shrunk from 4000x3000 pixels" "it says it shrank the photo and from what"
id=$(sed -n 's/.*"id":"\([0-9a-f]*\)".*/\1/p' "$T/out")
has "$T/out" "\"original_size\":$(size "$T/phone.jpg")" "the row records the original's size"
stored=$("$ZILA" -d "$D" sql "SELECT size FROM attachments WHERE id = '$id'")
orig=$("$ZILA" -d "$D" sql "SELECT length(original_hash) || ' ' || original_size FROM attachments WHERE id = '$id'")
[ "$orig" = "64 $(size "$T/phone.jpg")" ] && ok "original_hash and original_size are in the row" || bad "the row's original: '$orig'"
[ "$stored" -lt $(($(size "$T/phone.jpg") / 4)) ] && ok "the stored photo is far smaller ($stored of $(size "$T/phone.jpg") bytes)" ||
	bad "stored $stored bytes of $(size "$T/phone.jpg")"
expect 0 "the shrunk photo is copied out" -- "$ZILA" -d "$D" attachment get "$id" "$T/back.jpg"
[ "$(size "$T/back.jpg")" = "$stored" ] && [ "$(head -c 3 "$T/back.jpg" | od -An -tx1 | tr -d ' ')" = "ffd8ff" ] &&
	ok "the copy out is the stored JPEG" || bad "the copy out: $(size "$T/back.jpg") bytes"

expect 0 "a small JPEG with --shrink" -- "$ZILA" -d "$D" --json attach "$T/small.jpg" --district d1 --shrink
has "$T/err" "not shrunk: already 1200x900 pixels" "a small JPEG is kept as it is, and zila says so"
has "$T/out" "\"size\":$(size "$T/small.jpg")," "its bytes are the file's"
expect 0 "a text file with --shrink" -- "$ZILA" -d "$D" attach "$T/notes.txt" --district d1 --shrink
has "$T/err" "not shrunk: not a JPEG" "a file that is not a JPEG is kept as it is, and zila says so"

n0=$(rows)
b0=$(blobs)
expect 1 "a JPEG cut short is refused" -- "$ZILA" -d "$D" attach "$T/cut.jpg" --district d1 --shrink
has "$T/err" "damaged JPEG" "the refusal says the JPEG is damaged"
[ "$(rows)" = "$n0" ] && [ "$(blobs)" = "$b0" ] && ok "nothing was attached (no row, no blob)" || bad "rows $(rows) (was $n0), blobs $(blobs) (was $b0)"
expect 0 "without --shrink the cut file is attached as it is" -- "$ZILA" -d "$D" attach "$T/cut.jpg" --district d1

expect 2 "the setting takes on or off only" -- "$ZILA" -d "$D" attachment set shrink maybe
expect 0 "the office shrinks by default" -- "$ZILA" -d "$D" attachment set shrink on
"$MK" 3000 2000 92 >"$T/phone2.jpg"
expect 0 "a photo attached with no option" -- "$ZILA" -d "$D" attach "$T/phone2.jpg" --district d1
has "$T/err" "shrunk from 3000x2000" "the setting shrinks it"
"$MK" 3000 2000 93 >"$T/phone3.jpg"
expect 0 "a photo attached with --no-shrink" -- "$ZILA" -d "$D" --json attach "$T/phone3.jpg" --district d1 --no-shrink
has "$T/out" "\"size\":$(size "$T/phone3.jpg")," "--no-shrink keeps it as it is"
[ "$("$ZILA" -d "$D" sql "PRAGMA integrity_check")" = ok ] && ok "integrity_check ok" || bad "integrity_check"
echo "$npass passed, $nfail failed"
[ "$nfail" -eq 0 ]
