#!/bin/sh
# The lab's self-test (tools/lab/lab.py corrupt) changes a member row that exists: a district
# may end a run without members (at most 12 phones each, UNIQUE (district_id, phone); deletes
# and REPLACEs take them away), as d1 did in seed 7 under load, when it changed no row and the
# self-test failed. Plain SQLite replicas, no daemon, no root: about a second.
. "$(dirname "$0")/lib.sh"
here=$(cd "$(dirname "$0")/../.." && pwd)
cat >"$T/t.py" <<'PY'
import importlib.util, json, os, sqlite3, sys, time
spec = importlib.util.spec_from_file_location("lab", sys.argv[1])
lab = importlib.util.module_from_spec(spec)
spec.loader.exec_module(lab)

def replicas(out, rows):
    """A Lab whose HQ and enrolled laptops hold rows {node: [(id, district, phone)]}."""
    os.environ["LAB_OUT"] = out
    L = lab.Lab()
    L.t0 = time.time()
    for n in L.nodes:
        os.makedirs(n.dir, exist_ok=True)
        c = sqlite3.connect(os.path.join(n.dir, "zila.db"))
        c.execute("CREATE TABLE people(%s, UNIQUE (district_id, phone))" % ", ".join(
            c + (" TEXT PRIMARY KEY" if c == "id" else "") for c in lab.COLS))
        for key, d, phone in rows.get(n.name, []):
            c.execute("INSERT INTO people(id, district_id, name, phone, joined_on) VALUES (?, ?, 'n', ?, 'j')",
                      (key, d, phone))
        c.commit()
        c.close()
        n.enrolled = True
    return L

def name(L, node, key):
    c = sqlite3.connect(os.path.join(L.byname[node].dir, "zila.db"))
    r = c.execute("SELECT name FROM people WHERE id = ?", (key,)).fetchone()
    c.close()
    return r[0] if r else None

fails = 0
def ok(cond, what):
    global fails
    print(("ok - " if cond else "not ok - ") + what)
    fails += 0 if cond else 1

# d1 without members at the end (every laptop of d1, and HQ, agree): a row of d2 is changed
d2 = [("p-d2", "d2", "d2-01")]
L = replicas(sys.argv[2] + "/a", {"hq": d2, "l4": d2, "l5": d2})
key = L.corrupt()
ok(key == "p-d2", "with d1 empty, the self-test changes d2's row (it changed %r)" % (key,))
ok(name(L, "l5", "p-d2") == "corrupted" and name(L, "l4", "p-d2") == "n",
   "the row is changed on one laptop only, the last of its district")

# no member row anywhere: the lab enters one (recorded in its history), waits, and changes it
L = replicas(sys.argv[2] + "/b", {})
waited = []
L.quiesce = lambda: waited.append(1) or True
key = L.corrupt()
hist = [json.loads(l) for l in open(os.path.join(L.out, "history.jsonl"))]
ok(key is not None and name(L, "l3", key) == "corrupted",
   "with no member row anywhere, the self-test enters one on l3 and changes it (%r)" % (key,))
ok(waited and [(t["node"], t["ops"][0]["op"], t["ops"][0]["key"]) for t in hist] == [("l3", "insert", key)],
   "the row it entered is an acknowledged write in the history, and the lab waited for quiescence")
# a failed run keeps every node's daemon log, its replica directory, the lab's log, events,
# history and report in LAB_KEEP, and the report names it; a run that passes keeps nothing
def fake_run(rc):
    def run(self):
        self.t0 = time.time()
        for n in self.nodes:
            os.makedirs(n.dir, exist_ok=True)
            sqlite3.connect(os.path.join(n.dir, "zila.db")).execute("CREATE TABLE t(x)").connection.commit()
            with open(n.logf, "w") as f:
                f.write("daemon of %s\n" % n.name)
        self.event("INJECTED: a violation")
        with open(os.path.join(self.out, "history.jsonl"), "w") as f:
            f.write("{}\n")
        with open(os.path.join(self.out, "report.txt"), "w") as f:
            f.write("result: %s\n" % ("PASS" if rc == 0 else "FAIL: 1 violations"))
        return rc
    return run
os.environ["LAB_NS_BASE"] = "none"
for rc, sub in ((1, "c"), (0, "d")):
    os.environ["LAB_OUT"] = os.path.join(sys.argv[2], sub)
    os.environ["LAB_KEEP"] = keep = os.path.join(sys.argv[2], sub + "-kept")
    lab.Lab.run = fake_run(rc)
    got = lab.main()
    if rc:
        nodes = [n.name for n in lab.Lab().nodes]
        missing = [f for f in ["lab.log", "events.txt", "history.jsonl", "report.txt"] +
                   [x + ".log" for x in nodes] + [x + "/zila.db" for x in nodes]
                   if not os.path.exists(os.path.join(keep, f))]
        ok(got == 1 and not missing, "a failed run keeps the daemon logs, replicas, the lab's log, "
           "history and report in LAB_KEEP (missing: %s)" % missing)
        ok("INJECTED: a violation" in open(os.path.join(keep, "lab.log")).read() and
           "INJECTED: a violation" in open(os.path.join(keep, "events.txt")).read() and
           open(os.path.join(keep, "hq.log")).read() == "daemon of hq\n",
           "the kept logs are the run's (the lab's events, HQ's daemon log)")
        ok(("kept: daemon logs, replicas, the lab's log and history in %s" % keep)
           in open(os.path.join(keep, "report.txt")).read(), "the report names the directory")
    else:
        ok(got == 0 and not os.path.exists(keep), "a run that passes keeps nothing")
sys.exit(1 if fails else 0)
PY
python3 "$T/t.py" "$here/tools/lab/lab.py" "$T" >"$T/py.out" 2>&1
rc=$?
cat "$T/py.out"
npass=$((npass + $(grep -c '^ok - ' "$T/py.out")))
nfail=$((nfail + $(grep -c '^not ok - ' "$T/py.out")))
[ $rc = 0 ] || [ "$nfail" -gt 0 ] || bad "the lab's self-test check did not run (exit $rc): $(tail -3 "$T/py.out")"
finish
