#!/bin/sh
# The fault-injection lab (README, Tests): HQ and LAB_LAPTOPS laptops as real daemons, each in
# its own network namespace (tests/integration/netns.sh), driven by tools/lab/lab.py.
#   LAB_SEED (1), LAB_SECONDS (40) of faults, LAB_FAULTS (classes, see lab.py --help),
#   LAB_OUT (build/lab/seed-N): replicas, logs, lab.log, history.jsonl, report.txt;
#   LAB_KEEP: where a failed run copies them (unset: not copied).
# Exit 0 when every check holds, 1 with a violation, 0 with "skipped" when not root.
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../../tests/integration/netns.sh"
: "${ZILA:=$here/../../build/zila}"
: "${LAB_SEED:=1}"
: "${LAB_OUT:=$here/../../build/lab/seed-$LAB_SEED}"
n=$(python3 "$here/lab.py" --nodes) || exit 2
ns_setup zlab "$n"
echo "lab: namespaces $_ns_base-*"
export ZILA LAB_SEED LAB_OUT LAB_NS_BASE="$_ns_base" LAB_NS_N="$n"
python3 "$here/lab.py"
rc=$?
exit $rc
