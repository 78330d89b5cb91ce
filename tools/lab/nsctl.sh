#!/bin/sh
# The lab driver's hands on the network: one netns.sh operation on the namespaces that
# tools/lab/lab.sh made (LAB_NS_BASE, LAB_NS_N name them), so lab.py needs no shell state.
#   nsctl.sh cut I | heal I | shape I RATE | unshape I
#   nsctl.sh block I J | unblock I J    I drops every packet to J (a blackhole route), so a
#                                       partition is a set of blocked pairs, both ways
#   nsctl.sh exec I CMD...
set -u
. "$(dirname "$0")/../../tests/integration/netns.sh"
_ns_base=$LAB_NS_BASE
_ns_br=$LAB_NS_BASE-br
_ns_n=$LAB_NS_N
op=$1
shift
case $op in
cut) ns_cut "$1" ;;
heal) ns_heal "$1" ;;
shape) ns_shape "$1" "$2" ;;
unshape) ns_unshape "$1" ;;
block)
	_ns_name "$1" || exit 2
	ip -n "$_ns" route replace blackhole "$(ns_addr "$2")/32"
	;;
unblock)
	_ns_name "$1" || exit 2
	ip -n "$_ns" route del blackhole "$(ns_addr "$2")/32" 2>/dev/null
	exit 0
	;;
exec) ns_exec "$@" ;;
*)
	echo "nsctl: unknown operation '$op'" >&2
	exit 2
	;;
esac
