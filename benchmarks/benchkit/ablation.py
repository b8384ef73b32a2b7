"""The io_uring feature ablation: each row against epoll and against its parent (ablation.json),
and ablation.md."""

import io
import os

from benchkit import findings, pairing, stats
from benchkit.report import noise_section, write_header
from benchkit.text import fmt, md_cell, percent
from benchkit.variants import REFERENCE


def ablation_cells(o):
    return [(l, c) for l in o.lengths for c in o.connections]


def ablation_data(o, summary, records, servers):
    """Per row: the paired CPU ratio against epoll per cell with its interval, their geometric mean
    per round with its interval, and the step against the row it adds a feature to (its parent),
    for ablation.md and ablation.png."""
    cells = ablation_cells(o)
    rows = []
    for s in servers:
        v = o.variants[s]
        against = REFERENCE in servers and s != REFERENCE
        cell_cis = [pairing.cell(records, s, REFERENCE, l, c) if against else None for l, c in cells]
        overall, used = pairing.over_cells(records, s, REFERENCE, cells) if against else (None, 0)
        parent = v.parent if v.parent in servers else None
        step, _ = pairing.over_cells(records, s, parent, cells) if parent else (None, 0)
        rows.append({"server": s, "parent": parent, "about": v.about,
                     "cpu": [(summary.get((l, c, s)) or {}).get("cpu_us_per_request") for l, c in cells],
                     "ratio": [ci.ratio if ci else None for ci in cell_cis],
                     "ratio_ci": [ci.as_dict() if ci else None for ci in cell_cis],
                     "ratio_geomean": overall.ratio if overall else None,
                     "ratio_geomean_ci": overall.as_dict() if overall else None,
                     "ratio_cells": used,
                     "step_geomean": step.ratio if step else None,
                     "step_ci": step.as_dict() if step else None})
    return {"cells": cells, "rows": rows, "reference": REFERENCE}


def ablation_report(path, env, o, summary, records, plots_note, started, finished, planned, data):
    servers = [r["server"] for r in data["rows"]]
    cells = data["cells"]
    out = io.StringIO()
    w = lambda text="": out.write(text + "\n")
    write_header(w, "io_uring feature ablation", env, o, records, servers, started, finished, planned, plots_note)
    findings.write(w, o, findings.findings(o, summary, records, servers))
    noise_section(w, o, records)
    cell_names = [f"{l} B × {c}" for l, c in cells]

    w("## Server CPU µs/request against epoll (paired ratio, 95 % interval)")
    w()
    w("Lower is better; epoll (level-triggered) is 1. Each cell is the geometric mean over rounds of the "
      "paired ratio, with its 95 % interval (Student's t on the log scale). **geomean** combines the cells "
      "per round, then takes the interval over rounds. **step** is the same against the row this one adds "
      "its feature to (the row named in brackets): the worth of that one feature. **verdict**: lower, "
      "higher, or same when the interval contains 1.")
    w()
    w("| # | server | adds | " + " | ".join(cell_names) + " | geomean | verdict | step | step verdict |")
    w("|--:|:--|:--|" + "--:|" * (len(cells) + 1) + ":--|--:|:--|")
    for i, row in enumerate(data["rows"], 1):
        if row["server"] == REFERENCE:
            ratios, g, verdict = ["1"] * len(cells), "1", ""
        else:
            ratios = [stats.ci_text(stats.RatioCI.from_dict(d)) for d in row["ratio_ci"]]
            overall = stats.RatioCI.from_dict(row["ratio_geomean_ci"])
            g = stats.ci_text(overall)
            verdict = overall.verdict if overall else ""
            if overall is not None and row["ratio_cells"] < len(cells):
                g += f" ({row['ratio_cells']}/{len(cells)})"
        step_ci = stats.RatioCI.from_dict(row["step_ci"])
        step = f"{stats.ci_text(step_ci)} [{row['parent']}]" if row["parent"] else ""
        step_verdict = step_ci.verdict if step_ci else ""
        w(f"| {i} | **{row['server']}** | {md_cell(row['about'])} | " + " | ".join(ratios)
          + f" | {g} | {verdict} | {step} | {step_verdict} |")
    w()

    w("## Per cell")
    w()
    w("Medians over rounds, with the lowest round beside CPU (interference only adds cost). CPU is the "
      "server's (user + system) per request; user share is "
      "Δutime / (Δutime + Δstime); syscalls are the server's own count per request it served; ⚠ marks a "
      "cell where echo-bench used over 90 % of its core in some round (requests/s may be its limit).")
    w()
    for (l, c), name in zip(cells, cell_names):
        w(f"### {name} connections")
        w()
        w("| server | CPU µs/req (user + sys) | lowest | req/s | syscalls/req | p99 µs | user share | CPU ÷ epoll "
          "| runs |")
        w("|:--|--:|--:|--:|--:|--:|--:|--:|--:|")
        for row in data["rows"]:
            r = summary.get((l, c, row["server"]))
            if not r:
                continue
            ok = r["runs"] - r["failed"]
            ratio = ("1" if row["server"] == REFERENCE
                     else stats.ci_text(stats.RatioCI.from_dict(row["ratio_ci"][cells.index((l, c))])))
            w(f"| {row['server']} | {fmt(r.get('cpu_us_per_request'))} ({fmt(r.get('user_us_per_request'))} + "
              f"{fmt(r.get('system_us_per_request'))}) | {fmt(r.get('cpu_us_per_request_min'))} | "
              f"{fmt(r.get('requests_per_second'), 0)}"
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
    w("- Every figure per run is in runs.jsonl; medians of all of them in summary.csv and report.md; every "
      "paired ratio with its interval in summary.json (`ratios`).")
    w()
    if os.path.exists(os.path.join(os.path.dirname(path), "ablation.png")):
        w("![ablation.png](ablation.png)")
        w()
    with open(path, "w") as f:
        f.write(out.getvalue())


