#!/bin/sh
# make bench-compare: builds the benchmarks of a base commit and of the work tree, runs them
# alternately (for each round, each benchmark: base, then work), and prints each figure's
# median on both sides and the ratio work/base (tools/bench/compare_figures.py).
#   BASE     commit or ref to compare with (default: where HEAD left main, `git merge-base
#            HEAD main`; on main itself that is HEAD, so the work tree's changes are measured)
#   ROUNDS   alternations (default 3)
#   ROWS     rows for bench_store, bench_sync and bench_import (default 100000)
#   BENCHES  which of: store sync import channel bytes (default store sync import channel)
# BASE is extracted with `git archive` into build/compare/COMMIT/ and built there with its
# own Makefile; the run's outputs stay in build/compare/run-DATE/ for a second look.
set -eu

ROUNDS=${ROUNDS:-3}
ROWS=${ROWS:-100000}
BENCHES=${BENCHES:-store sync import channel}

die() {
	echo "bench-compare: $*" >&2
	exit 1
}

top=$(git rev-parse --show-toplevel) || die "not in a git work tree"
cd "$top"
case "$ROUNDS" in '' | *[!0-9]* | 0) die "ROUNDS must be a positive number, not '$ROUNDS'" ;; esac
case "$ROWS" in '' | *[!0-9]*) die "ROWS must be a number, not '$ROWS'" ;; esac
if [ -z "${BASE:-}" ]; then
	BASE=$(git merge-base HEAD main) || die "no BASE given and no merge base with 'main'"
	base_from="merge base with main"
else
	base_from="$BASE"
fi
base=$(git rev-parse --verify -q "$BASE^{commit}") || die "'$BASE' is not a commit"
base_short=$(git rev-parse --short "$base")
work_label=$(git rev-parse --short HEAD)
git diff --quiet HEAD -- || work_label="$work_label+changes"

# The base's sources: extracted once per commit (a commit's tree never changes).
bdir=build/compare/$base_short
if [ ! -f "$bdir/.extracted" ]; then
	rm -rf "$bdir"
	mkdir -p "$bdir"
	git archive "$base" | tar -x -C "$bdir" || die "cannot extract $base_short"
	touch "$bdir/.extracted"
fi

# Builds one benchmark in a tree (release, as `make bench`); quiet unless it fails.
build() { # dir bench
	log=build/compare/build-$(echo "$1" | tr / _)-$2.log
	if ! nice make -C "$1" -j2 "build/bench/bench_$2" >"$log" 2>&1; then
		tail -20 "$log" >&2
		return 1
	fi
}

benches=""
for b in $BENCHES; do
	case "$b" in store | sync | import | channel | bytes) ;; *) die "unknown bench '$b' (store sync import channel bytes)" ;; esac
	echo "bench-compare: building bench_$b at $base_short and in the work tree"
	build . "$b" || die "bench_$b does not build in the work tree"
	if build "$bdir" "$b"; then
		benches="$benches $b"
	else
		echo "bench-compare: bench_$b does not build at $base_short: left out" >&2
	fi
done
[ -n "$benches" ] || die "nothing to compare"

run=build/compare/run-$(date -u +%Y%m%dT%H%M%SZ)
mkdir -p "$run"
printf 'base=%s\nbase_from=%s\nwork=%s\nrounds=%s\nrows=%s\nbenches=%s\n' "$base_short" "$base_from" \
	"$work_label" "$ROUNDS" "$ROWS" "$benches" >"$run/info"

run_one() { # tree bench output
	case "$2" in
	store) "$1/build/bench/bench_store" "$ROWS" ;;
	sync) "$1/build/bench/bench_sync" "$ROWS" ;;
	import) "$1/build/bench/bench_import" "$ROWS" ;;
	channel) ZILA_BENCH_QUICK=1 "$1/build/bench/bench_channel" ;;
	bytes) ZILA_GEN="$1/build/tools/zila_gen" ZILA_DAY_SQL="$1/tools/bench/day.sql" "$1/build/bench/bench_bytes" ;;
	esac >"$3" 2>&1 || {
		tail -20 "$3" >&2
		die "bench_$2 failed in $1 (output in $3)"
	}
}

i=1
while [ "$i" -le "$ROUNDS" ]; do
	for b in $benches; do
		echo "bench-compare: round $i/$ROUNDS: bench_$b, base then work"
		run_one "$bdir" "$b" "$run/base-$b-$i.txt"
		run_one . "$b" "$run/work-$b-$i.txt"
	done
	i=$((i + 1))
done

python3 tools/bench/compare_figures.py "$run"
