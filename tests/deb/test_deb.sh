#!/bin/sh
# The Debian package on this machine (make check-deb; root): builds it twice (a version and a
# higher one), installs the first with apt, checks the user, group, files and modes, runs the
# daemon as the unit's ExecStart does (user zila, umask 077; in a network namespace of its own,
# as systemd is not PID 1 here), `zila status` as a clerk in the group zila and refusals for
# one outside it, upgrades (the replica survives), removes, purges, and leaves the machine as
# it was: the users and the namespace it made are removed.
. "$(dirname "$0")/../integration/lib.sh"
cd "$(dirname "$0")/../.."
started=$(date +%s)
if [ "$(id -u)" != 0 ]; then
	echo "skipped: test_deb installs a package and makes users; run it as root (make check-deb)"
	exit 0
fi
V1=${DEB_VERSION:?DEB_VERSION, the package version (make check-deb sets it)}
V2="$V1+upgrade1"
S=/var/lib/zila
NS=zila-deb-$$
CLERK=zdclerk$$ OUT=zdout$$
APT="apt-get -q -y -o DPkg::Lock::Timeout=600 --no-install-recommends"
export DEBIAN_FRONTEND=noninteractive
# Refuse to run where zila is installed already: this test would take it away.
if dpkg-query -W -f '${Status}' zila 2>/dev/null | grep -q 'installed'; then
	echo "not ok - the package zila is installed on this machine; test_deb would remove it"
	exit 1
fi
for f in "$S" /usr/bin/zila; do
	[ -e "$f" ] && { echo "not ok - $f exists (an install by hand?); test_deb would remove it"; exit 1; }
done
had_user=false
getent passwd zila >/dev/null && had_user=true
daemon="" PW=""
cleanup() {
	[ -n "$PW" ] && rm -rf "$PW"
	[ -n "$daemon" ] && kill "$daemon" 2>/dev/null && wait "$daemon" 2>/dev/null
	dpkg-query -W -f '${Status}' zila 2>/dev/null | grep -q 'ok' && dpkg -P zila >/dev/null 2>&1
	rm -rf "$S"
	for u in "$CLERK" "$OUT"; do getent passwd "$u" >/dev/null && userdel "$u"; done
	if ! $had_user; then
		getent passwd zila >/dev/null && userdel zila
		getent group zila >/dev/null && groupdel zila
	fi
	ip netns del "$NS" 2>/dev/null
	done_with_tmp
}
trap cleanup EXIT
trap 'exit 1' INT TERM
# as USER CMD...: runs CMD as USER with a home of its own in $T (no ~/.zila there)
as() {
	_u=$1; shift
	chmod 711 "$T" && mkdir -p "$T/home/$_u" && chown "$_u" "$T/home/$_u"
	runuser -u "$_u" -- env HOME="$T/home/$_u" PATH=/usr/bin:/bin "$@"
}
# the unit's ExecStart, as the unit runs it: user zila, umask 077, stderr to the journal ($T/d.log)
unit_start() {
	$nsx runuser -u zila -- sh -c "umask 077; exec $exec_start" 2>>"$T/d.log" &
	daemon=$!
	until_ok 100 test -S "$S/zila.sock"
}
unit_stop() {
	expect 0 "the service's user stops its daemon" -- runuser -u zila -- zila -d "$S" stop
	wait "$daemon" 2>/dev/null
	daemon=""
}
mode() { stat -c '%a %U:%G' "$1"; }
check_mode() { # check_mode FILE "MODE USER:GROUP" DESCRIPTION
	[ "$(mode "$1")" = "$2" ] && ok "$3 ($2)" || bad "$3: $1 is $(mode "$1"), wanted $2"
}

# --- build: two versions -----------------------------------------------------------------
t0=$(date +%s)
expect 0 "make deb $V1" -- make --no-print-directory deb DEB_VERSION="$V1"
t1=$(date +%s)
cp build/deb/zila_"$V1"_*.deb "$T/" 2>/dev/null
expect 0 "make deb $V2 (the upgrade)" -- make --no-print-directory deb DEB_VERSION="$V2"
t2=$(date +%s)
has "$T/out" "lintian: no error or warning" "lintian finds no error or warning"
cp build/deb/zila_"$V2"_*.deb "$T/" 2>/dev/null
deb1=$(ls "$T"/zila_"$V1"_*.deb) && deb2=$(ls "$T"/zila_"$V2"_*.deb) || { bad "no packages built"; finish; exit 1; }

# --- install ----------------------------------------------------------------------------------
expect 0 "apt installs $V1" -- $APT install "$deb1"
[ "$(dpkg-query -W -f '${Version}' zila)" = "$V1" ] && ok "dpkg holds zila $V1" || bad "dpkg holds $(dpkg-query -W -f '${Version}' zila)"
pw=$(getent passwd zila)
case "$pw" in
zila:x:*:*:*:/var/lib/zila:/usr/sbin/nologin) ok "the system user zila: home $S, no login shell" ;;
*) bad "the user zila is '$pw'" ;;
esac
[ "$(id -u zila)" -lt 1000 ] && ok "zila is a system user (uid $(id -u zila))" || bad "zila has uid $(id -u zila)"
getent group zila >/dev/null && ok "the group zila" || bad "no group zila"
check_mode /usr/bin/zila "755 root:root" "the binary"
[ -f /usr/share/man/man1/zila.1.gz ] && ok "the man page" || bad "no /usr/share/man/man1/zila.1.gz"
unit=/lib/systemd/system/zila.service
exec_start=$(sed -n 's/^ExecStart=//p' "$unit")
[ "$exec_start" = "/usr/bin/zila -d /var/lib/zila daemon" ] && ok "the unit runs /usr/bin/zila on $S" ||
	bad "the unit's ExecStart is '$exec_start'"
grep -q '^User=zila$' "$unit" && grep -q '^StateDirectoryMode=0750$' "$unit" && ok "the unit: user zila, $S 0750" ||
	bad "the unit's user or directory mode"
check_mode "$S" "750 zila:zila" "the service's directory"

# --- the service replica ----------------------------------------------------------------------
useradd -M -N -s /usr/sbin/nologin "$CLERK" && useradd -M -N -s /usr/sbin/nologin "$OUT" &&
	adduser --quiet "$CLERK" zila && ok "a clerk in the group zila, and a user outside it" || bad "cannot make the test users"
expect 1 "the clerk cannot make the service's replica" -- as "$CLERK" zila init
has "$T/err" "sudo -u zila zila -d /var/lib/zila init" "... and is told how it is made"
expect 3 "status before the service runs: no daemon" -- as "$CLERK" zila status
has "$T/err" "sudo systemctl start zila" "... and how the service starts"
# The service's user has no ~/.zila either: the default is its replica.
expect 0 "the user zila makes the replica (sudo -u zila zila init)" -- runuser -u zila -- env HOME="$S" zila init
[ -f "$S/zila.db" ] && ok "the replica is $S, not $S/.zila" || bad "no $S/zila.db"
PW=$(mktemp -d /tmp/zila-deb-pw-XXXXXX) && chown zila "$PW" && printf 'a passphrase for tests only\n' >"$PW/pw" &&
	chown zila "$PW/pw"
expect 0 "the service's replica becomes an HQ (root key, secret)" -- \
	runuser -u zila -- zila -d "$S" org init --name "Deb Test" --passphrase-file "$PW/pw"
rm -rf "$PW"
PW=
expect 0 "the service's user writes a row" -- runuser -u zila -- zila -d "$S" sql \
	"INSERT INTO states(id, name) VALUES ('deb-s1', 'Deb State')"
# A network namespace of its own keeps the service's port 7400 and its beacons off this machine's.
nsx=""
if ip netns add "$NS" 2>/dev/null && ip netns exec "$NS" ip link set lo up; then
	nsx="ip netns exec $NS"
else
	echo "# no network namespace here: the service listens on this machine's port 7400"
fi
unit_start && ok "the daemon runs as the unit's ExecStart does" || bad "the daemon did not start: $(tail -5 "$T/d.log")"
check_mode "$S/zila.sock" "660 zila:zila" "the control socket is the group's"
for f in device.key org.key org.secret zila.db; do check_mode "$S/$f" "600 zila:zila" "$f is the service user's alone"; done
left=$(find "$S" ! -type s ! -type d -perm /077)
[ -z "$left" ] && ok "no file in $S is open to the group or others" || bad "open to others: $left"

expect 0 "the clerk's 'zila status' reaches the service" -- as "$CLERK" zila status
has "$T/out" "daemon:     running" "... and shows the running daemon"
expect 0 "the clerk's 'zila peers'" -- as "$CLERK" zila peers
expect 1 "the clerk cannot read the device key" -- as "$CLERK" cat "$S/device.key"
expect 1 "the clerk's 'zila hash' (it opens the keys) is refused" -- as "$CLERK" zila hash
has "$T/err" "sudo -u zila zila -d /var/lib/zila hash" "... with what to run instead"
expect 1 "the clerk's 'zila org show' is refused" -- as "$CLERK" zila org show
expect 1 "the clerk cannot stop the service" -- as "$CLERK" zila stop
has "$T/err" "only the daemon's own user may stop it" "... and is told who may"
expect 1 "a user outside the group is refused" -- as "$OUT" zila status
has "$T/err" "not in its group zila" "... in plain words"
has "$T/err" "sudo adduser $OUT zila" "... with how to be let in"
expect 1 "root's 'zila hash' on the service replica is refused (it would leave root's files)" -- zila -d "$S" hash
has "$T/err" "not as root" "... and says so"
expect 0 "root's 'zila status' reaches the service" -- zila -d "$S" status
hash1=$(runuser -u zila -- zila -d "$S" hash)

# --- upgrade ------------------------------------------------------------------------------------
chmod 0700 "$S" # as an install made by hand before the package (the old unit) left it
expect 0 "apt upgrades to $V2 while the daemon runs" -- $APT install "$deb2"
[ "$(dpkg-query -W -f '${Version}' zila)" = "$V2" ] && ok "dpkg holds zila $V2" || bad "dpkg holds $(dpkg-query -W -f '${Version}' zila)"
check_mode "$S" "750 zila:zila" "the upgrade opened a 0700 directory to the group"
unit_stop
unit_start && ok "the upgraded daemon runs" || bad "the upgraded daemon did not start: $(tail -5 "$T/d.log")"
[ "$(runuser -u zila -- zila -d "$S" hash)" = "$hash1" ] && ok "the replica survived the upgrade (same hash)" ||
	bad "the replica's hash changed in the upgrade"
expect 0 "the clerk's 'zila status' after the upgrade" -- as "$CLERK" zila status
[ "$(runuser -u zila -- zila -d "$S" sql "SELECT name FROM states WHERE id = 'deb-s1'")" = "Deb State" ] &&
	ok "the row written before the upgrade is there" || bad "the row written before the upgrade is gone"
unit_stop

# --- remove, purge ------------------------------------------------------------------------------
expect 0 "apt removes zila" -- $APT remove zila
[ ! -e /usr/bin/zila ] && ok "the binary is gone" || bad "/usr/bin/zila is still there"
[ -f "$S/zila.db" ] && [ -f "$S/device.key" ] && ok "remove keeps the replica and its keys" || bad "remove took $S"
expect 0 "apt purges zila" -- $APT purge zila
[ ! -e "$S" ] && ok "purge removes $S" || bad "$S is still there after purge"
dpkg-query -W -f '${Status}' zila 2>/dev/null | grep -q 'ok installed' && bad "zila still installed" || ok "dpkg no longer holds zila"
[ ! -e /etc/systemd/system/multi-user.target.wants/zila.service ] && ok "no unit link is left" ||
	bad "the unit's link is left in /etc/systemd/system"
getent passwd zila >/dev/null && ok "purge keeps the system user zila (Debian's practice; removed by this test)" ||
	bad "purge removed the user zila"
echo "# seconds: make deb $((t1 - t0)) + $((t2 - t1)) (the second reuses the first's objects)," \
	"all of test_deb $(($(date +%s) - started))"
finish
