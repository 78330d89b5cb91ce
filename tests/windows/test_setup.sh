#!/bin/sh
# The installer as an office runs it (make check-windows; README "Windows"): zila-setup.exe /S
# in a fresh Wine prefix, then what it left: the program in Program Files, the replica in
# ProgramData, the service "zila" registered to start at boot and running (its log, its stop),
# the Start-menu entry that opens the web interface without the login token on a command line,
# the firewall commands, enrolment of the installed laptop by a Linux HQ; an update over it
# keeps the device; the uninstaller (/S) removes the program and keeps the replica, and with
# /PURGE removes that too. The service listens on the default ports (7400, 7401, 7480): make
# check runs this in a network namespace of its own.
# usage: ZILA=build/zila SETUP_EXE=build/windows/zila-setup.exe sh tests/windows/test_setup.sh
# As root it runs in a network namespace of its own (another daemon may hold 7400 or 7480).
if [ "$(id -u)" = 0 ] && [ -z "${ZILA_SETUP_NETNS:-}" ] && command -v unshare >/dev/null 2>&1; then
	ZILA_SETUP_NETNS=1 exec unshare -n sh -c 'ip link set lo up && exec sh "$0"' "$0"
fi
. "$(dirname "$0")/../integration/lib.sh"
: "${SETUP_EXE:=$(pwd)/build/windows/zila-setup.exe}"
: "${FAKE_NETSH:=$(pwd)/build/windows/tests/fake_netsh.exe}"
: "${FAKE_NET:=$(pwd)/build/windows/tests/fake_net.exe}"
WINE=${WINE:-/usr/lib/wine/wine64}
WINESERVER=${WINESERVER:-/usr/lib/wine/wineserver}
export WINEDEBUG=-all WINEDLLOVERRIDES="mscoree,mshtml=;netsh.exe=n;net.exe=n"
export WINEPREFIX="$T/wine"
C="$WINEPREFIX/drive_c"
PF="$C/Program Files/zila"
DATA="$C/ProgramData/zila"
MENU="$C/ProgramData/Microsoft/Windows/Start Menu/Programs/zila"
ZEXE='C:\Program Files\zila\zila.exe'
# zi ARGS...: the installed zila.exe on the service's replica
zi() { "$WINE" "$ZEXE" -d 'C:\ProgramData\zila' "$@"; }
# Wine first: stop_daemons waits for every child, the console holding Wine up among them.
cleanup() {
	exec 9>&- 2>/dev/null
	"$WINESERVER" -k 2>/dev/null
	stop_daemons
	done_with_tmp
}
trap cleanup EXIT

# A fresh prefix, as a machine that never had zila. Wine ends its services when the last other
# program ends; a console waiting on a pipe keeps this "machine" up between the steps.
"$WINE" wineboot --init >/dev/null 2>&1
# The first boot of a prefix goes on after wineboot returns: a program started meanwhile got a
# second services.exe, which knew no service the installer made.
"$WINESERVER" -w
mkfifo "$T/hold"
"$WINE" cmd <"$T/hold" >/dev/null 2>&1 &
exec 9>"$T/hold"
# Wine's netsh is a stub that keeps no rule: a stand-in records what the installer asks of it.
if [ -f "$FAKE_NETSH" ]; then
	cp "$FAKE_NETSH" "$C/windows/system32/netsh.exe"
else
	echo "# no $FAKE_NETSH: the firewall commands are not checked"
fi
# Wine's net knows no localgroup: a stand-in records it (and passes start and stop to Wine's).
if [ -f "$FAKE_NET" ]; then
	cp "$FAKE_NET" "$C/windows/system32/net.exe"
else
	echo "# no $FAKE_NET: the group zila is not checked"
fi
# Windows opens a .html file with the default browser; Wine's prefix has no such link, and its
# winebrowser starts a program named in the registry: one that records what it was given.
"$WINE" reg add 'HKCR\.html' /ve /t REG_SZ /d htmlfile /f >/dev/null 2>&1
printf '#!/bin/sh\necho "$@" >>%s/browser.log\n' "$T" >"$T/browser.sh"
chmod +x "$T/browser.sh"
"$WINE" reg add 'HKCU\Software\Wine\WineBrowser' /v Browsers /t REG_SZ /d "$T/browser.sh" /f >/dev/null 2>&1

# --- install ---------------------------------------------------------------------------------
expect 0 "zila-setup.exe /S installs (exit 0)" -- "$WINE" "$SETUP_EXE" /S
[ -f "$PF/zila.exe" ] && [ -f "$PF/uninstall.exe" ] && ok "zila.exe and uninstall.exe in C:\\Program Files\\zila" ||
	bad "Program Files: $(ls "$PF" 2>&1)"
[ -f "$DATA/zila.db" ] && [ -f "$DATA/device.key" ] && ok "the replica made in C:\\ProgramData\\zila" ||
	bad "ProgramData: $(ls "$DATA" 2>&1)"
"$WINE" reg query 'HKLM\System\CurrentControlSet\Services\zila' 2>&1 | tr -d '\r' >"$T/svc"
has "$T/svc" 'ImagePath.*"C:\\Program Files\\zila\\zila.exe" -d "C:\\ProgramData\\zila" service run' \
	"the service 'zila' is registered with the installed program and replica"
has "$T/svc" "Start.*REG_DWORD.*0x2\$" "the service starts at boot (SERVICE_AUTO_START)"
has "$T/svc" "ObjectName.*LocalSystem" "the service runs as LocalSystem"
"$WINE" reg query 'HKLM\Software\Microsoft\Windows\CurrentVersion\Uninstall\zila' >"$T/arp" 2>&1
has "$T/arp" 'UninstallString.*uninstall.exe' "Apps & features lists zila with its uninstaller"
# The shortcut's target and arguments are UTF-16 in the .lnk
lnk() { python3 -c 'import sys; print(open(sys.argv[1], "rb").read().decode("utf-16-le", "replace"))' "$1" 2>/dev/null; }
lnk "$MENU/zila.lnk" >"$T/lnk"
grep -q 'C:\\Program Files\\zila\\zila.exe' "$T/lnk" && grep -q -- '-d "C:\\ProgramData\\zila" open' "$T/lnk" &&
	ok "Start menu: 'zila' runs zila.exe -d C:\\ProgramData\\zila open" || bad "the Start-menu entry: $(tr -cd '[:print:]' <"$T/lnk" | head -c 300)"
[ "$(python3 -c 'import sys; print(open(sys.argv[1], "rb").read()[0x15] & 0x20)' "$MENU/zila.lnk")" = 0 ] &&
	ok "Start menu: 'zila' runs with the user's own rights (no run-as-administrator flag)" || bad "the entry asks for administrator"
if [ -f "$FAKE_NET" ]; then
	me=$("$WINE" cmd /c 'echo %USERNAME%' 2>/dev/null | tr -d '\r')
	tr -d '\r' <"$C/net.log" >"$T/net"
	grep -q '^localgroup zila /add /comment:"' "$T/net" && ok "the installer makes the local group zila" ||
		bad "no 'net localgroup zila /add': $(cat -v "$T/net")"
	# the session's user, as DOMAIN\NAME (Wine: the machine's name) or NAME
	grep -q -e "^localgroup zila \"$me\" /add\$" -e "^localgroup zila \".*[\\]$me\" /add\$" "$T/net" &&
		ok "... and adds the user who ran it ($me)" || bad "the installing user ($me) not added: $(cat -v "$T/net")"
fi
[ -f "$MENU/Uninstall zila.lnk" ] && [ -f "$MENU/zila data folder.lnk" ] && ok "Start menu: 'zila data folder' and 'Uninstall zila'" ||
	bad "the other Start-menu entries: $(ls "$MENU" 2>&1)"
if [ -f "$FAKE_NETSH" ]; then
	grep -q 'advfirewall firewall add rule name="zila sync (TCP 7400)" dir=in action=allow protocol=TCP localport=7400 profile=private program="C:\\Program Files\\zila\\zila.exe"' "$C/netsh.log" &&
		ok "firewall: TCP 7400 for zila.exe on private networks only" || bad "no TCP 7400 rule: $(cat "$C/netsh.log")"
	grep -q 'add rule name="zila LAN beacons (UDP 7401)" dir=in action=allow protocol=UDP localport=7401 profile=private program=' "$C/netsh.log" &&
		ok "firewall: UDP 7401 (LAN beacons) on private networks only" || bad "no UDP 7401 rule: $(cat "$C/netsh.log")"
fi

# --- the service -------------------------------------------------------------------------------
until_ok 100 zi status && ok "the service runs: zila status answers over its named pipe" || bad "no service daemon"
zi status >"$T/st" 2>&1
has "$T/st" "not enrolled" "status: the new laptop is not enrolled yet"
has "$T/st" "tcp 0.0.0.0:7400" "status: the service listens on TCP 7400"
until_ok 50 grep -q "listening on tcp 0.0.0.0:7400" "$DATA/zila.log" && ok "the service logs to C:\\ProgramData\\zila\\zila.log" ||
	bad "the service's log: $(cat "$DATA/zila.log" 2>&1 | head -5)"
"$WINE" "$ZEXE" --version >"$T/ver" 2>&1 && grep -q '^zila ' "$T/ver" && ok "the installed zila.exe --version: $(tr -d '\r' <"$T/ver")" ||
	bad "--version: $(cat "$T/ver")"

# --- the Start-menu entry: zila open ----------------------------------------------------------
zi open >"$T/open" 2>&1 && ok "zila open (exit 0)" || bad "zila open: $(cat "$T/open")"
has "$T/open" "Opening zila's web interface in your browser" "zila open says it opens the browser"
url=$(grep -o 'http://127.0.0.1:7480/login#t=[0-9a-f]*' "$T/open" | head -1)
until_ok 50 test -s "$T/browser.log" && ok "the browser was started (winebrowser)" || bad "no browser was started"
page=$(sed -n 's|^file://||p' "$T/browser.log" | head -1)
grep -q "t=" "$T/browser.log" && bad "the login token is on the browser's command line: $(cat "$T/browser.log")" ||
	ok "the token is not on the browser's command line (it was given $(head -1 "$T/browser.log" | sed 's|.*/||'))"
[ -n "$url" ] && [ -f "$page" ] && grep -q "location.replace(\"$url\")" "$page" &&
	ok "the page the browser opens sends it on to the one-time link" || bad "the page: $(cat "$page" 2>&1 | head -c 300)"
# The page carries a working login: the token is taken once (as the browser's script would).
tok=${url#*#t=}
code=$(python3 -c '
import http.client, json, sys
c = http.client.HTTPConnection("127.0.0.1", 7480, timeout=10)
c.request("POST", "/api/login", json.dumps({"token": sys.argv[1]}), {"Content-Type": "application/json"})
print(c.getresponse().status)' "$tok" 2>&1)
[ "$code" = 200 ] && ok "the link logs in to the service's web interface (POST /api/login: 200)" ||
	bad "the token from the page was not taken: $code"
: >"$T/browser.log"
"$WINE" start /wait "C:\\ProgramData\\Microsoft\\Windows\\Start Menu\\Programs\\zila\\zila.lnk" >/dev/null 2>&1
until_ok 50 test -s "$T/browser.log" && ok "the Start-menu entry 'zila' opens the browser" || bad "the Start-menu entry opened no browser"

# --- enrolment by a Linux HQ (what test_cross.sh does with a plain zila.exe) ---------------------
P=$((21000 + $$ % 20000))
org_init "$T/hq" && districts "$T/hq" d1 && daemon_up "$T/hq" "$T/hq.log" $P || bad "the Linux HQ"
code=$("$ZILA" -d "$T/hq" invite --district d1 --role district | head -1)
printf '%s\n' "$code" | zi join - --hq "127.0.0.1:$P" --name office-pc >"$T/join" 2>&1 &&
	ok "the installed laptop joins HQ by invite code" || bad "join: $(cat "$T/join")"
has "$T/join" "The running daemon now syncs with HQ" "join: the service syncs with HQ now"
zi status 2>/dev/null | tr -d '\r' >"$T/st3"
has "$T/st3" "LAN beacons on udp 7401" "status: once enrolled, the running service sends LAN beacons (no restart)"
zi sql "INSERT INTO people(id, district_id, name) VALUES ('svc-1', 'd1', 'from the service')" >"$T/ins" 2>&1 ||
	bad "the row svc-1 not written: $(tr -d '\r' <"$T/ins" | tail -3)"
zi sync hq --wait >"$T/sync" 2>&1 && ok "the service syncs with HQ (zila sync hq --wait)" || bad "sync: $(tail -3 "$T/sync")"
until_ok 50 test "$(sqlite3 "$T/hq/zila.db" "SELECT count(*) FROM people WHERE id = 'svc-1'")" = 1 &&
	ok "HQ holds the installed laptop's row" || bad "HQ lacks svc-1"
who=$(zi whoami 2>/dev/null | tr -d '\r' | head -1)

# --- the service's stop: the daemon's clean shutdown -------------------------------------------
"$WINE" net stop zila >"$T/stop" 2>&1 && ok "net stop zila" || bad "net stop: $(cat "$T/stop")"
until_ok 50 grep -q "info: stopped" "$DATA/zila.log" && ok "the service stopped cleanly (its log says 'stopped')" ||
	bad "the service's stop: $(grep -v 'readable by others' "$DATA/zila.log" | tail -3)"
rc=0
zi status >"$T/st2" 2>&1 || rc=$?
[ $rc -eq 3 ] && ok "status with the service stopped exits 3" || bad "status after the stop: exit $rc"
has "$T/st2" "net start zila" "... and says how to start it on Windows ('net start zila')"
"$WINE" net start zila >/dev/null 2>&1
until_ok 100 zi status && ok "net start zila: it runs again" || bad "net start zila"

# --- an update over it: the same device, the service again --------------------------------------
expect 0 "zila-setup.exe /S again (an update)" -- "$WINE" "$SETUP_EXE" /S
until_ok 100 zi status && ok "the service runs after the update" || bad "no service after the update"
[ -n "$who" ] && [ "$(zi whoami 2>/dev/null | tr -d '\r' | head -1)" = "$who" ] &&
	ok "the update kept the device and its enrolment ($who)" || bad "whoami changed: $who"

# --- uninstall: the program goes, the replica stays; /PURGE removes it ---------------------------
if [ -f "$FAKE_NETSH" ]; then : >"$C/netsh.log"; fi
if [ -f "$FAKE_NET" ]; then : >"$C/net.log"; fi
"$WINE" "$PF/uninstall.exe" /S >/dev/null 2>&1
# The uninstaller runs a copy of itself from %TEMP% and returns at once.
until_ok 150 test ! -e "$PF/uninstall.exe" && ok "uninstall.exe /S: C:\\Program Files\\zila is gone" ||
	bad "Program Files after the uninstall: $(ls "$PF" 2>&1)"
until_ok 50 test ! -e "$MENU" && ok "the Start-menu entries are gone" || bad "Start menu: $(ls "$MENU" 2>&1)"
"$WINE" reg query 'HKLM\System\CurrentControlSet\Services\zila' >/dev/null 2>&1 && bad "the service is still registered" ||
	ok "the service is removed"
"$WINE" reg query 'HKLM\Software\Microsoft\Windows\CurrentVersion\Uninstall\zila' >/dev/null 2>&1 &&
	bad "still in Apps & features" || ok "gone from Apps & features"
[ -f "$DATA/zila.db" ] && [ -f "$DATA/device.key" ] && ok "the replica is kept (C:\\ProgramData\\zila)" || bad "the replica was removed"
[ "$(sqlite3 "$DATA/zila.db" "SELECT count(*) FROM people WHERE id = 'svc-1'")" = 1 ] && ok "... with the office's rows" ||
	bad "the kept replica lacks svc-1"
if [ -f "$FAKE_NETSH" ]; then
	grep -q 'delete rule name="zila sync (TCP 7400)"' "$C/netsh.log" && grep -q 'delete rule name="zila LAN beacons (UDP 7401)"' "$C/netsh.log" &&
		ok "the uninstaller removes both firewall rules" || bad "firewall at uninstall: $(cat "$C/netsh.log")"
fi
if [ -f "$FAKE_NET" ]; then
	grep -q 'localgroup zila /delete' "$C/net.log" && bad "uninstall /S (keeping the replica) removed the group zila" ||
		ok "uninstall /S keeps the group zila (with the replica)"
fi
expect 0 "zila-setup.exe /S over the kept replica" -- "$WINE" "$SETUP_EXE" /S
until_ok 100 zi status && [ "$(zi whoami 2>/dev/null | tr -d '\r' | head -1)" = "$who" ] &&
	ok "installed again, it uses the kept replica and device" || bad "the kept replica after a new install"
"$WINE" "$PF/uninstall.exe" /S /PURGE >/dev/null 2>&1
until_ok 150 test ! -e "$DATA" && ok "uninstall.exe /S /PURGE removes the replica too" || bad "after /PURGE: $(ls "$DATA" 2>&1)"
[ ! -e "$PF/zila.exe" ] && ok "... and the program" || bad "the program after /PURGE"
if [ -f "$FAKE_NET" ]; then
	until_ok 50 grep -q '^localgroup zila /delete' "$C/net.log" && ok "... and the group zila" ||
		bad "/PURGE kept the group: $(cat -v "$C/net.log")"
fi
finish
