#!/usr/bin/env python3
"""collect.py: build outcomes.json (and outcomes.md, the tables of README.md)
from the per-run files that make_real.sh leaves in */runs/.

For each run: the OOM kills from its dmesg (since the run's marker), in order,
with the time since the run's "start" marker and since its "leaker-start" /
"freer-start" marker (dmesg clock), the fields of the kernel's "Killed process"
line, the victim's row of the kernel's task dump and oom_badness points computed
from it:
    points = rss + swapents + pgtables_bytes / 4096 + adj * (totalpages // 1000)
with totalpages = the memcg limit in pages (no swap on this machine, so
mem_cgroup_get_max() is memory.limit_in_bytes). The kernel does not print the
points; `points_computed` is this formula applied to the dump it does print, and
`candidates` lists every task of that dump with its computed points.
"""
import csv
import glob
import gzip
import json
import os
import platform
import re

HERE = os.path.dirname(os.path.abspath(__file__))
TS = re.compile(r"^\[\s*(\d+\.\d+)\]\s?(.*)$")
MARK = re.compile(r"memtrace-real: (\S+) (begin|start|leaker-start|freer-start|written|end)\b")
SAMPLER0 = re.compile(r"memtrace-real: sampler-t0")
INVOKED = re.compile(r"^(.*) invoked oom-killer: gfp_mask=(\S+), order=(-?\d+), oom_score_adj=(-?\d+)")
CPU = re.compile(r"^CPU: \d+ UID: \d+ PID: (\d+) Comm: (\S+)")
MEM = re.compile(r"^memory: usage (\d+)kB, limit (\d+)kB, failcnt (\d+)")
MEMSW = re.compile(r"^memory\+swap: usage (\d+)kB, limit (\d+)kB, failcnt (\d+)")
KMEM = re.compile(r"^kmem: usage (\d+)kB")
TASKHDR = re.compile(r"^\[\s*pid\s*\]")
TASKROW = re.compile(r"^\[\s*(\d+)\]\s+(.*)$")
OOMKILL = re.compile(r"^oom-kill:(.*)$")
KILLED = re.compile(r"^(?:Memory cgroup out of memory|Out of memory): Killed process (\d+) \((.*?)\) "
                    r"total-vm:(\d+)kB, anon-rss:(\d+)kB, file-rss:(\d+)kB, shmem-rss:(\d+)kB, "
                    r"UID:(\d+) pgtables:(\d+)kB oom_score_adj:(-?\d+)")
REAPED = re.compile(r"^oom_reaper: reaped process (\d+) \((.*?)\), now anon-rss:(\d+)kB, "
                    r"file-rss:(\d+)kB, shmem-rss:(\d+)kB")
STATLINE = re.compile(r"^([a-z_]+) (\d+)$")


def parse_dmesg(path, limit_mib):
    totalpages = limit_mib * 256
    marks = {}
    ooms = []
    cur = None
    cols = None
    in_stats = False
    reaped = []
    with gzip.open(path, "rt", errors="replace") as f:
        for raw in f:
            m = TS.match(raw.rstrip("\n"))
            if not m:
                continue
            ts, msg = float(m.group(1)), m.group(2)
            if SAMPLER0.search(msg):
                marks.setdefault("sampler-t0", ts)
                continue
            mk = MARK.search(msg)
            if mk:
                marks.setdefault(mk.group(2), ts)
                continue
            m = INVOKED.match(msg)
            if m:
                cur = {"invoked_at": ts, "invoker": m.group(1), "gfp_mask": m.group(2),
                       "order": int(m.group(3)), "invoker_oom_score_adj": int(m.group(4)),
                       "tasks": [], "memcg_stat": {}}
                ooms.append(cur)
                cols = None
                in_stats = False
                continue
            if cur is None:
                m = KILLED.match(msg)
                if m:  # a kill whose header was rate-limited
                    cur = {"invoked_at": None, "header_ratelimited": True, "tasks": [], "memcg_stat": {}}
                    ooms.append(cur)
                else:
                    m = REAPED.match(msg)
                    if m:
                        reaped.append((ts, int(m.group(1)), m.group(2), int(m.group(3))))
                    continue
            if (m := CPU.match(msg)):
                cur["invoker_pid"] = int(m.group(1))
            elif (m := MEM.match(msg)):
                cur["memory_usage_kb"], cur["memory_limit_kb"], cur["memory_failcnt"] = map(int, m.groups())
            elif (m := MEMSW.match(msg)):
                cur["memsw_usage_kb"], cur["memsw_limit_kb"], cur["memsw_failcnt"] = map(int, m.groups())
            elif (m := KMEM.match(msg)):
                cur["kmem_usage_kb"] = int(m.group(1))
            elif msg.startswith("Memory cgroup stats for"):
                in_stats = True
            elif in_stats and (m := STATLINE.match(msg)):
                cur["memcg_stat"][m.group(1)] = int(m.group(2))
            elif msg.startswith("Tasks state"):
                in_stats = False
            elif TASKHDR.match(msg):
                cols = msg.split("]", 1)[1].split()
            elif cols and (m := TASKROW.match(msg)):
                vals = m.group(2).split()
                row = {"pid": int(m.group(1))}
                for c, v in zip(cols, vals):
                    row[c] = v if c == "name" else int(v)
                if len(vals) > len(cols):
                    row["name"] = " ".join(vals[len(cols) - 1:])
                row["points_computed"] = (row.get("rss", 0) + row.get("swapents", 0)
                                          + row.get("pgtables_bytes", 0) // 4096
                                          + row.get("oom_score_adj", 0) * (totalpages // 1000))
                cur["tasks"].append(row)
            elif (m := OOMKILL.match(msg)):
                cur["oom_kill"] = dict(kv.split("=", 1) for kv in m.group(1).split(",") if "=" in kv)
            elif (m := KILLED.match(msg)):
                g = m.groups()
                cur["killed"] = {"ts": ts, "pid": int(g[0]), "comm": g[1], "total_vm_kb": int(g[2]),
                                 "anon_rss_kb": int(g[3]), "file_rss_kb": int(g[4]), "shmem_rss_kb": int(g[5]),
                                 "uid": int(g[6]), "pgtables_kb": int(g[7]), "oom_score_adj": int(g[8])}
                cur = None
                cols = None
            elif (m := REAPED.match(msg)):
                reaped.append((ts, int(m.group(1)), m.group(2), int(m.group(3))))
    return marks, ooms, reaped


def kills_of(run, base):
    limit = run["limit_mib"]
    marks, ooms, reaped = parse_dmesg(os.path.join(base, run["dmesg"]), limit)
    start = marks.get("start")
    work = marks.get("leaker-start") or marks.get("freer-start") or marks.get("start")
    kills = []
    for o in ooms:
        k = o.get("killed")
        if not k:
            continue
        victim = next((t for t in o["tasks"] if t["pid"] == k["pid"]), None)
        cands = sorted(({"pid": t["pid"], "comm": t.get("name"), "rss_pages": t.get("rss"),
                         "pgtables_bytes": t.get("pgtables_bytes"), "swapents": t.get("swapents"),
                         "oom_score_adj": t.get("oom_score_adj"), "points_computed": t["points_computed"]}
                        for t in o["tasks"]), key=lambda c: -c["points_computed"])
        e = {"comm": k["comm"], "pid": k["pid"],
             "t_ms": round((k["ts"] - start) * 1000, 1) if start is not None else None,
             "t_ms_since_workload_start": round((k["ts"] - work) * 1000, 1) if work is not None else None,
             "oom_score_adj": k["oom_score_adj"],
             "anon_rss_kb": k["anon_rss_kb"], "file_rss_kb": k["file_rss_kb"], "shmem_rss_kb": k["shmem_rss_kb"],
             "total_vm_kb": k["total_vm_kb"], "pgtables_kb": k["pgtables_kb"],
             "points_computed": victim["points_computed"] if victim else None,
             "victim_has_max_points": (victim is not None and cands and
                                       victim["points_computed"] == cands[0]["points_computed"]),
             "invoker": o.get("invoker"), "order": o.get("order"),
             "memory_usage_kb": o.get("memory_usage_kb"), "memory_limit_kb": o.get("memory_limit_kb"),
             "kmem_usage_kb": o.get("kmem_usage_kb"),
             "memcg_stat_at_oom": {s: o["memcg_stat"][s] for s in ("cache", "rss", "dirty", "writeback",
                                                                     "mapped_file", "inactive_file", "active_file",
                                                                     "inactive_anon", "active_anon")
                                   if s in o["memcg_stat"]},
             "header_ratelimited": o.get("header_ratelimited", False),
             "candidates": cands}
        r = next((x for x in reaped if x[1] == k["pid"]), None)
        if r:
            e["reaped_ms_after_kill"] = round((r[0] - k["ts"]) * 1000, 1)
            e["reaped_now_anon_rss_kb"] = r[3]
        kills.append(e)
    end = marks.get("end")
    out = {"rep": run["rep"], "perf_recorded": bool(run["perf"]),
           "dmesg_clock_s": dict(marks.items()),
           "victims": [k["comm"] for k in kills], "oom_count": len(kills),
           "oom_kill_counter": run.get("oom_kill"),
           "run_ms": round((end - start) * 1000, 1) if start is not None and end is not None else None,
           "wall_ms": run.get("wall_ms"), "exit": run.get("exit"),
           "max_usage_in_bytes": run.get("max_usage_in_bytes"), "max_usage_mib": round(run.get("max_usage_in_bytes", 0) / 2**20, 2),
           "failcnt": run.get("failcnt"), "memsw_failcnt": run.get("memsw_failcnt"),
           "dmesg": run["dmesg"], "kills": kills}
    for key in ("finished", "writer", "samples", "mode"):
        if key in run:
            out[key] = run[key]
    return out


def load_runs(exp_dir):
    runs = []
    for p in sorted(glob.glob(os.path.join(HERE, exp_dir, "runs", "*.json"))):
        with open(p) as f:
            runs.append(json.load(f))
    return runs


def group(runs, base, key=lambda r: None):
    res = {}
    for r in runs:
        k = key(r)
        res.setdefault(k, {}).setdefault(r["limit_mib"], []).append(kills_of(r, base))
    out = {}
    for k, limits in res.items():
        lk = {}
        for limit in sorted(limits):
            rs = sorted(limits[limit], key=lambda x: (x["rep"] == "rec", x["rep"]))
            reps = [x for x in rs if x["rep"] != "rec"]
            rec = [x for x in rs if x["rep"] == "rec"]
            seqs = [tuple(x["victims"]) for x in reps]
            ent = {"repeatable": len(set(seqs)) <= 1 and len(seqs) > 0,
                   "victims": list(seqs[0]) if len(set(seqs)) == 1 else [list(s) for s in seqs],
                   "repetitions": reps}
            if rec:
                ent["recording"] = rec[0]
                ent["recording_matches_repetitions"] = bool(seqs) and tuple(rec[0]["victims"]) == seqs[0] and ent["repeatable"]
            lk[str(limit)] = ent
        out[k] = lk
    return out


def writer_peaks(base, run):
    p = os.path.join(base, run["samples"])
    peaks = {}
    n = 0
    last_t = 0
    with gzip.open(p, "rt") as f:
        for row in csv.DictReader(f):
            n += 1
            last_t = float(row["t_ms"])
            for k, v in row.items():
                if k in ("t_ms", "epoch_s") or v == "":
                    continue
                v = int(v)
                if v > peaks.get(k, (-1, 0))[0]:
                    peaks[k] = (v, float(row["t_ms"]))
    return {"samples": n, "sampled_ms": last_t,
            "peak": {k: v[0] for k, v in peaks.items()},
            "peak_at_ms": {k: v[1] for k, v in peaks.items()}}


def md_tables(out):
    lines = []
    a = out.get("A", {}).get("limits", {})
    if a:
        lines += ["### A: leak with bystanders", "",
                  "| limit MiB | victims in order (@ ms after leaker start): perf recording ; r1 ; r2 ; r3 | repeatable (r1-r3) | max_usage MiB r1/r2/r3 | failcnt | OOMs |",
                  "|---|---|---|---|---|---|"]
        for limit, e in a.items():
            vict = []
            if "recording" in e:
                r = e["recording"]
                vict.append("perf: " + (", ".join(f"{k['comm']}@{k['t_ms_since_workload_start']:.0f}" for k in r["kills"]) or "none"))
            for r in e["repetitions"]:
                vict.append(", ".join(f"{k['comm']}@{k['t_ms_since_workload_start']:.0f}" for k in r["kills"]) or "none")
            mu = "/".join(f"{r['max_usage_mib']:.1f}" for r in e["repetitions"])
            fc = "/".join(str(r["failcnt"]) for r in e["repetitions"])
            oc = "/".join(str(r["oom_count"]) for r in e["repetitions"])
            lines.append(f"| {limit} | {' ; '.join(vict)} | {'yes' if e['repeatable'] else 'NO'} | {mu} | {fc} | {oc} |")
        lines.append("")
    b = out.get("B", {}).get("limits", {})
    if b:
        lines += ["### B: writer (1 GiB, write(2) 1 MiB chunks, fsync)", "",
                  "| limit MiB | run | OOM | write s | fsync s | max_usage MiB | failcnt | peak usage (sampled) MiB | peak cache MiB | peak dirty MiB | peak writeback MiB | peak machine Dirty MiB |",
                  "|---|---|---|---|---|---|---|---|---|---|---|---|"]
        for limit, e in b.items():
            for r in ([e["recording"]] if "recording" in e else []) + e["repetitions"]:
                pk = r.get("sampled", {}).get("peak", {})
                w = r.get("writer") or {}

                def mib(k: str, pk: dict = pk) -> str:
                    return f"{pk[k] / 2**20:.1f}" if k in pk else "?"
                lines.append(f"| {limit} | {r['rep']}{' (perf)' if r['perf_recorded'] else ''} | {r['oom_count']} {'/'.join(r['victims'])} | "
                             f"{w.get('write_ms', 0) / 1000:.2f} | {w.get('fsync_ms', 0) / 1000:.2f} | {r['max_usage_mib']:.1f} | {r['failcnt']} | "
                             f"{mib('usage_in_bytes')} | {mib('cache')} | {mib('dirty')} | {mib('writeback')} | "
                             f"{pk.get('meminfo_dirty_kb', 0) / 1024:.1f} |")
        lines.append("")
    c = out.get("C", {}).get("modes", {})
    if c:
        lines += ["### C: madvise freer (+ 32 MiB bystander)", "",
                  "| mode | limit MiB | outcome per repetition (victims @ ms after freer start) | repeatable | max_usage MiB | OOMs |",
                  "|---|---|---|---|---|---|"]
        for mode, limits in c.items():
            for limit, e in limits.items():
                vict = []
                for r in ([e["recording"]] if "recording" in e else []) + e["repetitions"]:
                    s = ", ".join(f"{k['comm']}@{k['t_ms_since_workload_start']:.0f}" for k in r["kills"])
                    vict.append(("perf: " if r["perf_recorded"] else "") + (s + "; " if s else "")
                                + ("finished" if r.get("finished") else "not finished"))
                mu = "/".join(f"{r['max_usage_mib']:.1f}" for r in e["repetitions"])
                oc = "/".join(str(r["oom_count"]) for r in e["repetitions"])
                lines.append(f"| {mode} | {limit} | {' ; '.join(vict)} | {'yes' if e['repeatable'] else 'NO'} | {mu} | {oc} |")
        lines.append("")
    f = out.get("F_failcnt_check")
    if f:
        lines += ["### F: failcnt check (freer alone, limit 64 MiB)", "",
                  "| memsw limit MiB | OOMs | failcnt | memsw failcnt | max_usage MiB |", "|---|---|---|---|---|"]
        for r in f["runs"]:
            lines.append(f"| {r['memsw_limit_mib']} | {r['oom_count']} {'/'.join(r['victims'])} | {r['failcnt']} | "
                         f"{r['memsw_failcnt']} | {r['max_usage_mib']:.1f} |")
        lines.append("")
    return "\n".join(lines)


def main():
    out = {"machine": {"kernel": platform.release(), "note": "cgroup v1 memory controller, no swap; "
                       "points_computed = rss + swapents + pgtables_bytes/4096 + adj*(limit_pages//1000) "
                       "from the kernel's task dump (the kernel does not print points)"}}
    a = load_runs("leak")
    if a:
        out["A"] = {"description": "db 40 MiB adj 0, web 24 MiB adj 200 (started before the trace, renamed to web-worker "
                                   "by prctl), leaker reads an 8 MiB file then maps+writes 4 MiB every 30 ms up to 160 MiB",
                    "limits": group(a, os.path.join(HERE, "leak"))[None]}
    b = load_runs("writer")
    if b:
        g = group(b, os.path.join(HERE, "writer"))[None]
        for e in g.values():
            for r in [*([e["recording"]] if "recording" in e else []), *e["repetitions"]]:
                r["sampled"] = writer_peaks(os.path.join(HERE, "writer"), r)
        out["B"] = {"description": "writer: write(2) 1 GiB in 1 MiB chunks to ext4 (/var/tmp), fsync, exit; "
                                   "sampled every 10 ms", "limits": g}
    c = load_runs("madvise")
    if c:
        out["C"] = {"description": "freer: STEPS x (mmap 8 MiB, write, give back the second half by MADV_DONTNEED / "
                                   "MADV_FREE / partial munmap), one mremap growing a mapping by 4 MiB at STEPS/2; "
                                   "bystander 32 MiB adj 0", "steps": c[0].get("steps"),
                    "modes": group(c, os.path.join(HERE, "madvise"), key=lambda r: r["mode"])}
    fr = load_runs("failcnt")
    if fr:
        out["F_failcnt_check"] = {
            "description": "freer dontneed 24 steps alone, limit 64 MiB, memsw limit 64 vs 128 MiB: which counter "
                           "counts the failures",
            "runs": [dict(kills_of(r, os.path.join(HERE, "failcnt")), memsw_limit_mib=r["memsw_limit_mib"],
                          limit_mib=r["limit_mib"]) for r in fr]}
    with open(os.path.join(HERE, "outcomes.json"), "w") as f:
        json.dump(out, f, indent=1)
    md = md_tables(out)
    with open(os.path.join(HERE, "outcomes.md"), "w") as f:
        f.write(md + "\n")
    print(md)


if __name__ == "__main__":
    main()
