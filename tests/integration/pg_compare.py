#!/usr/bin/env python3
"""Compares HQ's replica with its PostgreSQL mirror, row by row (test_pg_mirror.sh).

usage: pg_compare.py REPLICA.db PSQL...   (PSQL: the psql command line, database included)
Every tracked table: the same columns in the same order, the same rows (values compared by
type: integers, reals, text, bytes as \\x hex), the replica's indexes present; the parked
rows: the same tables, keys and kinds. Prints what differs; exit 0 when nothing does.
"""
import json
import sqlite3
import subprocess
import sys

KINDS = {1: "duplicate", 2: "orphan", 3: "invalid"}


def psql(cmd, sql):
    out = subprocess.run(cmd + ["-At", "-c", sql], check=True, capture_output=True, text=True).stdout
    return out.strip()


def norm(v):
    if isinstance(v, bytes):
        return "\\x" + v.hex()
    if isinstance(v, float):
        return round(v, 9)
    return v


def qi(name):
    return '"' + name.replace('"', '""') + '"'


def lit(s):
    return "'" + s.replace("'", "''") + "'"


def main():
    db = sqlite3.connect("file:" + sys.argv[1] + "?mode=ro", uri=True)
    cmd = sys.argv[2].split() if len(sys.argv) == 3 else sys.argv[2:]
    bad = []
    tables = [r[0] for r in db.execute("SELECT name FROM zila_tables ORDER BY name")]
    cols = {t: [r[1] for r in db.execute("SELECT * FROM pragma_table_info(?)", (t,))] for t in tables}
    tables = [t for t in tables if cols[t]]
    # One query for everything at PostgreSQL: a psql per table costs seconds.
    parts = []
    for t in tables:
        parts.append("%s, json_build_object('cols', (SELECT json_agg(column_name ORDER BY ordinal_position) FROM "
                     "information_schema.columns WHERE table_schema = 'zila' AND table_name = %s), "
                     "'idx', (SELECT json_agg(indexname) FROM pg_indexes WHERE schemaname = 'zila' AND tablename = %s), "
                     "'rows', CASE WHEN to_regclass(%s) IS NULL THEN NULL ELSE (SELECT json_agg(json_build_array(%s)) FROM zila.%s) END)"
                     % (lit(t), lit(t), lit(t), lit("zila." + qi(t)), ", ".join(qi(c) for c in cols[t]), qi(t)))
    parts.append("'.parked', (SELECT json_agg(json_build_array(tbl, pk, kind, row_data->>'id')) FROM zila.zila_parked_rows)")
    # the rows of a table missing at PostgreSQL fail the query: checked by 'cols' first
    missing = json.loads(psql(cmd, "SELECT json_object_agg(t, to_regclass('zila.' || quote_ident(t)) IS NOT NULL) FROM "
                                   "unnest(ARRAY[%s]::text[]) AS t" % ", ".join(lit(t) for t in tables)))
    for t in tables:
        if not missing.get(t):
            bad.append("%s: no such table at PostgreSQL" % t)
    if bad:
        for b in bad:
            print("differs: " + b)
        return 1
    pg = json.loads(psql(cmd, "SELECT json_build_object(%s)" % ", ".join(parts)))
    nrows = 0
    for t in tables:
        got = pg[t]
        if (got["cols"] or []) != cols[t]:
            bad.append("%s: columns %s at PostgreSQL, %s in the replica" % (t, got["cols"], ",".join(cols[t])))
            continue
        mine = sorted((tuple(norm(v) for v in r) for r in db.execute("SELECT * FROM %s" % qi(t))), key=repr)
        theirs = sorted((tuple(norm(v) for v in r) for r in (got["rows"] or [])), key=repr)
        nrows += len(mine)
        if mine != theirs:
            a, b = set(mine), set(theirs)
            bad.append("%s: %d rows in the replica, %d at PostgreSQL; only in the replica: %s; only at PostgreSQL: %s"
                       % (t, len(mine), len(theirs), sorted(a - b, key=repr)[:3], sorted(b - a, key=repr)[:3]))
        idx = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = ? "
                                         "AND sql IS NOT NULL", (t,))}
        if idx - set(got["idx"] or []):
            bad.append("%s: indexes missing at PostgreSQL: %s" % (t, sorted(idx - set(got["idx"] or []))))
    mine = sorted((t, str(pk), KINDS[k]) for t, pk, k in db.execute(
        "SELECT t.name, p.pk, p.kind FROM zila_parked p JOIN zila_tables t ON t.id = p.tid"))
    got = pg[".parked"] or []
    theirs = sorted((t, pk, k) for t, pk, k, _ in got)
    if mine != theirs:
        bad.append("parked rows: %s in the replica, %s at PostgreSQL" % (mine, theirs))
    for t, pk, k, rid in got:
        if rid is not None and rid != pk:
            bad.append("parked row %s:%s at PostgreSQL holds the values of %s" % (t, pk, rid))
    for b in bad:
        print("differs: " + b)
    if not bad:
        print("same: %d tables, %d rows, %d parked" % (len(tables), nrows, len(mine)))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
