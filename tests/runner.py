#!/usr/bin/env python3
"""The runner of `make check`: runs the parts listed in a parts file side by side, each part's
output printed as one block when it ends, and a table of every part's seconds at the end.

usage: tests/runner.py PARTS_FILE

Each line of PARTS_FILE is NAME<TAB>KIND<TAB>SECONDS<TAB>NET<TAB>COMMAND (the Makefile writes
it from CHECK_PARTS; see "Tests" in the README):
  KIND     cpu: the part keeps a core busy (a unit test, a build); at most CHECK_JOBS of them
           run at once (default: the number of cores), at nice 10, so that they take the
           cores the others leave.
           wait: the part mostly sleeps or waits on timers and daemons; up to CHECK_WAIT_JOBS
           more run beside the cpu ones (default 4).
           alone: the part runs with nothing else running (timing-sensitive).
  SECONDS  what the part takes, roughly; longer parts start first.
  NET      own: the part runs in a network namespace of its own (a loopback nobody else's ports
           and beacons reach) when we are root and unshare(1) works; host: in ours.
  COMMAND  a shell command, run from the top of the tree with sh -c.
Environment: CHECK_JOBS, CHECK_WAIT_JOBS, CHECK_TIMEOUT (seconds a part may take before it
is stopped and fails; default 0, no limit: on a loaded machine a wall-clock limit fails
sound parts), CHECK_ONLY (a regular expression: only the parts whose names match), CHECK_LOG (where
each part's log goes, default build/check/log), CHECK_TIMES (the table is also written
there, default build/check/times.txt).
Exit status: 0 when every part passed, 1 when one failed or took too long (its log is printed
and named again at the end), 2 on a bad parts file.
"""
import os
import re
import shutil
import signal
import subprocess
import sys
import time

KINDS = ("cpu", "wait", "alone")
CPU_NICE = 10


# CHECK_AGAIN=0: a waiting part that fails is not run a second time.
RUN_AGAIN = os.environ.get("CHECK_AGAIN", "1") != "0"


def die(msg):
    print("runner: " + msg, file=sys.stderr)
    sys.exit(2)


def read_parts(path):
    parts = []
    seen = set()
    try:
        with open(path, encoding="utf-8") as f:
            lines = f.read().splitlines()
    except OSError as e:
        die("cannot read the parts file '%s': %s" % (path, e.strerror))
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        fields = line.split("\t", 4)
        if len(fields) != 5:
            die("%s:%d: wanted NAME, KIND, SECONDS, NET and COMMAND separated by tabs" % (path, n))
        name, kind, secs, net, cmd = (x.strip() for x in fields)
        if not re.fullmatch(r"[A-Za-z0-9_.+-]+", name):
            die("%s:%d: the part name '%s' is not letters, digits and ._+-" % (path, n, name))
        if name in seen:
            die("%s:%d: the part '%s' is listed twice" % (path, n, name))
        if kind not in KINDS:
            die("%s:%d: the part '%s' has kind '%s'; wanted one of %s" % (path, n, name, kind, ", ".join(KINDS)))
        if net not in ("own", "host"):
            die("%s:%d: the part '%s' has net '%s'; wanted own or host" % (path, n, name, net))
        try:
            est = float(secs)
        except ValueError:
            die("%s:%d: the part '%s' has seconds '%s', not a number" % (path, n, name, secs))
        if not cmd:
            die("%s:%d: the part '%s' has no command" % (path, n, name))
        seen.add(name)
        parts.append({"name": name, "kind": kind, "est": est, "net": net, "cmd": cmd, "order": n})
    return parts


def own_net_works():
    """True when a command can run in a network namespace of its own with its loopback up."""
    if os.geteuid() != 0 or not shutil.which("unshare") or not shutil.which("ip"):
        return False
    r = subprocess.run(["unshare", "-n", "sh", "-c", "ip link set lo up && ip -o addr show lo | grep -q 127.0.0.1"],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return r.returncode == 0


class Running:
    def __init__(self, part, proc, log, start):
        self.part = part
        self.proc = proc
        self.log = log
        self.start = start


def start(part, logdir, own_net):
    logpath = os.path.join(logdir, part["name"] + (".again" if part.get("again") else "") + ".log")
    log = open(logpath, "w+b")
    cmd = part["cmd"]
    if own_net and part["net"] == "own":
        argv = ["unshare", "-n", "sh", "-c", 'ip link set lo up && exec sh -c "$1"', "sh", cmd]
    else:
        argv = ["sh", "-c", cmd]
    env = dict(os.environ)
    env["CHECK_PART"] = part["name"]
    # cpu parts yield to the others: a waiting part's daemons get a core when their timers
    # fire, and the cpu parts take what is left.
    nice = CPU_NICE if part["kind"] == "cpu" else 0
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True, env=env, preexec_fn=(lambda: os.nice(nice)) if nice else None)
    part["log"] = logpath
    return Running(part, proc, log, time.monotonic())


def kill_group(proc):
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def main():
    if len(sys.argv) != 2:
        die("usage: tests/runner.py PARTS_FILE")
    parts = read_parts(sys.argv[1])
    only = os.environ.get("CHECK_ONLY")
    if only:
        try:
            rx = re.compile(only)
        except re.error as e:
            die("CHECK_ONLY '%s' is not a regular expression: %s" % (only, e))
        parts = [p for p in parts if rx.search(p["name"])]
        if not parts:
            die("CHECK_ONLY '%s' names no part" % only)

    def env_int(name, default, least):
        v = os.environ.get(name) or str(default)
        if not v.isdigit() or int(v) < least:
            die("%s must be a whole number of at least %d, not '%s'" % (name, least, v))
        return int(v)

    jobs = env_int("CHECK_JOBS", os.cpu_count() or 1, 1)
    wait_jobs = env_int("CHECK_WAIT_JOBS", 4, 0)
    timeout = env_int("CHECK_TIMEOUT", 0, 0)
    logdir = os.environ.get("CHECK_LOG") or "build/check/log"
    times_path = os.environ.get("CHECK_TIMES") or "build/check/times.txt"
    os.makedirs(logdir, exist_ok=True)
    own_net = own_net_works()
    if not own_net:
        # Without namespaces of their own, parts that listen on loopback could meet each
        # other's ports and beacons: they run one at a time.
        print("runner: no network namespace per part (not root, or no unshare): "
              "the parts that want one run one at a time", flush=True)

    # Longest first, so the long parts do not start last; ties in the listed order.
    todo = sorted(parts, key=lambda p: (-p["est"], p["order"]))
    running = []
    done = []
    flaky = []
    t0 = time.monotonic()
    print("runner: %d parts, %d cpu at once and %d waiting beside them%s" %
          (len(parts), jobs, wait_jobs, ", each in a network namespace of its own" if own_net else ""),
          flush=True)

    def can_start(p):
        if any(r.part["kind"] == "alone" for r in running):
            return False
        if p["kind"] == "alone":
            return not running
        if not own_net and p["net"] == "own" and any(r.part["net"] == "own" for r in running):
            return False
        ncpu = sum(1 for r in running if r.part["kind"] == "cpu")
        nwait = sum(1 for r in running if r.part["kind"] == "wait")
        if p["kind"] == "cpu":
            return ncpu < jobs
        # A waiting part takes a free cpu slot, or one of the slots beside them.
        return nwait < wait_jobs or ncpu + nwait < jobs

    def finish(r, rc, rusage, timed_out):
        wall = time.monotonic() - r.start
        cpu = rusage.ru_utime + rusage.ru_stime
        r.log.seek(0)
        out = r.log.read().decode("utf-8", "replace")
        r.log.close()
        ok = rc == 0 and not timed_out
        why = "ok" if ok else ("took more than %d s: stopped" % timeout if timed_out else "FAILED (exit %d)" % rc)
        bar = "=" * 8
        print("%s %s (%s, %.0f s, %.0f s cpu): %s" % (bar, r.part["name"], r.part["kind"], wall, cpu, why))
        sys.stdout.write(out if out.endswith("\n") or not out else out + "\n")
        if not ok and r.part["kind"] == "wait" and not timed_out and not r.part.get("again") and RUN_AGAIN:
            # A script's waits on daemons and timers can lose a race to the parts beside it: it
            # runs once more, and only its second result counts. Both logs are kept and the
            # table names it FLAKY, so a race is seen, never hidden; failing twice fails.
            print("%s %s failed once; its log: %s; it runs once more" % (bar, r.part["name"], r.part["log"]))
            sys.stdout.flush()
            flaky.append(r.part["name"])
            todo.append(dict(r.part, again=True))
            return
        if not ok:
            print("%s %s FAILED; its log: %s" % (bar, r.part["name"], r.part["log"]))
        sys.stdout.flush()
        if ok and r.part.get("again"):
            why = "FLAKY: failed once, passed on its second run"
        done.append({"part": r.part, "wall": wall, "cpu": cpu, "ok": ok, "why": why})

    def stop_all(signum, frame):
        for r in running:
            kill_group(r.proc)
        print("runner: stopped by signal %d" % signum, file=sys.stderr)
        sys.exit(1)

    signal.signal(signal.SIGINT, stop_all)
    signal.signal(signal.SIGTERM, stop_all)

    while todo or running:
        started = True
        while started:
            started = False
            for p in todo:
                if can_start(p):
                    running.append(start(p, logdir, own_net))
                    todo.remove(p)
                    started = True
                    break
        # Reap whatever ended; stop what took too long.
        time.sleep(0.05)
        for r in list(running):
            pid, status, rusage = os.wait4(r.proc.pid, os.WNOHANG)
            if pid == 0:
                if timeout and time.monotonic() - r.start > timeout:
                    kill_group(r.proc)
                    pid, status, rusage = os.wait4(r.proc.pid, 0)
                    kill_group(r.proc)
                    running.remove(r)
                    finish(r, -1, rusage, True)
                continue
            # Daemons a part left behind in its group go with it.
            kill_group(r.proc)
            r.proc.returncode = os.waitstatus_to_exitcode(status)
            running.remove(r)
            finish(r, r.proc.returncode, rusage, False)

    total = time.monotonic() - t0
    failed = [d for d in done if not d["ok"]]
    lines = ["%-34s %-5s %7s %7s  %s" % ("part", "kind", "wall s", "cpu s", "result")]
    for d in sorted(done, key=lambda d: -d["wall"]):
        lines.append("%-34s %-5s %7.1f %7.1f  %s" % (d["part"]["name"], d["part"]["kind"], d["wall"], d["cpu"],
                                                   d["why"]))
    lines.append("%-34s %-5s %7.1f %7.1f  %d of %d passed" % ("all parts", "", total, sum(d["cpu"] for d in done),
                                                           len(done) - len(failed), len(done)))
    table = "\n".join(lines) + "\n"
    print("\nrunner: seconds per part (wall while others ran beside it; cpu of the part and what it waited for)")
    sys.stdout.write(table)
    try:
        os.makedirs(os.path.dirname(times_path) or ".", exist_ok=True)
        with open(times_path, "w", encoding="utf-8") as f:
            f.write(table)
    except OSError as e:
        print("runner: could not write %s: %s" % (times_path, e.strerror), file=sys.stderr)
    if flaky:
        print("runner: FLAKY, failed once and ran again: %s (first logs in %s)" % (" ".join(flaky), logdir))
    if failed:
        print("runner: %d failed: %s (logs in %s)" % (len(failed), " ".join(d["part"]["name"] for d in failed), logdir))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
