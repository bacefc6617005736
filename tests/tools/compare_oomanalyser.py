#!/usr/bin/env python3
"""memtrace's report against the facts OOMAnalyser's tests assert on its own example logs.

OOMAnalyser (github.com/CarstenGrohmann/OOMAnalyser) ships four example OOM reports
and a test suite that asserts facts on them (and on 32 variants its tests derive from
them). That material is not part of memtrace (its licence is not ours, and the logs are
its): this script takes the directory that holds it, as prepared for the comparison:

    MATERIAL/examples/*.log            the four examples
    MATERIAL/examples/variants/*.log   the variants
    MATERIAL/facts.json                one entry per assertion (id, example, key,
                                       expected, assert, values, scope)

and prints, per fact, what memtrace's report (``memtrace report LOG --json``, read
through :func:`memtrace.analysis.kernlog.report_from_log`) holds for it:

- ``equal``: memtrace's JSON holds the fact and agrees (``via`` names where);
- ``differs``: memtrace reads the same thing and says something else (with why: where
  OOMAnalyser is wrong, the reason names the kernel behaviour);
- ``not read``: memtrace's JSON says nothing of it.

Then the counts per example, for the examples and for the variants. Usage::

    python tests/tools/compare_oomanalyser.py MATERIAL [-v] [--json]
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from memtrace.analysis.kernlog import report_from_log

Result = tuple[str, str, str]  # status, via (memtrace JSON path = value), note


def _eq(ok: bool, via: str, note: str = "") -> Result:
    return ("equal" if ok else "differs", via, note)


def _nr(note: str = "") -> Result:
    return ("not read", "", note)


class Report:
    """memtrace's JSON for one log: its first kill and the log facts."""

    def __init__(self, path: Path) -> None:
        self.json = report_from_log(path).as_dict()
        kills = self.json["kills"]
        self.kill: dict[str, Any] = kills[0] if kills else {}
        self.log: dict[str, Any] = self.kill.get("log") or {}

    def zones(self) -> list[dict[str, Any]]:
        return list(self.log.get("zones") or [])

    def zone(self, name: str, node: int) -> dict[str, Any] | None:
        same = [z for z in self.zones() if z["zone"] == name]
        by_node = [z for z in same if z["node"] == node]
        return (by_node or (same if node == 0 else []) or [None])[0]

    def buddy_zone(self, name: str, index: int) -> dict[str, Any] | None:
        """OOMAnalyser's buddyinfo[zone][...][node index]: the zone's nth node in print order."""
        same = [z for z in self.zones() if z["zone"] == name and z["free_blocks"]]
        return same[index] if index < len(same) else None


def _buddy_line(z: dict[str, Any]) -> str:
    node = "" if z["node"] is None else f"Node {z['node']} "
    parts = []
    for count, kb, types in zip(z["free_blocks"], z["block_kb"], z["block_types"]):
        parts.append(f"{count}*{kb}kB" + (f" ({types})" if types else ""))
    return f"{node}{z['zone']}: " + " ".join(parts) + f" = {z['buddy_free_kb']}kB"


def _watermark_line(z: dict[str, Any]) -> str:
    node = "" if z["node"] is None else f"Node {z['node']} "
    boost = f" boost:{z['boost_kb']}kB" if z["boost_kb"] is not None else ""
    return f"{node}{z['zone']} free:{z['free_kb']}kB{boost} min:{z['min_kb']}kB low:{z['low_kb']}kB high:{z['high_kb']}kB"


def evaluate(f: dict[str, Any], rep: Report) -> Result:
    """What memtrace says of fact ``f`` (see the module docstring)."""
    key, exp, a = f["key"], f["expected"], f["assert"]
    k, log = rep.kill, rep.log
    if not k:
        return _nr("no kill in memtrace's report")
    swap = log.get("swap") or {}
    mem = log.get("memory") or {}
    wm = log.get("watermarks")
    frag = log.get("fragmentation")
    table = log.get("task_table") or {}
    cands = {c["pid"]: c for c in k.get("candidates", [])}
    # ------------------------------------------------------------------ trigger and victim
    if key == "trigger_proc_gfp_mask":
        hexpart, names = re.match(r"(0x[0-9a-f]+) \((.*)\)", exp).groups()
        gfp = log.get("gfp") or {}
        want = [x.strip() for x in names.split("|")]
        got = [x.strip() for x in (gfp.get("flags") or "").split("|")]
        return _eq(gfp.get("mask") == int(hexpart, 16) and got == want, f"log.gfp = {gfp.get('mask'):#x} "
                   f"{gfp.get('flags')} ({gfp.get('flags_how')})", "same flags; the kernel joins them with '|'")
    if key == "trigger_proc_name":
        return _eq(k["trigger"]["comm"] == exp, f"trigger.comm = {k['trigger']['comm']}")
    if key == "trigger_proc_pid":
        return _eq(str(k["trigger"]["pid"]) == exp, f"trigger.pid = {k['trigger']['pid']}")
    if key == "killed_proc_score":
        score = log.get("chosen_score")
        if a == "equals":
            return _eq(str(score) == exp, f"log.chosen_score = {score}")
        if a == "contains":
            return _eq(score is not None, f"log.chosen_score = {score}")
        return _eq(score is None, f"log.chosen_score = {score}", "5.x+ prints no score")
    if key.startswith("explanation: killed_proc_name"):
        v = f["values"]
        return _eq((k["victim"]["pid"], k["victim"]["comm"]) == (v["killed_proc_pid"], v["killed_proc_name"]),
                   f"victim = {k['victim']['pid']} {k['victim']['comm']}")
    if key == "killed_proc_total_rss_kb":
        return _eq(log.get("victim_rss_kb") == f["values"]["killed_proc_total_rss_kb"],
                   f"log.victim_rss_kb = {log.get('victim_rss_kb')}")
    # ------------------------------------------------------------------ swap
    if key == "system_swap_cache_kb":
        return _eq(f"{swap.get('cache_kb')} kBytes" == exp, f"log.swap.cache_kb = {swap.get('cache_kb')}")
    if key == "system_swap_used_kb":
        return _eq(f"{swap.get('used_without_cache_kb')} kBytes" == exp,
                   f"log.swap.used_without_cache_kb = {swap.get('used_without_cache_kb')}",
                   f"OOMAnalyser's 'used' leaves out the swap cache; free(1)'s used (memtrace's used_kb) is "
                   f"{swap.get('used_kb')}")
    if key in ("system_swap_free_kb", "system_swap_total_kb"):
        field = "free_kb" if "free" in key else "total_kb"
        return _eq(f"{swap.get(field)} kBytes" == exp, f"log.swap.{field} = {swap.get(field)}")
    if key in ("oom_result.system_swap_active", "result_table", "svg_system_swap"):
        if key == "result_table" and exp not in ("Swap Total", "System swap space disabled."):
            return _nr()
        active = bool(swap.get("total_kb"))
        says = {("contains", "system swap space is in use"): True,
                ("not_contains", "system swap space is in use"): False,
                ("contains", "physical memory and no system swap space"): False,
                ("not_contains", "physical memory and no system swap space"): True,
                ("contains", "Swap Total"): True, ("not_contains", "Swap Total"): False,
                ("contains", "System swap space disabled."): False,
                ("not_contains", "System swap space disabled."): True,
                ("visible", True): True, ("hidden", False): False}.get((a, exp))
        if says is None:
            return _nr()
        if rep.kill.get("constraint") == "CONSTRAINT_MEMCG" and not swap and (a, says) == ("not_contains", True):
            return _eq(True, "log.swap = null (a memcg report prints no machine swap)")
        return _eq(active == says, f"log.swap.total_kb = {swap.get('total_kb')}")
    if key.startswith("explanation: system_swap_used_percent"):
        v = f["values"]
        return _eq((swap.get("used_without_cache_percent"), swap.get("used_without_cache_kb")) == (
            v["system_swap_used_percent"], v["system_swap_used_kb"]),
            f"log.swap.used_without_cache_percent/kb = {swap.get('used_without_cache_percent')} "
            f"{swap.get('used_without_cache_kb')}",
            f"free(1)'s used: {swap.get('used_percent')} % ({swap.get('used_kb')} kB)")
    # ------------------------------------------------------------------ zones
    if key == "mem_node_info":
        if "hugepages" in exp:
            pools = log.get("hugepages") or []
            last = pools[-1] if pools else None
            line = (f"Node {last['node']} hugepages_total={last['total']} hugepages_free={last['free']} "
                    f"hugepages_surp={last['surp']} hugepages_size={last['size_kb']}kB") if last else ""
            return _eq(line == exp, f"log.hugepages[-1] -> {line}")
        zones = [z for z in rep.zones() if z["free_blocks"]]
        line = _buddy_line(zones[0]) if zones else ""
        return _eq(line.startswith(exp), f"log.zones[0].free_blocks -> {line[:60]}")
    if key == "mem_watermarks":
        zones = [z for z in rep.zones() if z["min_kb"] is not None]
        if not zones:
            return _nr()
        if a == "startswith":
            line = _watermark_line(zones[0])
            return _eq(line.startswith(exp), f"log.zones[0] -> {line}")
        reserve = "lowmem_reserve[]: " + " ".join(map(str, zones[-1]["lowmem_reserve_pages"]))
        return _eq(reserve == exp, f"log.zones[-1].lowmem_reserve_pages -> {reserve}")
    m = re.match(r"oom_result\.watermarks\['(\w+)'\]\[(\d)\]\['(\w+)'\]", key)
    if m:
        z = rep.zone(m.group(1), int(m.group(2)))
        got = z.get(f"{m.group(3)}_kb") if z else None
        return _eq(str(got) == str(exp), f"log.zones[{m.group(1)}, node {m.group(2)}].{m.group(3)}_kb = {got}")
    m = re.match(r"oom_result\.buddyinfo\['(\w+)'\]\[(\d+)\]\[(\d+)\]", key)
    if m:
        z = rep.buddy_zone(m.group(1), int(m.group(3)))
        got = z["free_blocks"][int(m.group(2))] if z else None
        return _eq(str(got) == str(exp), f"log.zones[{m.group(1)} #{m.group(3)}].free_blocks[{m.group(2)}] = {got}")
    m = re.match(r"oom_result\.buddyinfo\['(\w+)'\]\[(\d+)\]\['free_chunks_total'\]", key)
    if m:
        got = sum(z["free_blocks"][int(m.group(2))] for z in rep.zones() if z["zone"] == m.group(1)
                  and z["free_blocks"])
        return _eq(str(got) == str(exp), f"sum of log.zones[{m.group(1)}].free_blocks[{m.group(2)}] = {got}")
    m = re.match(r"oom_result\.buddyinfo\['(\w+)'\]\['total_free_kb_per_node'\]\[(\d)\]", key)
    if m:
        z = rep.zone(m.group(1), int(m.group(2)))
        got = z["buddy_free_kb"] if z else None
        return _eq(str(got) == str(exp), f"log.zones[{m.group(1)}, node {m.group(2)}].buddy_free_kb = {got}")
    if key in ("sorted(oom_result.buddyinfo)", "sorted(oom_result.watermarks)"):
        field = "free_blocks" if "buddy" in key else "min_kb"
        got = sorted({z["zone"] for z in rep.zones() if z[field]})
        return _eq(got == exp, f"zones with {field}: {got}")
    if key == "oom_result.buddyinfo":
        return _eq(any(z["free_blocks"] for z in rep.zones()), "log.zones[].free_blocks")
    if key == "oom_result.watermarks":
        got = [z for z in rep.zones() if z["min_kb"] is not None]
        return _eq(not got and exp == {}, f"zones with watermarks: {len(got)}")
    if key == "oom_result.kconfig.MAX_ORDER":
        lens = {len(z["free_blocks"]) for z in rep.zones() if z["free_blocks"]}
        return _eq(lens == {exp}, f"orders per buddy line: {sorted(lens)}")
    m = re.match(r"_check_free_chunks\((\d+), '(\w+)', (\d)\)", key)
    if m:
        order, zone, node = int(m.group(1)), m.group(2), int(m.group(3))
        z = rep.zone(zone, node)
        got = any(z["free_blocks"][order:]) if z and z["free_blocks"] else None
        return _eq(got == exp, f"log.zones[{zone}, node {node}].free_blocks[{order}:] -> {got}")
    if key.startswith("trigger_proc_numa_node"):
        forced = re.search(r"forced to '(\w+)'", key)
        target = forced.group(1) if forced else ("Normal" if not wm else None)
        if wm is None:
            return _nr()
        zone = target or "Normal"
        short = [z for z in rep.zones() if z["zone"] == zone and z["free_kb"] is not None and z["min_kb"] is not None
                 and z["free_kb"] < z["min_kb"]]
        got = short[0]["node"] if short else None
        return _eq(got == exp, f"first node whose {zone} zone has free < min in log.zones: {got}",
                   "memtrace tests every zone of the zonelist (log.watermarks.zones); this is one of them")
    if key == "trigger_proc_mem_zone":
        gfp = log.get("gfp") or {}
        return _eq(gfp.get("zone") is not None, f"log.gfp.zone = {gfp.get('zone')}",
                   "gfp_zone() of GFP_HIGHUSER_MOVABLE is Movable; OOMAnalyser says Normal (it ignores "
                   "__GFP_HIGHMEM|__GFP_MOVABLE)")
    if key == "pstable_header":
        col = f["values"]["column"]
        return _eq(col in (table.get("columns") or []), f"log.task_table.columns has {col}")
    if key == "page_size_kb":
        ps = log.get("page_size") or {}
        return _eq(ps.get("nr_bytes") == exp * 1024, f"log.page_size.nr_bytes = {ps.get('nr_bytes')}")
    if key == "_page_size_guessed":
        ps = log.get("page_size") or {}
        return _eq(ps.get("guessed") == exp, f"log.page_size.guessed = {ps.get('guessed')} ({ps.get('how')})")
    if key == "oom_result.kconfig.release":
        plat = log.get("platform") or {}
        ok = str(k.get("kernel_version", "")).startswith("3.10") and "RHEL 7" in str(plat.get("distribution"))
        return _eq(ok, f"kernel_version = {k.get('kernel_version')}, log.platform.distribution = "
                       f"{plat.get('distribution')}")
    if key.startswith("_extract_block_from_next_pos"):
        hw = (log.get("platform") or {}).get("hardware")
        return _eq(exp.splitlines()[0] == f"Hardware name: {hw}", f"log.platform.hardware = {hw}",
                   "the line; OOMAnalyser's block also takes the stack words after it")
    # ------------------------------------------------------------------ verdicts
    if key == "oom_result.oom_type":
        kind = log.get("oom_kind")
        says = {"OOM killer was automatically triggered": "allocation",
                "OOM killer was manually triggered": "sysrq",
                "The cgroup-local OOM killer was automatically triggered": "memcg_charge"}[exp]
        return _eq((kind == says) == (a == "contains"), f"log.oom_kind = {kind}")
    if key == "oom_result.mem_alloc_failure":
        if exp.startswith("The request failed because the free memory would be below the memory low watermark"):
            said = wm is not None and wm.get("oomanalyser") is not None and "low watermark" in wm["oomanalyser"]
            note = ("memtrace gives OOMAnalyser's low-watermark reading (log.watermarks.oomanalyser) and its own: "
                    "the slow path gives up at min, in every zone of the zonelist (log.watermarks.verdict)")
            return _eq(said == (a == "contains"), f"log.watermarks.oomanalyser = {wm and wm.get('oomanalyser')!r:.80}",
                       note if said else "")
        if exp.startswith("The request failed because there is no free chunk"):
            said = wm is not None and "fragmentation" in wm.get("verdict", "")
            return _eq(said == (a == "contains"), "log.watermarks.verdict")
        if exp.startswith("The request failed, but the reason is unknown"):
            return _eq(a == "not_contains", "log.watermarks.verdict (a reason, or null: no zone verdict)")
    if key == "oom_result.mem_fragmented":
        if a == "equals":
            return _eq(frag is None and exp is None, f"log.fragmentation = {frag and frag.get('verdict')!r:.60}",
                       "" if frag is None else "OOMAnalyser says nothing without the watermark lines; memtrace reads "
                       "fragmentation off the buddy lists alone")
        heavily = frag.get("heavily_fragmented") if frag else None
        says = {"The system memory is not heavily fragmented": False,
                "The system memory is heavily fragmented": True}[exp]
        return _eq((heavily == says) == (a == "contains"), f"log.fragmentation.heavily_fragmented = {heavily}")
    # ------------------------------------------------------------------ system memory
    if key.startswith("explanation: system_total_ram_kb"):
        v = f["values"]
        got = {"system_total_ram_kb": mem.get("ram_kb")}
        if "system_swap_total_kb" in v:
            got["system_swap_total_kb"] = swap.get("total_kb")
        return _eq(got == {x: v[x] for x in got}, f"log.memory.ram_kb, log.swap.total_kb = {got}",
                   "pages RAM x page size (reserved pages included; the kernel's totalpages counts managed pages)")
    if key == "system_total_ramswap_kb":
        v = f["values"]["system_total_ramswap_kb"]
        return _eq(mem.get("ram_plus_swap_kb") == v, f"log.memory.ram_plus_swap_kb = {mem.get('ram_plus_swap_kb')}",
                   f"not the OOM killer's totalpages ({k.get('totalpages')} pages: managed RAM + swap)")
    if key.startswith("explanation: system_total_used_percent"):
        v = f["values"]
        return _eq((mem.get("tasks_rss_percent_of_ram"), mem.get("tasks_rss_kb")) == (
            v["system_total_used_percent"], v["system_total_ram_used_kb"]),
            f"log.memory.tasks_rss_percent_of_ram/kb = {mem.get('tasks_rss_percent_of_ram')} {mem.get('tasks_rss_kb')}",
            "the tasks' RSS sum counts shared pages once per process and no kernel memory (said in the report)")
    if key == ".js-system-ram-usage--show":
        return _eq((mem.get("tasks_rss_kb") is not None) == bool(exp), f"log.memory.tasks_rss_kb = "
                                                                        f"{mem.get('tasks_rss_kb')}")
    # ------------------------------------------------------------------ presentation
    if key in ("svg_ram", "th 'Graphs'"):
        plotted = bool(mem.get("parts_kb"))
        if key == "th 'Graphs'":
            plotted = plotted or bool(swap.get("total_kb")) or (log.get("memcg") or {}).get("swap") == "limited"
        return _eq(plotted == bool(exp), f"log.memory.parts_kb (plotted in HTML): {bool(mem.get('parts_kb'))}")
    if key.startswith(("svg_cgroup", ".js-cgroup-swap-unlimited")):
        memcg = log.get("memcg") or {}
        if key.startswith(".js-cgroup"):
            return _eq(memcg.get("swap") == "unlimited", f"log.memcg.swap = {memcg.get('swap')}")
        shown = memcg.get("swap") == "limited"
        want = bool(exp) if a in ("visible", "hidden") else False
        return _eq(shown == want, f"log.memcg.swap = {memcg.get('swap')} ({memcg.get('swap_how')})")
    if key == "cgroup_swap_limit_kb":
        memcg = log.get("memcg") or {}
        says = {"Swap space usage is disabled for this cgroup.": "disabled",
                "Swap space is enabled for this cgroup.": "limited"}[exp]
        return _eq((memcg.get("swap") == says) == (a == "contains"), f"log.memcg.swap = {memcg.get('swap')}")
    # ------------------------------------------------------------------ task table, warnings
    m = re.match(r"_pstable\[(\d+)\]\['name'\]", key)
    if m:
        c = cands.get(int(m.group(1)))
        return _eq(c is not None and c["comm"] == exp, f"candidates[{m.group(1)}].comm = {c and c['comm']}")
    if key == "_pstable_index":
        pids = [c["pid"] for c in k.get("candidates", [])]
        return _eq(len(pids) == len(set(pids)) == f["values"]["rows"], f"candidates: {len(pids)} rows")
    if key == "notify_box":
        return _eq(not rep.json["warnings"], f"warnings = {rep.json['warnings']}")
    if key == "notify_box warning":
        return _eq(table.get("state") == "absent" and any("task table absent" in w for w in rep.json["warnings"]),
                   f"log.task_table.state = {table.get('state')}; a warning says so")
    if key == "error":
        if "incomplete" in exp:
            return _eq(any("truncated" in w for w in rep.json["warnings"]), "warnings: the report is truncated")
        how = k.get("extra", {}).get("version_how", "")
        return _eq("names no release" in how or "unknown" in how, f"extra.version_how = {how}",
                   "memtrace reads the report anyway and says the version is inferred from its layout")
    return _nr()


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("material", type=Path, help="the directory with examples/ and facts.json")
    ap.add_argument("-v", "--verbose", action="store_true", help="print every fact")
    ap.add_argument("--json", action="store_true", help="print the results as JSON")
    args = ap.parse_args(argv)
    facts = json.loads((args.material / "facts.json").read_text())
    reports: dict[str, Report] = {}

    def report_for(example: str) -> Report:
        if example not in reports:
            reports[example] = Report(args.material / "examples" / example)
        return reports[example]

    rows = []
    for f in facts:
        status, via, note = evaluate(f, report_for(f["example"]))
        rows.append({"id": f["id"], "scope": f["scope"], "example": f["example"], "key": f["key"],
                     "assert": f["assert"], "expected": f["expected"], "status": status, "via": via, "note": note})
    if args.json:
        print(json.dumps(rows, indent=1, default=str))
        return 0
    counts: dict[str, dict[str, int]] = {}
    for r in rows:
        group = r["example"].split("/")[0] if r["scope"] == "example" else "variants"
        c = counts.setdefault(group, {"facts": 0, "read": 0, "equal": 0, "differs": 0, "not read": 0})
        c["facts"] += 1
        c[r["status"]] += 1
        c["read"] += r["status"] != "not read"
    print(f"{'':18} {'facts':>6} {'read':>6} {'equal':>6} {'differs':>8} {'not read':>9}")
    total = {"facts": 0, "read": 0, "equal": 0, "differs": 0, "not read": 0}
    for group, c in counts.items():
        print(f"{group:18} {c['facts']:6} {c['read']:6} {c['equal']:6} {c['differs']:8} {c['not read']:9}")
        if group != "variants":
            total = {x: total[x] + c[x] for x in total}
    print(f"{'four examples':18} {total['facts']:6} {total['read']:6} {total['equal']:6} {total['differs']:8} "
          f"{total['not read']:9}")
    show: Callable[[dict[str, Any]], bool] = (lambda r: True) if args.verbose else (lambda r: r["status"] != "equal")
    for r in rows:
        if show(r):
            print(f"\n{r['status'].upper():9} {r['id']}\n  asserts {r['assert']} {str(r['expected'])[:100]!r}\n"
                  f"  memtrace {r['via'][:160]}" + (f"\n  note: {r['note']}" if r["note"] else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
