#!/usr/bin/env python3
"""The table of `make bench-compare`: reads a run directory of tools/bench/compare.sh
(base-BENCH-N.txt and work-BENCH-N.txt, the benchmarks' own output) and prints, per figure,
the median and range on each side and the ratio work/base.

The figures are read from the benchmarks' human output with the patterns in FIGURES, so
that any older commit can be the base. A figure a side does not print (an older benchmark,
or wording that changed) is shown as missing, never guessed: when a benchmark's wording
changes, change its pattern here.

usage: compare_figures.py RUN_DIR
"""
import os
import re
import statistics
import sys

LOWER, HIGHER = "lower", "higher"  # which way is better
NOISE = 0.10  # a ratio within 10% of 1 is called the same; single runs move by 10-30%

# (bench, name, unit, better, pattern): the pattern's first group is the figure.
FIGURES = [
    ("store", "write path, untracked", "s", LOWER, r"^write path: untracked ([\d.]+) s"),
    ("store", "write path, tracked", "s", LOWER, r"^write path: .*, tracked ([\d.]+) s"),
    ("store", "write path, tracked/untracked", "x", LOWER, r"^write path: .*ratio ([\d.]+)x"),
    ("store", "seal", "s", LOWER, r"^seal: ([\d.]+) s"),
    ("store", "seal/untracked insert", "x", LOWER, r"^seal: .*, ([\d.]+)x the untracked"),
    ("store", "replica size", "MiB", LOWER, r"^size: .*replica ([\d.]+) MiB"),
    ("store", "replica/plain size", "x", LOWER, r"^size: .*ratio ([\d.]+)x"),
    ("store", "bundle of every row", "MiB", LOWER, r"^bundle: ([\d.]+) MiB"),
    ("store", "apply into an empty replica", "s", LOWER, r"^bundle: .*empty replica in ([\d.]+) s"),
    ("store", "apply vs untracked insert", "%", HIGHER, r"^bundle: .* = ([\d.]+)%"),
    ("store", "incremental seal + bundle (last run)", "ms", LOWER, r"^incremental \(.*seal \+ bundle create ([\d.]+) ms"),
    ("store", "incremental apply (last run)", "ms", LOWER, r"^incremental \(.*, apply ([\d.]+) ms"),
    ("store", "incremental, median of 7", "ms", LOWER, r"^incremental: median ([\d.]+) ms"),
    ("store", "incremental bundle", "B", LOWER, r"^incremental: .*bundle (\d+) bytes"),
    ("store", "sweep", "ms", LOWER, r"^sweep of \d+ rows: ([\d.]+) ms"),
    ("bytes", "clone, bytes on the wire / zstd -19 CSV", "x", LOWER, r"wire/floor ([\d.]+)x"),
    ("bytes", "day's work, bytes per changed row", "B", LOWER, r"^\s+([\d.]+) B per changed row both ways"),
    ("sync", "plain bulk insert (yardstick)", "s", LOWER, r"^clone: .*plain insert ([\d.]+) s"),
    ("sync", "clone", "s", LOWER, r"^clone:\s+([\d.]+) s"),
    ("sync", "clone/plain insert", "x", LOWER, r"^clone: .*ratio ([\d.]+)x"),
    ("sync", "clone peak RSS, laptop", "MiB", LOWER, r"peak RSS: laptop ([\d.]+) MiB"),
    ("sync", "clone peak RSS, HQ", "MiB", LOWER, r"peak RSS: .*HQ ([\d.]+) MiB"),
    ("sync", "incremental, median", "ms", LOWER, r"^incremental: 100 changed rows: ([\d.]+) ms median"),
    ("sync", "incremental, min", "ms", LOWER, r"^incremental: .*min ([\d.]+) ms"),
    ("sync", "incremental, max", "ms", LOWER, r"^incremental: .*max ([\d.]+) ms"),
    ("sync", "seal on HQ, store open included", "ms", LOWER, r"store open included: ([\d.]+) ms"),
    ("sync", "handshake", "ms", LOWER, r"^handshake:\s+([\d.]+) ms"),
    ("sync", "no-op sync, bytes up", "B", LOWER, r"^no-op sync: .*laptop sent (\d+) B"),
    ("sync", "no-op sync, bytes down", "B", LOWER, r"^no-op sync: .*received (\d+) B"),
    ("import", "CSV import, plain", "rows/s", HIGHER, r"^import, plain database:\s+(\d+) rows/s"),
    ("import", "CSV re-import, no change", "rows/s", HIGHER, r"^re-import, nothing changes:\s+(\d+) rows/s"),
    ("import", "CSV export", "rows/s", HIGHER, r"^export CSV:\s+(\d+) rows/s"),
    ("import", "CSV import, replica", "rows/s", HIGHER, r"^import, replica \(captured\):\s+(\d+) rows/s"),
    ("channel", "handshake, both sides", "ms", LOWER, r"both ([\d.]+) ms per handshake"),
    ("channel", "channel throughput", "MiB/s", HIGHER, r"^\s*channel (\d+) MiB/s"),
]

# Lines a run must not print: a benchmark that says its result is wrong.
BAD = re.compile(r"hashes equal after \w+: NO|in step NO")


def read_info(run):
    info = {}
    with open(os.path.join(run, "info")) as f:
        for line in f:
            k, _, v = line.rstrip("\n").partition("=")
            info[k] = v
    return info


def figures_of(text):
    """{(bench, name): value} of one benchmark's output."""
    out = {}
    lines = text.splitlines()
    for bench, name, _unit, _better, pat in FIGURES:
        rx = re.compile(pat)
        for line in lines:
            m = rx.search(line)
            if m:
                out[(bench, name)] = float(m.group(1))
                break
    return out


def fmt(v):
    if v == int(v) and v >= 10:
        return "%d" % v
    if v < 1:
        return "%.3f" % v
    if v < 100:
        return "%.2f" % v
    return "%.1f" % v


def main():
    if len(sys.argv) != 2:
        print(__doc__.strip().splitlines()[-1], file=sys.stderr)
        return 2
    run = sys.argv[1]
    info = read_info(run)
    benches = info["benches"].split()
    rounds = int(info["rounds"])
    vals = {}  # (side, bench, name) -> [values]
    bad = []
    for side in ("base", "work"):
        for b in benches:
            for i in range(1, rounds + 1):
                path = os.path.join(run, "%s-%s-%d.txt" % (side, b, i))
                with open(path, errors="replace") as f:
                    text = f.read()
                for line in text.splitlines():
                    if BAD.search(line):
                        bad.append("%s: %s" % (path, line.strip()))
                for key, v in figures_of(text).items():
                    if key[0] == b:
                        vals.setdefault((side,) + key, []).append(v)

    base = info["base"]
    if info["base_from"] != base:
        base += " (%s)" % info["base_from"]
    print("bench-compare: base %s vs work %s; rounds: %d, each benchmark base then work; %s rows"
          % (base, info["work"], rounds, info["rows"]))
    print("medians, [min-max] over the rounds; work/base > 1 means a larger figure in the work tree;")
    print("'worse'/'better' when the ratio is beyond %d%% in the figure's bad/good direction and the"
          % (NOISE * 100))
    print("ranges do not overlap, with '?' when they do (noise likely)\n")
    head = "%-8s %-37s %-6s %21s %21s %9s" % ("bench", "figure", "unit", "base", "work", "work/base")
    print(head)
    print("-" * len(head))
    worse, missing = [], []
    for bench, name, unit, better, _pat in FIGURES:
        if bench not in benches:
            continue
        a = vals.get(("base", bench, name))
        w = vals.get(("work", bench, name))
        if not a and not w:
            continue
        cell = lambda xs: ("%s [%s-%s]" % (fmt(statistics.median(xs)), fmt(min(xs)), fmt(max(xs)))) if xs else "missing"
        ratio, verdict = "", ""
        if a and w:
            ma, mw = statistics.median(a), statistics.median(w)
            if ma > 0:
                q = mw / ma
                ratio = "%.2f" % q
                bad_way = q > 1 + NOISE if better == LOWER else q < 1 / (1 + NOISE)
                good_way = q < 1 / (1 + NOISE) if better == LOWER else q > 1 + NOISE
                apart = max(a) < min(w) or max(w) < min(a)
                if bad_way:
                    verdict = "worse" if apart else "worse?"
                    worse.append("%s %s (%s)" % (bench, name, verdict))
                elif good_way:
                    verdict = "better" if apart else "better?"
        else:
            missing.append("%s %s (%s)" % (bench, name, "base" if not a else "work"))
        print("%-8s %-37s %-6s %21s %21s %9s %s" % (bench, name, unit, cell(a), cell(w), ratio, verdict))
    print()
    for line in bad:
        print("bench-compare: a benchmark reported a wrong result: %s" % line)
    if missing:
        print("bench-compare: not printed by one side: %s" % "; ".join(missing))
    if worse:
        print("bench-compare: WORSE in the work tree: %s" % "; ".join(worse))
    else:
        print("bench-compare: nothing worse in the work tree by more than %d%%" % (NOISE * 100))
    print("bench-compare: outputs in %s" % run)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
