#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Markdown tables from the JSON files bench/run-all.sh (and bench/run.sh)
leave in a directory: takt-bench compare/mpsc/cyclic (compare*.json,
mpsc*.json, cyclic*.json), takt-bench-core (core-*.json), Google Benchmark
(micro-*.json).  Rows measured while other processes took more than 5 % of
the CPUs are marked "disturbed"."""
import glob
import json
import os
import sys


def load(pattern):
    out = []
    for p in sorted(glob.glob(pattern)):
        with open(p) as f:
            try:
                out.append((os.path.basename(p), json.load(f)))
            except json.JSONDecodeError:
                print(f"<!-- {p}: not JSON -->")
    return out


def core(d):
    runs = load(os.path.join(d, "core-*.json"))
    if not runs:
        return
    print("### Round trip, 64-byte records (ns)\n")
    print("| run | disturbance (other / steal %) | mechanism | min | p50 | p90 | p99 | p99.9 | p99.99 | max | mean99 |")
    print("|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for name, j in runs:
        dist = j.get("disturbance", {})
        ds = f"{dist.get('foreign_cpu_pct', float('nan')):.1f} / {dist.get('steal_pct', float('nan')):.1f}"
        for key, label in (("null_rt", "harness floor"), ("cacheline_rt_start", "cache line (start)"),
                           ("linepair_rt", "line pair (one per way)"), ("takt_rt", "**takt**"), ("ring_rt", "minimal ring"),
                           ("cacheline_rt_end", "cache line (end)")):
            r = j["results"].get(key)
            if not r or "error" in r:
                continue
            print(f"| {name[5:-5]} | {ds} | {label} | {r['min']} | {r['p50']} | {r['p90']} | {r['p99']} | "
                  f"{r.get('p99.9', '-')} | {r.get('p99.99', '-')} | {r['max']} | {r['mean99']:.1f} |")
    print("\n### Streaming, 64-byte records\n")
    print("| run | mechanism | records/s | MB/s | ns/record |")
    print("|---|---|---:|---:|---:|")
    for name, j in runs:
        for key, label in (("takt_stream", "**takt**"), ("takt_stream_batch", "takt, batch 32"),
                           ("ring_stream", "minimal ring")):
            r = j["results"].get(key)
            if not r or "error" in r:
                continue
            print(f"| {name[5:-5]} | {label} | {r['records_per_s'] / 1e6:.1f} M | {r['mb_per_s']:.0f} | "
                  f"{r['ns_per_record']:.1f} |")
    print("\n### Ratios\n")
    print("| run | takt RT p50 / cache line p50 (start, end) | same, mean99 | takt RT p50 / line pair p50 | takt stream / ring | takt batch / ring |")
    print("|---|---|---|---:|---:|---:|")
    for name, j in runs:
        q = j["ratios"]
        def g(k):
            v = q.get(k)
            return f"{v:.2f}" if v is not None else "-"
        print(f"| {name[5:-5]} | {g('takt_rt_p50_over_cacheline_start')}, {g('takt_rt_p50_over_cacheline_end')} | "
              f"{g('takt_rt_mean99_over_cacheline_start')}, {g('takt_rt_mean99_over_cacheline_end')} | "
              f"{g('takt_rt_p50_over_linepair')} | {g('takt_stream_over_ring_stream')} | {g('takt_batch_stream_over_ring_stream')} |")
    print()


# The floor and the hardware limits: one table of their own.
LIMITS = ("null", "cacheline", "linepair")


def fmt_ratio(v):
    return "-" if v is None else f"{v:.2f}"


def dist_mark(r):
    return " (disturbed)" if r.get("disturbance_pct", 0) > 5 else ""


def suite_file(name, j):
    dist = j.get("disturbance", {})
    print(f"### {name}: takt-bench {j['command']}\n")
    p = j["params"]
    print(f"{j['date']}, {j['cpu_model']}, {j['kernel']}, {j['ncpu']} CPUs; "
          f"pinned: {'CPUs ' + ','.join(map(str, p['cpu'])) if p['pinned'] else 'no'}; "
          f"other processes {dist.get('foreign_cpu_pct', 0):.1f} %, steal {dist.get('steal_pct', 0):.1f} %"
          f"{' - **DISTURBED: not results**' if dist.get('disturbed') else ''}\n")
    rows = j["results"]
    if j["command"] == "cyclic":
        print(f"period {p['period_ns'] / 1e6:g} ms, {p['cycles']} cycles after {p['warmup_cycles']} warm-up, "
              f"deadline {p['deadline_ns'] / 1e6:g} ms (ns from the intended cycle start)\n")
        print("| what | min | p50 | p90 | p99 | p99.9 | p99.99 | max | misses | skipped |")
        print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
        for r in rows:
            if r["status"] != "ok":
                print(f"| {r['label']} | {r['status']}: {r['reason']} |||||||||")
                continue
            c = r["cyclic"]; L = c["latency"]
            print(f"| {r['label']}{dist_mark(r)} | {L['min']} | {L['p50']} | {L['p90']} | {L['p99']} | "
                  f"{L.get('p99.9', '-')} | {L.get('p99.99', '-')} | {L['max']} | {c['misses']} | {c['skipped']} |")
        print()
        return
    keys = []
    for r in rows:
        k = (r["section"], r["size"], r["mode"], "lat" if r["section"] == "latency" else "st")
        if r["mechanism"] in LIMITS:
            k = ("limit", 0, "busy", "lat")
        if k not in keys:
            keys.append(k)
    for k in keys:
        sec, size, mode, kind = k
        sel = [r for r in rows if ((sec == "limit" and r["mechanism"] in LIMITS) or
                                   (sec != "limit" and r["mechanism"] not in LIMITS and
                                    (r["section"], r["size"], r["mode"]) == (sec, size, mode)))]
        m = "busy-poll" if mode == "busy" else "blocking"
        if kind == "lat":
            print("#### " + ("Floor and hardware limit, round trip (ns)" if sec == "limit" else
                             f"Round trip, {size} B, {m} (ns)") + "\n")
            print("| mechanism | min | p50 | p90 | p99 | p99.9 | p99.99 | max | x takt | x limit |")
            print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
            for r in sel:
                if r["status"] != "ok":
                    print(f"| {r['label']} | {r['status']}: {r['reason']} |||||||||")
                    continue
                L = r["latency"]
                lab = f"**{r['label']}**" if r["mechanism"] == "takt" else r["label"]
                print(f"| {lab}{dist_mark(r)} | {L['min']} | {L['p50']} | {L['p90']} | {L['p99']} | "
                      f"{L.get('p99.9', '-')} | {L.get('p99.99', '-')} | {L['max']} | "
                      f"{fmt_ratio(r['ratio_to_takt'])} | {fmt_ratio(r['ratio_to_limit'])} |")
        else:
            mp = sec == "mpsc"
            print(f"#### {'MPSC streaming, ' + str(p['producers']) + ' producers' if mp else 'Streaming'}, "
                  f"{size} B, {m}\n")
            print(f"| mechanism | producers | records/s | MB/s | ns/record | x takt | {'x SPSC' if mp else 'x limit'} |")
            print("|---|---:|---:|---:|---:|---:|---:|")
            for r in sel:
                if r["status"] != "ok":
                    print(f"| {r['label']} | {r['status']}: {r['reason']} ||||||")
                    continue
                S = r["stream"]
                lab = f"**{r['label']}**" if r["mechanism"] == "takt" else r["label"]
                print(f"| {lab}{dist_mark(r)} | {r['producers']} | {S['records_per_s'] / 1e6:.3f} M | "
                      f"{S['mb_per_s']:.0f} | {S['ns_per_record']:.1f} | {fmt_ratio(r['ratio_to_takt'])} | "
                      f"{fmt_ratio(r['ratio_to_limit'])} |")
        print()
    if j.get("targets"):
        print("#### Ratios and targets\n")
        print("| issue | ratio | value | target | verdict |")
        print("|---|---|---:|---|---|")
        for t in j["targets"]:
            tg = "-" if t["target"] is None else f"{t['op']} {t['target']:.2f}"
            print(f"| {t['issue']} | {t['name']} | {t['value']:.3f} | {tg} | {t['verdict']} |")
        print()


def suite(d):
    for pattern in ("compare*.json", "mpsc*.json", "cyclic*.json"):
        for name, j in load(os.path.join(d, pattern)):
            if j.get("benchmark") == "takt-bench":
                suite_file(name, j)


def micro(d):
    runs = load(os.path.join(d, "micro-*.json"))
    if not runs:
        return
    names = [b["name"] for b in runs[0][1]["benchmarks"]]
    print("### Micro-benchmarks, one process (ns per iteration)\n")
    print("| benchmark | " + " | ".join(f"run {i + 1}" for i in range(len(runs))) + " |")
    print("|---|" + "---:|" * len(runs))
    for n in names:
        vals = []
        for _, j in runs:
            b = next((b for b in j["benchmarks"] if b["name"] == n), None)
            vals.append(f"{b['real_time']:.1f}" if b else "-")
        print(f"| {n} | " + " | ".join(vals) + " |")
    print()


if __name__ == "__main__":
    d = sys.argv[1] if len(sys.argv) > 1 else "."
    suite(d)
    core(d)
    micro(d)
