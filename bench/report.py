#!/usr/bin/python3
"""bench/report.py - turn the raw samples bench/run.sh collected into the table and results.json.

Usage: report.py BENCH_DIR. Reads BENCH_DIR/{machine.json,samples.tsv,skips.tsv,live.tsv,wl/*.json}
and the per-run logs the samples point at; prints the tables and the targets (pass / FAIL /
skipped) and writes BENCH_DIR/results.json. Every figure is the median over the runs; ratios
are ratios of medians measured in the same harness run.
"""
import glob
import json
import os
import re
import statistics
import sys

D = sys.argv[1] if len(sys.argv) > 1 else "bench/out"


def load_json(path, default=None):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return default


def read_tsv(path):
    try:
        with open(path) as f:
            return [l.rstrip("\n").split("\t") for l in f if l.strip()]
    except OSError:
        return []


def text(path):
    try:
        with open(path, errors="replace") as f:
            return f.read()
    except OSError:
        return ""


def med(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


machine = load_json(os.path.join(D, "machine.json"), {})
workloads = {}
for p in glob.glob(os.path.join(D, "wl", "*.json")):
    w = load_json(p)
    if w:
        workloads[os.path.basename(p)[:-5]] = w
skipped = [{"section": r[0], "item": r[1], "reason": r[2]} for r in read_tsv(os.path.join(D, "skips.tsv")) if len(r) >= 3]

# ---------------------------------------------------------------- samples
END_RE = re.compile(r"flows ended (\d+) \(([^)]*)\)")
PKT_RE = re.compile(r"\bpackets (\d+)")


def svc_counters(err):
    out = {}
    m = END_RE.search(err)
    if m:
        out["flows_ended"] = int(m.group(1))
        for part in m.group(2).split(","):
            kv = part.strip().rsplit(" ", 1)
            if len(kv) == 2 and kv[1].isdigit():
                out["ended_" + kv[0]] = int(kv[1])
    m = PKT_RE.search(err)
    if m:
        out["packets"] = int(m.group(1))
    return out


def csv_end_reasons(path):
    """end_reason counts from a flow CSV (fallback when the exit summary has none)."""
    try:
        with open(path) as f:
            head = f.readline().rstrip("\n").split(",")
            if "end_reason" not in head:
                return {}
            i = head.index("end_reason")
            counts = {}
            for line in f:
                cols = line.rstrip("\n").split(",")
                if len(cols) == len(head):
                    counts[cols[i]] = counts.get(cols[i], 0) + 1
            return counts
    except OSError:
        return {}


samples = []
for r in read_tsv(os.path.join(D, "samples.tsv")):
    if len(r) < 10:
        continue
    sec, wl, tool, run, wall, user, sys_, rss, rc, log = r[:10]
    try:
        s = {"section": sec, "workload": wl, "tool": tool, "run": int(run), "wall_s": float(wall),
             "user_s": float(user), "sys_s": float(sys_), "rss_kb": int(rss), "rc": int(rc), "log": log}
    except ValueError:
        continue
    s["cpu_s"] = s["user_s"] + s["sys_s"]
    if tool.startswith("svcsensor"):
        s.update(svc_counters(text(log + ".err")))
    if tool == "detector_bench":
        for kv in text(log + ".out").split():
            if "=" in kv:
                k, v = kv.split("=", 1)
                try:
                    s["det_" + k] = float(v)
                except ValueError:
                    pass
    samples.append(s)


def group(sec, wl, tool):
    ok = [s for s in samples if s["section"] == sec and s["workload"] == wl and s["tool"] == tool]
    good = [s for s in ok if s["rc"] == 0]
    if not ok:
        return None
    g = {"runs": len(ok), "ok_runs": len(good)}
    if not good:
        g["error"] = "exit %d (see %s.err)" % (ok[0]["rc"], ok[0]["log"])
        return g
    for k in ("wall_s", "cpu_s", "user_s", "sys_s", "rss_kb"):
        g[k] = med([s[k] for s in good])
    for k in set(k for s in good for k in s if k.startswith(("ended_", "det_")) or k in ("flows_ended", "packets")):
        g[k] = med([s.get(k) for s in good])
    g["samples_wall_s"] = [s["wall_s"] for s in good]
    return g


def fmt(x, f="%.2f", none="-"):
    return none if x is None else f % x


def ratio(a, b):
    return a / b if (a is not None and b) else None


targets = []


def target(name, value, op, limit, why_missing=None):
    if value is None:
        targets.append({"target": name, "value": None, "limit": limit, "op": op,
                        "result": "skipped", "why": why_missing or "not measured"})
        return
    ok = value >= limit if op == ">=" else value <= limit if op == "<=" else value == limit
    targets.append({"target": name, "value": value, "limit": limit, "op": op,
                    "result": "pass" if ok else "FAIL"})


results = {"machine": machine, "workloads": workloads, "offline": {}, "memory": {}, "detector": {},
           "live": {}, "targets": targets, "skipped": skipped}
out = []
P = out.append

P("svcsensor bench  %s  nproc=%s  mem=%.1f GB  kernel %s  nDPI %s  svcsensor %s" % (
    machine.get("date_utc", ""), machine.get("nproc"), (machine.get("mem_kb") or 0) / 1048576,
    machine.get("kernel"), machine.get("ndpi"), machine.get("svcsensor_git")))
P("cpu: %s   runs per figure: %s (median)" % (machine.get("cpu"), machine.get("env", {}).get("BENCH_RUNS")))

# ---------------------------------------------------------------- offline
TOOLS = ["floor", "ndpiReader", "svcsensor -t1", "svcsensor -t2"]
for wl in ("dpi", "gateway"):
    meta = workloads.get(wl)
    if not meta or not any(s["section"] == "offline" and s["workload"] == wl for s in samples):
        continue
    npk, nby, nfl = meta["packets"], meta["bytes"], meta["flows"]
    P("")
    P("== offline %s: %s packets, %s flows (%s concurrent), %.1f pkts/flow, avg frame %.0f B, %.0f MB ==" % (
        wl, f"{npk:,}", f"{nfl:,}", f"{meta['concurrent_flows']:,}", meta["pkts_per_flow"], meta["avg_frame"],
        meta["pcap_bytes"] / 1e6))
    P("(ndpiReader reads a pcap with one thread: -n is ignored for files in nDPI 4.2)")
    P("%-15s %8s %8s %8s %8s %9s %9s %10s %10s" % ("tool", "wall s", "cpu s", "Mpps", "Gbit/s", "kflows/s",
                                                 "RSS MB", "x ndpiRdr", "x floor"))
    res = {}
    for t in TOOLS:
        g = group("offline", wl, t)
        if g is None:
            continue
        res[t] = g
        if "error" in g:
            P("%-15s failed: %s" % (t, g["error"]))
            continue
        w = g["wall_s"] or 1e-9
        g["pps"], g["gbps"], g["flows_per_s"] = npk / w, nby * 8 / w / 1e9, nfl / w
    nd, fl = res.get("ndpiReader", {}), res.get("floor", {})
    for t, g in res.items():
        if "error" in g:
            continue
        g["x_ndpi_pps"] = ratio(g["pps"], nd.get("pps"))
        g["x_floor_wall"] = ratio(g["wall_s"], fl.get("wall_s"))
        P("%-15s %8.3f %8.3f %8.3f %8.2f %9.1f %9.1f %10s %10s" % (
            t, g["wall_s"], g["cpu_s"], g["pps"] / 1e6, g["gbps"], g["flows_per_s"] / 1e3, g["rss_kb"] / 1024,
            fmt(g["x_ndpi_pps"], "%.2fx"), fmt(g["x_floor_wall"], "%.2fx")))
        if t.startswith("svcsensor") and "flows_ended" in g:
            g["flows_match"] = g["flows_ended"] == nfl
    t1, t2 = res.get("svcsensor -t1", {}), res.get("svcsensor -t2", {})
    sc = ratio(t2.get("pps"), t1.get("pps"))
    if sc is not None:
        P("%-15s -t2/-t1 packets/s %.2fx; flows counted by svcsensor -t1 %s (generator %s)" % (
            "", sc, fmt(t1.get("flows_ended"), "%d"), nfl))
    for s in [x for x in skipped if x["section"] == "offline" and x["item"].startswith(wl + " ")]:
        P("%-15s skipped: %s" % (s["item"].split(" ", 1)[1], s["reason"]))
    results["offline"][wl] = {"tools": res, "t2_over_t1_pps": sc}
    why = "svcsensor not measured" if not t1 else None
    if wl == "dpi":
        target("dpi: -t1 packets/s >= 2x ndpiReader", t1.get("x_ndpi_pps"), ">=", 2.0, why)
        target("dpi: -t2 packets/s >= 3.5x ndpiReader", t2.get("x_ndpi_pps"), ">=", 3.5, why)
        for t, g in (("-t1", t1), ("-t2", t2)):
            target("dpi: %s peak RSS <= 1/4 of ndpiReader's" % t, ratio(g.get("rss_kb"), nd.get("rss_kb")),
                   "<=", 0.25, why)
    else:
        target("gateway: -t2 wall <= 1.5x floor", t2.get("x_floor_wall"), "<=", 1.5, why)
        target("gateway: -t1 packets/s >= 4x ndpiReader", t1.get("x_ndpi_pps"), ">=", 4.0, why)
    target("%s: -t2 >= 1.8x -t1 packets/s" % wl, sc, ">=", 1.8, why)

# ---------------------------------------------------------------- memory
mem_wls = sorted({s["workload"] for s in samples if s["section"] == "memory"})
for prof in ("hold-idle", "hold-detect"):
    ns = sorted(int(w.rsplit("-", 1)[1]) for w in mem_wls if w.startswith("mem-%s-" % prof))
    if not ns:
        continue
    label = "classified, idle" if prof == "hold-idle" else "still in detection"
    P("")
    P("== memory %s: flows %s (DNS/NTP answered)" % (prof, label) if prof == "hold-idle" else
      "== memory %s: flows %s (TCP handshake + unknown payload, or one unknown UDP datagram)" % (prof, label))
    P("%-15s %10s %9s %8s %12s %12s %10s %10s" % ("tool", "flows", "RSS MB", "wall s", "B/flow",
                                                   "B/flow marg", "evicted", "ended"))
    res = {}
    for t in ("svcsensor -t1", "ndpiReader"):
        base = group("memory", "mem-%s-1000" % prof, t)
        prev = None
        for n in ns:
            g = group("memory", "mem-%s-%d" % (prof, n), t)
            if g is None:
                continue
            res.setdefault(t, {})[n] = g
            if "error" in g:
                P("%-15s %10d failed: %s" % (t, n, g["error"]))
                continue
            bpf = None
            if n > 1000 and base and "rss_kb" in base:
                bpf = (g["rss_kb"] - base["rss_kb"]) * 1024 / (n - 1000)
            g["bytes_per_flow"] = bpf
            # marginal cost between this size and the previous one: fixed costs cancel
            marg = None
            if prev and n > 1000 and prev[0] > 1000:
                marg = (g["rss_kb"] - prev[1]) * 1024 / (n - prev[0])
            g["bytes_per_flow_marginal"] = marg
            prev = (n, g["rss_kb"])
            meta = workloads.get("mem-%s-%d" % (prof, n), {})
            g["expected_flows"] = meta.get("flows")
            ev = g.get("ended_evicted")
            if t.startswith("svcsensor") and ev is None:
                rs = csv_end_reasons(os.path.join(D, "wl", "mem-%s.d" % prof, "flows-t1.csv"))
                if rs:
                    ev = rs.get("evicted", 0)
                    g["ended_evicted"] = ev
            P("%-15s %10s %9.1f %8.3f %12s %12s %10s %10s" % (
                t, f"{n:,}", g["rss_kb"] / 1024, g["wall_s"], fmt(bpf, "%.0f"), fmt(marg, "%.0f"), fmt(ev, "%d"),
                fmt(g.get("flows_ended"), "%d")))
    for s in [x for x in skipped if x["section"] == "memory" and x["item"].startswith(prof + " ")]:
        P("%-15s skipped: %s" % (s["item"].split(" ", 1)[1], s["reason"]))
    results["memory"][prof] = res
    svc = res.get("svcsensor -t1", {})
    if prof == "hold-idle":
        for n in ns:
            if n > 1000:
                target("memory: <= 256 B resident per classified idle flow (%s flows)" % f"{n:,}",
                       svc.get(n, {}).get("bytes_per_flow"), "<=", 256, "svcsensor not measured")
    big = max(ns)
    if big >= 1000000:
        g = svc.get(big, {})
        held = None
        if "ended_evicted" in g:
            held = 1.0 if (g["ended_evicted"] == 0 and g.get("flows_ended", g.get("expected_flows")) ==
                           g.get("expected_flows")) else 0.0
        target("memory: %s concurrent flows (%s) held without eviction" % (f"{big:,}", prof), held, "==", 1.0,
               "svcsensor not measured")

if not results["memory"]:
    for name in ("memory: <= 256 B resident per classified idle flow",
                 "memory: 1,000,000 concurrent flows held without eviction"):
        target(name, None, "<=", 256, "memory section not run")

# ---------------------------------------------------------------- detector
dets = {}
for e in (10000, 100000):
    g = group("detector", "entries-%d" % e, "detector_bench")
    if g:
        dets[e] = g
if dets or any(s["section"] == "detector" for s in skipped):
    P("")
    P("== detector path: synthetic finished flows through detector__flow (1% anomalies) ==")
    P("%-15s %12s %14s %14s %10s" % ("map entries", "flows/s", "lookup floor/s", "x floor time", "RSS MB"))
    for e, g in dets.items():
        if "error" in g:
            P("%-15s failed: %s" % (f"{e:,}", g["error"]))
            continue
        P("%-15s %12s %14s %14s %10.1f" % (f"{e:,}", fmt(g.get("det_flows_per_s"), "%.0f"),
                                          fmt(g.get("det_floor_per_s"), "%.0f"), fmt(g.get("det_ratio_floor"), "%.2fx"),
                                          g["rss_kb"] / 1024))
    for s in [x for x in skipped if x["section"] == "detector"]:
        P("%-15s skipped: %s" % (s["item"], s["reason"]))
    results["detector"] = dets
for e in (10000, 100000):
    target("detector: >= 2 M flows/s (%s entries)" % f"{e:,}", dets.get(e, {}).get("det_flows_per_s"), ">=", 2e6,
           "detector_bench not run")

# ---------------------------------------------------------------- live
DROP_RE = re.compile(r"(?:drop(?:s|ped)?)[ :=]+(\d+)", re.I)
# svcsensor's exit summary for live capture: the kernel's ring counters (packets include drops)
RING_RE = re.compile(r"ring: packets (\d+), drops (\d+)")
NDPI_RX_RE = re.compile(r"IP packets:\s+\d+\s+of\s+(\d+)\s+packets total")
rows = read_tsv(os.path.join(D, "live.tsv"))
if rows or any(s["section"] == "live" for s in skipped):
    P("")
    lw = workloads.get("live", {})
    P("== live: tcpreplay into veth (netns), %s packets of the %s workload ==" % (
        f"{lw.get('packets', 0):,}", lw.get("profile", "?")))
    P("%-8s %-15s %10s %10s %10s %8s %s" % ("rate", "tool", "sent", "received", "dropped", "drop %", "note"))
    live = {}
    for r in rows:
        rate, tool, run, sent, failed, status, log = (r + [""] * 7)[:7]
        rec = {"run": int(run), "status": status, "log": log}
        rec["sent"] = int(sent) if sent.isdigit() else None
        rx = drops = None
        if tool == "ndpiReader":
            m = NDPI_RX_RE.search(text(log + ".out"))
            rx = int(m.group(1)) if m else None
        else:
            err = text(log + ".err")
            m = RING_RE.search(err)
            if m:
                drops = int(m.group(2))
                rx = int(m.group(1)) - drops
            else:
                rx = None
        if drops is None and rx is not None and rec["sent"] is not None:
            drops = max(rec["sent"] - rx, 0)
        rec["received"], rec["dropped"] = rx, drops
        live.setdefault(rate, {}).setdefault(tool, []).append(rec)
    for rate, tools in live.items():
        for tool, recs in tools.items():
            good = [x for x in recs if x["received"] is not None]
            agg = {"runs": recs}
            if good:
                agg.update({k: med([x[k] for x in good]) for k in ("sent", "received", "dropped")})
                pct = 100.0 * agg["dropped"] / agg["sent"] if agg.get("sent") and agg["dropped"] is not None else None
                agg["drop_pct"] = pct
                P("%-8s %-15s %10s %10s %10s %8s" % (rate, tool, fmt(agg["sent"], "%d"), fmt(agg["received"], "%d"),
                                                     fmt(agg["dropped"], "%d"), fmt(pct, "%.2f")))
            else:
                P("%-8s %-15s %10s %10s %10s %8s failed: %s (see %s.err)" % (rate, tool, "-", "-", "-", "-",
                                                                           recs[0]["status"], recs[0]["log"]))
            tools[tool] = agg
    for s in [x for x in skipped if x["section"] == "live"]:
        P("%-8s %-15s skipped: %s" % ("", s["item"], s["reason"]))
    results["live"] = live
    ok = None
    compared = 0
    for rate, tools in live.items():
        nd, t2 = tools.get("ndpiReader", {}), tools.get("svcsensor -t2", {})
        if nd.get("dropped") and t2.get("dropped") is not None:
            compared += 1
            ok = (ok if ok is not None else 1.0) * (1.0 if t2["dropped"] == 0 else 0.0)
    target("live: -t2 drops nothing where ndpiReader drops", ok, "==", 1.0,
           "no rate where ndpiReader dropped and svcsensor -t2 was measured" if not compared else None)
else:
    target("live: -t2 drops nothing where ndpiReader drops", None, "==", 1.0, "live section not run")

# ---------------------------------------------------------------- targets
P("")
P("== targets ==")
for t in targets:
    v = t["value"]
    if t["result"] == "skipped":
        P("  %-8s %s (%s)" % ("skipped", t["target"], t["why"]))
    else:
        vs = "%.3g" % v if t["op"] != "==" else ("yes" if v == t["limit"] else "no")
        P("  %-8s %s: %s" % (t["result"], t["target"], vs))

results["samples"] = samples
with open(os.path.join(D, "results.json"), "w") as f:
    json.dump(results, f, indent=1, sort_keys=True, default=str)
P("")
P("results: %s" % os.path.join(D, "results.json"))
print("\n".join(out))
