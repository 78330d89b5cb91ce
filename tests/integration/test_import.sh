#!/bin/sh
# Spreadsheets in and out, and the HQ report, as office staff drive them: zila import
# (Excel CSV with BOM and Hindi, dry run, all or nothing, --skip-bad, --map), zila export
# (CSV with BOM, JSON, --district), the export -> import round trip, and zila report.
. "$(dirname "$0")/lib.sh"
: "${ZILA_GEN:=$(pwd)/build/tools/zila_gen}"
A=$T/a; B=$T/b

expect 0 "init" -- "$ZILA" -d "$A" init
expect 0 "init a second replica" -- "$ZILA" -d "$B" init
"$ZILA_GEN" --districts 3 --people-per-district 200 --seed 5 --db "$A/zila.db" && ok "sample data" || bad "sample data"
# --db goes through a staging file and copies a table at a time, dropping the table's own
# indexes for the copy (#20 part 4): the same rows in the same order as --sql, the same
# indexes as a new replica, and no staging file left.
[ ! -e "$A/zila.db-zila-gen" ] && ok "no staging file left" || bad "the staging file was left"
"$ZILA_GEN" --districts 3 --people-per-district 200 --seed 5 --sql --with-schema | sqlite3 "$T/plain.db" && ok "the same data as SQL" || bad "zila_gen --sql"
for t in states districts posts org_units people office_bearers booth_agents booth_committees committee_members \
	 drives drive_targets signups events attendance tasks reports; do
	sqlite3 "$A/zila.db" "SELECT rowid, * FROM $t ORDER BY rowid" > "$T/gen-db"
	sqlite3 "$T/plain.db" "SELECT rowid, * FROM $t ORDER BY rowid" > "$T/gen-sql"
	[ -s "$T/gen-db" ] && cmp -s "$T/gen-db" "$T/gen-sql" || bad "zila_gen --db and --sql differ in $t"
done
ok "--db and --sql give the same rows at the same rowids"
IDX="SELECT tbl_name, name, sql FROM sqlite_master WHERE type = 'index' ORDER BY tbl_name, rowid"
[ "$(sqlite3 "$A/zila.db" "$IDX")" = "$(sqlite3 "$B/zila.db" "$IDX")" ] && ok "--db leaves every index as a new replica has it" || bad "indexes differ after zila_gen --db"
D1=$(sqlite3 "$A/zila.db" "SELECT id FROM districts WHERE name = 'Patna'")

# An Excel file: BOM, CRLF, Hindi, a quoted address over two lines, phone and date formats.
printf '\357\273\277Name,Name Local,Mobile,District,Address,Joined On,S.No.\r\nMeenakshi Import,मीनाक्षी इम्पोर्ट,+91 91234 00001,पटना,"Ward 4,\nDanapur",05/01/2024,1\r\nRakesh Yadav,राकेश यादव,091234-00002,patna,,2024-01-06,2\r\n' > "$T/new.csv"
expect 2 "import without --table is misuse" -- "$ZILA" -d "$A" import "$T/new.csv"
expect 1 "an unknown header is refused" -- "$ZILA" -d "$A" import "$T/new.csv" --table people
has "$T/err" "matches header 'S.No.'" "the error names the header (Mobile, an office word, is placed: phone)"
expect 0 "dry run" -- "$ZILA" -d "$A" import "$T/new.csv" --table people --map Mobile=phone --map S.No.= --dry-run
has "$T/out" "2 to create" "dry run counts"
has "$T/out" "^row 2: new: Meenakshi Import" "the dry run shows the rows it would create (#16)"
has "$T/out" "^    joined_on: '2024-01-06'" "with their values"
[ "$(sqlite3 "$A/zila.db" "SELECT count(*) FROM people WHERE name = 'Meenakshi Import'")" = 0 ] && ok "dry run wrote nothing" || bad "dry run wrote"
expect 0 "import" -- "$ZILA" -d "$A" import "$T/new.csv" --table people --map Mobile=phone --map S.No.=
has "$T/out" "2 created" "two created"
[ "$(sqlite3 "$A/zila.db" "SELECT name_local || '|' || phone || '|' || joined_on || '|' || (district_id = '$D1') FROM people WHERE name = 'Meenakshi Import'")" = "मीनाक्षी इम्पोर्ट|9123400001|2024-01-05|1" ] && ok "Hindi, phone, date, district stored" || bad "stored values"
expect 0 "import again" -- "$ZILA" -d "$A" import "$T/new.csv" --table people --map Mobile=phone --map S.No.=
has "$T/out" "0 created, 0 updated, 2 unchanged" "re-import changes nothing"
sed 's/Danapur/Phulwari/' "$T/new.csv" > "$T/moved.csv"
expect 0 "dry run of a change" -- "$ZILA" -d "$A" import "$T/moved.csv" --table people --map Mobile=phone --map S.No.= --dry-run
has "$T/out" "^row 2: change Meenakshi Import (id " "the dry run names the row it would change"
has "$T/out" "^    address: 'Ward 4, Danapur' -> 'Ward 4, Phulwari'" "old -> new"
expect 0 "dry run, --json" -- "$ZILA" -d "$A" --json import "$T/moved.csv" --table people --map Mobile=phone --map S.No.= --dry-run
has "$T/out" '"changes":\[{"row":2,"op":"update","id":"[0-9a-f]*","name":"Meenakshi Import","columns":{"address":{"old":"Ward 4,\\nDanapur","new":"Ward 4,\\nPhulwari"}}}\]' "--json gives the changes"

# A bad row: all or nothing, then --skip-bad with a rejects file that imports once fixed.
printf 'name,phone,district_id\nGood One,9123400003,Patna\nBad Phone,12345,Patna\nNo District,9123400004,Nowhere\n' > "$T/bad.csv"
expect 1 "a bad row fails the import" -- "$ZILA" -d "$A" import "$T/bad.csv" --table people
has "$T/err" "bad.csv: row 3: malformed phone '12345'" "row and reason of the bad phone"
has "$T/err" "bad.csv: row 4: unknown district 'Nowhere'" "row and reason of the unknown district"
has "$T/err" "nothing was imported" "all or nothing"
[ "$(sqlite3 "$A/zila.db" "SELECT count(*) FROM people WHERE name = 'Good One'")" = 0 ] && ok "nothing imported" || bad "a row was imported"
expect 0 "--skip-bad" -- "$ZILA" -d "$A" import "$T/bad.csv" --table people --skip-bad "$T/rejects.csv"
has "$T/out" "1 created" "the good row is imported"
has "$T/rejects.csv" "zila_reject" "the rejects file has a reason column"
has "$T/rejects.csv" "row 3: malformed phone" "the rejects file says why"
sed -i 's/,12345,/,9123400005,/; s/,Nowhere,/,Gaya,/' "$T/rejects.csv"
expect 0 "the fixed rejects file imports" -- "$ZILA" -d "$A" import "$T/rejects.csv" --table people
has "$T/out" "2 created" "both fixed rows created"

# Export: CSV with BOM, JSON, one district; the round trip changes nothing, also for cells a
# spreadsheet would run as formulas (#15 item 11: written with a ' before them).
sqlite3 "$A/zila.db" "UPDATE people SET address = '=HYPERLINK(\"http://x.example\",\"open\")', name_local = '@SUM(A1)' WHERE name = 'Rakesh Yadav'"
expect 0 "export csv" -- "$ZILA" -d "$A" export --table people -o "$T/people.csv"
has "$T/people.csv" "'@SUM(A1),.*\"'=HYPERLINK(\"\"http" "formula-like cells have a ' before them"
grep -q ',[=@+]' "$T/people.csv" && bad "a cell starts a formula: $(grep ',[=@+]' "$T/people.csv" | head -1)" || ok "no cell starts a formula"
[ "$(head -c 3 "$T/people.csv" | od -An -tx1 | tr -d ' ')" = "efbbbf" ] && ok "export starts with a BOM" || bad "no BOM"
has "$T/people.csv" "मीनाक्षी इम्पोर्ट" "export keeps Hindi"
h0=$("$ZILA" -d "$A" hash)
expect 0 "re-import the export" -- "$ZILA" -d "$A" import "$T/people.csv" --table people
has "$T/out" "0 created, 0 updated, 605 unchanged" "round trip changes nothing"
[ "$("$ZILA" -d "$A" hash)" = "$h0" ] && ok "hash unchanged after the round trip" || bad "hash changed"
[ "$(sqlite3 "$A/zila.db" "SELECT name_local || address FROM people WHERE name = 'Rakesh Yadav'")" = '@SUM(A1)=HYPERLINK("http://x.example","open")' ] && ok "formula-like cells read back as written" || bad "formula-like cells changed"
expect 0 "export json" -- "$ZILA" -d "$A" export --table districts --format json
has "$T/out" '"name_local":"पटना"' "json export"
expect 0 "export one district" -- "$ZILA" -d "$A" export --table people --district Gaya
[ "$(grep -c . "$T/out")" = 202 ] && ok "one district's rows" || bad "district filter: $(grep -c . "$T/out") lines"
expect 1 "an org-wide table has no district" -- "$ZILA" -d "$A" export --table posts --district Gaya
expect 1 "an unknown table" -- "$ZILA" -d "$A" export --table nope

# Every table exported from A and imported into the empty B recreates the same rows.
for t in states districts posts org_units people office_bearers booth_agents booth_committees \
	committee_members drives drive_targets signups events attendance tasks reports; do
	"$ZILA" -d "$A" export --table "$t" -o "$T/$t.csv" 2>/dev/null &&
	"$ZILA" -d "$B" import "$T/$t.csv" --table "$t" -q >/dev/null 2>"$T/err" || bad "copy table $t: $(cat "$T/err")"
done
[ "$("$ZILA" -d "$A" hash)" = "$("$ZILA" -d "$B" hash)" ] && ok "every table copied by CSV: hashes equal" || bad "hashes differ after copying by CSV"

# A district laptop: a file with no district column goes to the laptop's own district, and
# gender F/M/महिला become the schema's words (#16).
H=$T/hq; L=$T/laptop
org_init "$H" || bad "org init"
expect 0 "init a laptop" -- "$ZILA" -d "$L" init
sqlite3 "$L/zila.db" "INSERT INTO states (id, name) VALUES ('s1', 'Bihar'); INSERT INTO districts (id, state_id, name) VALUES ('$D1', 's1', 'Patna')"
enrol "$H" "$L" "$D1" && ok "laptop enrolled for Patna" || bad "enrol"
printf 'Name,Phone,Gender\r\nAsha Kumari,9123400071,F\r\nKamla Devi,9123400072,महिला\r\n' > "$T/nodistrict.csv"
expect 0 "import with no district column on a district laptop" -- "$ZILA" -d "$L" import "$T/nodistrict.csv" --table people
has "$T/out" "2 created" "both rows created"
[ "$(sqlite3 "$L/zila.db" "SELECT group_concat(gender || '@' || (district_id = '$D1'), ' ') FROM (SELECT * FROM people ORDER BY phone)")" = "female@1 female@1" ] && ok "the laptop's district and the schema's gender" || bad "district or gender: $(sqlite3 "$L/zila.db" "SELECT gender, district_id FROM people")"
expect 0 "--help says how to ignore a column" -- "$ZILA" import --help
has "$T/out" "--map HEADER= (nothing after =) ignores" "--help: ignoring a column"

# The HQ report.
expect 0 "report" -- "$ZILA" -d "$A" report --today 2026-11-15
has "$T/out" "^total" "report has a totals row"
has "$T/out" "Patna" "report lists Patna"
expect 0 "report csv" -- "$ZILA" -d "$A" report --today 2026-11-15 --format csv --district patna
[ "$(grep -c . "$T/out")" = 3 ] && ok "csv: header, one district, total" || bad "csv rows"
# A booth given by its number (as office sheets do): looked up by code within the row's district;
# the same number in another district is not it; a number two units share (a block and a booth) is refused.
C=$T/codes
"$ZILA" -d "$C" init >/dev/null
sqlite3 "$C/zila.db" "INSERT INTO states(id, name) VALUES ('s1', 'Bihar');
  INSERT INTO districts(id, state_id, name) VALUES ('d1', 's1', 'Patna'), ('d2', 's1', 'Gaya');
  INSERT INTO org_units(id, level, district_id, name, code) VALUES ('b110', 'booth', 'd1', 'Kishunpur', '110'),
    ('g110', 'booth', 'd2', 'Belaganj', '110'), ('b300', 'booth', 'd1', 'One', '300'), ('k300', 'block', 'd1', 'Two', '300')"
printf 'name,district_id,org_unit_id\nBooth Member,d1,110\nGaya Booth,d2,110\nBy Id,d1,b110\n' > "$T/booth.csv"
expect 0 "a booth by its number is imported" -- "$ZILA" -d "$C" import "$T/booth.csv" --table people
[ "$(sqlite3 "$C/zila.db" "SELECT group_concat(name || '=' || org_unit_id, ',') FROM (SELECT * FROM people ORDER BY name)")" = "Booth Member=b110,By Id=b110,Gaya Booth=g110" ] &&
	ok "booth '110' is the district's own booth 110 (d1: b110, d2: g110); an id stays an id" ||
	bad "booth numbers: $(sqlite3 "$C/zila.db" "SELECT name, org_unit_id FROM people")"
printf 'name,district_id,org_unit_id\nTwo Booths,d1,300\nNo Booth,d1,999\n' > "$T/booth2.csv"
expect 1 "a number two booths share, or none has, is refused" -- "$ZILA" -d "$C" import "$T/booth2.csv" --table people
has "$T/err" "org_unit_id '300' is the code of several rows of org_units: use its id" "... the shared number named"
has "$T/err" "org_unit_id '999' is not in table org_units (neither an id nor a code)" "... the unknown number named"

expect 0 "report json" -- "$ZILA" -d "$A" --json report --today 2026-11-15 --period 2026-10
has "$T/out" '"period":"2026-10"' "json period"
expect 2 "a bad format is misuse" -- "$ZILA" -d "$A" report --format xml
expect 1 "an unknown district" -- "$ZILA" -d "$A" report --district Nowhere
finish
