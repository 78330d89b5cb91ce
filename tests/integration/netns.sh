# Sourced by multi-host integration tests: N network namespaces on one bridge, every
# device inside namespaces of our own, so a test never touches the host's network.
#
#   ns_setup PREFIX N   namespaces PREFIX-PID-1..N (10.77.0.I/24 on eth0, lo up) joined by
#                       a bridge in namespace PREFIX-PID-br; skips the test (exit 0) when
#                       not root or ip netns is unavailable; tears down on EXIT/INT/TERM
#   ns_exec I CMD...    runs CMD in namespace I
#   ns_addr I           prints namespace I's address
#   ns_shape I RATE [BURST]   tc tbf at RATE (tc syntax, e.g. 8mbit) both ways on I's link
#   ns_unshape I        removes it
#   ns_cut I / ns_heal I      takes I's bridge port down / up (a pulled cable: I keeps its
#                       address and routes, and sees its carrier go)
#   ns_teardown         kills what still runs inside, deletes every namespace it made
# NS_ON_EXIT, if set, is evaluated after the teardown in the exit trap (sh has one trap per
# signal, so a caller's own cleanup goes there).
NS_NET=10.77.0
_ns_base=""
_ns_br=""
_ns_n=0
_ns_names=""

# Skips the whole test, successfully, where namespaces cannot be made; any other failure
# later is a real one.
ns_require() {
	if [ "$(id -u)" != 0 ] || ! command -v ip >/dev/null 2>&1 || ! ip netns list >/dev/null 2>&1; then
		echo "skipped: needs root and ip netns"
		exit 0
	fi
	_ns_probe="zila-probe-$$"
	if ! ip netns add "$_ns_probe" 2>/dev/null; then
		echo "skipped: needs root and ip netns (cannot create a namespace here)"
		exit 0
	fi
	ip netns del "$_ns_probe"
}

_ns_exit() {
	ns_teardown
	eval "${NS_ON_EXIT:-}"
}

# _ns_name I: sets _ns to namespace I's name, or fails for an index out of range.
_ns_name() {
	case "$1" in
	'' | *[!0-9]*) echo "netns: bad namespace index '$1'" >&2; return 1 ;;
	esac
	if [ "$1" -lt 1 ] || [ "$1" -gt "$_ns_n" ]; then
		echo "netns: no namespace $1 (have 1..$_ns_n)" >&2
		return 1
	fi
	_ns="$_ns_base-$1"
}

ns_setup() {
	if [ $# != 2 ] || [ -n "$_ns_base" ]; then
		echo "netns: usage: ns_setup PREFIX N (once per shell)" >&2
		return 2
	fi
	case "$2" in
	'' | *[!0-9]*) echo "netns: bad count '$2'" >&2; return 2 ;;
	esac
	if [ "$2" -lt 1 ] || [ "$2" -gt 250 ]; then
		echo "netns: count '$2' not in 1..250" >&2
		return 2
	fi
	ns_require
	# The PID keeps parallel runs apart.
	_ns_base="$1-$$"
	_ns_br="$_ns_base-br"
	_ns_n=$2
	trap '_ns_exit' EXIT
	trap '_ns_exit; trap - EXIT; exit 130' INT
	trap '_ns_exit; trap - EXIT; exit 143' TERM
	# Each name is recorded before its namespace is made: a signal between the two (its trap
	# runs as soon as 'ip netns add' returns) would otherwise leave the namespace behind.
	_ns_names="$_ns_br"
	ip netns add "$_ns_br" || { _ns_fail "cannot create namespace '$_ns_br'"; return 1; }
	ip -n "$_ns_br" link set lo up &&
		ip -n "$_ns_br" link add br0 type bridge stp_state 0 forward_delay 0 &&
		ip -n "$_ns_br" link set br0 up || { _ns_fail "cannot create the bridge"; return 1; }
	_i=1
	while [ "$_i" -le "$_ns_n" ]; do
		_ns="$_ns_base-$_i"
		_ns_names="$_ns_names $_ns"
		ip netns add "$_ns" || { _ns_fail "cannot create namespace '$_ns'"; return 1; }
		# Both veth ends are made inside the bridge's namespace and one moves straight
		# into the host namespace I: neither ever exists in the root namespace.
		ip -n "$_ns_br" link add "v$_i" type veth peer name eth0 netns "$_ns" &&
			ip -n "$_ns_br" link set "v$_i" master br0 up &&
			ip -n "$_ns" link set lo up &&
			ip -n "$_ns" addr add "$NS_NET.$_i/24" brd + dev eth0 &&
			ip -n "$_ns" link set eth0 up || { _ns_fail "cannot wire namespace '$_ns'"; return 1; }
		_i=$((_i + 1))
	done
}

_ns_fail() {
	echo "netns: $1" >&2
	ns_teardown
}

ns_exec() {
	_ns_name "$1" || return 2
	shift
	ip netns exec "$_ns" "$@"
}

ns_addr() {
	_ns_name "$1" || return 2
	echo "$NS_NET.$1"
}

# Shapes both directions: egress of I's eth0 and of its bridge port (traffic towards I).
ns_shape() {
	_ns_name "$1" || return 2
	if [ -z "${2:-}" ]; then
		echo "netns: usage: ns_shape I RATE [BURST]" >&2
		return 2
	fi
	ip -n "$_ns" link >/dev/null || return 1
	tc -n "$_ns" qdisc replace dev eth0 root tbf rate "$2" burst "${3:-32kb}" latency 100ms &&
		tc -n "$_ns_br" qdisc replace dev "v$1" root tbf rate "$2" burst "${3:-32kb}" latency 100ms
}

ns_unshape() {
	_ns_name "$1" || return 2
	tc -n "$_ns" qdisc del dev eth0 root 2>/dev/null
	tc -n "$_ns_br" qdisc del dev "v$1" root 2>/dev/null
	return 0
}

ns_cut() {
	_ns_name "$1" || return 2
	ip -n "$_ns_br" link set "v$1" down
}

ns_heal() {
	_ns_name "$1" || return 2
	ip -n "$_ns_br" link set "v$1" up
}

# A namespace lives on while a process is inside it, so whatever a test left running in
# its namespaces (all started by it through ns_exec) is ended first.
ns_teardown() {
	[ -n "$_ns_names" ] || return 0
	for _sig in TERM KILL; do
		_pids=""
		for _ns in $_ns_names; do
			_p=$(ip netns pids "$_ns" 2>/dev/null)
			[ -z "$_p" ] || _pids="$_pids $_p"
		done
		[ -n "$_pids" ] || break
		# shellcheck disable=SC2086
		kill -s $_sig $_pids 2>/dev/null
		[ $_sig = KILL ] || sleep 0.3
	done
	for _ns in $_ns_names; do
		[ -e "/run/netns/$_ns" ] || continue # recorded, not made yet
		ip netns del "$_ns" 2>/dev/null || echo "netns: cannot delete namespace '$_ns'" >&2
	done
	_ns_names=""
}
