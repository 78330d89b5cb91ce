#!/bin/sh
# The fault-injection lab (tools/lab, README "Tests"), short form: HQ and five laptops in
# network namespaces, a seeded sqlite3 workload and 35 s of seeded faults of every class,
# then every check after healing; and the lab's self-test: one laptop's
# row changed behind zila's back must be reported. Skipped when not root.
# Long form: make lab SEED=n SECONDS=m [FAULTS=all]
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/netns.sh"
ns_require
here=$(cd "$(dirname "$0")/../.." && pwd)
# Every fault class: links cut and throttled, partitions, kill -9, clocks off (minutes to
# 5 years, 3 days ahead), a clock set right after 5 years (#26), a renewal after a day
# (#22 section 3), REPLACE that displaces rows (#22 section 1), a laptop enrolled late.
: "${LAB_FAULTS:=all}"
: "${LAB_KNOWN:=}"
: "${LAB_SEED:=7}"
export ZILA LAB_FAULTS LAB_KNOWN LAB_SEED
export LAB_SECONDS="${LAB_SECONDS:-35}" LAB_QUIET_SECONDS="${LAB_QUIET_SECONDS:-45}"
# A failed run keeps every daemon's log, each replica, the lab's log and history under the
# build tree (the report names the directory; $T goes at exit)
: "${LAB_KEEP:=${CHECK_LOG:-$here/build/check/log}/lab-seed$LAB_SEED}"
export LAB_OUT="$T/lab" LAB_SELFTEST=1 LAB_KEEP
sh "$here/tools/lab/lab.sh" >"$T/lab.out" 2>&1
rc=$?
grep -v '^lab: ' "$T/lab.out"
if [ $rc = 0 ]; then
	ok "seed $LAB_SEED, faults $LAB_FAULTS: every check holds after healing"
else
	bad "seed $LAB_SEED: the lab found violations (exit $rc); its report:"
	head -c 20000 "$LAB_OUT/report.txt" 2>/dev/null || tail -50 "$T/lab.out"
	cp "$T/lab.out" "$LAB_KEEP/lab.out" 2>/dev/null
	echo "kept: daemon logs, replicas, the lab's log and history in $LAB_KEEP"
fi
has "$T/lab.out" "self-test: detected" "the lab detects a row changed behind zila's back"
base=$(sed -n 's/^lab: namespaces \(.*\)-\*$/\1/p' "$T/lab.out")
if [ -z "$base" ]; then
	bad "the lab did not say which namespaces it made"
elif ip netns list | grep -q "^$base-"; then
	bad "namespaces left behind: $(ip netns list | grep "^$base-")"
else
	ok "no namespace left behind"
fi
finish
