#!/usr/bin/env python3
"""zila scale model: a national deployment (districts x laptops + one HQ daemon).

Two models from the same inputs:
  paper       closed-form daily/peak-hour figures (HQ sessions, CPU, concurrency,
              bytes, storage, memory) and the growth factor at which each HQ limit
              is crossed;
  simulation  seeded Monte Carlo over --days: per-laptop online windows, edits,
              weekly block meetings on a LAN; the time each edit takes to reach HQ
              and every laptop of its district, HQ sessions per hour, peak concurrency.

Standard library only.  python3 tools/scale_model.py [--json] [--days N] [--seed S] ...
Every input below is an option (--name-with-dashes VALUE).
"""
import argparse
import bisect
import json
import math
import operator
import random
import sys
import time
from array import array

MiB = 1 << 20

# ---------------------------------------------------------------------------
# Inputs.  (name, default, unit, source/meaning).  "measured" = `make bench`
# on the project's 2-core machine (README, "Figures"); "assumption" = chosen here,
# change it with the option of the same name.
# ---------------------------------------------------------------------------
DEFAULTS = [
    # --- deployment -------------------------------------------------------
    ("districts", 700, "", "assumption: issue 'Reliability' (national deployment)"),
    ("laptops_per_district", 10, "", "assumption: issue 'Reliability'"),
    # --- measured per-session costs ----------------------------------------
    ("handshake_ms", 0.75, "ms", "measured: bench_sync, Noise handshake, both sides together (all charged to HQ)"),
    ("noop_up_B", 121, "B", "measured: bench_sync, no-op sync laptop->HQ (1 round trip)"),
    ("noop_down_B", 149, "B", "measured: bench_sync, no-op sync HQ->laptop"),
    ("fanin_sessions", 200, "", "measured: bench_fanin, concurrent laptop sessions served by one HQ"),
    ("fanin_wall_s", 2.43, "s", "measured: bench_fanin, wall time for all of them (50 rows each way)"),
    ("fanin_rows_each_way", 50, "rows", "measured: bench_fanin, rows per session each way"),
    ("fanin_rss_MiB", 41, "MiB", "measured: bench_fanin, HQ peak RSS at 200 concurrent sessions"),
    ("clone_hq_rss_MiB", 55, "MiB", "measured: bench_sync, HQ peak RSS while serving a 1M-row clone"),
    ("bench_cores", 2, "", "measured: the bench machine's cores (HQ and all laptops shared them)"),
    ("incr_100_ms", 6.9, "ms", "measured: bench_sync, 100 changed rows between in-step laptops, after handshake (reported only)"),
    ("clone_rows_per_s", 58000, "rows/s", "measured: bench_sync, clone of 1M rows in 17.2 s"),
    ("bundle_MiB_per_M_rows", 27.5, "MiB", "measured: bench_store, bundle bytes per 1M row changes (zstd bodies)"),
    ("apply_rows_per_s", 58000, "rows/s", "measured: bench_store, apply 58k-138k rows/s; the low end"),
    # --- protocol / daemon constants (src/net, README) ----------------------
    ("max_sessions", 64, "", "code: src/net/conn.c default cap on concurrent connections"),
    ("rate_burst", 10, "", "code: src/net/net_int.h RATE_BURST handshakes per address"),
    ("rate_per_s", 1.0, "/s", "code: src/net/net_int.h RATE_REFILL_MS 1000"),
    ("periodic_min", 5.0, "min", "README: the daemon syncs with HQ every 5 minutes while online"),
    ("debounce_s", 0.5, "s", "README: within a second of a local write (200 ms debounce); assumption 0.5 s"),
    # --- assumptions: bytes and costs not measured --------------------------
    ("handshake_B", 700, "B", "assumption: ~3 Noise XXpsk0 messages incl. certificates, both directions"),
    ("entry_overhead_B", 150, "B", "assumption: per entry (one sealed transaction) header + signature"),
    ("session_extra_B", 500, "B", "assumption: Heads (~11 feeds x 42 B) + Done/Ack per direction of a data session"),
    ("noop_hq_ms", 0.5, "ms", "assumption: HQ core time of a no-op session beyond the handshake"),
    ("stored_B_per_row", 300, "B", "assumption: HQ disk per row change (measured replica 1.47x plain table, ~200 B rows)"),
    ("rtt_ms", 150, "ms", "assumption: laptop<->HQ round trip (DSL / 4G)"),
    ("laptop_link_Mbit", 2.0, "Mbit/s", "assumption: a laptop's link to HQ"),
    ("hq_cores", 2, "", "assumption: HQ runs on a machine like the bench machine"),
    ("uplink_Mbit", 100.0, "Mbit/s", "assumption: HQ's internet link"),
    ("disk_GB", 1000.0, "GB", "assumption: HQ disk for the replica"),
    ("ram_MiB", 2048.0, "MiB", "assumption: HQ memory budget for the daemon"),
    ("laptops_per_address", 0, "", "assumption: laptops behind one NAT address (0 = a whole district office)"),
    ("peak_factor", 1.5, "x", "assumption (paper): busiest hour vs the mean hour of the online span"),
    # --- assumptions: workload --------------------------------------------
    ("rows_per_laptop_day", 150, "rows", "assumption: row changes entered per laptop per day (every day)"),
    ("rows_per_txn", 2, "rows", "assumption: row changes per transaction (= per entry)"),
    ("org_rows_day", 40, "rows", "assumption: org-wide row changes per day, made at HQ, sent to every laptop"),
    ("org_rows_per_txn", 4, "rows", "assumption: org-wide row changes per transaction"),
    ("edit_start_h", 9.0, "h", "assumption: edits happen between edit_start_h and edit_end_h, uniformly"),
    ("edit_end_h", 18.0, "h", "assumption"),
    ("online_start_h", 8.0, "h", "assumption: online windows lie within online_start_h..online_end_h"),
    ("online_end_h", 18.0, "h", "assumption"),
    ("windows_min", 1, "/day", "assumption: a laptop online on a day has U{min..max} windows"),
    ("windows_max", 3, "/day", "assumption"),
    ("window_min_min", 10.0, "min", "assumption: window length U(min, max)"),
    ("window_max_min", 60.0, "min", "assumption"),
    ("p_offline_day", 0.15, "", "assumption: chance a regular laptop is not online at all on a day"),
    ("remote_frac", 0.05, "", "assumption: share of laptops that come online only every few days"),
    ("remote_gap_min", 3, "days", "assumption: a remote laptop's gap between online days U{min..max}"),
    ("remote_gap_max", 7, "days", "assumption"),
    ("meeting_every_days", 7, "days", "assumption: each district holds one block meeting per week"),
    ("meeting_min", 3, "laptops", "assumption: laptops at a meeting U{min..max}, on one LAN, no internet needed"),
    ("meeting_max", 6, "laptops", "assumption"),
    ("meeting_hours", 2.0, "h", "assumption: meeting length; starts U(10:00, 14:00)"),
    ("clones_per_day", 5, "/day", "assumption: laptops (re)cloned from HQ per day (replacements, new staff)"),
    ("clone_rows", 200000, "rows", "assumption: rows a clone pulls (one district + org-wide)"),
    # --- simulation ---------------------------------------------------------
    ("days", 14, "days", "simulation length"),
    ("seed", 1, "", "simulation seed"),
]

GROWTH = (1, 2, 5, 10)
# inputs that count things the simulation iterates over
INT_ONLY = {"districts", "laptops_per_district", "windows_min", "windows_max", "remote_gap_min", "remote_gap_max",
            "meeting_every_days", "meeting_min", "meeting_max", "days", "seed", "laptops_per_address",
            "bench_cores", "fanin_sessions", "max_sessions", "rate_burst"}


def fmt_bytes(b):
    for unit, div in (("TB", 1e12), ("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if abs(b) >= div:
            return "%.1f %s" % (b / div, unit)
    return "%.0f B" % b


def fmt_dur(s):
    if s == math.inf:
        return "not yet"
    if s < 120:
        return "%.0f s" % s
    if s < 7200:
        return "%.1f min" % (s / 60)
    if s < 2 * 86400:
        return "%.1f h" % (s / 3600)
    return "%.1f d" % (s / 86400)


# ---------------------------------------------------------------------------
# Paper model
# ---------------------------------------------------------------------------
def derived(p):
    d = {}
    d["row_B"] = p["bundle_MiB_per_M_rows"] * MiB / 1e6                     # ~28.8 B
    d["fanin_core_ms"] = p["fanin_wall_s"] * p["bench_cores"] / p["fanin_sessions"] * 1000  # 24.3
    d["fanin_wall_ms"] = p["fanin_wall_s"] / p["fanin_sessions"] * 1000    # 12.15 on 2 cores
    d["noop_core_ms"] = p["handshake_ms"] + p["noop_hq_ms"]
    d["lpa"] = p["laptops_per_address"] or p["laptops_per_district"]
    return d


def expected_floor(a, b, period, n=2000):
    """E[floor(L/period)] for L ~ U(a, b): periodic syncs in one window."""
    if b <= a:
        return math.floor(a / period)
    return sum(math.floor((a + (b - a) * (i + 0.5) / n) / period) for i in range(n)) / n


def paper(p):
    d = derived(p)
    L, N = p["laptops_per_district"], p["districts"] * p["laptops_per_district"]
    span_min = (p["online_end_h"] - p["online_start_h"]) * 60
    win_mean = (p["window_min_min"] + p["window_max_min"]) / 2
    per_win = expected_floor(p["window_min_min"], p["window_max_min"], p["periodic_min"])
    w_reg = (1 - p["p_offline_day"]) * (p["windows_min"] + p["windows_max"]) / 2
    w_rem = 2 / (p["remote_gap_min"] + p["remote_gap_max"])
    W = (1 - p["remote_frac"]) * w_reg + p["remote_frac"] * w_rem          # windows/laptop/day
    online_min = W * win_mean
    p_on = min(1.0, online_min / span_min)                                  # online at an edit
    txn = p["rows_per_laptop_day"] / p["rows_per_txn"]
    org_txn = p["org_rows_day"] / p["org_rows_per_txn"]

    s_connect, s_periodic, s_edit = N * W, N * W * per_win, N * txn * p_on
    sessions = s_connect + s_periodic + s_edit
    # a periodic sync carries data when HQ got something for the district in the last period
    pushes = (L - 1) * (W + txn * p_on) + org_txn                           # per district per day
    p_data_per = 1 - math.exp(-pushes / span_min * p["periodic_min"])
    noop = s_periodic * (1 - p_data_per)
    data = sessions - noop

    rows = N * p["rows_per_laptop_day"]
    txns = N * txn
    body_up = rows * d["row_B"] + txns * p["entry_overhead_B"]
    org_body = p["org_rows_day"] * d["row_B"] + org_txn * p["entry_overhead_B"]
    clone_B = p["clones_per_day"] * p["clone_rows"] * (d["row_B"] + p["entry_overhead_B"] / p["rows_per_txn"])
    hs = sessions * p["handshake_B"] / 2
    up = body_up + hs + noop * p["noop_up_B"] + data * (p["noop_up_B"] + p["session_extra_B"])
    down = ((L - 1) * body_up + N * org_body + clone_B + hs + noop * p["noop_down_B"]
            + data * (p["noop_down_B"] + p["session_extra_B"]))
    lap_up = up / N
    lap_down = (down - clone_B) / N

    cpu_day = (noop * d["noop_core_ms"] + data * d["fanin_core_ms"]) / 1000 \
        + rows / p["apply_rows_per_s"] + p["clones_per_day"] * p["clone_rows"] / p["clone_rows_per_s"]
    peak_share = p["peak_factor"] * 60 / span_min                          # of a day, in the peak hour
    cpu_peak_util = cpu_day * peak_share / (p["hq_cores"] * 3600)
    rate_peak = sessions * peak_share / 3600                                # sessions/s
    rtt = p["rtt_ms"] / 1000
    data_bytes = (up + down - clone_B - noop * (p["noop_up_B"] + p["noop_down_B"] + p["handshake_B"])) / max(data, 1)
    dur_noop = 3.5 * rtt + d["noop_core_ms"] / 1000
    dur_data = 5.5 * rtt + data_bytes * 8 / (p["laptop_link_Mbit"] * 1e6) + d["fanin_wall_ms"] / 1000
    dur_mean = (noop * dur_noop + data * dur_data) / sessions
    conc_mean = rate_peak * dur_mean
    conc_peak = conc_mean + 4 * math.sqrt(conc_mean)                        # Poisson, ~1e-4 tail
    rss = max(p["fanin_rss_MiB"] * max(1.0, conc_peak / p["fanin_sessions"]), p["clone_hq_rss_MiB"])
    bw_peak = max(up, down - clone_B) * peak_share / 3600 * 8 / 1e6          # Mbit/s
    stored_day = rows * p["stored_B_per_row"] + txns * p["entry_overhead_B"] \
        + p["org_rows_day"] * p["stored_B_per_row"]
    # NAT: sessions per online minute of one laptop; laptops online at once behind one address
    per_online_min = (s_connect + s_periodic + s_edit) / (N * online_min)
    online_frac_peak = min(1.0, p_on * p["peak_factor"])
    addr_rate = d["lpa"] * online_frac_peak * per_online_min / 60           # handshakes/s/address
    storm_online = N * online_frac_peak
    return {
        "laptops": N, "windows_per_laptop_day": W, "online_min_per_laptop_day": online_min,
        "periodic_per_window": per_win, "p_online_at_edit": p_on, "p_periodic_carries_data": p_data_per,
        "sessions_day": sessions, "sessions_connect": s_connect, "sessions_periodic": s_periodic,
        "sessions_edit": s_edit, "sessions_noop": noop, "sessions_data": data,
        "sessions_peak_hour": sessions * peak_share, "session_rate_peak_per_s": rate_peak,
        "session_s_noop": dur_noop, "session_s_data": dur_data,
        "cpu_core_s_day": cpu_day, "cpu_peak_util": cpu_peak_util,
        "conc_mean_peak": conc_mean, "conc_peak": conc_peak, "rss_MiB": rss,
        "hq_up_B_day": up, "hq_down_B_day": down, "laptop_up_B_day": lap_up, "laptop_down_B_day": lap_down,
        "clone_B_day": clone_B, "bw_peak_Mbit": bw_peak,
        "rows_day": rows, "stored_B_day": stored_day, "stored_B_year": stored_day * 365,
        "addr_handshakes_per_s": addr_rate, "laptops_per_address": d["lpa"],
        "laptop_sessions_per_online_min": per_online_min, "laptops_online_peak": storm_online,
        "max_online_per_address": 60 * p["rate_per_s"] / per_online_min,
    }


LIMITS = [  # (name, metric(paper result, params) -> value, limit(params))
    ("HQ CPU, peak hour", lambda r, p: r["cpu_peak_util"] * 100, lambda p: 100.0, "%"),
    ("concurrent sessions", lambda r, p: r["conc_peak"], lambda p: p["max_sessions"], ""),
    ("HQ link, peak hour", lambda r, p: r["bw_peak_Mbit"], lambda p: p["uplink_Mbit"], "Mbit/s"),
    ("handshakes per NAT address", lambda r, p: r["addr_handshakes_per_s"], lambda p: p["rate_per_s"], "/s"),
    ("HQ disk after 1 year", lambda r, p: r["stored_B_year"] / 1e9, lambda p: p["disk_GB"], "GB"),
    ("HQ RSS at peak", lambda r, p: r["rss_MiB"], lambda p: p["ram_MiB"], "MiB"),
]


def scaled(p, f, grow):
    q = dict(p)
    if grow == "laptops":
        q["laptops_per_district"] = p["laptops_per_district"] * f
        if p["laptops_per_address"]:
            q["laptops_per_address"] = p["laptops_per_address"] * f
    else:
        q["districts"] = p["districts"] * f
    return q


def growth(p, grow):
    out = []
    for name, metric, limit, unit in LIMITS:
        vals = [metric(paper(scaled(p, f, grow)), p) for f in GROWTH]
        lim = limit(p)
        cross = None
        if metric(paper(p), p) >= lim:
            cross = 1.0
        else:
            lo, hi = 1.0, 1.0
            while hi < 1e5 and metric(paper(scaled(p, hi, grow)), p) < lim:
                lo, hi = hi, hi * 2
            if hi < 1e5:
                for _ in range(50):
                    mid = (lo + hi) / 2
                    if metric(paper(scaled(p, mid, grow)), p) < lim:
                        lo = mid
                    else:
                        hi = mid
                cross = hi
        out.append({"limit": name, "unit": unit, "max": lim, "at": dict(zip(GROWTH, vals)), "crossed_at": cross})
    return out


# ---------------------------------------------------------------------------
# Simulation
# ---------------------------------------------------------------------------
def simulate(p):
    rng = random.Random(p["seed"])
    d = derived(p)
    D, L, days = p["districts"], p["laptops_per_district"], p["days"]
    H = days * 86400.0
    period = p["periodic_min"] * 60
    rtt = p["rtt_ms"] / 1000
    row_B = d["row_B"]
    rpt, orpt = p["rows_per_txn"], p["org_rows_per_txn"]
    ent_B = p["entry_overhead_B"]
    link = p["laptop_link_Mbit"] * 1e6 / 8
    noop_B = p["noop_up_B"] + p["noop_down_B"] + p["handshake_B"]
    noop_dur = 3.5 * rtt + d["noop_core_ms"] / 1000
    noop_cpu = d["noop_core_ms"] / 1000
    data_cpu = d["fanin_core_ms"] / 1000
    apply_rate = p["apply_rows_per_s"]
    txn_rate = p["rows_per_laptop_day"] / p["rows_per_txn"]
    org_rate = p["org_rows_day"] / p["org_rows_per_txn"]
    es, ee = p["edit_start_h"] * 3600, p["edit_end_h"] * 3600
    os_, oe = p["online_start_h"] * 3600, p["online_end_h"] * 3600
    wmin, wmax = p["window_min_min"] * 60, p["window_max_min"] * 60
    cut = H / 2                       # edits made in the first half are measured
    INF = math.inf

    def poisson(mean):
        if mean < 30:
            lim, k, prod = math.exp(-mean), 0, rng.random()
            while prod > lim:
                k += 1
                prod *= rng.random()
            return k
        return max(0, int(rng.gauss(mean, math.sqrt(mean)) + 0.5))

    def edit_times(rate):
        t = []
        for day in range(days):
            base = day * 86400 + es
            n = poisson(rate)
            t.extend(base + (ee - es) * rng.random() for _ in range(n))
        t.sort()
        return t

    org_times = edit_times(org_rate)
    n_org = len(org_times)
    org_conv = array("d", [0.0]) * n_org          # max over districts of per-district time

    hours = int(math.ceil(H / 3600))
    sess_h = [0] * hours
    cpu_h = [0.0] * hours
    bytes_h = [0.0] * hours
    starts, ends = array("d"), array("d")
    lat_hq, lat_dist = [], []
    n_meas = unconv_hq = unconv_dist = 0
    tot = {"sessions": 0, "noop": 0, "up_B": 0.0, "down_B": 0.0, "rows_up": 0, "rows_down": 0,
           "lan_merges": 0}
    lap_down_B = 0.0

    for dist in range(D):
        # --- per-laptop schedule ------------------------------------------
        edits = [edit_times(txn_rate) for _ in range(L)]
        events = []                   # (time, kind, laptop); kind 0 meet start, 1 edit in meeting, 2 session, 3 meet end
        for x in range(L):
            wins = []
            if rng.random() < p["remote_frac"]:
                day = rng.randrange(p["remote_gap_max"])
                days_on = []
                while day < days:
                    days_on.append(day)
                    day += rng.randint(p["remote_gap_min"], p["remote_gap_max"])
                for day in days_on:
                    ln = rng.uniform(wmin, wmax)
                    s = day * 86400 + os_ + rng.random() * max(0.0, oe - os_ - ln)
                    wins.append((s, s + ln))
            else:
                for day in range(days):
                    if rng.random() < p["p_offline_day"]:
                        continue
                    for _ in range(rng.randint(p["windows_min"], p["windows_max"])):
                        ln = rng.uniform(wmin, wmax)
                        s = day * 86400 + os_ + rng.random() * max(0.0, oe - os_ - ln)
                        wins.append((s, s + ln))
            wins.sort()
            merged = []
            for s, e in wins:
                if merged and s <= merged[-1][1]:
                    if e > merged[-1][1]:
                        merged[-1][1] = e
                else:
                    merged.append([s, e])
            ex = edits[x]
            for s, e in merged:
                events.append((s, 2, x))
                t = s + period
                while t < e:
                    events.append((t, 2, x))
                    t += period
                last = -1.0
                for i in range(bisect.bisect_left(ex, s), bisect.bisect_left(ex, e)):
                    t = ex[i] + p["debounce_s"]
                    if t - last >= 1.0:
                        events.append((t, 2, x))
                        last = t
        meetings = []
        wk = 0
        while wk * p["meeting_every_days"] < days:
            day = wk * p["meeting_every_days"] + rng.randrange(min(6, p["meeting_every_days"]))
            if day < days:
                s = day * 86400 + 10 * 3600 + rng.random() * 4 * 3600
                e = s + p["meeting_hours"] * 3600
                k = min(L, rng.randint(p["meeting_min"], p["meeting_max"]))
                grp = rng.sample(range(L), k)
                meetings.append(grp)
                mi = len(meetings) - 1
                events.append((s, 0, mi))
                events.append((e, 3, mi))
                for x in grp:
                    ex = edits[x]
                    for i in range(bisect.bisect_left(ex, s), bisect.bisect_left(ex, e)):
                        events.append((ex[i], 1, x))
            wk += 1
        events.sort()

        # --- knowledge state: heads per origin (L laptops + org-wide = index L) ---
        O = L + 1
        K = [[0] * O for _ in range(L)]
        Hq = [0] * O
        conv = [0] * O                  # per origin: min over receiving laptops of their head
        hq_t = [array("d", [INF]) * len(edits[i]) for i in range(L)]
        conv_t = [array("d", [INF]) * len(edits[i]) for i in range(L)] + [array("d", [INF]) * n_org]
        recv = [[y for y in range(L) if y != i] for i in range(L)] + [list(range(L))]
        in_meet = None

        def raise_to(y, i, v, T):
            """laptop y learns origin i up to head v at time T; keep conv up to date."""
            old = K[y][i]
            K[y][i] = v
            if old == conv[i]:
                m = min(K[z][i] for z in recv[i])
                if m > conv[i]:
                    ct = conv_t[i]
                    ct[conv[i]:m] = array("d", [T]) * (m - conv[i])
                    conv[i] = m

        def group_merge(grp, T):
            for i in range(O):
                m = max(K[y][i] for y in grp)
                for y in grp:
                    if K[y][i] < m:
                        raise_to(y, i, m, T)

        for T, kind, x in events:
            if kind == 2:
                kx = K[x]
                own = bisect.bisect_right(edits[x], T)
                if own > kx[x]:
                    kx[x] = own
                Hq[L] = bisect.bisect_right(org_times, T)
                up_e = down_e = up_r = down_r = 0
                for i in range(O):
                    a, b = kx[i], Hq[i]
                    if a > b:
                        up_e += a - b
                        if i < L:
                            ht = hq_t[i]
                            ht[b:a] = array("d", [T]) * (a - b)
                        Hq[i] = a
                    elif b > a:
                        down_e += b - a
                        down_r += (b - a) * (orpt if i == L else rpt)
                        raise_to(x, i, b, T)
                h = int(T // 3600)
                sess_h[h] += 1
                if up_e or down_e:
                    up_r = up_e * rpt
                    ub = up_r * row_B + up_e * ent_B + p["noop_up_B"] + p["session_extra_B"] + p["handshake_B"] / 2
                    db = down_r * row_B + down_e * ent_B + p["noop_down_B"] + p["session_extra_B"] + p["handshake_B"] / 2
                    dur = 5.5 * rtt + (ub + db) / link + d["fanin_wall_ms"] / 1000
                    cpu_h[h] += data_cpu + up_r / apply_rate
                    bytes_h[h] += ub + db
                    tot["up_B"] += ub
                    tot["down_B"] += db
                    tot["rows_up"] += up_r
                    tot["rows_down"] += down_r
                    lap_down_B += db
                    if in_meet is not None and x in in_meet and down_e:
                        group_merge(in_meet, T)
                else:
                    dur = noop_dur
                    cpu_h[h] += noop_cpu
                    bytes_h[h] += noop_B
                    tot["noop"] += 1
                    tot["up_B"] += p["noop_up_B"] + p["handshake_B"] / 2
                    tot["down_B"] += p["noop_down_B"] + p["handshake_B"] / 2
                    lap_down_B += p["noop_down_B"] + p["handshake_B"] / 2
                starts.append(T)
                ends.append(T + dur)
            elif kind == 1:
                if in_meet is not None and x in in_meet:
                    own = bisect.bisect_right(edits[x], T)
                    if own > K[x][x]:
                        K[x][x] = own
                    for y in in_meet:
                        if y != x and K[y][x] < own:
                            raise_to(y, x, own, T + 1.0)
            elif kind == 0:
                in_meet = meetings[x]
                for y in in_meet:
                    own = bisect.bisect_right(edits[y], T)
                    if own > K[y][y]:
                        K[y][y] = own
                group_merge(in_meet, T + 1.0)
                tot["lan_merges"] += 1
            else:
                in_meet = None

        # --- per-edit latencies (edits made in the first half of the run) ---
        for i in range(L):
            ex = edits[i]
            n = bisect.bisect_left(ex, cut)
            n_meas += n
            lat_hq.extend(map(operator.sub, hq_t[i][:n], ex[:n]))
            lat_dist.extend(map(operator.sub, conv_t[i][:n], ex[:n]))
        ct = conv_t[L]
        for j in range(n_org):
            if ct[j] > org_conv[j]:
                org_conv[j] = ct[j]

    # --- aggregate -----------------------------------------------------------
    def pct(vals):
        vals.sort()
        n = len(vals)
        if n == 0:
            return {}
        r = {}
        for q in (50, 90, 99):
            r["p%d" % q] = vals[min(n - 1, int(math.ceil(q / 100 * n)) - 1)]
        r["max"] = vals[-1]
        r["not_converged"] = n - bisect.bisect_left(vals, INF)
        r["n"] = n
        return r

    org_lat = [org_conv[j] - org_times[j] for j in range(n_org) if org_times[j] < cut]
    starts = sorted(starts)
    ends = sorted(ends)
    conc = peak_conc = 0
    j = 0
    peak_at = 0.0
    for s in starts:
        while ends[j] <= s:
            j += 1
            conc -= 1
        conc += 1
        if conc > peak_conc:
            peak_conc, peak_at = conc, s
    nsess = len(starts)
    tot["sessions"] = nsess
    busy = [h for h in range(hours) if sess_h[h]]
    return {
        "days": days, "laptops": D * L, "edits_measured": n_meas, "org_edits_measured": len(org_lat),
        "converge_hq_s": pct(lat_hq), "converge_district_s": pct(lat_dist), "converge_org_all_laptops_s": pct(org_lat),
        "sessions_per_day": nsess / days, "noop_share": tot["noop"] / max(1, nsess),
        "sessions_per_hour_peak": max(sess_h), "sessions_per_hour_mean": nsess / hours,
        "sessions_per_hour_mean_busy": nsess / max(1, len(busy)),
        "peak_hour_of_day": max(range(hours), key=lambda h: sess_h[h]) % 24,
        "cpu_peak_util": max(cpu_h) / (p["hq_cores"] * 3600),
        "cpu_core_s_per_day": sum(cpu_h) / days,
        "bw_peak_Mbit": max(bytes_h) * 8 / 3600 / 1e6,
        "concurrent_peak": peak_conc, "concurrent_peak_at_h": (peak_at % 86400) / 3600,
        "hq_up_B_day": tot["up_B"] / days, "hq_down_B_day": tot["down_B"] / days,
        "laptop_down_B_day": lap_down_B / days / (D * L),
        "lan_meetings": tot["lan_merges"],
    }


# ---------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------
def report(p, r, g, s, grow, elapsed):
    out = []
    w = out.append
    w("zila scale model: %d districts x %d laptops = %d laptops + 1 HQ daemon"
      % (p["districts"], p["laptops_per_district"], r["laptops"]))
    w("")
    w("INPUTS (measured = make bench; code = src/net; assumption = chosen, change with --option)")
    for name, default, unit, src in DEFAULTS:
        v = p[name]
        mark = "" if v == default else "   [changed from %s]" % default
        w("  %-24s %10s %-7s %s%s" % (name, v, unit, src, mark))
    dd = derived(p)
    w("  derived: %.1f B per row change in a bundle; fan-in %.2f ms of HQ wall time per small session on %d cores"
      % (dd["row_B"], dd["fanin_wall_ms"], p["bench_cores"]))
    w("           (= %.1f core-ms; laptops ran on the same cores, so this overstates HQ's share);"
      " no-op session %.2f core-ms" % (dd["fanin_core_ms"], dd["noop_core_ms"]))
    w("")
    w("PAPER MODEL (per day unless said; peak hour = %.1fx the mean hour of the %g-h online span)"
      % (p["peak_factor"], p["online_end_h"] - p["online_start_h"]))
    w("  laptop: %.2f online windows/day, %.0f min online/day, %.1f periodic syncs per window"
      % (r["windows_per_laptop_day"], r["online_min_per_laptop_day"], r["periodic_per_window"]))
    w("  HQ sessions/day        %10.0f  (connect %.0f, periodic %.0f, after a local edit %.0f)"
      % (r["sessions_day"], r["sessions_connect"], r["sessions_periodic"], r["sessions_edit"]))
    w("    of which no-op       %10.0f  (a periodic sync carries data with p = %.2f)"
      % (r["sessions_noop"], r["p_periodic_carries_data"]))
    w("  HQ sessions, peak hour %10.0f  (%.2f/s)" % (r["sessions_peak_hour"], r["session_rate_peak_per_s"]))
    w("  HQ CPU                 %10.0f core-s/day; peak hour %.1f%% of %d cores"
      % (r["cpu_core_s_day"], 100 * r["cpu_peak_util"], p["hq_cores"]))
    w("  session length         no-op %.2f s, data %.2f s (RTT %g ms)" % (r["session_s_noop"], r["session_s_data"], p["rtt_ms"]))
    w("  HQ concurrent sessions mean %.1f at the peak hour, peak ~%.0f (mean + 4 sd), limit %d"
      % (r["conc_mean_peak"], r["conc_peak"], p["max_sessions"]))
    w("  HQ RSS at peak         %10.0f MiB (measured 41 MiB at 200 sessions; a clone 55 MiB)" % r["rss_MiB"])
    w("  row changes/day        %10.0f" % r["rows_day"])
    w("  HQ bytes/day           up %s, down %s (incl. clones %s); peak hour %.2f Mbit/s of %g"
      % (fmt_bytes(r["hq_up_B_day"]), fmt_bytes(r["hq_down_B_day"]), fmt_bytes(r["clone_B_day"]),
         r["bw_peak_Mbit"], p["uplink_Mbit"]))
    w("  per laptop bytes/day   up %s, down %s" % (fmt_bytes(r["laptop_up_B_day"]), fmt_bytes(r["laptop_down_B_day"])))
    w("  HQ storage growth      %s/day, %s/year" % (fmt_bytes(r["stored_B_day"]), fmt_bytes(r["stored_B_year"])))
    w("  NAT: %d laptops per address -> %.3f handshakes/s at the peak hour (limit %g/s, burst %d);"
      % (r["laptops_per_address"], r["addr_handshakes_per_s"], p["rate_per_s"], p["rate_burst"]))
    w("       the limit holds up to ~%.0f laptops online at once behind one address; more than %d"
      % (r["max_online_per_address"], p["rate_burst"]))
    w("       reconnecting in the same second are refused once and retry after 1-2 s (backoff)")
    w("  reconnect storm: ~%.0f laptops online at the peak; if HQ restarts they redial within their"
      % r["laptops_online_peak"])
    w("       backoff (1 s doubling, jittered): > %d at once are refused and retry, no data lost"
      % p["max_sessions"])
    if s:
        w("")
        w("SIMULATION (%d days, seed %d, %d laptops; %.1f s)" % (s["days"], p["seed"], s["laptops"], elapsed))
        w("  edits measured: %d transactions made in the first %g days (later ones may not have converged)"
          % (s["edits_measured"], s["days"] / 2))
        for key, label in (("converge_hq_s", "edit -> HQ"), ("converge_district_s", "edit -> all district laptops"),
                           ("converge_org_all_laptops_s", "org-wide edit -> all %d laptops" % s["laptops"])):
            c = s[key]
            if not c:
                continue
            w("  %-34s p50 %-9s p90 %-9s p99 %-9s max %-9s not converged by day %d: %d of %d"
              % (label, fmt_dur(c["p50"]), fmt_dur(c["p90"]), fmt_dur(c["p99"]), fmt_dur(c["max"]),
                 s["days"], c["not_converged"], c["n"]))
        w("  HQ sessions/day %.0f (%.0f%% no-op); per hour: peak %d (at %02d:00), mean %.0f (%.0f over hours with any)"
          % (s["sessions_per_day"], 100 * s["noop_share"], s["sessions_per_hour_peak"], s["peak_hour_of_day"],
             s["sessions_per_hour_mean"], s["sessions_per_hour_mean_busy"]))
        w("  HQ CPU peak hour %.1f%% of %d cores (%.0f core-s/day); link peak hour %.2f Mbit/s"
          % (100 * s["cpu_peak_util"], p["hq_cores"], s["cpu_core_s_per_day"], s["bw_peak_Mbit"]))
        w("  HQ concurrent sessions peak %d (limit %d), at %.1f h" % (s["concurrent_peak"], p["max_sessions"], s["concurrent_peak_at_h"]))
        w("  HQ bytes/day up %s, down %s; per laptop down %s/day (LAN meetings carry some of it)"
          % (fmt_bytes(s["hq_up_B_day"]), fmt_bytes(s["hq_down_B_day"]), fmt_bytes(s["laptop_down_B_day"])))
    w("")
    w("LIMITS (paper model; growth = more %s)" % ("laptops per district" if grow == "laptops" else "districts"))
    w("  %-28s %10s %10s %10s %10s %10s  %s" % ("limit", "1x", "2x", "5x", "10x", "max", "crossed at"))
    for row in g:
        at = row["at"]
        cross = "never (<1e5x)" if row["crossed_at"] is None else "%.1fx" % row["crossed_at"]
        w("  %-28s %10.3g %10.3g %10.3g %10.3g %10.3g  %s %s"
          % (row["limit"], at[1], at[2], at[5], at[10], row["max"], cross, row["unit"]))
    ok = all(row["at"][1] < row["max"] for row in g)
    w("  at 1x: %s" % ("HQ is within every limit" if ok else "HQ exceeds a limit"))
    first = sorted((row for row in g if row["crossed_at"] is not None), key=lambda r_: r_["crossed_at"])
    if first:
        w("  breaks first: %s at %.1fx, then %s" % (first[0]["limit"], first[0]["crossed_at"],
          ", ".join("%s at %.1fx" % (r_["limit"], r_["crossed_at"]) for r_ in first[1:]) or "nothing else"))
    return "\n".join(out)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                 formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    for name, default, unit, src in DEFAULTS:
        ap.add_argument("--" + name.replace("_", "-"), type=int if name in INT_ONLY else float, default=default,
                        help="%s%s" % (src, " [%s]" % unit if unit else ""))
    ap.add_argument("--json", action="store_true", help="print one JSON object instead of the report")
    ap.add_argument("--no-sim", action="store_true", help="paper model only")
    ap.add_argument("--grow", choices=("laptops", "districts"), default="laptops",
                    help="what grows in the growth table: laptops per district (the bytes down grow with its square) or districts")
    a = ap.parse_args()
    p = {name: getattr(a, name) for name, _, _, _ in DEFAULTS}
    if p["days"] < 2 or p["laptops_per_district"] < 1 or p["districts"] < 1:
        ap.error("need --days >= 2 and at least one district and laptop")
    r = paper(p)
    g = growth(p, a.grow)
    s, elapsed = None, 0.0
    if not a.no_sim:
        t0 = time.time()
        s = simulate(p)
        elapsed = time.time() - t0
    if a.json:
        def clean(o):
            if isinstance(o, float) and math.isinf(o):
                return None
            if isinstance(o, dict):
                return {str(k): clean(v) for k, v in o.items()}
            if isinstance(o, list):
                return [clean(v) for v in o]
            return o
        json.dump(clean({"inputs": p, "paper": r, "growth": g, "simulation": s, "sim_seconds": elapsed}),
                  sys.stdout, indent=1)
        print()
    else:
        print(report(p, r, g, s, a.grow, elapsed))


if __name__ == "__main__":
    main()
