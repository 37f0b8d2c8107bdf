#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Tests of the benchmark harness (takt-bench, scripts/plot, summarize.py).

    test_bench.py --bench build/bench/takt-bench --plot scripts/plot \
                  --summarize bench/summarize.py [--workdir DIR]

Tiny counts: these check that every measurement completes and carries the
right bytes, not the figures.  Ends with "N passed, N failed"; exit status 1
when anything failed.
"""
import argparse
import csv
import io
import json
import os
import shutil
import subprocess
import sys
import time

passed = failed = 0


def ok(name):
    global passed
    passed += 1
    print(f"PASS {name}", flush=True)


def bad(name, why):
    global failed
    failed += 1
    print(f"FAIL {name}: {why}", flush=True)


def check(name, cond, why=""):
    if cond:
        ok(name)
    else:
        bad(name, why)
    return cond


def run(args, env=None, timeout=120):
    e = dict(os.environ)
    if env:
        e.update(env)
    t = time.time()
    r = subprocess.run(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=e,
                       timeout=timeout)
    print(f"  ran {' '.join(os.path.basename(a) if i == 0 else a for i, a in enumerate(args))}"
          f" in {time.time() - t:.1f} s (exit {r.returncode})", flush=True)
    return r


def proc_long(path, dflt):
    try:
        with open(path) as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return dflt


TINY = ["--iterations", "100", "--warmup", "10", "--seconds", "0.03", "--warmup-seconds", "0.01",
        "--verify-every", "1", "--timeout", "30"]

TOP_FIELDS = ["benchmark", "format", "command", "date", "host", "cpu_model", "kernel", "ncpu",
              "params", "limits", "disturbance", "results", "targets"]
PARAM_FIELDS = ["sizes", "modes", "iterations", "warmup", "seconds", "warmup_seconds", "capacity",
                "batch", "producers", "spin_ns", "verify_every", "timer", "poll", "pinned", "cpu",
                "fifo_priority", "mlock", "period_ns", "cycles", "warmup_cycles", "deadline_ns"]
ROW_FIELDS = ["section", "mechanism", "label", "group", "mode", "size", "producers", "batch",
              "status", "reason", "disturbance_pct", "ratio_to_takt", "ratio_to_limit"]
LAT_FIELDS = ["unit", "samples", "min", "p50", "p90", "p99", "max", "mean", "mean99", "buckets"]
STREAM_FIELDS = ["records", "seconds", "records_per_s", "mb_per_s", "ns_per_record", "full_events",
                 "empty_polls", "total_records", "total_bytes", "verified"]


def missing(d, fields):
    return [f for f in fields if f not in d]


def expected_na(mech, mode, kind, size, producers=1):
    """The reason a row must be n/a, or None when it must run."""
    flags = MECHS[mech]
    if mode == "block" and "block" not in flags:
        return "no blocking mode"
    if kind == "stream" and mech == "takt-state":
        return "no stream"
    if producers > 1 and "mpsc" not in flags:
        return "single producer"
    if mech == "posix-mq" and size > proc_long("/proc/sys/fs/mqueue/msgsize_max", 8192):
        return "limit"
    if mech == "sysv-mq" and (size > proc_long("/proc/sys/kernel/msgmax", 8192) or
                              size > proc_long("/proc/sys/kernel/msgmnb", 16384)):
        return "limit"
    if mech == "ck-ring" and size > 64:
        return "64 bytes"
    if producers > 1 and mech in ("pipe", "fifo") and size > 4096:
        return "PIPE_BUF"
    return None


MECHS = {}


def load_list(bench):
    r = run([bench, "list"])
    if not check("list: exit 0", r.returncode == 0, r.stderr):
        return
    for line in r.stdout.splitlines()[1:]:
        parts = line.split()
        if len(parts) < 5 or parts[0].startswith("("):
            if not line.strip():
                break
            continue
        MECHS[parts[0]] = {k for k, v in zip(("busy", "block", "mpsc"), parts[2:5]) if v == "yes"}
    want = ["takt", "takt-state", "ring", "pipe", "fifo", "unix-stream", "unix-seqpacket",
            "unix-dgram", "posix-mq", "sysv-mq", "eventfd", "sem", "futex", "tcp", "cacheline", "linepair", "null"]
    check("list: every mechanism", all(w in MECHS for w in want),
          f"missing {[w for w in want if w not in MECHS]}")
    if "ck-ring" not in MECHS:
        print("  note: ck-ring not built (libck-dev missing): its rows are not tested")


# The floor and the hardware limits: one row each, sequence numbers only.
LIMITS = ("null", "cacheline", "linepair")


def check_rows(tag, j, iterations, sizes, modes, producers=1):
    rows = j["results"]
    for r in rows:
        m = missing(r, ROW_FIELDS)
        if m:
            bad(f"{tag}: row fields", f"{r.get('label')}: missing {m}")
            return
    ok(f"{tag}: every row has every field")
    errors = []
    seen = set()
    for r in rows:
        mech, mode, size = r["mechanism"], r["mode"], r["size"]
        kind = "lat" if r["section"] == "latency" else "stream"
        seen.add((mech, mode, size, kind, r["batch"]))
        if mech in LIMITS:
            if r["status"] != "ok":
                errors.append(f"{r['label']}: {r['status']} {r['reason']}")
            continue
        na = expected_na(mech, mode, kind, size, r["producers"])
        if na:
            if r["status"] != "n/a" or na not in r["reason"]:
                errors.append(f"{mech} {mode} {size} {kind}: expected n/a ({na}), got {r['status']} {r['reason']}")
            continue
        if r["status"] != "ok":
            errors.append(f"{mech} {mode} {size} {kind}: {r['status']}: {r['reason']}")
            continue
        if kind == "lat":
            L = r["latency"]
            mm = missing(L, LAT_FIELDS)
            if mm:
                errors.append(f"{mech} {mode} {size} latency fields missing {mm}")
            elif L["samples"] != iterations:
                errors.append(f"{mech} {mode} {size}: {L['samples']} samples, want {iterations}")
            elif sum(b[2] for b in L["buckets"]) != iterations:
                errors.append(f"{mech} {mode} {size}: buckets do not add up")
            elif not (L["min"] <= L["p50"] <= L["p90"] <= L["p99"] <= L["max"]):
                errors.append(f"{mech} {mode} {size}: percentiles out of order {L}")
            elif r.get("verified", 0) < iterations:
                errors.append(f"{mech} {mode} {size}: only {r.get('verified')} payloads checksummed")
        else:
            S = r["stream"]
            mm = missing(S, STREAM_FIELDS)
            if mm:
                errors.append(f"{mech} {mode} {size} stream fields missing {mm}")
            elif S["total_records"] <= 0 or S["records"] <= 0:
                errors.append(f"{mech} {mode} {size}: no records in the window")
            elif S["total_bytes"] != S["total_records"] * size:
                errors.append(f"{mech} {mode} {size}: {S['total_bytes']} bytes for {S['total_records']} records")
            elif S["verified"] != S["total_records"]:
                errors.append(f"{mech} {mode} {size}: {S['verified']} of {S['total_records']} checksummed")
    check(f"{tag}: every mechanism ran (or is n/a for its limit) and carried the right bytes",
          not errors, "; ".join(errors[:8]) + (f" (+{len(errors) - 8})" if len(errors) > 8 else ""))
    return seen


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bench", required=True)
    ap.add_argument("--plot", required=True)
    ap.add_argument("--summarize", required=True)
    ap.add_argument("--workdir", default="bench-test-out")
    a = ap.parse_args()
    os.makedirs(a.workdir, exist_ok=True)
    t0 = time.time()
    bench = a.bench

    load_list(bench)

    # 1. every mechanism, both modes, three sizes (8: smallest; 100: not a
    # multiple of 8; 16384: above the message-queue limits)
    sizes = [8, 100, 16384]
    r = run([bench, "compare", "--size", ",".join(map(str, sizes)), "--mode", "busy,block",
             "--json"] + TINY)
    cj = os.path.join(a.workdir, "compare.json")
    with open(cj, "w") as f:
        f.write(r.stdout)
    check("compare: exit 0", r.returncode == 0, r.stderr[-2000:])
    try:
        j = json.loads(r.stdout)
        ok("compare: JSON parses")
    except json.JSONDecodeError as e:
        bad("compare: JSON parses", str(e))
        j = None
    if j:
        check("compare: top-level fields", not missing(j, TOP_FIELDS), f"missing {missing(j, TOP_FIELDS)}")
        check("compare: params fields", not missing(j["params"], PARAM_FIELDS),
              f"missing {missing(j['params'], PARAM_FIELDS)}")
        check("compare: limits and disturbance",
              not missing(j["limits"], ["posix_mq_msgsize_max", "sysv_msgmax", "pipe_buf"]) and
              not missing(j["disturbance"], ["foreign_cpu_pct", "steal_pct", "disturbed"]))
        seen = check_rows("compare", j, 100, sizes, ["busy", "block"])
        want = set()
        for m in MECHS:
            if m in LIMITS:
                continue
            for mode in ("busy", "block"):
                for s in sizes:
                    want.add((m, mode, s, "lat", 0))
                    want.add((m, mode, s, "stream", 0))
        if seen is not None:
            check("compare: a row for every mechanism, mode and size", want <= seen,
                  f"missing {sorted(want - seen)[:6]}")
        labels = [x["label"] for x in j["results"]]
        check("compare: cache line at the start and at the end, the line pair once",
              "cacheline (start)" in labels and "cacheline (end)" in labels and
              labels.count("line pair (one per way)") == 1, str(labels[:4]))
        names = [t["name"] for t in j["targets"]]
        check("compare: issue 9 ratio (state vs queue) present for every size and mode",
              sum("takt state RT" in n for n in names) == 2 * len(sizes), str(names))

    # 2. p99.9 / p99.99 appear with enough samples; the table on stdout
    r = run([bench, "--only", "takt", "--mode", "busy", "--iterations", "10000", "--warmup", "100",
             "--seconds", "0.02", "--warmup-seconds", "0.01", "--json"])
    try:
        j2 = json.loads(r.stdout)
        L = [x for x in j2["results"] if x["mechanism"] == "takt" and "latency" in x][0]["latency"]
        check("percentiles: p99.9 and p99.99 with 10000 samples", "p99.9" in L and "p99.99" in L, str(L.keys()))
        tg = {t["name"]: t for t in j2["targets"]}
        check("targets: issue 2 round-trip ratio reported",
              any("cache-line" in n for n in tg), str(list(tg)))
    except (json.JSONDecodeError, IndexError, KeyError) as e:
        bad("percentiles: p99.9 and p99.99 with 10000 samples", repr(e))
    r = run([bench, "--only", "takt,sem", "--size", "64", "--mode", "busy,block"] + TINY)
    check("table: readable output on stdout",
          r.returncode == 0 and "round trip, 64 B, busy-poll" in r.stdout and
          "streaming, 64 B, blocking" in r.stdout and "other processes used" in r.stdout and
          "issue 3" in r.stdout, r.stdout[-1500:] + r.stderr[-500:])

    # 2b. --poll pause: every busy mechanism still completes; the run says how it polled
    r = run([bench, "compare", "--only", "takt,ring,cacheline", "--size", "64", "--mode", "busy",
             "--poll", "pause", "--json"] + TINY)
    try:
        jp = json.loads(r.stdout)
        rows = [x for x in jp["results"] if x.get("mode") == "busy" and "latency" in x]
        check("poll pause: round trips complete and the params say so",
              r.returncode == 0 and jp["params"]["poll"] == "pause" and len(rows) >= 4 and
              all(x["status"] == "ok" and x["latency"]["samples"] == 100 for x in rows),
              r.stderr[-1500:])
    except (json.JSONDecodeError, KeyError) as e:
        bad("poll pause: round trips complete and the params say so", repr(e) + r.stderr[-1500:])
    r = run([bench, "compare", "--poll", "sometimes"] + TINY)
    check("poll: a bad value is refused with exit 2",
          r.returncode == 2 and "--poll wants tight or pause" in r.stderr, r.stderr[-500:])

    # 3. a damaged record is caught, in ping-pong and in streaming
    r = run([bench, "--only", "takt,takt-state,pipe,unix-dgram,sem", "--size", "64",
             "--mode", "busy,block", "--json"] + TINY, env={"TAKT_BENCH_CORRUPT": "7"})
    try:
        jc = json.loads(r.stdout)
        rows = [x for x in jc["results"] if x["mechanism"] not in LIMITS
                and x["status"] != "n/a"]
        caught = [x for x in rows if x["status"] == "failed" and "checksum" in x["reason"]]
        check("verification: a damaged payload fails every ping-pong and stream",
              r.returncode != 0 and rows and len(caught) == len(rows),
              f"{len(caught)} of {len(rows)} caught: " +
              "; ".join(f"{x['label']} {x['mode']} {x['section']}: {x['status']} {x['reason']}"
                        for x in rows if x not in caught)[:800])
    except json.JSONDecodeError as e:
        bad("verification: a damaged payload fails every ping-pong and stream", str(e))

    # 4. MPSC with 3 producers
    r = run([bench, "mpsc", "--producers", "3", "--size", "64,4096", "--mode", "busy,block", "--json"] + TINY)
    with open(os.path.join(a.workdir, "mpsc.json"), "w") as f:
        f.write(r.stdout)
    check("mpsc: exit 0", r.returncode == 0, r.stderr[-2000:])
    try:
        jm = json.loads(r.stdout)
        check_rows("mpsc", jm, 100, [64, 4096], ["busy", "block"], 3)
        prods = {x["label"]: x["producers"] for x in jm["results"] if x["status"] == "ok"}
        check("mpsc: SPSC baseline and 3-producer rows",
              prods.get("takt SPSC") == 1 and prods.get("takt MPSC") == 3, str(prods))
        check("mpsc: issue 4 ratios", any("MPSC" in t["name"] for t in jm["targets"]), str(jm["targets"]))
    except json.JSONDecodeError as e:
        bad("mpsc: JSON parses", str(e))

    # 5. cyclic: no IPC, queue, state
    r = run([bench, "cyclic", "--period", "1ms", "--cycles", "200", "--warmup-cycles", "5", "--json"])
    with open(os.path.join(a.workdir, "cyclic.json"), "w") as f:
        f.write(r.stdout)
    check("cyclic: exit 0", r.returncode == 0, r.stderr[-2000:])
    try:
        jy = json.loads(r.stdout)
        rows = jy["results"]
        labels = [x["label"] for x in rows]
        errs = []
        for x in rows:
            if x["status"] != "ok":
                errs.append(f"{x['label']}: {x['reason']}")
                continue
            c = x["cyclic"]
            n = c["latency"]["samples"]
            if "wake-up" in x["label"] and n != 200:
                errs.append(f"{x['label']}: {n} samples")
            if "queue: latency" in x["label"] and n != 200:
                errs.append(f"{x['label']}: {n} records")
            if "state: latency" in x["label"] and not (0 < n <= 200 and n + c["skipped"] >= 195):
                errs.append(f"{x['label']}: {n} images, {c['skipped']} skipped")
            if missing(c, ["what", "period_ns", "deadline_ns", "cycles", "misses", "skipped", "latency"]):
                errs.append(f"{x['label']}: fields")
        check("cyclic: five rows (platform, queue and state) with every cycle accounted for",
              len(rows) == 5 and not errs, f"{labels} {errs}")
    except json.JSONDecodeError as e:
        bad("cyclic: JSON parses", str(e))

    # 6. CSV
    r = run([bench, "--only", "takt,pipe,posix-mq", "--size", "64,16384", "--mode", "busy", "--csv"] + TINY)
    try:
        rows = list(csv.reader(io.StringIO(r.stdout)))
        hdr = rows[0] if rows else []
        need = ["command", "section", "mechanism", "mode", "size", "status", "p50_ns", "p99_ns",
                "records_per_s", "ratio_to_takt", "ratio_to_limit"]
        check("csv: header and one row per result",
              r.returncode == 0 and all(h in hdr for h in need) and len(rows) >= 1 + 10 and
              all(len(x) == len(hdr) for x in rows[1:]),
              f"header {hdr}, {len(rows)} lines")
        na = [x for x in rows[1:] if x[hdr.index("mechanism")] == "posix-mq" and
              x[hdr.index("size")] == "16384"]
        check("csv: POSIX mq above msgsize_max is n/a (limit)",
              na and all(x[hdr.index("status")] == "n/a" and "limit" in x[hdr.index("reason")] for x in na),
              str(na))
    except (IndexError, ValueError) as e:
        bad("csv: header and one row per result", repr(e))

    # 7. bad options: exit 2 with a message
    r = run([bench, "--size", "4"])
    check("options: a record below 8 bytes is refused", r.returncode == 2 and "size" in r.stderr, r.stderr)
    r = run([bench, "frobnicate"])
    check("options: an unknown command is refused", r.returncode == 2, r.stderr)

    # 8. summarize.py turns the JSON into Markdown
    r = run([sys.executable, a.summarize, a.workdir])
    check("summarize: Markdown tables", r.returncode == 0 and "| mechanism |" in r.stdout and
          "Ratios and targets" in r.stdout, r.stderr[-1000:])

    # 9. plots
    if not shutil.which("gnuplot"):
        print("SKIP plot: gnuplot is not installed (Debian: gnuplot-nox; scripts/test.sh installs it)")
    else:
        outdir = os.path.join(a.workdir, "plots")
        shutil.rmtree(outdir, ignore_errors=True)
        r = run([sys.executable, a.plot, "-o", outdir, cj, os.path.join(a.workdir, "cyclic.json")])
        files = r.stdout.split()
        pngs = [p for p in files if p.endswith(".png")]
        svgs = [p for p in files if p.endswith(".svg")]
        good_png = all(os.path.getsize(p) > 1000 and open(p, "rb").read(8) == b"\x89PNG\r\n\x1a\n" for p in pngs)
        good_svg = all(os.path.getsize(p) > 1000 and b"<svg" in open(p, "rb").read(4096) for p in svgs)
        check("plot: non-empty PNG and SVG for latency, comparison and cyclic",
              r.returncode == 0 and pngs and svgs and good_png and good_svg and
              any("latency" in p for p in pngs) and any("compare" in p for p in pngs) and
              any("cyclic" in p for p in pngs), r.stderr[-1000:] + str(files))

    print(f"(tests/bench ran for {time.time() - t0:.0f} s)")
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
