#!/bin/sh
# The web interface on the LAN (#18): a password and accounts (zila web), TLS, login by
# password. Refusals: a LAN address without a password, plain HTTP on the LAN at HQ, a
# district laptop giving an account another district. From a non-loopback address (10.77.0.1
# on the namespace's loopback device: this part runs in a network namespace of its own, made
# here with unshare when run alone as root): nothing without a login, a wrong password
# refused and the next try made to wait (Retry-After), a good one giving a Secure, HttpOnly,
# SameSite=Strict cookie; Host names; HQ's accounts: a district's account reads and writes its
# district only, a viewer writes nothing, an admin invites; a removed account's session ends;
# TLS with curl --cacert and --pinnedpubkey; plain HTTP on the TLS port refused; the
# password is in no log, no URL and no file but as its Argon2id hash.
# A namespace of its own every time (also inside make check's per-part one), so the address
# added below is nobody else's.
if [ "$(id -u)" = 0 ] && [ -z "${ZILA_LAN_NS:-}" ] && command -v unshare >/dev/null &&
	unshare -n true 2>/dev/null; then
	ZILA_LAN_NS=1 exec unshare -n sh "$0" "$@"
fi
. "$(dirname "$0")/lib.sh"
P=$((20000 + ($$ * 17) % 20000))
HQP=$P WP=$((P + 1)) LWP=$((P + 2))
HQ=$T/hq L=$T/lap
cleanup() {
	stop_daemons
	done_with_tmp
}
trap cleanup EXIT
if [ -z "${ZILA_LAN_NS:-}" ]; then
	echo "skipped: the LAN checks need root and unshare(1) for a network namespace of their own"
	exit 0
fi
ip link set lo up
ip addr add 10.77.0.1/32 dev lo || { echo "not ok - cannot add 10.77.0.1 in the namespace"; exit 1; }
LAN=10.77.0.1

org_init "$HQ"
districts "$HQ" d1 d2 || { bad "districts"; finish; exit 1; }
"$ZILA" -d "$HQ" sql "INSERT INTO people(id, district_id, name, phone) VALUES ('p1', 'd1', 'Patna Member', '9000000001'),
  ('g1', 'd2', 'Gaya Member', '9000000002')" >/dev/null
"$ZILA" -d "$L" init >/dev/null
enrol "$HQ" "$L" d1 || { bad "laptop not enrolled"; finish; exit 1; }
PW='correct horse battery'
printf '%s\n' "$PW" >"$T/pw"
printf 'short\n' >"$T/short"
printf 'patna-password-1\n' >"$T/pw.patna"
printf 'viewer-password-1\n' >"$T/pw.vera"
printf 'admin-password-1\n' >"$T/pw.ann"
A=$LAN

# --- refusals before anything listens
expect 1 "a LAN address without a password is refused" -- "$ZILA" -d "$HQ" daemon --listen "127.0.0.1:$HQP" --beacon-port 0 --web "0.0.0.0:$WP"
has "$T/err" "only with a password" "... saying a password is needed first"
expect 1 "a password shorter than 8 characters is refused" -- "$ZILA" -d "$HQ" web password --password-file "$T/short"
expect 1 "zila web password with no terminal and no file says so" -- sh -c "'$ZILA' -d '$HQ' web password </dev/null"
has "$T/err" "no terminal" "... naming --password-file"
expect 0 "zila web password sets it" -- "$ZILA" -d "$HQ" web password --password-file "$T/pw"
[ "$(stat -c %a "$HQ/web-auth.json")" = 600 ] && ok "web-auth.json is 0600" || bad "web-auth.json is $(stat -c %a "$HQ/web-auth.json")"
grep -q "argon2id" "$HQ/web-auth.json" && ! grep -q "$PW" "$HQ/web-auth.json" && ok "only an Argon2id hash is kept" ||
	bad "web-auth.json: $(cat "$HQ/web-auth.json")"
expect 1 "HQ refuses the LAN without TLS" -- "$ZILA" -d "$HQ" daemon --listen "127.0.0.1:$HQP" --beacon-port 0 --web "0.0.0.0:$WP" --web-plain-lan
has "$T/err" "over TLS only" "... saying HQ serves the LAN over TLS only"
expect 2 "--web-cert needs --web-key" -- "$ZILA" -d "$HQ" daemon --web "0.0.0.0:$WP" --web-cert /nonexistent
expect 0 "an account of district d1" -- "$ZILA" -d "$HQ" web account add patna --role district:d1 --password-file "$T/pw.patna"
expect 0 "a viewer account" -- "$ZILA" -d "$HQ" web account add vera --role viewer --password-file "$T/pw.vera"
expect 0 "an admin account" -- "$ZILA" -d "$HQ" web account add ann --role admin --password-file "$T/pw.ann"
expect 1 "an account name is taken once" -- "$ZILA" -d "$HQ" web account add ann --role admin --password-file "$T/pw.ann"
expect 2 "a role zila does not know is refused" -- "$ZILA" -d "$HQ" web account add bob --role boss --password-file "$T/pw.ann"
expect 2 "a laptop of d1 cannot give an account district d2" -- "$ZILA" -d "$L" web account add x --role district:d2 --password-file "$T/pw.ann"
expect 0 "zila web account ls" -- "$ZILA" -d "$HQ" web account ls
has "$T/out" "patna.*district:d1" "... lists the accounts with their roles"

# --- HQ on the LAN, TLS with a certificate made on first start
"$ZILA" -d "$HQ" daemon --listen "127.0.0.1:$HQP" --beacon-port 0 --web "$A:$WP" --web-name hq.office.lan 2>>"$T/hq.log" &
pids="$pids $!"
until_ok 100 "$ZILA" -d "$HQ" status || { bad "hq's daemon did not start: $(cat "$T/hq.log")"; finish; exit 1; }
[ -f "$HQ/web-tls-cert.pem" ] && [ "$(stat -c %a "$HQ/web-tls-key.pem")" = 600 ] && ok "a self-signed certificate was made; its key is 0600" ||
	bad "no certificate or a readable key"
"$ZILA" -d "$HQ" --json web >"$T/web.json" || bad "zila --json web"
FP=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['fingerprint'] or '')" "$T/web.json")
PIN=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['pin'] or '')" "$T/web.json")
OFP=$(openssl x509 -in "$HQ/web-tls-cert.pem" -noout -fingerprint -sha256 | sed 's/.*=//')
[ -n "$FP" ] && [ "$FP" = "$OFP" ] && ok "zila web prints the certificate's SHA-256 fingerprint" || bad "fingerprint '$FP' vs openssl '$OFP'"
grep -q "$FP" "$T/hq.log" && ok "the daemon's log names the fingerprint" || bad "no fingerprint in the log"
"$ZILA" -d "$HQ" status >"$T/st" 2>&1
has "$T/st" "TLS certificate SHA-256 $FP" "zila status prints the fingerprint too"
expect 0 "curl --cacert completes the TLS handshake" -- curl -sS --cacert "$HQ/web-tls-cert.pem" -o "$T/c1" "https://$A:$WP/api/session"
has "$T/c1" "not_logged_in" "... and /api/session says: not logged in"
expect 0 "curl --pinnedpubkey with zila web's pin" -- curl -sS -k --pinnedpubkey "$PIN" -o /dev/null "https://$A:$WP/"
expect_fail_pin() { ! curl -sS -k --pinnedpubkey "sha256//AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=" -o /dev/null "https://$A:$WP/" 2>/dev/null; }
expect_fail_pin && ok "another pin is refused by curl" || bad "curl took a wrong pin"
curl -sS -o "$T/plain" -w '%{http_code}' "http://$A:$WP/api/session" >"$T/code" 2>/dev/null
[ "$(cat "$T/code")" = 400 ] && grep -q "HTTPS only" "$T/plain" && ok "plain HTTP to the TLS port is refused in plain words" ||
	bad "plain HTTP got $(cat "$T/code"): $(head -c 200 "$T/plain")"
"$ZILA" -d "$HQ" --json open >"$T/open" || bad "zila --json open"
grep -q "\"https://$A:$WP/login#t=" "$T/open" && ok "zila open's link is https at the LAN address" || bad "link: $(cat "$T/open")"

python3 - "$A" "$WP" "$HQ/web-tls-cert.pem" "$PW" "$T/open" "$LAN" >"$T/py.out" 2>&1 <<'EOF'
import http.client, json, ssl, sys, time
addr, port, ca, pw, openf, lan = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5], sys.argv[6]
HOST = "%s:%d" % (addr, port)
ctx = ssl.create_default_context(cafile=ca)
npass = nfail = 0
def check(cond, what):
    global npass, nfail
    if cond:
        npass += 1; print("ok - " + what)
    else:
        nfail += 1; print("not ok - " + what)
def req(method, path, body=None, cookie=None, csrf=None, host=HOST):
    c = http.client.HTTPSConnection(addr, port, timeout=30, context=ctx)
    h = {"Host": host}
    if cookie: h["Cookie"] = "zila_session=" + cookie
    if csrf: h["X-CSRF-Token"] = csrf
    data = json.dumps(body).encode() if body is not None else None
    if data: h["Content-Type"] = "application/json"
    c.request(method, path, body=data, headers=h)
    r = c.getresponse()
    b = r.read()
    c.close()
    try:
        j = json.loads(b) if b else None
    except ValueError:
        j = None
    return r.status, dict(r.getheaders()), j
def login(name, password):
    body = {"password": password}
    if name: body["name"] = name
    return req("POST", "/api/login", body)
def sid_of(h):
    return h.get("Set-Cookie", "").split("zila_session=")[1].split(";")[0]
def wait_out(s, h):
    if s == 429:
        time.sleep(int(h.get("Retry-After", "1")) + 0.1)

if lan:
    print("# from %s, not loopback" % addr)
s, _, j = req("GET", "/api/session")
check(s == 401 and j["code"] == "not_logged_in", "no login: /api/session is 401")
s, _, j = req("GET", "/api/tables/people/rows")
check(s == 401, "no login: the member list is 401")
s, _, j = req("GET", "/api/session", host="evil.example:%d" % port)
check(s == 421, "a foreign Host is refused")
s, _, j = req("GET", "/api/session", host="hq.office.lan:%d" % port)
check(s == 401, "the configured --web-name is this interface's Host")

# --- wrong password, the wait, the right one
s, h, j = login(None, "not the password")
check(s == 401 and j["code"] == "bad_password", "a wrong password is refused")
s, h, j = login(None, "slip two")
check(s == 401 and j["code"] == "bad_password", "a second slip is refused, and costs no wait yet")
s, h, j = login(None, "third wrong")
check(s == 401, "a third wrong password is refused")
s, h, j = login(None, pw)
check(s == 429 and j["code"] == "slow_down" and int(h.get("Retry-After", "0")) >= 1,
      "after the third wrong password even the right one must wait (429, Retry-After)")
time.sleep(1.2)
s, h, j = login(None, "wrong again")
check(s == 401, "a fourth wrong password is refused")
s, h, j = login(None, pw)
check(s == 429 and int(h.get("Retry-After", "0")) >= 2, "the next wait is longer (exponential: %s s)" % h.get("Retry-After"))
wait_out(s, h)
s, h, j = login(None, pw)
cookie = h.get("Set-Cookie", "")
check(s == 200 and "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Secure" in cookie,
      "the password logs in: cookie HttpOnly, SameSite=Strict, Secure")
sid = sid_of(h)
s, _, j = req("GET", "/api/session", cookie=sid)
check(s == 200 and j["account"]["role"] == "owner" and j["district"] is None, "the password's session is the device's (HQ: every district)")
csrf = j["csrf"]
s, _, j = req("POST", "/api/logout", cookie=sid, csrf=csrf)
s, _, j = req("GET", "/api/session", cookie=sid)
check(s == 401, "logout ends the session")
s, h, j = login("nobody", pw)
check(s == 401, "the device's password with an unknown account name is refused")

# --- the one-time link still works here
tok = json.load(open(openf))["url"].split("#t=")[1]
s, h, j = req("POST", "/api/login", {"token": tok})
check(s == 200, "zila open's one-time link logs in")

# --- accounts
def account(name, password):
    for _ in range(6):
        s, h, j = login(name, password)
        if s != 429:
            break
        wait_out(s, h)
    check(s == 200, "account %s logs in" % name)
    sid = sid_of(h)
    s, _, j = req("GET", "/api/session", cookie=sid)
    return sid, j
psid, pj = account("patna", "patna-password-1")
check(pj["district"]["id"] == "d1" and pj["account"] == {"name": "patna", "role": "district:d1"}, "patna's session: district d1")
pc = pj["csrf"]
s, _, j = req("GET", "/api/tables/people/rows", cookie=psid)
check(s == 200 and [r["id"] for r in j["rows"]] == ["p1"], "a district's account lists its district only")
s, _, j = req("GET", "/api/tables/people/rows/g1", cookie=psid)
check(s == 404, "a district's account cannot read another district's member")
s, _, j = req("PUT", "/api/tables/people/rows/g1", {"name": "Changed"}, cookie=psid, csrf=pc)
check(s == 403 and j["code"] == "scope", "a district's account cannot edit another district's member")
s, _, j = req("POST", "/api/tables/people/rows", {"name": "Intruder", "district_id": "d2"}, cookie=psid, csrf=pc)
check(s == 403, "a district's account cannot add to another district")
s, _, j = req("POST", "/api/tables/people/rows", {"name": "New Patna Member"}, cookie=psid, csrf=pc)
check(s == 201 and j["row"]["district_id"] == "d1", "a district's account adds to its own district")
s, _, j = req("POST", "/api/devices/invite", {"district": "d1"}, cookie=psid, csrf=pc)
check(s == 403, "a district's account cannot invite devices")
vsid, vj = account("vera", "viewer-password-1")
vc = vj["csrf"]
s, _, j = req("GET", "/api/tables/people/rows", cookie=vsid)
check(s == 200 and j["total"] == 3, "a viewer reads every district's members")
s, _, j = req("POST", "/api/tables/people/rows", {"name": "By Viewer", "district_id": "d1"}, cookie=vsid, csrf=vc)
check(s == 403 and j["code"] == "role", "a viewer cannot add")
s, _, j = req("PUT", "/api/tables/people/rows/p1", {"name": "By Viewer"}, cookie=vsid, csrf=vc)
check(s == 403 and j["code"] == "role", "a viewer cannot edit")
s, _, j = req("DELETE", "/api/tables/people/rows/p1", cookie=vsid, csrf=vc)
check(s == 403, "a viewer cannot delete")
s, _, j = req("POST", "/api/import/commit", {"table": "people", "csv": "name\r\nX\r\n"}, cookie=vsid, csrf=vc)
check(s == 403, "a viewer cannot import")
s, _, j = req("GET", "/api/tables", cookie=vsid)
check(all(not t["writable"] for t in j["tables"]), "a viewer's tables are all read-only")
asid, aj = account("ann", "admin-password-1")
s, _, j = req("POST", "/api/devices/invite", {"district": "d2"}, cookie=asid, csrf=aj["csrf"])
check(s == 201, "an admin invites a device")
print("PY %d %d" % (npass, nfail))
print("SIDS %s %s" % (psid, vsid))
EOF
cat "$T/py.out"
pyp=$(sed -n 's/^PY \([0-9]*\) \([0-9]*\)$/\1/p' "$T/py.out")
pyf=$(sed -n 's/^PY \([0-9]*\) \([0-9]*\)$/\2/p' "$T/py.out")
if [ -z "$pyp" ]; then bad "the HTTPS checks did not run to the end"; else npass=$((npass + pyp)); nfail=$((nfail + pyf)); fi
PSID=$(sed -n 's/^SIDS \([0-9a-f]*\) .*/\1/p' "$T/py.out")
VSID=$(sed -n 's/^SIDS [0-9a-f]* \([0-9a-f]*\)/\1/p' "$T/py.out")
[ "$(sqlite3 "$HQ/zila.db" "SELECT count(*) FROM people WHERE name = 'New Patna Member' AND district_id = 'd1'")" = 1 ] &&
	ok "the district account's member is in HQ's replica" || bad "no member from the district's account"
[ "$(sqlite3 "$HQ/zila.db" "SELECT name FROM people WHERE id = 'g1'")" = "Gaya Member" ] &&
	ok "another district's member is unchanged" || bad "d2's member changed"

# --- a removed account's session ends at once; a new password ends the old sessions
sess() { curl -s -o /dev/null -w '%{http_code}' --cacert "$HQ/web-tls-cert.pem" -H "Cookie: zila_session=$1" "https://$A:$WP/api/session"; }
[ "$(sess "$PSID")" = 200 ] && ok "patna's session is live" || bad "patna's session is gone already"
expect 0 "zila web account rm" -- "$ZILA" -d "$HQ" web account rm patna
[ "$(sess "$PSID")" = 401 ] && ok "a removed account's session ends at once" || bad "a removed account's session goes on"
expect 0 "zila web account passwd" -- "$ZILA" -d "$HQ" web account passwd vera --password-file "$T/pw.ann"
[ "$(sess "$VSID")" = 401 ] && ok "a new password ends the account's sessions" || bad "the old session goes on after passwd"
expect 1 "rm of an account that is not there" -- "$ZILA" -d "$HQ" web account rm patna

# --- no password in any log or URL
grep -q "$PW" "$T/hq.log" && bad "the daemon's log holds the password" || ok "the password is in no log line"
grep -q "patna-password-1\|viewer-password-1\|admin-password-1" "$T/hq.log" && bad "an account's password is logged" ||
	ok "no account's password is logged"
grep -q "argon2" "$T/hq.log" && bad "a hash is logged" || ok "no hash is logged"
grep -q "wrong name or password from $A" "$T/hq.log" && ok "wrong passwords are logged with the source address" || bad "no wrong-password line"
grep -q "post('/login', body)" src/web/ui/src/main.js && ! grep -q "[?&#]password\|password=" src/web/ui/src/main.js src/web/ui/src/api.js &&
	ok "the page posts the password in the body, never in a URL" || bad "the front end puts a password in a URL"

# --- the password cleared: the LAN interface stays up but no password logs in
expect 0 "zila web password --clear" -- "$ZILA" -d "$HQ" web password --clear
expect 1 "clearing it again says none is set" -- "$ZILA" -d "$HQ" web password --clear

# --- a district laptop may serve its office LAN in plain HTTP when its owner says so
printf 'laptop-password-1\n' >"$T/pw.lap"
"$ZILA" -d "$L" web password --password-file "$T/pw.lap" >/dev/null
"$ZILA" -d "$L" daemon --listen "127.0.0.1:$((P + 3))" --beacon-port 0 --web "$A:$LWP" --web-plain-lan 2>>"$T/lap.log" &
pids="$pids $!"
until_ok 100 "$ZILA" -d "$L" status || bad "the laptop's daemon did not start: $(cat "$T/lap.log")"
grep -q "plain HTTP (--web-plain-lan)" "$T/lap.log" && ok "a plain LAN interface is warned of in the log" || bad "no warning for --web-plain-lan"
code=$(curl -s -o "$T/lp" -w '%{http_code}' -H 'Content-Type: application/json' -d '{"password":"laptop-password-1"}' "http://$A:$LWP/api/login")
[ "$code" = 200 ] && ok "the laptop's password logs in over plain HTTP on its LAN" || bad "laptop login: $code $(cat "$T/lp")"
finish
