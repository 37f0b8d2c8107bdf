#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Markdown tables from the JSON files bench/run.sh leaves in a directory."""
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
                           ("takt_rt", "**takt**"), ("ring_rt", "minimal ring"),
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
    print("| run | takt RT p50 / cache line p50 (start, end) | same, mean99 | takt stream / ring | takt batch / ring |")
    print("|---|---|---|---:|---:|")
    for name, j in runs:
        q = j["ratios"]
        def g(k):
            v = q.get(k)
            return f"{v:.2f}" if v is not None else "-"
        print(f"| {name[5:-5]} | {g('takt_rt_p50_over_cacheline_start')}, {g('takt_rt_p50_over_cacheline_end')} | "
              f"{g('takt_rt_mean99_over_cacheline_start')}, {g('takt_rt_mean99_over_cacheline_end')} | "
              f"{g('takt_stream_over_ring_stream')} | {g('takt_batch_stream_over_ring_stream')} |")
    print()


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
    core(d)
    micro(d)
