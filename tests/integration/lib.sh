# Shared helpers for integration scripts: $ZILA is the zila binary under test.
: "${ZILA:=$(pwd)/build/zila}"
T=$(mktemp -d /tmp/zila-it-XXXXXX)
trap 'rm -rf "$T"' EXIT
npass=0
nfail=0
ok() { npass=$((npass + 1)); echo "ok - $*"; }
bad() { nfail=$((nfail + 1)); echo "not ok - $*"; }
# expect CODE DESCRIPTION -- command...: runs the command, checks its exit code
expect() {
	code=$1; desc=$2; shift 3
	"$@" >"$T/out" 2>"$T/err"
	got=$?
	if [ "$got" = "$code" ]; then ok "$desc"; else bad "$desc (exit $got, wanted $code): $(head -c 300 "$T/err")"; fi
}
# until_ok N CMD...: retries CMD every 0.2 s, N times at most (its counter is not any
# caller's variable)
until_ok() {
	_k=$1; shift
	while [ "$_k" -gt 0 ]; do "$@" >/dev/null 2>&1 && return 0; sleep 0.2; _k=$((_k - 1)); done
	return 1
}
# has FILE TEXT DESCRIPTION
has() { if grep -q -- "$2" "$1"; then ok "$3"; else bad "$3 (no '$2' in: $(head -c 300 "$1"))"; fi; }
# Daemons a script starts go in $pids; its cleanup stops them and then calls done_with_tmp.
pids=""
# stop_daemons [-9]: signals every pid in $pids (TERM, or KILL with -9) and waits for them
stop_daemons() {
	for p in $pids; do kill ${1:+"$1"} "$p" 2>/dev/null; done
	wait 2>/dev/null
}
# done_with_tmp: removes $T, or keeps it and says where (KEEP=1)
done_with_tmp() { [ -n "${KEEP:-}" ] && echo "kept $T" || rm -rf "$T"; }
# daemon_up DIR LOG PORT: starts DIR's daemon on 127.0.0.1:PORT without beacons, its log
# appended to LOG; sets $last; waits until it answers status
daemon_up() {
	"$ZILA" -d "$1" daemon --listen "127.0.0.1:$3" --beacon-port 0 2>>"$2" &
	last=$!
	pids="$pids $last"
	until_ok 100 "$ZILA" -d "$1" status
}
# same_hash A B: the replicas in A and B hold the same merged state
same_hash() { [ "$("$ZILA" -d "$1" hash)" = "$("$ZILA" -d "$2" hash)" ]; }
finish() {
	echo "$npass passed, $nfail failed"
	[ "$nfail" = 0 ]
}
# org_init DIR: a new replica in DIR that is HQ of a new organisation.
org_init() {
	echo "a passphrase for tests only" > "$T/.pass"
	"$ZILA" -d "$1" init >/dev/null && "$ZILA" -d "$1" org init --name "Test Org" --passphrase-file "$T/.pass" >/dev/null
}
# districts HQDIR ID...: HQ's catalogue gets a district of each id (named as its id, in one
# test state), so that invites and enrolments name a district HQ knows.
districts() {
	_hq=$1; shift
	for _d in "$@"; do
		[ "$(sqlite3 "$_hq/zila.db" "SELECT count(*) FROM districts WHERE id = '$_d'")" = 1 ] && continue
		[ "$(sqlite3 "$_hq/zila.db" "SELECT count(*) FROM states WHERE id = 'test-state'")" = 1 ] ||
			"$ZILA" -d "$_hq" catalogue add state "Test State" --id test-state >/dev/null || return 1
		"$ZILA" -d "$_hq" catalogue add district "$_d" --state test-state --id "$_d" >/dev/null || return 1
	done
}
# enrol HQDIR DIR DISTRICT: enrols the replica in DIR (made with init) by USB stick as a
# district laptop of DISTRICT (added to HQ's catalogue when it is not there).
enrol() {
	districts "$1" "$3" &&
	"$ZILA" -d "$2" enrol request "$T/.req" --name "$(basename "$2")" >/dev/null &&
		"$ZILA" -d "$1" enrol sign "$T/.req" "$T/.cert" --district "$3" --role district >/dev/null &&
		"$ZILA" -d "$2" enrol install "$T/.cert" >/dev/null
}
