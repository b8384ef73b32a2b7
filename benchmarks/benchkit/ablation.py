"""The io_uring feature ablation: each row against epoll and against its parent (ablation.json),
and ablation.md."""

import io
import os

from benchkit.report import write_header
from benchkit.stats import geomean
from benchkit.summary import paired_ratio
from benchkit.targets import target_results, write_targets
from benchkit.text import fmt, md_cell, percent
from benchkit.variants import REFERENCE

def ablation_cells(o):
    return [(l, c) for l in o.lengths for c in o.connections]


def ablation_data(o, summary, records, servers):
    """Per row: the paired CPU ratio against epoll per cell and its geometric mean, and the step
    against the row it adds a feature to (its parent), for ablation.md and ablation.png."""
    cells = ablation_cells(o)
    rows = []
    for s in servers:
        v = o.variants[s]
        ratio = [paired_ratio(records, s, REFERENCE, l, c) if REFERENCE in servers and s != REFERENCE else None
                 for l, c in cells]
        parent = v.parent if v.parent in servers else None
        step = [paired_ratio(records, s, parent, l, c) for l, c in cells] if parent else [None] * len(cells)
        rows.append({"server": s, "parent": parent, "about": v.about,
                     "cpu": [(summary.get((l, c, s)) or {}).get("cpu_us_per_request") for l, c in cells],
                     "ratio": ratio, "ratio_geomean": geomean(ratio),
                     "ratio_cells": sum(1 for r in ratio if r is not None),
                     "step": step, "step_geomean": geomean(step)})
    return {"cells": cells, "rows": rows, "reference": REFERENCE}


def ablation_report(path, env, o, summary, records, plots_note, started, finished, planned, data):
    servers = [r["server"] for r in data["rows"]]
    cells = data["cells"]
    out = io.StringIO()
    w = lambda text="": out.write(text + "\n")
    write_header(w, "io_uring feature ablation", env, o, records, servers, started, finished, planned, plots_note)
    targets = target_results(o, summary, records, servers)
    if targets:
        write_targets(w, o, targets)
    cell_names = [f"{l} B × {c}" for l, c in cells]

    w("## Server CPU µs/request against epoll (paired ratio, median over rounds)")
    w()
    w("Lower is better; epoll (level-triggered) is 1. **geomean** combines the cells. **step** is the "
      "geometric mean of the paired ratio against the row this one adds its feature to (the row named "
      "in brackets): the worth of that one feature.")
    w()
    w("| # | server | adds | " + " | ".join(cell_names) + " | geomean | step |")
    w("|--:|:--|:--|" + "--:|" * (len(cells) + 2))
    for i, row in enumerate(data["rows"], 1):
        if row["server"] == REFERENCE:
            ratios, g = ["1"] * len(cells), "1"
        else:
            ratios = [fmt(r, 3) for r in row["ratio"]]
            g = fmt(row["ratio_geomean"], 3)
            if row["ratio_geomean"] is not None and row["ratio_cells"] < len(cells):
                g += f" ({row['ratio_cells']}/{len(cells)})"
        step = f"{fmt(row['step_geomean'], 3)} [{row['parent']}]" if row["parent"] else ""
        w(f"| {i} | **{row['server']}** | {md_cell(row['about'])} | " + " | ".join(ratios) + f" | {g} | {step} |")
    w()

    w("## Per cell")
    w()
    w("Medians over rounds. CPU is the server's (user + system) per request; user share is "
      "Δutime / (Δutime + Δstime); syscalls are the server's own count per request it served; ⚠ marks a "
      "cell where echo-bench used over 90 % of its core in some round (requests/s may be its limit).")
    w()
    for (l, c), name in zip(cells, cell_names):
        w(f"### {name} connections")
        w()
        w("| server | CPU µs/req (user + sys) | req/s | syscalls/req | p99 µs | user share | CPU ÷ epoll | runs |")
        w("|:--|--:|--:|--:|--:|--:|--:|--:|")
        for row in data["rows"]:
            r = summary.get((l, c, row["server"]))
            if not r:
                continue
            ok = r["runs"] - r["failed"]
            ratio = "1" if row["server"] == REFERENCE else fmt(row["ratio"][cells.index((l, c))], 3)
            w(f"| {row['server']} | {fmt(r.get('cpu_us_per_request'))} ({fmt(r.get('user_us_per_request'))} + "
              f"{fmt(r.get('system_us_per_request'))}) | {fmt(r.get('requests_per_second'), 0)}"
              f"{' ⚠' if r.get('generator_saturated') else ''} | {fmt(r.get('syscalls_per_request'), 3)} | "
              f"{fmt(r.get('latency_p99_us'), 0)} | {percent(r.get('user_share'))} | {ratio} | "
              f"{ok}/{r['runs']} |")
        w()

    w("## Notes")
    w()
    if "uring-multishot-defer-zc" in servers:
        w("- uring-multishot-defer-zc sends with IORING_OP_SEND_ZC from 512 B: at 1000 B it is the zero-copy "
          "row; at 128 B it is uring-multishot-defer again, a check on the noise between two equal servers.")
    if "uring-multishot-sqpoll" in servers:
        w("- SQPOLL's polling thread is a thread of the server process (iou-sqp-TID in /proc/PID/task), so its "
          "CPU time is in the server's figures; it inherits the server's pinning and shares CPU 0 with the "
          "loop. It polls while there is work, so the server keeps its core busy and CPU µs/request there "
          "is mostly 1 / requests/s. Syscalls per request count only what the loop itself entered.")
    w("- Per-run throughput drifts on a shared host: read the paired CPU ratios, not requests/s across rows.")
    w("- Every figure per run is in runs.jsonl; medians of all of them in summary.csv and report.md.")
    w()
    if os.path.exists(os.path.join(os.path.dirname(path), "ablation.png")):
        w("![ablation.png](ablation.png)")
        w()
    with open(path, "w") as f:
        f.write(out.getvalue())


