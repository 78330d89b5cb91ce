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
# has FILE TEXT DESCRIPTION
has() { if grep -q -- "$2" "$1"; then ok "$3"; else bad "$3 (no '$2' in: $(head -c 300 "$1"))"; fi; }
finish() {
	echo "$npass passed, $nfail failed"
	[ "$nfail" = 0 ]
}
