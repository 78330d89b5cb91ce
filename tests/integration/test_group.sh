#!/bin/sh
# A replica shared with a group, as the Debian package's service replica is (tests/deb has the
# package itself): the control socket is 0660 when the directory lets its group in (0600
# otherwise); as root, a member of the owner's group reaches the daemon (status) but may not
# stop it nor open the replica (its keys), and a user outside the group is refused, each in
# plain words.
. "$(dirname "$0")/lib.sh"
P=$((20000 + $$ % 20000))
cleanup() {
	stop_daemons
	for u in "${MEM:-}" "${OUT:-}" "${SVC:-}"; do [ -n "$u" ] && getent passwd "$u" >/dev/null && userdel "$u"; done
	[ -n "${SVC:-}" ] && getent group "$SVC" >/dev/null && groupdel "$SVC"
	done_with_tmp
}
trap cleanup EXIT
"$ZILA" -d "$T/solo" init >/dev/null
daemon_up "$T/solo" "$T/solo.log" "$P" || bad "the daemon did not start"
[ "$(stat -c %a "$T/solo/zila.sock")" = 600 ] && ok "a 0700 replica's socket is 0600" || bad "socket $(stat -c %a "$T/solo/zila.sock")"
"$ZILA" -d "$T/solo" stop >/dev/null
chmod 0750 "$T/solo"
daemon_up "$T/solo" "$T/solo.log" "$P" || bad "the daemon did not start"
[ "$(stat -c %a "$T/solo/zila.sock")" = 660 ] && ok "a 0750 replica's socket is 0660" || bad "socket $(stat -c %a "$T/solo/zila.sock")"
"$ZILA" -d "$T/solo" stop >/dev/null
wait
pids=""
if [ "$(id -u)" != 0 ] || ! command -v runuser >/dev/null; then
	echo "# skipped the users' part: it needs root"
	finish
	exit
fi
SVC=zgs$$ MEM=zgm$$ OUT=zgo$$
useradd -M -U -s /usr/sbin/nologin "$SVC" && useradd -M -N -G "$SVC" -s /usr/sbin/nologin "$MEM" &&
	useradd -M -N -s /usr/sbin/nologin "$OUT" || bad "cannot make the test users"
chmod 711 "$T"
R=$T/svc
install -d -o "$SVC" -g "$SVC" -m 0750 "$R"
cp "$ZILA" "$T/zila" && chmod 755 "$T/zila"
as() { _u=$1; shift; runuser -u "$_u" -- env HOME=/nonexistent "$@"; }
expect 0 "the owner makes the replica" -- as "$SVC" "$T/zila" -d "$R" init
# A district laptop's replica, whose district the catalogue names (from HQ, by bundle).
X=$T/x && mkdir "$X" && chmod 777 "$X"
org_init "$T/hq" && "$ZILA" -d "$T/hq" catalogue add state "Test State" --id st-1 >/dev/null &&
	"$ZILA" -d "$T/hq" catalogue add district "Patna" --state st-1 --id d-07 >/dev/null &&
	as "$SVC" "$T/zila" -d "$R" enrol request "$X/req" --name svc-laptop >/dev/null &&
	"$ZILA" -d "$T/hq" enrol sign "$X/req" "$X/cert" --district d-07 --role district >/dev/null &&
	chmod 644 "$X/cert" && as "$SVC" "$T/zila" -d "$R" enrol install "$X/cert" >/dev/null &&
	as "$SVC" "$T/zila" -d "$R" vector >"$X/vec" &&
	"$ZILA" -d "$T/hq" bundle create "$X/b.bndl" --for "$X/vec" >/dev/null && chmod 644 "$X/b.bndl" &&
	as "$SVC" "$T/zila" -d "$R" bundle apply "$X/b.bndl" >/dev/null && ok "the owner's replica is Patna's laptop" ||
	bad "cannot enrol the owner's replica"
as "$SVC" sh -c "umask 077; exec '$T/zila' -d '$R' daemon --listen 127.0.0.1:$P --beacon-port 0" 2>>"$T/svc.log" &
pids="$pids $!"
until_ok 100 test -S "$R/zila.sock" || bad "the owner's daemon did not start"
expect 0 "a member of the group reaches the daemon" -- as "$MEM" "$T/zila" -d "$R" status
has "$T/out" "daemon:     running" "... and sees it running"
has "$T/out" "district of Patna" "... and its district by name (the daemon's, not the database the member may not read)"
[ ! -s "$T/err" ] && ok "... with nothing to complain of (names it may not read stay ids)" || bad "status said: $(head -c 300 "$T/err")"
expect 0 "a member lists the peers" -- as "$MEM" "$T/zila" -d "$R" peers
expect 0 "a member opens the web interface (the office's users work there)" -- as "$MEM" "$T/zila" -d "$R" open
has "$T/out" "/login#t=" "... with a one-time login link"
expect 1 "a member may not stop it" -- as "$MEM" "$T/zila" -d "$R" stop
has "$T/err" "only the daemon's own user may stop it" "... and is told who may"
expect 1 "a member's 'zila sql' (it opens the keys) is refused" -- as "$MEM" "$T/zila" -d "$R" sql "SELECT 1"
has "$T/err" "sudo -u $SVC zila -d $R sql" "... with the command to run instead"
expect 1 "a user outside the group is refused" -- as "$OUT" "$T/zila" -d "$R" status
has "$T/err" "not in its group $SVC" "... in plain words"
expect 1 "root's 'zila hash' on another user's replica is refused" -- "$T/zila" -d "$R" hash
has "$T/err" "not as root" "... and says why"
expect 0 "the owner stops it" -- as "$SVC" "$T/zila" -d "$R" stop
finish
