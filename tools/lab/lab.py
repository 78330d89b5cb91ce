#!/usr/bin/env python3
"""zila's fault-injection lab (README, Tests; issue #22), run by tools/lab/lab.sh.

HQ and five laptops (l1-l3 in district d1, l4-l5 in d2) run real `zila daemon`s, each in its
own network namespace, LAN discovery on. A seeded writer makes office transactions through
plain sqlite3 connections on the replicas while a seeded schedule of faults comes and goes.
Then everything heals (links up, clocks right, every daemon running), the lab waits for
quiescence and checks:
  converge   every replica of a read scope holds the same rows and parked rows
  lost       every acknowledged write is present, or superseded by a later or concurrent one
             (a value is superseded only by a write that did not know it; a write that read
             it, or came after it on the same laptop, must win)
  scope      no replica holds a row of a district it may not read
  integrity  PRAGMA integrity_check ok, foreign_key_check clean
  status     `zila status`: nothing unsealed or unsent, no clock warning
Each violation goes to OUT/report.txt with the history of its row (the writes the lab made,
and `zila log` of that row on every replica).

Environment: ZILA, LAB_SEED, LAB_SECONDS (of faults), LAB_OUT, LAB_FAULTS (comma-separated
classes, or "all"), LAB_KNOWN (check classes reported but not failed on), LAB_QUIET_SECONDS
(how long to wait for quiescence), LAB_INJECT=corrupt (after quiescence, one laptop's row is
changed behind zila's back: the lab must fail) or LAB_INJECT=nodelete (l1's delete trigger
dropped at the start), LAB_KEEP (a directory: on a failed run every node's daemon log, a
copy of its replica, the lab's own log, history and report are kept there), LAB_SELFTEST=1 (after the checks, the corrupt injection and the checks
again: they must report it), LAB_NS_BASE/LAB_NS_N (from lab.sh).
"""
import json
import os
import shutil
import random
import sqlite3
import subprocess
import sys
import threading
import time

FAULTS = {
    "cut": "a laptop's or HQ's cable pulled for 2-6 s",
    "throttle": "a link throttled to 16 kbit/s for 3-8 s",
    "partition": "the nodes split in two groups for 3-8 s",
    "kill": "kill -9 of any daemon (HQ too), restarted 0.5-3 s later",
    "skew": "a laptop's clock off by minutes, hours or a day behind (daemon restarted)",
    "skewahead": "a laptop's clock 3 days or 5 years ahead (#22 section 2)",
    "clockfix": "a laptop's clock 5 years behind, then set right (#26)",
    "renew": "a day passes; HQ renews an offline laptop's certificate (#22 section 3)",
    "late": "a laptop (l5) enrolled late, by invite over the network",
    "replace": "INSERT/UPDATE OR REPLACE that displace other rows (#22 section 1)",
}
# What passes on main 2f691e3 (the others wait for the fixes of #22 and #26).
DEFAULT_FAULTS = "cut,throttle,partition,kill,skew,late"
LAPTOPS = [("l1", "d1"), ("l2", "d1"), ("l3", "d1"), ("l4", "d2"), ("l5", "d2")]
LATE = "l5"
DAY = 86400
YEAR = 365 * DAY
PHONES = 12  # phones per district: small enough that they collide
COLS = ["id", "district_id", "name", "name_local", "phone", "gender", "birth_year",
        "address", "org_unit_id", "joined_on"]
TOKEN_COLS = ["name", "address", "joined_on"]  # every write puts a value never written before


LOGF = None  # OUT/lab.log: every line the lab prints, the events among them


def log(msg):
    print("lab: " + msg, flush=True)
    if LOGF is not None:
        LOGF.write("%s lab: %s\n" % (time.strftime("%H:%M:%S", time.gmtime()), msg))
        LOGF.flush()


class Node:
    def __init__(self, lab, name, idx, district):
        self.lab, self.name, self.idx, self.district = lab, name, idx, district
        self.dir = os.path.join(lab.out, "nodes", name)
        self.logf = os.path.join(lab.out, "nodes", name + ".log")
        self.proc = None
        self.skew = 0  # this laptop's clock error, on top of the lab's day
        self.enrolled = False
        self.conn = None
        self.seq = 0

    @property
    def addr(self):
        return "10.77.0.%d" % self.idx

    def clock(self):
        return self.lab.day * DAY + self.skew

    def env(self):
        e = dict(os.environ)
        e["ZILA_CLOCK_SKEW"] = str(self.clock())
        # the lab's days really pass (the uptime says so too); a laptop's own error does not
        e["ZILA_UPTIME_SKEW"] = str(self.lab.day * DAY)
        e.pop("ZILA_DIR", None)
        return e

    def zila(self, *args, timeout=60, ns=False, check=False):
        cmd = [self.lab.zila, "-d", self.dir] + list(args)
        if ns:
            cmd = ["sh", self.lab.nsctl, "exec", str(self.idx)] + cmd
        try:
            r = subprocess.run(cmd, env=self.env(), capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            return 124, "", "timed out"
        if check and r.returncode != 0:
            raise RuntimeError("%s: zila %s: exit %d: %s" % (self.name, " ".join(args), r.returncode, r.stderr.strip()))
        return r.returncode, r.stdout, r.stderr

    def zjson(self, *args):
        rc, out, err = self.zila("--json", *args)
        if rc != 0:
            return None
        try:
            return json.loads(out)
        except ValueError:
            return None

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def start(self):
        if self.alive() or not self.enrolled:
            return
        with open(self.logf, "a") as lf:
            lf.write("=== lab: daemon starts at %.3f with clock skew %d s\n" % (time.time(), self.clock()))
            lf.flush()
            self.proc = subprocess.Popen(
                # ip netns exec execs the daemon: this pid is the daemon's, for kill -9
                ["ip", "netns", "exec", "%s-%d" % (os.environ["LAB_NS_BASE"], self.idx),
                 self.lab.zila, "-d", self.dir, "daemon", "--listen", "0.0.0.0:7400"],
                env=self.env(), stdout=lf, stderr=lf)
        sock = os.path.join(self.dir, "zila.sock")
        for _ in range(100):
            if self.proc.poll() is not None:
                break
            if os.path.exists(sock) and self.zila("status", timeout=10)[0] == 0:
                return
            time.sleep(0.1)
        log("%s: daemon did not come up (exit %s); see %s" % (self.name, self.proc.poll(), self.logf))

    def kill9(self):
        if self.alive():
            self.proc.kill()
            self.proc.wait()
        self.proc = None

    def stop(self):
        if self.alive():
            self.zila("stop", timeout=20)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill9()
        self.proc = None

    def restart(self, skew=None):
        self.kill9() if self.lab.rng.random() < 0.5 else self.stop()
        if skew is not None:
            self.skew = skew
        self.start()

    def db(self):
        if self.conn is None:
            self.conn = sqlite3.connect(os.path.join(self.dir, "zila.db"), timeout=3, isolation_level=None,
                                        check_same_thread=False)  # used under lab.lock only
        return self.conn


class Lab:
    def __init__(self):
        self.seed = int(os.environ.get("LAB_SEED", "1"))
        self.seconds = float(os.environ.get("LAB_SECONDS", "40"))
        self.out = os.path.abspath(os.environ.get("LAB_OUT", "build/lab/seed-%d" % self.seed))
        self.keepdir = os.environ.get("LAB_KEEP") or None
        self.zila = os.path.abspath(os.environ.get("ZILA", "build/zila"))
        self.nsctl = os.path.join(os.path.dirname(os.path.abspath(__file__)), "nsctl.sh")
        f = os.environ.get("LAB_FAULTS", DEFAULT_FAULTS)
        self.faults = set(FAULTS) if f == "all" else {x for x in f.split(",") if x}
        bad = self.faults - set(FAULTS)
        if bad:
            raise SystemExit("lab: unknown fault class %s (have %s)" % (",".join(sorted(bad)), ",".join(FAULTS)))
        self.known = {x for x in os.environ.get("LAB_KNOWN", "").split(",") if x}
        self.quiet = float(os.environ.get("LAB_QUIET_SECONDS", "60"))
        self.inject = os.environ.get("LAB_INJECT", "")
        self.rng = random.Random(self.seed)
        self.wrng = random.Random(self.seed * 7919 + 1)  # the workload's own stream
        self.day = 0
        self.hq = Node(self, "hq", 1, None)
        self.laptops = [Node(self, n, i + 2, d) for i, (n, d) in enumerate(LAPTOPS)]
        self.nodes = [self.hq] + self.laptops
        self.byname = {n.name: n for n in self.nodes}
        self.lock = threading.Lock()  # one fault or one transaction at a time touches a node
        self.hist = None
        self.ntx = 0
        self.nrefused = 0
        self.keyn = 0
        self.stop_writing = threading.Event()
        self.events = []
        self.blocked = set()
        self.cut = set()
        self.shaped = set()

    # ---- the network -------------------------------------------------------------------
    def ns(self, *args):
        subprocess.run(["sh", self.nsctl] + [str(a) for a in args], check=False,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def event(self, msg):
        t = time.time() - self.t0
        self.events.append("%7.2f  %s" % (t, msg))
        log("%6.2f %s" % (t, msg))

    # ---- setup ---------------------------------------------------------------------------
    def setup(self):
        # a run starts afresh: what an earlier run of this seed left is replaced
        shutil.rmtree(os.path.join(self.out, "nodes"), ignore_errors=True)
        os.makedirs(os.path.join(self.out, "nodes"), exist_ok=True)
        pw = os.path.join(self.out, "pw")
        with open(pw, "w") as f:
            f.write("a passphrase for the lab only\n")
        for n in self.nodes:
            n.zila("init", check=True)
        self.hq.zila("org", "init", "--name", "Lab Party", "--passphrase-file", pw, check=True)
        self.hq.zila("sql", "INSERT INTO states(id, name) VALUES ('s1', 'State');"
                     "INSERT INTO districts(id, state_id, name) VALUES ('d1', 's1', 'One'), ('d2', 's1', 'Two')",
                     check=True)
        self.hq.enrolled = True
        self.hq.start()
        for n in self.laptops:
            if n.name == LATE and "late" in self.faults:
                continue
            self.join(n)

    def join(self, n):
        rc, out, err = self.hq.zila("invite", "--district", n.district)
        if rc != 0:
            return False
        code = out.split()[0]
        rc, out, err = n.zila("join", code, "--hq", self.hq.addr + ":7400", "--name", n.name,
                              "--timeout", "10", ns=True)
        if rc != 0:
            log("%s: join failed: %s" % (n.name, err.strip()))
            return False
        n.zila("peer", "add", "--hq", self.hq.addr + ":7400")
        n.enrolled = True
        n.start()
        n.zila("sync", "hq", "--wait", "--timeout", "15")
        return True

    # ---- the workload --------------------------------------------------------------------
    def token(self, what):
        self.keyn += 1
        return "%s-%d-%d" % (what, self.seed, self.keyn)

    def phone(self, d):
        return "%s-%02d" % (d, self.wrng.randrange(PHONES))

    def record(self, node, ops, t):
        node.seq += 1
        self.ntx += 1
        for op in ops:
            op["table"] = "people"
        rec = {"t": round(t, 4), "rel": round(t - self.t0, 4), "node": node.name, "seq": node.seq,
               "tx": self.ntx, "ops": ops}
        self.hist.write(json.dumps(rec) + "\n")
        self.hist.flush()

    def row(self, c, key):
        r = c.execute("SELECT %s FROM people WHERE id = ?" % ", ".join(COLS), (key,)).fetchone()
        return dict(zip(COLS, r)) if r else None

    def pick(self, c, d, exclude=None):
        if self.wrng.random() < 0.5:
            # a recent row: colleagues edit what was just entered
            r = c.execute("SELECT id FROM people WHERE district_id = ? AND id != ? ORDER BY rowid DESC LIMIT 5",
                          (d, exclude or "")).fetchall()
            if r:
                return self.wrng.choice(r)[0]
        r = c.execute("SELECT id FROM people WHERE district_id = ? AND id != ? ORDER BY random() LIMIT 1",
                      (d, exclude or "")).fetchone()
        return r[0] if r else None

    def tx(self, node, body):
        """Runs body(conn) -> ops in one IMMEDIATE transaction; records it if it committed."""
        c = node.db()
        try:
            c.execute("BEGIN IMMEDIATE")
        except sqlite3.Error:
            self.nrefused += 1
            return False
        try:
            ops = body(c)
            if not ops:
                c.execute("ROLLBACK")
                return False
            c.execute("COMMIT")
        except sqlite3.Error:
            try:
                c.execute("ROLLBACK")
            except sqlite3.Error:
                pass
            self.nrefused += 1
            return False
        self.record(node, ops, time.time())
        return True

    def displaced(self, c, d, phone, key):
        """The rows a REPLACE of key to phone removes: recorded as deletes of what they held."""
        out = []
        for (other,) in c.execute("SELECT id FROM people WHERE district_id = ? AND phone = ? AND id != ?",
                                  (d, phone, key)).fetchall():
            r = self.row(c, other)
            out.append({"op": "displace", "key": other, "observed": r})
        return out

    def op_insert(self, node, c):
        d = node.district
        key = self.token("p")
        v = {"id": key, "district_id": d, "name": self.token("n"), "phone": self.phone(d),
             "address": self.token("a"), "joined_on": self.token("j")}
        c.execute("INSERT INTO people(id, district_id, name, phone, address, joined_on) VALUES (?,?,?,?,?,?)",
                  (key, d, v["name"], v["phone"], v["address"], v["joined_on"]))
        return [{"op": "insert", "key": key, "values": v, "observed": None}]

    def op_update(self, node, c, key=None, col=None):
        key = key or self.pick(c, node.district)
        if key is None:
            return None
        col = col or self.wrng.choice(["name", "address", "name", "phone"])
        old = self.row(c, key)
        if old is None:
            return None
        val = self.phone(node.district) if col == "phone" else self.token(col[0])
        c.execute("UPDATE people SET %s = ? WHERE id = ?" % col, (val, key))
        return [{"op": "update", "key": key, "values": {col: val}, "observed": old}]

    def op_delete(self, node, c, key=None):
        key = key or self.pick(c, node.district)
        if key is None:
            return None
        old = self.row(c, key)
        if old is None:
            return None
        c.execute("DELETE FROM people WHERE id = ?", (key,))
        return [{"op": "delete", "key": key, "observed": old}]

    def op_replace(self, node, c):
        """INSERT OR REPLACE of an existing or new key with another row's phone."""
        d = node.district
        key = self.pick(c, d) if self.wrng.random() < 0.6 else None
        key = key or self.token("p")
        other = self.pick(c, d, exclude=key)
        phone = c.execute("SELECT phone FROM people WHERE id = ?", (other,)).fetchone()[0] if other else self.phone(d)
        if phone is None:
            phone = self.phone(d)
        old = self.row(c, key)
        ops = self.displaced(c, d, phone, key)
        v = {"id": key, "district_id": d, "name": self.token("n"), "phone": phone,
             "address": self.token("a"), "joined_on": self.token("j")}
        c.execute("INSERT OR REPLACE INTO people(id, district_id, name, phone, address, joined_on) VALUES (?,?,?,?,?,?)",
                  (key, d, v["name"], phone, v["address"], v["joined_on"]))
        return ops + [{"op": "replace", "key": key, "values": v, "observed": old}]

    def op_update_replace(self, node, c):
        """UPDATE OR REPLACE of one row's phone to another row's: the other row goes."""
        d = node.district
        key = self.pick(c, d)
        other = self.pick(c, d, exclude=key) if key else None
        if other is None:
            return None
        phone = c.execute("SELECT phone FROM people WHERE id = ?", (other,)).fetchone()[0]
        if phone is None:
            return None
        old = self.row(c, key)
        ops = self.displaced(c, d, phone, key)
        c.execute("UPDATE OR REPLACE people SET phone = ? WHERE id = ?", (phone, key))
        return ops + [{"op": "update", "key": key, "values": {"phone": phone}, "observed": old}]

    def writers(self, d=None):
        return [n for n in self.laptops if n.enrolled and (d is None or n.district == d)]

    def step(self):
        ws = self.writers()
        r = self.wrng.random()
        if True:  # the writer never waits for a fault: its sqlite3 is the clerks', not zila's
            if r < 0.08:
                # the same member edited on every laptop of d1 within milliseconds
                d1 = self.writers("d1")
                key = self.pick(d1[0].db(), "d1") if d1 else None
                if key:
                    for n in d1:
                        self.tx(n, lambda c, n=n: self.op_update(n, c, key, "name"))
                return
            if r < 0.13:
                # a delete racing updates of the same row on the district's other laptops
                d = self.wrng.choice(["d1", "d2"])
                nd = self.writers(d)
                key = self.pick(nd[0].db(), d) if nd else None
                if key:
                    order = list(nd)
                    self.wrng.shuffle(order)
                    self.tx(order[0], lambda c: self.op_delete(order[0], c, key))
                    for n in order[1:]:
                        self.tx(n, lambda c, n=n: self.op_update(n, c, key, "address"))
                return
            node = self.wrng.choice(ws + [self.hq]) if self.wrng.random() < 0.08 else self.wrng.choice(ws)
            if node is self.hq:
                # HQ edits a member of either district
                d = self.wrng.choice(["d1", "d2"])
                self.tx(node, lambda c: self.op_update(Fake(d), c, None, "name"))
                return
            ops = [(0.30, self.op_insert), (0.30, self.op_update), (0.12, self.op_delete)]
            if "replace" in self.faults:
                ops += [(0.12, self.op_replace), (0.08, self.op_update_replace)]
            x = self.wrng.random() * sum(w for w, _ in ops)
            for w, f in ops:
                x -= w
                if x <= 0:
                    break
            self.tx(node, lambda c: f(node, c))

    def writer(self):
        while not self.stop_writing.is_set():
            try:
                self.step()
            except Exception as e:  # a bug of the lab itself: say so and go on
                log("workload: %r" % e)
            self.stop_writing.wait(self.wrng.uniform(0.1, 0.3))

    # ---- faults --------------------------------------------------------------------------
    def partition(self, on):
        if on:
            nodes = [n for n in self.nodes]
            self.rng.shuffle(nodes)
            k = self.rng.randint(2, len(nodes) - 2)
            a, b = nodes[:k], nodes[k:]
            for x in a:
                for y in b:
                    self.ns("block", x.idx, y.idx)
                    self.ns("block", y.idx, x.idx)
                    self.blocked |= {(x.idx, y.idx), (y.idx, x.idx)}
            return "partition {%s} | {%s}" % (",".join(n.name for n in a), ",".join(n.name for n in b))
        for i, j in sorted(self.blocked):
            self.ns("unblock", i, j)
        self.blocked.clear()
        return "partition healed"

    def schedule(self):
        """The seeded list of (time, fault, node): each fault with its own end."""
        plan = []
        kinds = sorted(self.faults - {"replace", "late", "clockfix", "renew"})
        t = 1.0
        while kinds and t < self.seconds - 2:
            plan.append((t, self.rng.choice(kinds), self.rng.choice(self.nodes)))
            t += self.rng.uniform(1.0, 3.0)
        if "late" in self.faults:
            plan.append((self.rng.uniform(0.2, 0.6) * self.seconds, "late", self.byname[LATE]))
        if "clockfix" in self.faults:
            # a 5-year error set right while the laptop is out of reach of HQ (#26), once
            # every 40 s or so
            for _ in range(max(1, int(self.seconds // 40))):
                t = self.rng.uniform(0.05, 0.7) * self.seconds
                plan.append((t, "clockfix", self.rng.choice(self.laptops[:4])))
        if "renew" in self.faults:
            plan.append((self.rng.uniform(0.3, 0.6) * self.seconds, "renew", self.rng.choice(self.laptops[:4])))
        return sorted(plan, key=lambda p: p[0])

    def later(self, delay, fn):
        tm = threading.Timer(delay, self.locked, (fn,))
        tm.daemon = True
        self.timers.append(tm)
        tm.start()

    def locked(self, fn):
        if self.healing:
            return
        with self.lock:
            fn()

    def fault(self, kind, n):
        r = self.rng
        if kind == "cut":
            if n.idx in self.cut:
                return
            d = r.uniform(2, 6)
            self.ns("cut", n.idx)
            self.cut.add(n.idx)
            self.event("cut %s for %.1f s" % (n.name, d))
            self.later(d, lambda: (self.ns("heal", n.idx), self.cut.discard(n.idx), self.event("heal %s" % n.name)))
        elif kind == "throttle":
            if n.idx in self.shaped:
                return
            d = r.uniform(3, 8)
            self.ns("shape", n.idx, "16kbit")
            self.shaped.add(n.idx)
            self.event("throttle %s to 16 kbit/s for %.1f s" % (n.name, d))
            self.later(d, lambda: (self.ns("unshape", n.idx), self.shaped.discard(n.idx),
                                   self.event("unthrottle %s" % n.name)))
        elif kind == "partition":
            if self.blocked:
                return
            d = r.uniform(3, 8)
            self.event(self.partition(True) + " for %.1f s" % d)
            self.later(d, lambda: self.event(self.partition(False)))
        elif kind == "kill":
            if not n.alive():
                return
            d = r.uniform(0.5, 3)
            n.kill9()
            self.event("kill -9 %s, restart in %.1f s" % (n.name, d))
            self.later(d, lambda: (n.start(), self.event("restarted %s" % n.name)))
        elif kind in ("skew", "skewahead"):
            if n is self.hq or not n.enrolled:
                return
            if kind == "skew":
                s = r.choice([-r.randint(60, 3600), r.randint(60, 3600), -3 * 3600, 3 * 3600, -DAY + 600])
            else:
                s = r.choice([3 * DAY, 5 * YEAR])
            n.restart(s)
            self.event("clock of %s off by %+d s (daemon restarted)" % (n.name, s))
            self.later(r.uniform(3, 8), lambda: (n.restart(0), self.event("clock of %s set right" % n.name)))
        elif kind == "clockfix":
            if not n.enrolled:
                return
            n.restart(-5 * YEAR)
            self.event("clock of %s 5 years behind (daemon restarted)" % n.name)
            n.zila("sync", "hq", "--wait", "--timeout", "5")

            def fix():
                # HQ out of reach when the clock is set right, as in #26
                self.ns("cut", n.idx)
                n.restart(0)
                self.event("clock of %s set right after 5 years, with HQ out of reach for 3 s" % n.name)
                self.later(3, lambda: (self.ns("heal", n.idx), self.event("heal %s" % n.name)))
            self.later(r.uniform(3, 6), fix)
        elif kind == "late":
            if n.enrolled:
                return
            if self.join(n):
                self.event("late enrolment of %s" % n.name)
            else:
                self.event("late enrolment of %s failed, again in 2 s" % n.name)
                self.later(2, lambda: self.fault("late", n))
        elif kind == "renew":
            self.renew(n)

    def renew(self, n):
        """n goes offline and writes; a day passes; HQ renews n's certificate; n comes back."""
        self.ns("cut", n.idx)
        self.event("renew: %s offline" % n.name)
        self.lock.release()
        try:
            time.sleep(3)  # it writes while offline
        finally:
            self.lock.acquire()
        # what it wrote is sealed before the day passes (its daemon would have, within a second)
        n.zila("seal")
        self.day += 1
        for m in self.nodes:
            if m.alive():
                m.restart()
        self.event("a day passes: every clock +1 day (daemons restarted)")
        req = os.path.join(self.out, "renew-%s-%d.req" % (n.name, self.day))
        cert = os.path.join(self.out, "renew-%s-%d.cert" % (n.name, self.day))
        for f in (req, cert):
            if os.path.exists(f):
                os.unlink(f)
        ok = (n.zila("enrol", "request", req, "--name", n.name)[0] == 0 and
              self.hq.zila("enrol", "sign", req, cert, "--district", n.district, "--role", "district")[0] == 0 and
              n.zila("enrol", "install", cert)[0] == 0)
        n.restart()
        self.event("renew: HQ renewed %s's certificate%s" % (n.name, "" if ok else " (FAILED)"))
        self.later(1, lambda: (self.ns("heal", n.idx), self.event("heal %s" % n.name)))

    # ---- healing and checks --------------------------------------------------------------
    def heal(self):
        self.healing = True
        for tm in self.timers:
            tm.cancel()
        with self.lock:
            self.partition(False)
            for n in self.nodes:
                self.ns("heal", n.idx)
                self.ns("unshape", n.idx)
            self.cut.clear()
            self.shaped.clear()
            for n in self.laptops:
                if n.enrolled or n.name != LATE:
                    continue
                for _ in range(5):
                    if self.join(n):
                        self.event("late enrolment of %s (at healing)" % n.name)
                        break
                    time.sleep(1)
            for n in self.nodes:
                if n.skew != 0:
                    n.restart(0)
                n.start()
        self.event("healed: links up, clocks right, every daemon running")

    def dump(self, n, scope):
        """n's rows of scope (a district, or None for the catalogue) and its parked rows."""
        c = sqlite3.connect(os.path.join(n.dir, "zila.db"), timeout=10)
        try:
            if scope is None:
                rows = c.execute("SELECT 'states', id, name FROM states UNION ALL "
                                 "SELECT 'districts', id, name FROM districts ORDER BY 1, 2").fetchall()
            else:
                rows = c.execute("SELECT %s FROM people WHERE district_id = ? ORDER BY id" % ", ".join(COLS),
                                 (scope,)).fetchall()
        finally:
            c.close()
        parked = []
        if scope is not None:
            j = n.zjson("duplicates") or {"duplicates": None}
            for p in j.get("duplicates") or []:
                vals = {c["name"]: c["duplicate"] for c in p["columns"]}
                if vals.get("district_id") == scope:
                    parked.append(tuple(vals.get(k) for k in COLS))
            parked.sort(key=lambda t: str(t))
        return {"rows": [tuple(r) for r in rows], "parked": parked}

    def scopes(self):
        """(scope, replicas that may read it)"""
        out = [(None, [n for n in self.nodes if n.enrolled])]
        for d in ("d1", "d2"):
            out.append((d, [self.hq] + self.writers(d)))
        return out

    def status_ok(self, n):
        st = n.zjson("status")
        if st is None:
            return False
        loc = st.get("local", {})
        return loc.get("unsealed", 1) == 0 and loc.get("unsent", 1) == 0

    def quiesce(self):
        t_end = time.time() + self.quiet
        t0 = time.time()
        rnd = 0
        while True:
            rnd += 1
            for n in self.laptops:
                if n.enrolled:
                    n.zila("sync", "hq", "--wait", "--timeout", "10")
            for n in self.laptops:
                if n.enrolled:
                    n.zila("sync", "--wait", "--timeout", "10")
            time.sleep(1)
            same = all(all(self.dump(m, s) == self.dump(ns[0], s) for m in ns[1:]) for s, ns in self.scopes())
            st = all(self.status_ok(n) for n in self.nodes if n.enrolled)
            if same and st:
                self.event("quiescent after %.1f s (%d rounds)" % (time.time() - t0, rnd))
                return True
            if time.time() > t_end:
                self.event("not quiescent after %.1f s (%d rounds): rows %s, status %s" %
                           (time.time() - t0, rnd, "equal" if same else "differ", "clean" if st else "not clean"))
                return False

    def load_history(self):
        txs = []
        with open(os.path.join(self.out, "history.jsonl")) as f:
            for line in f:
                txs.append(json.loads(line))
        return txs

    def check(self):
        viol = []  # (class, key or None, message)
        txs = self.load_history()
        # converge
        for s, ns in self.scopes():
            ref = self.dump(ns[0], s)
            for m in ns[1:]:
                got = self.dump(m, s)
                for part in ("rows", "parked"):
                    a = {r[0] if s else (r[0], r[1]): r for r in ref[part]}
                    b = {r[0] if s else (r[0], r[1]): r for r in got[part]}
                    for k in sorted(set(a) | set(b), key=str):
                        if a.get(k) != b.get(k):
                            viol.append(("converge", k if s else None,
                                         "%s %s: %s has %s, %s has %s" % (part[:-1] if part == "rows" else "parked",
                                                                          k, ns[0].name, a.get(k), m.name, b.get(k))))
        # status: a laptop whose rows HQ does not hold must be told
        for d in ("d1", "d2"):
            ref = self.dump(self.hq, d)
            for m in self.writers(d):
                if self.dump(m, d) == ref:
                    continue
                st = m.zjson("status") or {}
                if not st.get("warnings") and not (st.get("local") or {}).get("unsent_to_hq"):
                    viol.append(("status", None, "%s: its rows of %s differ from HQ's, yet its status says "
                                 "nothing is waiting for HQ and warns of nothing" % (m.name, d)))
        # scope
        for n in self.laptops:
            if not n.enrolled:
                continue
            c = sqlite3.connect(os.path.join(n.dir, "zila.db"))
            tabs = [r[0] for r in c.execute(
                "SELECT m.name FROM sqlite_master m WHERE m.type = 'table' AND m.name NOT LIKE 'zila_%' AND "
                "EXISTS (SELECT 1 FROM pragma_table_info(m.name) WHERE name = 'district_id')")]
            for t in tabs:
                for (cnt,) in c.execute("SELECT count(*) FROM %s WHERE district_id != ?" % t, (n.district,)):
                    if cnt:
                        viol.append(("scope", None, "%s holds %d rows of %s of another district" % (n.name, cnt, t)))
            # integrity
            self.integrity(n, c, viol)
            c.close()
        c = sqlite3.connect(os.path.join(self.hq.dir, "zila.db"))
        self.integrity(self.hq, c, viol)
        c.close()
        # status
        for n in self.nodes:
            if not n.enrolled:
                continue
            st = n.zjson("status")
            if st is None:
                viol.append(("status", None, "%s: no status (daemon down?)" % n.name))
                continue
            loc = st.get("local", {})
            for k in ("unsealed", "unsent"):
                if loc.get(k):
                    viol.append(("status", None, "%s: %s %d after quiescence" % (n.name, k, loc[k])))
            if loc.get("unsent_to_hq"):
                viol.append(("status-hq-self" if n is self.hq else "status", None,
                             "%s: %d entries 'not yet at HQ'" % (n.name, loc["unsent_to_hq"])))
            clk = st.get("clock") or {}
            if clk.get("message") or clk.get("state") not in ("ok", "none", None):
                viol.append(("status", None, "%s: clock warning with a right clock: %s (%s)" %
                             (n.name, clk.get("message"), clk.get("state"))))
            for w in st.get("warnings") or []:
                if "clock" in w or "HQ's time" in w:
                    viol.append(("status", None, "%s: warning: %s" % (n.name, w)))
        if "late" in self.faults and not self.byname[LATE].enrolled:
            viol.append(("late", None, "%s never managed to join" % LATE))
        # lost: per replica, its rows against the history
        for n in self.nodes:
            if n.enrolled:
                self.check_history(n, txs, viol)
        return viol

    def integrity(self, n, c, viol):
        r = c.execute("PRAGMA integrity_check").fetchall()
        if r != [("ok",)]:
            viol.append(("integrity", None, "%s: integrity_check: %s" % (n.name, r[:5])))
        r = c.execute("PRAGMA foreign_key_check").fetchall()
        if r:
            viol.append(("integrity", None, "%s: foreign_key_check: %s" % (n.name, r[:5])))

    def check_history(self, n, txs, viol):
        """Every acknowledged write present or superseded, on replica n (its read scope).

        Writes are ordered by what the lab knows of causality: a write follows another if it
        came later on the same replica, or if its transaction read the other's value (every
        name, address and joined_on written is new, so a value names its write). joined_on
        is written only when a row is created (INSERT, REPLACE): it names the row's
        incarnation."""
        scope = None if n is self.hq else n.district
        cells = {}  # (key, col) -> list of writes (node, seq, tx, value, observed value)
        exist = {}  # key -> list of (node, seq, tx, kind, incarnation or observed incarnation)
        for t in txs:
            for op in t["ops"]:
                k = op["key"]
                obs = op.get("observed") or {}
                if op["op"] in ("insert", "replace", "update"):
                    d = (op.get("values") or {}).get("district_id") or obs.get("district_id")
                else:
                    d = obs.get("district_id")
                if scope is not None and d != scope:
                    continue
                if op["op"] in ("insert", "replace", "update"):
                    for col, v in op["values"].items():
                        if col in TOKEN_COLS:
                            cells.setdefault((k, col), []).append((t["node"], t["seq"], t["tx"], v, obs.get(col)))
                if op["op"] in ("insert", "replace"):
                    exist.setdefault(k, []).append((t["node"], t["seq"], t["tx"], "create", op["values"]["joined_on"]))
                elif op["op"] in ("delete", "displace"):
                    exist.setdefault(k, []).append((t["node"], t["seq"], t["tx"], op["op"], obs.get("joined_on")))
        final = {}
        c = sqlite3.connect(os.path.join(n.dir, "zila.db"), timeout=10)
        for r in c.execute("SELECT %s FROM people" % ", ".join(COLS)):
            final[r[0]] = dict(zip(COLS, r))
        c.close()
        parked = {}
        for p in (n.zjson("duplicates") or {}).get("duplicates") or []:
            parked[p["row"]] = {x["name"]: x["duplicate"] for x in p["columns"]}

        def follows(a, b):  # write a (node, seq, tx, value, observed) known to come after b
            return (a[0] == b[0] and a[1] > b[1]) or (a[4] is not None and a[4] == b[3])

        for k in sorted(set(exist) | {kk for kk, _ in cells}):
            row = final.get(k) or parked.get(k)
            where = "table" if k in final else "parked" if k in parked else None
            ex = exist.get(k, [])
            if row is None:
                creates = [e for e in ex if e[3] == "create"]
                removes = [e for e in ex if e[3] != "create"]
                for cr in creates:
                    # absent: some removal must not come before this creation
                    if not any(not (rm[0] == cr[0] and rm[1] < cr[1]) for rm in removes):
                        viol.append(("lost", k, "%s: row %s is gone, but nothing removed it after it was "
                                     "created by %s tx %d" % (n.name, k, cr[0], cr[2])))
                        break
                continue
            inc = row.get("joined_on")
            mine = [e for e in ex if e[3] == "create" and e[4] == inc]
            if not mine:
                viol.append(("lost", k, "%s: row %s (%s) has joined_on %r, which no acknowledged write created"
                             % (n.name, k, where, inc)))
            else:
                cr = mine[0]
                for rm in ex:
                    if rm[3] != "create" and ((rm[0] == cr[0] and rm[1] > cr[1]) or rm[4] == inc):
                        viol.append(("lost", k, "%s: row %s is %s, but %s tx %d (%s) removed it after it was "
                                     "created by %s tx %d" % (n.name, k, "shown" if where == "table" else where,
                                                               rm[0], rm[2], rm[3], cr[0], cr[2])))
                        break
            for col in TOKEN_COLS:
                ws = cells.get((k, col), [])
                v = row.get(col)
                w = [x for x in ws if x[3] == v]
                if not w:
                    viol.append(("lost", k, "%s: %s.%s = %r, which no acknowledged write wrote" % (n.name, k, col, v)))
                    continue
                later = [x for x in ws if follows(x, w[0])]
                if later:
                    x = later[0]
                    viol.append(("lost", k, "%s: %s.%s = %r (%s tx %d), but %s tx %d wrote %r after it%s" %
                                 (n.name, k, col, v, w[0][0], w[0][2], x[0], x[2], x[3],
                                  " (on the same laptop)" if x[0] == w[0][0] else " (having read it)")))

    def row_history(self, key, txs):
        out = []
        for t in txs:
            for op in t["ops"]:
                if op["op"] == "displace" and op["key"] == key or op["key"] == key:
                    out.append("    %8.3f s  %-3s tx %-4d %-8s %s%s" % (
                        t["rel"], t["node"], t["tx"], op["op"],
                        json.dumps(op.get("values")) if op.get("values") else "",
                        "  read " + json.dumps({c: (op.get("observed") or {}).get(c) for c in ("name", "address", "phone", "joined_on")})
                        if op.get("observed") else ""))
        return out

    def report(self, viol, quiet_ok):
        txs = self.load_history()
        nfail = sum(1 for v in viol if v[0] not in self.known)
        lines = ["zila lab, seed %d, %.0f s of faults, faults %s" % (self.seed, self.seconds, ",".join(sorted(self.faults))),
                 "binary %s" % self.zila,
                 "%d transactions acknowledged, %d refused by SQLite (busy, UNIQUE), %d nodes" %
                 (len(txs), self.nrefused, len(self.nodes)),
                 "quiescence: %s" % ("reached" if quiet_ok else "NOT reached in %.0f s" % self.quiet),
                 "result: %s" % ("PASS" if nfail == 0 else "FAIL: %d violations" % nfail), ""]
        classes = {}
        for v in viol:
            classes.setdefault(v[0], []).append(v)
        for cl in sorted(classes):
            lines.append("%s: %d%s" % (cl, len(classes[cl]), " (known, not failed on)" if cl in self.known else ""))
        lines += ["", "== events"] + self.events + [""]
        keys = []
        for v in viol:
            lines.append("VIOLATION %s: %s" % (v[0], v[2]))
            if v[1] is not None and v[1] not in keys:
                keys.append(v[1])
        names = {}
        for n in self.nodes:
            try:
                with open(os.path.join(n.dir, "device.key"), "rb") as f:
                    names[f.read()[32:40].hex()] = n.name
            except OSError:
                pass
        for k in keys[:40]:
            lines += ["", "== history of people %s" % k, "  writes acknowledged (time since start, node, tx, op):"]
            lines += self.row_history(k, txs)
            for n in self.nodes:
                if not n.enrolled:
                    continue
                lg = n.zjson("log", "--table", "people", "--id", k) or []
                lines.append("  zila log on %s (%d entries):" % (n.name, len(lg)))
                for e in lg:
                    ch = {c: x.get("new") for c, x in (e.get("changes") or {}).items()
                          if c in ("name", "address", "phone", "joined_on")}
                    dev = e.get("device")
                    lines.append("    %s %s %s #%s %s %s" % (e.get("time"), names.get(dev, dev), e.get("partition"),
                                                             e.get("seq"), e.get("op"), json.dumps(ch) if ch else ""))
                row = n.zila("sql", "SELECT * FROM people WHERE id = '%s'" % k)[1].strip()
                lines.append("    now: %s" % (row.splitlines()[-1] if row else "(no row)"))
        if len(keys) > 40:
            lines.append("... and %d more rows" % (len(keys) - 40))
        with open(os.path.join(self.out, "report.txt"), "w") as f:
            f.write("\n".join(lines) + "\n")
        return nfail

    def selftest(self, before):
        """After the checks: a row corrupted on one laptop must be reported."""
        key = self.corrupt()
        if key is None:
            print("self-test: FAILED: no laptop holds a member row to change behind zila's back, "
                  "even after the lab entered one", flush=True)
            return False
        viol = self.check()
        hits = [v for v in viol if v[1] == key]
        cls = sorted({v[0] for v in hits})
        if "converge" in cls and "lost" in cls:
            print("self-test: detected the row %s changed behind zila's back (%s; %d violations, %d before)"
                  % (key, ", ".join(cls), len(viol), before), flush=True)
            return True
        print("self-test: FAILED: the row %s changed behind zila's back was not reported (%s)"
                  % (key, cls), flush=True)
        return False

    def victim(self):
        """(laptop, member row) to corrupt: the last laptop of d1 first, then the others of d1,
        then d2's. A district may well end without members: it holds at most PHONES of them
        (UNIQUE (district_id, phone)), and deletes and REPLACEs take them away."""
        for d in ("d1", "d2"):
            for n in reversed(self.writers(d)):
                key = self.pick(n.db(), d)
                if key is not None:
                    return n, key
        return None, None

    def corrupt(self):
        """The lab must be able to fail: one laptop's row changed with triggers off. The row
        exists: with no member row on any laptop, a clerk of the last laptop of d1 enters one
        (an acknowledged write in the history) and the lab waits for quiescence first."""
        n, key = self.victim()
        if key is None and self.writers("d1"):
            w = self.writers("d1")[-1]
            self.hist = open(os.path.join(self.out, "history.jsonl"), "a")
            try:
                entered = self.tx(w, lambda c: self.op_insert(w, c))
            finally:
                self.hist.close()
            self.event("no member row on any laptop: %s entered one%s" % (w.name, "" if entered else " (FAILED)"))
            self.quiesce()
            n, key = self.victim()
        if key is None:
            self.event("INJECTED: nothing, no laptop holds a member row")
            return None
        r = subprocess.run(["sqlite3", os.path.join(n.dir, "zila.db")],
                           input=".dbconfig enable_trigger off\nUPDATE people SET name = 'corrupted' WHERE id = '%s';\n" % key,
                           text=True, capture_output=True)
        if r.returncode != 0:
            log("self-test: sqlite3 failed on %s: %s" % (n.name, r.stderr.strip()))
        self.event("INJECTED: %s's row %s renamed behind zila's back (triggers off)" % (n.name, key))
        return key

    # ---- a failed run's evidence -----------------------------------------------------------
    def keep(self):
        """Copies what a failed run leaves to LAB_KEEP (replacing an earlier run's): each
        node's daemon log and replica directory (as the daemon left it: it is stopped or
        killed first), the lab's log, history and report. Returns the directory
        or None (no LAB_KEEP)."""
        if not self.keepdir:
            return None
        d = os.path.abspath(self.keepdir)
        shutil.rmtree(d, ignore_errors=True)
        os.makedirs(d)
        rep = os.path.join(self.out, "report.txt")
        if os.path.exists(rep):
            with open(rep, "a") as f:
                f.write("\nkept: daemon logs, replicas, the lab's log and history in %s\n" % d)
        for f in ("lab.log", "history.jsonl", "report.txt"):
            src = os.path.join(self.out, f)
            if os.path.exists(src):
                shutil.copy2(src, d)
        if self.events:
            with open(os.path.join(d, "events.txt"), "w") as f:
                f.write("\n".join(self.events) + "\n")
        for n in self.nodes:
            if os.path.exists(n.logf):
                shutil.copy2(n.logf, os.path.join(d, n.name + ".log"))
            if os.path.isdir(n.dir):
                # the whole replica directory (zila.db and its -wal, keys, certificate), so
                # `zila -d DIR log|status` works on the copy; sockets are left out
                shutil.copytree(n.dir, os.path.join(d, n.name), ignore=lambda dd, names: [
                    x for x in names if not (os.path.isfile(os.path.join(dd, x)) or os.path.isdir(os.path.join(dd, x)))])
        log("failed run: daemon logs, replicas, the lab's log and history kept in %s" % d)
        return d

    # ---- the run -------------------------------------------------------------------------
    def run(self):
        self.t0 = time.time()
        self.timers = []
        self.healing = False
        log("seed %d, %.0f s of faults, faults %s, output %s" % (self.seed, self.seconds, ",".join(sorted(self.faults)), self.out))
        self.setup()
        self.event("setup done: %s enrolled" % ", ".join(n.name for n in self.nodes if n.enrolled))
        if self.inject == "nodelete":
            # an injected capture bug: l1's deletes of members are never captured
            c = self.byname["l1"].db()
            for (t,) in c.execute("SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'people' "
                                  "AND sql LIKE '%AFTER DELETE%'").fetchall():
                c.execute('DROP TRIGGER "%s"' % t)
                self.event("INJECTED: l1's delete capture (trigger %s) dropped" % t)
        self.hist = open(os.path.join(self.out, "history.jsonl"), "w")
        plan = self.schedule()
        w = threading.Thread(target=self.writer, daemon=True)
        start = time.time()
        self.t0 = start
        w.start()
        for at, kind, n in plan:
            dt = start + at - time.time()
            if dt > 0:
                time.sleep(dt)
            with self.lock:
                try:
                    self.fault(kind, n)
                except Exception as e:
                    log("fault %s %s: %r" % (kind, n.name, e))
        dt = start + self.seconds - time.time()
        if dt > 0:
            time.sleep(dt)
        self.stop_writing.set()
        w.join()
        self.hist.close()
        self.heal()
        ok = self.quiesce()
        if self.inject == "corrupt":
            self.corrupt()
        viol = self.check()
        nfail = self.report(viol, ok)
        if os.environ.get("LAB_SELFTEST") and not self.selftest(len(viol)):
            nfail += 1
        for n in self.nodes:
            n.stop()
        with open(os.path.join(self.out, "report.txt")) as f:
            head = f.read().split("\n== events")[0]
        print(head, flush=True)
        log("report: %s" % os.path.join(self.out, "report.txt"))
        return 1 if nfail else 0


class Fake:
    """HQ writing as if it were a laptop of district d."""
    def __init__(self, d):
        self.district = d


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "--nodes":
        print(1 + len(LAPTOPS))
        return 0
    if len(sys.argv) > 1 and sys.argv[1] in ("-h", "--help"):
        print(__doc__)
        print("fault classes (LAB_FAULTS; default %s):" % DEFAULT_FAULTS)
        for k, v in FAULTS.items():
            print("  %-10s %s" % (k, v))
        return 0
    if "LAB_NS_BASE" not in os.environ:
        print("lab.py is run by tools/lab/lab.sh (it makes the namespaces)", file=sys.stderr)
        return 2
    global LOGF
    lab = Lab()
    os.makedirs(lab.out, exist_ok=True)
    LOGF = open(os.path.join(lab.out, "lab.log"), "w")
    rc = 1
    try:
        rc = lab.run()
        return rc
    finally:
        for n in lab.nodes:
            n.kill9()
        if rc != 0:
            lab.keep()


if __name__ == "__main__":
    sys.exit(main())
