#!/bin/sh
# The trust commands as HQ staff and a district office drive them: org init, USB enrolment,
# invites and join (typos caught locally), whoami, devices, revoke, and their exit codes.
. "$(dirname "$0")/lib.sh"
HQ=$T/hq; L=$T/laptop; M=$T/other
printf 'correct horse battery\n' >"$T/pw"
printf 'short\n' >"$T/short"

expect 0 "init hq" -- "$ZILA" -d "$HQ" init
expect 0 "init laptop" -- "$ZILA" -d "$L" init
expect 0 "init other" -- "$ZILA" -d "$M" init
expect 2 "org init needs a name" -- "$ZILA" -d "$HQ" org init --passphrase-file "$T/pw"
expect 1 "a short passphrase is refused" -- "$ZILA" -d "$HQ" org init --name Party --passphrase-file "$T/short"
expect 0 "org init" -- "$ZILA" -d "$HQ" org init --name Party --passphrase-file "$T/pw"
districts "$HQ" d-07 d-09 || bad "hq adds the test districts"
has "$T/out" "fingerprint" "org init prints the fingerprint"
[ "$(stat -c %a "$HQ/org.key")" = 600 ] && ok "root key file is 0600" || bad "org.key mode $(stat -c %a "$HQ/org.key")"
if grep -q "correct horse" "$HQ/org.key" "$HQ/zila.db" 2>/dev/null; then bad "passphrase stored"; else ok "passphrase not stored"; fi
expect 1 "org init twice refuses" -- "$ZILA" -d "$HQ" org init --name Again --passphrase-file "$T/pw"
expect 0 "whoami at hq" -- "$ZILA" -d "$HQ" whoami
has "$T/out" "hq of all districts" "hq has an HQ certificate"

expect 0 "whoami before enrolment" -- "$ZILA" -d "$L" whoami
has "$T/out" "not enrolled" "an unenrolled laptop says so"
expect 0 "enrol request" -- "$ZILA" -d "$L" enrol request "$T/req" --name laptop-7
expect 1 "request file is not overwritten" -- "$ZILA" -d "$L" enrol request "$T/req"
expect 1 "a laptop cannot sign" -- "$ZILA" -d "$L" enrol sign "$T/req" "$T/c0" --district d-07
printf 'garbage' >"$T/junk"
expect 1 "a damaged request is refused" -- "$ZILA" -d "$HQ" enrol sign "$T/junk" "$T/c1" --district d-07
expect 0 "enrol sign" -- "$ZILA" -d "$HQ" enrol sign "$T/req" "$T/cert" --district d-07 --role district
expect 1 "the certificate does not install on another device" -- "$ZILA" -d "$M" enrol install "$T/cert"
has "$T/err" "another device" "wrong device is named"
expect 0 "enrol install" -- "$ZILA" -d "$L" enrol install "$T/cert"
expect 0 "whoami after enrolment" -- "$ZILA" -d "$L" whoami
has "$T/out" "district of d-07" "laptop role and scope"
expect 0 "devices at hq" -- "$ZILA" -d "$HQ" devices
has "$T/out" "laptop-7" "devices lists the laptop"
expect 0 "devices as json" -- "$ZILA" -d "$HQ" --json devices
has "$T/out" '"scope":"d-07"' "json devices"

expect 0 "invite" -- "$ZILA" -d "$HQ" invite --district d-09 --role block --expires 2d
CODE=$(head -1 "$T/out")
expect 2 "invite needs a district" -- "$ZILA" -d "$HQ" invite
expect 2 "a bad expiry is misuse" -- "$ZILA" -d "$HQ" invite --district d-1 --expires soon
expect 1 "a laptop cannot invite" -- "$ZILA" -d "$L" invite --district d-1
# Change the third character to a different valid one (same length, one symbol wrong).
TYPO=$(echo "$CODE" | sed 's/^\(..\)./\1X/')
[ "$TYPO" != "$CODE" ] || TYPO=$(echo "$CODE" | sed 's/^\(..\)./\1Z/')
expect 1 "a mistyped code is caught locally" -- "$ZILA" -d "$M" join "$TYPO" --hq hq.example:7400
has "$T/err" "typo" "the typo is reported as a typo"
expect 2 "join needs --hq" -- "$ZILA" -d "$M" join "$CODE"
# Nothing listens on port 1: HQ is unreachable, the code is kept for the daemon.
expect 0 "join records the code (lower case, spaces)" -- "$ZILA" -d "$M" join $(echo "$CODE" | tr 'A-Z-' 'a-z ') --hq 127.0.0.1:1 --timeout 5
has "$T/out" "not reachable now" "join says HQ is unreachable and the daemon will join"
expect 0 "whoami while the join is pending" -- "$ZILA" -d "$M" whoami
has "$T/out" "joining through HQ at '127.0.0.1:1'" "the pending join is shown"
expect 1 "an enrolled laptop does not join again" -- "$ZILA" -d "$L" join "$CODE" --hq hq.example:7400

ID=$("$ZILA" -d "$L" whoami | awk '/^device:/ {print $2}')
BADID=$(echo "$ID" | sed 's/.$/0/')
[ "$BADID" != "$ID" ] || BADID=$(echo "$ID" | sed 's/.$/1/')
expect 1 "revoke refuses a mistyped id" -- "$ZILA" -d "$HQ" revoke "$BADID"
expect 1 "a laptop cannot revoke" -- "$ZILA" -d "$L" revoke "$ID"
expect 0 "revoke" -- "$ZILA" -d "$HQ" revoke "$ID"
expect 0 "devices shows the revocation" -- "$ZILA" -d "$HQ" devices
has "$T/out" "REVOKED" "revoked device is marked"
expect 2 "revoke needs a device" -- "$ZILA" -d "$HQ" revoke
finish
