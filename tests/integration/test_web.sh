#!/bin/sh
# The web interface against a real daemon (#18, proto/web/API.md): a district laptop of d1
# whose replica also holds a row of d2 (written before it was enrolled) and HQ. Security: no
# access without the login step, a one-time token works once, a foreign Host header and a
# missing, wrong or cross-site CSRF token are refused, the laptop's interface neither reads
# nor writes d2's rows nor the org-wide tables. API: a member with a Hindi name is added,
# found by Hindi name and by phone, edited (history old -> new), paged; a CSV is previewed
# and imported; export; the status stream; the edit is captured and reaches HQ, after which
# the row says "at_hq".
. "$(dirname "$0")/lib.sh"
P=$((20000 + ($$ * 13) % 20000))
HQP=$P LP=$((P + 1)) WP=$((P + 2)) HWP=$((P + 3))
HQ=$T/hq L=$T/lap
cleanup() {
	stop_daemons
	done_with_tmp
}
trap cleanup EXIT

org_init "$HQ"
"$ZILA" -d "$HQ" sql "INSERT INTO states(id, name) VALUES ('s1', 'Bihar');
  INSERT INTO districts(id, state_id, name, code, name_local) VALUES ('d1', 's1', 'Patna', 'PAT', 'पटना'),
    ('d2', 's1', 'Gaya', 'GAY', 'गया');
  INSERT INTO org_units(id, level, district_id, name, code) VALUES ('b110', 'booth', 'd1', 'Kishunpur', '110')" >/dev/null
"$ZILA" -d "$L" init >/dev/null
# Before it is enrolled nothing limits what the replica holds: a member of d2.
sqlite3 "$L/zila.db" "INSERT INTO states(id, name) VALUES ('s1', 'Bihar');
  INSERT INTO districts(id, state_id, name) VALUES ('d1', 's1', 'Patna'), ('d2', 's1', 'Gaya');
  INSERT INTO people(id, district_id, name, phone) VALUES ('gaya1', 'd2', 'Gaya Member', '9111111111')"
enrol "$HQ" "$L" d1 || { bad "laptop not enrolled"; finish; exit 1; }
"$ZILA" -d "$L" peer add --hq "127.0.0.1:$HQP" >/dev/null
"$ZILA" -d "$HQ" daemon --listen "127.0.0.1:$HQP" --beacon-port 0 --web "127.0.0.1:$HWP" 2>>"$T/hq.log" &
pids="$pids $!"
until_ok 100 "$ZILA" -d "$HQ" status || { bad "hq's daemon did not start"; finish; exit 1; }
"$ZILA" -d "$L" daemon --listen "127.0.0.1:$LP" --beacon-port 0 --web "127.0.0.1:$WP" 2>>"$T/lap.log" &
pids="$pids $!"
until_ok 100 "$ZILA" -d "$L" status || { bad "the laptop's daemon did not start"; finish; exit 1; }
expect 0 "the laptop syncs with hq" -- "$ZILA" -d "$L" sync hq --wait --timeout 30
expect 2 "daemon --web takes ADDR:PORT" -- "$ZILA" -d "$T/none" daemon --web nonsense
"$ZILA" -d "$T/idle" init >/dev/null
expect 3 "zila open without a daemon says so" -- "$ZILA" -d "$T/idle" open
expect 0 "zila open prints a login link" -- "$ZILA" -d "$L" open
has "$T/out" "http://127.0.0.1:$WP/login#t=" "the token is in the link's fragment"
"$ZILA" -d "$L" --json open >"$T/open1" || bad "zila --json open"
"$ZILA" -d "$L" --json open >"$T/open2" || bad "zila --json open (2)"
grep -q "#t=" "$T/lap.log" && bad "the daemon's log holds a login token" || ok "no token in the daemon's log"

"$ZILA" -d "$HQ" --json open >"$T/openhq" || bad "zila --json open at hq"

python3 - "$WP" "$T/open1" "$T/open2" "$L" "$ZILA" "$HWP" "$T/openhq" >"$T/py.out" 2>&1 <<'EOF'
import http.client, json, subprocess, sys, time, urllib.parse
port, open1, open2, ldir, zila = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5]
tok1 = json.load(open(open1))["url"].split("#t=")[1]
tok2 = json.load(open(open2))["url"].split("#t=")[1]
HOST = "127.0.0.1:%d" % port
npass = nfail = 0
def check(cond, what):
    global npass, nfail
    if cond:
        npass += 1; print("ok - " + what)
    else:
        nfail += 1; print("not ok - " + what)
def req(method, path, body=None, cookie=None, csrf=None, host=HOST, origin=None, raw=False):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=20)
    h = {"Host": host}
    if cookie: h["Cookie"] = "zila_session=" + cookie
    if csrf: h["X-CSRF-Token"] = csrf
    if origin: h["Origin"] = origin
    data = None
    if body is not None:
        data = json.dumps(body).encode(); h["Content-Type"] = "application/json"
    c.request(method, path, body=data, headers=h)
    r = c.getresponse()
    b = r.read()
    c.close()
    if raw:
        return r.status, r.getheaders(), b
    try:
        j = json.loads(b) if b else None
    except ValueError:
        j = None
    return r.status, dict(r.getheaders()), j

# --- no access without the login step
s, _, j = req("GET", "/api/session")
check(s == 401 and j["code"] == "not_logged_in", "no session: /api/session is 401")
s, _, j = req("GET", "/api/tables/people/rows")
check(s == 401, "no session: the member list is 401")
s, _, j = req("GET", "/api/status", cookie="0" * 64)
check(s == 401, "a made-up session cookie is 401")
s, _, j = req("POST", "/api/login", {"token": "ab" * 32})
check(s == 401 and j["code"] == "bad_token", "an unknown token is refused")
s, h, j = req("POST", "/api/login", {"token": tok1}, host="evil.example:%d" % port)
check(s == 421, "a login through a foreign Host is refused (DNS rebinding)")
s, h, j = req("POST", "/api/login", {"token": tok1})
cookie = h.get("Set-Cookie", "")
check(s == 200 and "HttpOnly" in cookie and "SameSite=Strict" in cookie, "the one-time token logs in: HttpOnly SameSite=Strict cookie")
sid = cookie.split("zila_session=")[1].split(";")[0]
s, _, j = req("POST", "/api/login", {"token": tok1})
check(s == 401 and j["code"] == "token_used", "the token cannot be used twice")

# --- session, Host, CSRF
s, _, j = req("GET", "/api/session", cookie=sid)
check(s == 200 and j["role"] == "laptop" and j["district"]["id"] == "d1" and len(j["csrf"]) == 64, "session: a laptop of d1, with a CSRF token")
csrf = j["csrf"]
s, _, j = req("GET", "/api/session", cookie=sid, host="evil.example:%d" % port)
check(s == 421 and j["code"] == "host", "a foreign Host header is refused even with a session")
s, _, j = req("GET", "/api/session", cookie=sid, host="127.0.0.1:1")
check(s == 421, "another port in Host is refused")
s, _, j = req("GET", "/api/session", cookie=sid, host="localhost:%d" % port)
check(s == 200, "localhost:PORT is this interface")
new = {"name": "Ram Kumar", "name_local": "राम कुमार", "phone": "+91 98765 43210", "gender": "M", "org_unit_id": "b110"}
s, _, j = req("POST", "/api/tables/people/rows", new, cookie=sid)
check(s == 403 and j["code"] == "csrf", "a write without the CSRF token is refused")
s, _, j = req("POST", "/api/tables/people/rows", new, cookie=sid, csrf="0" * 64)
check(s == 403 and j["code"] == "csrf", "a write with a wrong CSRF token is refused")
s, _, j = req("POST", "/api/tables/people/rows", new, cookie=sid, csrf=csrf, origin="http://evil.example")
check(s == 403, "a write from another site (Origin) is refused")
s, _, j = req("GET", "/api/tables/people/rows?q=Ram", cookie=sid)
check(s == 200 and j["total"] == 0, "the refused writes wrote nothing")

# --- records
s, _, j = req("POST", "/api/tables/people/rows", new, cookie=sid, csrf=csrf)
check(s == 201 and j["row"]["district_id"] == "d1" and j["row"]["phone"] == "9876543210" and j["row"]["gender"] == "male",
      "a member with a Hindi name is added: own district, phone and gender as import writes them")
pid = j["row"]["id"]
check(j["row"]["_labels"].get("org_unit_id") == "110 — Kishunpur", "the booth is labelled '110 — Kishunpur'")
s, _, j = req("GET", "/api/tables/people/rows?q=" + "%E0%A4%B0%E0%A4%BE%E0%A4%AE", cookie=sid)
check(s == 200 and j["total"] == 1 and j["rows"][0]["id"] == pid, "found by Hindi name")
s, _, j = req("GET", "/api/tables/people/rows?q=98765", cookie=sid)
check(s == 200 and j["total"] == 1, "found by phone digits")
s, _, j = req("GET", "/api/tables/people/rows?q=ram+kumar", cookie=sid)
check(s == 200 and j["total"] == 1, "found by English name, any case")
s, _, j = req("POST", "/api/tables/people/rows", {"name": "Twin", "phone": "9876543210"}, cookie=sid, csrf=csrf)
check(s == 409 and j["field"] == "phone", "a second member with the phone: 409 naming the phone")
s, _, j = req("POST", "/api/tables/people/rows", {"name": "Bad", "gender": "x"}, cookie=sid, csrf=csrf)
check(s == 400 and j["field"] == "gender", "a CHECK refusal names its field")
s, _, j = req("POST", "/api/tables/people/rows", {"phone": "9000000001"}, cookie=sid, csrf=csrf)
check(s == 400 and j["field"] == "name", "a missing required field is named")
# The daemon seals the new member (within a second) before the edit, so history has both.
deadline = time.time() + 10
while time.time() < deadline:
    s, _, j = req("GET", "/api/tables/people/rows/" + pid, cookie=sid)
    if j["history"]:
        break
    time.sleep(0.2)
check(len(j["history"]) == 1 and j["history"][0]["device"] == "lap", "the new member's history names the laptop")
s, _, j = req("PUT", "/api/tables/people/rows/" + pid, {"name": "Ram Kumar Singh"}, cookie=sid, csrf=csrf)
check(s == 200 and j["row"]["name"] == "Ram Kumar Singh", "the member is edited")
s, _, j = req("PUT", "/api/tables/people/rows/" + pid, {"district_id": "d2"}, cookie=sid, csrf=csrf)
check(s == 400, "a row's district never changes")
s, _, j = req("GET", "/api/tables", cookie=sid)
people = [t for t in j["tables"] if t["name"] == "people"][0]
gender = [c for c in people["columns"] if c["name"] == "gender"][0]
by = [c for c in people["columns"] if c["name"] == "birth_year"][0]
check(gender["choices"] == ["female", "male", "other"] and by["min"] == 1900 and by["max"] == 2100,
      "the schema gives CHECKs as choices and bounds")
dist = [t for t in j["tables"] if t["name"] == "districts"][0]
check(dist["writable"] is False and people["writable"] is True, "org-wide tables are not writable on a laptop")
s, _, j = req("GET", "/api/tables/people/options/org_unit_id?q=kish", cookie=sid)
check(s == 200 and j["options"] == [{"id": "b110", "label": "110 — Kishunpur"}], "FK options by label")

# --- another district
s, _, j = req("GET", "/api/tables/people/rows/gaya1", cookie=sid)
check(s == 404, "another district's member cannot be read")
s, _, j = req("GET", "/api/tables/people/rows?f.district_id=d2", cookie=sid)
check(s == 200 and j["total"] == 0, "another district's members are not listed")
s, _, j = req("GET", "/api/tables/people/rows?q=Gaya", cookie=sid)
check(s == 200 and j["total"] == 0, "another district's members are not found")
s, _, j = req("PUT", "/api/tables/people/rows/gaya1", {"name": "Changed"}, cookie=sid, csrf=csrf)
check(s == 403 and j["code"] == "scope", "another district's member cannot be edited")
s, _, j = req("DELETE", "/api/tables/people/rows/gaya1", cookie=sid, csrf=csrf)
check(s == 403, "another district's member cannot be deleted")
s, _, j = req("POST", "/api/tables/people/rows", {"name": "Intruder", "district_id": "d2"}, cookie=sid, csrf=csrf)
check(s == 403, "a member cannot be added to another district")
s, _, j = req("POST", "/api/tables/districts/rows", {"name": "New", "state_id": "s1"}, cookie=sid, csrf=csrf)
check(s == 403, "an org-wide table cannot be written")
s, _, b = req("GET", "/api/export?table=people", cookie=sid, raw=True)
check(s == 200 and "Ram Kumar Singh" in b.decode() and "Gaya Member" not in b.decode(), "export holds the district's rows only")

# --- attachments over HTTP (#25): an upload is the file's bytes, on a worker thread; the file
# comes back with its type, a name that cannot break the header, and no script of it runs here
def upload(query, data, csrf_=None):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    h = {"Host": HOST, "Cookie": "zila_session=" + sid, "Content-Type": "application/octet-stream"}
    if csrf_: h["X-CSRF-Token"] = csrf_
    c.request("POST", "/api/attachments?" + query, body=data, headers=h)
    r = c.getresponse()
    b = r.read()
    c.close()
    return r.status, json.loads(b) if b else None
photo = bytes(range(256)) * 600
s, j = upload("table=people&id=" + pid + "&name=photo.jpg", photo)
check(s == 403 and j["code"] == "csrf", "an upload without the CSRF token is refused")
s, j = upload("table=people&id=gaya1&name=photo.jpg", photo, csrf)
check(s == 403 and j["code"] == "scope", "a file cannot be attached to another district's member")
evil = "a\"b\r\nSet-Cookie: x=1;.jpg"
s, j = upload("table=people&id=" + pid + "&name=" + urllib.parse.quote(evil), photo, csrf)
check(s == 201 and j["attachment"]["size"] == len(photo) and j["attachment"]["state"] == "here", "a photo is uploaded to a member")
aid = j["attachment"]["id"] if s == 201 else "none"
s, h, b = req("GET", "/api/attachments/" + aid + "/content", cookie=sid, raw=True)
hd = {k.lower(): v for k, v in h}
check(s == 200 and b == photo and hd.get("content-type") == "image/jpeg", "its content is byte-identical, as image/jpeg")
check(hd.get("content-disposition", "").startswith('inline; filename="a_b__Set-Cookie__x_1_.jpg"; filename*=UTF-8\'\'a%22b%0D%0ASet-Cookie%3A%20x%3D1%3B.jpg')
      and "x-content-type-options" in hd and "set-cookie" not in hd, "the name is made safe in Content-Disposition")
check("sandbox" in " ".join(v for k, v in h if k.lower() == "content-security-policy"), "a file is served sandboxed (CSP)")
s, _, j = req("GET", "/api/attachments?table=people&id=" + pid, cookie=sid)
check(s == 200 and [a["id"] for a in j["attachments"]] == [aid], "the member lists its file")
c = http.client.HTTPConnection("127.0.0.1", port, timeout=20)
c.putrequest("POST", "/api/attachments?table=people&id=" + pid + "&name=huge.jpg")
for k, v in {"Host": HOST, "Cookie": "zila_session=" + sid, "X-CSRF-Token": csrf, "Content-Length": str(40 << 20)}.items():
    c.putheader(k, v)
c.endheaders()
r = c.getresponse()
j = json.loads(r.read())
c.close()
check(r.status == 413 and j["code"] == "too_big" and "32 MiB" in j["error"], "an upload over 32 MiB is refused before it is read")
s, _, j = req("GET", "/api/status", cookie=sid)
check(s == 200 and j["attachments"]["referenced"] >= 1, "the status counts the attachments")

# --- history
s, _, j = req("GET", "/api/tables/people/rows/" + pid, cookie=sid)
deadline = time.time() + 10
while s == 200 and len(j["history"]) < 2 and time.time() < deadline:
    time.sleep(0.3)
    s, _, j = req("GET", "/api/tables/people/rows/" + pid, cookie=sid)
names = [c for hh in j["history"] for c in hh["changes"] if c["col"] == "name"]
check(s == 200 and any(c["old"] == "Ram Kumar" and c["new"] == "Ram Kumar Singh" for c in names),
      "history shows the edit old -> new, by device")

# --- import
csv = "name,name_local,phone,gender\r\nSita Devi,सीता देवी,9123456780,F\r\nRam Kumar Singh,,9876543210,M\r\nBad Row,,12,Q\r\n"
s, _, j = req("POST", "/api/import/preview", {"table": "people", "csv": csv}, cookie=sid, csrf=csrf)
acts = [r["action"] for r in j["rows"]] if s == 200 else []
check(s == 200 and "create" in acts and "error" in acts and j["mapping"]["name"] == "name", "import preview: rows, actions and the guessed mapping")
s, _, j = req("GET", "/api/tables/people/rows?q=Sita", cookie=sid)
check(j["total"] == 0, "the preview wrote nothing")
s, _, j = req("POST", "/api/import/commit", {"table": "people", "csv": csv}, cookie=sid, csrf=csrf)
check(s == 400, "a file with a bad row is refused whole, as zila import does")
csv2 = "name,name_local,phone,gender\r\nSita Devi,सीता देवी,9123456780,F\r\n"
s, _, j = req("POST", "/api/import/commit", {"table": "people", "csv": csv2}, cookie=sid, csrf=csrf)
check(s == 200 and j["counts"]["create"] == 1, "import commit creates the member")
s, _, j = req("GET", "/api/tables/people/rows?q=%E0%A4%B8%E0%A5%80%E0%A4%A4%E0%A4%BE", cookie=sid)
check(j["total"] == 1, "the imported member is listed")
s, _, j = req("GET", "/api/tables/people/rows?limit=1&offset=1&sort=-name", cookie=sid)
check(s == 200 and j["total"] == 2 and len(j["rows"]) == 1 and j["rows"][0]["name"] == "Ram Kumar Singh", "paging and sorting on the server")
csv3 = "Naam,Mobile No.,Booth No\r\nBooth Person,9123456799,110\r\n"
s, _, j = req("POST", "/api/import/commit", {"table": "people", "csv": csv3, "mapping": {"Booth No": "org_unit_id"}}, cookie=sid, csrf=csrf)
s, _, j = req("GET", "/api/tables/people/rows?q=Booth+Person", cookie=sid)
check(s == 200 and j["total"] == 1 and j["rows"][0]["org_unit_id"] == "b110",
      "an import naming the booth by its number ('110') links booth b110, as zila import does")

# --- review
s, _, j = req("GET", "/api/review", cookie=sid)
check(s == 200 and "conflicts" in j and "duplicates" in j and "orphans" in j, "review lists conflicts, duplicates, orphans")
s, _, j = req("GET", "/api/status", cookie=sid)
check(s == 200 and isinstance(j["replica"], str) and j["local"]["orphans"] == 0
      and j["local"]["parked"] == 0, "status counts the orphans among the parked rows (local.orphans)")

# --- the status stream
c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
c.request("GET", "/api/events", headers={"Host": HOST, "Cookie": "zila_session=" + sid})
r = c.getresponse()
line = r.fp.readline().decode() + r.fp.readline().decode()
check(r.status == 200 and "event: status" in line, "the event stream sends the status at once")
c.close()

# --- sync: the edits reach HQ, and the rows say so
s, _, j = req("POST", "/api/sync", {"peer": "hq"}, cookie=sid, csrf=csrf)
check(s == 202, "sync now is accepted")
deadline = time.time() + 30
state = None
while time.time() < deadline:
    s, _, j = req("GET", "/api/tables/people/rows/" + pid, cookie=sid)
    state = j["_sync"]
    if state == "at_hq":
        break
    req("POST", "/api/sync", {"peer": "hq"}, cookie=sid, csrf=csrf)
    time.sleep(0.5)
check(state == "at_hq", "after the sync the member is 'at_hq' (was %s)" % state)

# --- logout
s, _, j = req("POST", "/api/logout", cookie=sid, csrf=csrf)
s, _, j = req("GET", "/api/session", cookie=sid)
check(s == 401, "after logout the session is gone")
s, h, j = req("POST", "/api/login", {"token": tok2})
check(s == 200, "a second link logs in again")

# --- HQ: progress, the rows behind a number, devices, an invite
port = int(sys.argv[6]); HOST = "127.0.0.1:%d" % port
tokh = json.load(open(sys.argv[7]))["url"].split("#t=")[1]
s, h, j = req("POST", "/api/login", {"token": tokh}, host=HOST)
hsid = h.get("Set-Cookie", "").split("zila_session=")[1].split(";")[0]
s, _, j = req("GET", "/api/session", cookie=hsid, host=HOST)
check(s == 200 and j["role"] == "hq" and j["district"] is None, "hq's session: role hq, every district")
hcsrf = j["csrf"]
s, _, j = req("GET", "/api/hq/progress", cookie=hsid, host=HOST)
check(s == 200 and {d["id"] for d in j["districts"]} >= {"d1"}, "hq's progress lists the districts")
s, _, j = req("GET", "/api/hq/list?metric=booths_without_agent&district=d1", cookie=hsid, host=HOST)
check(s == 200 and [r["id"] for r in j["rows"]] == ["b110"], "the booths without an agent, behind the number")
s, _, j = req("GET", "/api/devices", cookie=hsid, host=HOST)
check(s == 200 and any(d["name"] == "lap" and d["district"] == "d1" for d in j["devices"]), "hq lists the laptop")
lap = [d for d in j["devices"] if d["name"] == "lap"]
check(lap and lap[0].get("last_sync_at", 0) > time.time() - 600 and lap[0].get("last_seen_at", 0) > 0,
      "hq's device list says when the laptop last synced (%s)" % (lap[0].get("last_sync_at") if lap else None))
s, _, j = req("POST", "/api/devices/invite", {"district": "Gaya"}, cookie=hsid, host=HOST)
check(s == 403, "an invite without the CSRF token is refused")
s, _, j = req("POST", "/api/devices/invite", {"district": "Gaya"}, cookie=hsid, csrf=hcsrf, host=HOST)
check(s == 201 and j["district"] == "d2" and len(j["code"]) > 10, "hq makes an invite code for Gaya, by name")
print("PY %d %d" % (npass, nfail))
EOF
cat "$T/py.out"
pyp=$(sed -n 's/^PY \([0-9]*\) \([0-9]*\)$/\1/p' "$T/py.out")
pyf=$(sed -n 's/^PY \([0-9]*\) \([0-9]*\)$/\2/p' "$T/py.out")
if [ -z "$pyp" ]; then bad "the HTTP checks did not run to the end"; else npass=$((npass + pyp)); nfail=$((nfail + pyf)); fi
# The member added in the browser is at HQ, with its Hindi name.
until_ok 50 sh -c "[ \"\$(sqlite3 '$HQ/zila.db' \"SELECT name_local FROM people WHERE name = 'Sita Devi'\")\" = 'सीता देवी' ]" &&
	ok "the members added through the interface are at hq" || bad "hq does not hold the imported member"
[ "$(sqlite3 "$HQ/zila.db" "SELECT count(*) FROM people WHERE name = 'Ram Kumar Singh'")" = 1 ] &&
	ok "the edit made through the interface is at hq" || bad "hq does not hold the edit"
finish
