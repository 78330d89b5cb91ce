#!/bin/sh
# #16 "Names, not hex ids": HQ sets up its catalogue by name; invites and enrolments take a
# district by name, code or id and refuse an unknown one; people read names and local times.
. "$(dirname "$0")/lib.sh"
HQ="$T/hq" L="$T/lap"
org_init "$HQ" || { bad "org init"; finish; exit 1; }

expect 0 "a new HQ's catalogue is empty" -- "$ZILA" -d "$HQ" catalogue
has "$T/out" "the catalogue is empty" "it says how to fill it"
expect 1 "an invite for a district HQ does not know is refused" -- "$ZILA" -d "$HQ" invite --district Patna
has "$T/err" "no district 'Patna'" "the refusal names the district"
has "$T/err" "zila catalogue add district" "and says how to add it"

expect 0 "a state by name" -- "$ZILA" -d "$HQ" catalogue add state Bihar --code BR --local बिहार
expect 0 "a district by name, under its state's name" -- "$ZILA" -d "$HQ" catalogue add district Patna --state bihar --code PAT --local पटना
expect 0 "a district under its state's code" -- "$ZILA" -d "$HQ" catalogue add district Gaya --state BR
expect 1 "the same district twice is refused" -- "$ZILA" -d "$HQ" catalogue add district patna --state Bihar
has "$T/err" "already in the catalogue" "and says so"
expect 1 "a district of an unknown state is refused" -- "$ZILA" -d "$HQ" catalogue add district Ranchi --state Jharkhand
has "$T/err" "no state 'Jharkhand'" "naming the state"
expect 0 "a post with its level" -- "$ZILA" -d "$HQ" catalogue add post "District President" --level district --rank 1
expect 1 "a post of no known level is refused" -- "$ZILA" -d "$HQ" catalogue add post Chief --level galaxy
has "$T/err" "level 'galaxy' is not one of" "naming the level"
expect 2 "a district without its state is misuse" -- "$ZILA" -d "$HQ" catalogue add district Arrah
expect 0 "the catalogue lists them" -- "$ZILA" -d "$HQ" catalogue list
has "$T/out" "district  *Patna  *पटना  *PAT  *Bihar" "a district with its local name, code and state"
has "$T/out" "post  *District President" "and the post"
patna=$("$ZILA" -d "$HQ" sql "SELECT id FROM districts WHERE name = 'Patna'")

expect 0 "an invite by the district's name" -- "$ZILA" -d "$HQ" invite --district patna
has "$T/out" "district 'Patna'" "the invite names the district"
expect 0 "an invite by its local name, as JSON" -- "$ZILA" -d "$HQ" --json invite --district पटना
has "$T/out" "\"district\":\"$patna\"" "the JSON gives the district's id"
expect 0 "an invite by its id" -- "$ZILA" -d "$HQ" invite --district "$patna"
expect 0 "a second state" -- "$ZILA" -d "$HQ" catalogue add state Jharkhand --code JH
expect 0 "with a Gaya of its own" -- "$ZILA" -d "$HQ" catalogue add district Gaya --state JH --code GAJ
expect 1 "a name two districts share is refused" -- "$ZILA" -d "$HQ" invite --district Gaya
has "$T/err" "more than one district" "saying it is ambiguous"
has "$T/err" "Gaya, Jharkhand" "and listing each with its state"
expect 0 "the code picks one" -- "$ZILA" -d "$HQ" invite --district GAJ

"$ZILA" -d "$L" init >/dev/null
"$ZILA" -d "$L" enrol request "$T/req" --name lap-patna >/dev/null
expect 1 "enrol sign of an unknown district is refused" -- "$ZILA" -d "$HQ" enrol sign "$T/req" "$T/c0" --district Patan
expect 0 "enrol sign by the district's code" -- "$ZILA" -d "$HQ" enrol sign "$T/req" "$T/cert" --district PAT
has "$T/out" "district 'Patna'" "enrolment names the district"
expect 0 "install" -- "$ZILA" -d "$L" enrol install "$T/cert"
expect 1 "a laptop cannot add to the catalogue" -- "$ZILA" -d "$L" catalogue add state Goa
has "$T/err" "only HQ keeps the catalogue" "and is told who may"
expect 0 "devices at HQ" -- "$ZILA" -d "$HQ" devices
has "$T/out" "lap-patna  *district  *Patna " "devices shows the district by name"

# The log: device names and ids as 'zila devices' prints them, local time with its zone.
"$ZILA" -d "$HQ" sql "INSERT INTO people(id, district_id, name) VALUES ('p1', '$patna', 'Asha')" >/dev/null
dev=$("$ZILA" -d "$HQ" --json whoami | sed 's/.*"device":"\([^"]*\)".*/\1/')
expect 0 "log" -- env TZ=Asia/Kolkata "$ZILA" -d "$HQ" log --table people
has "$T/out" "IST  hq ($dev)" "the log gives local time with its zone, and the device's name and id"
has "$T/out" " Patna #1  insert people" "and the district's name"
expect 0 "log as JSON" -- "$ZILA" -d "$HQ" --json log --table people
has "$T/out" "\"device\":\"$dev\"" "JSON keeps the device id"
has "$T/out" "\"partition\":\"$patna\"" "and the district id"
finish
