"""The medians of a run: per cell and server (summarize), paired ratios with their intervals,
summary.csv and summary.json."""

import csv
import json

from benchkit import pairing, stats
from benchkit.findings import needed
from benchkit.measure import syscall_fields
from benchkit.stats import median
from benchkit.variants import REFERENCE

# The medians of every summary row, in its order; the system calls per kind go after
# syscalls_per_request, one per kind the servers counted (summary_fields).
FIELDS_BEFORE_SYSCALLS = ["requests_per_second", "cpu_us_per_request", "user_us_per_request", "system_us_per_request",
                          "user_share", "server_cpu_share", "syscalls_per_request"]
FIELDS_AFTER_SYSCALLS = ["context_switches_per_request", "latency_p50_us", "latency_p99_us", "latency_p999_us",
                         "generator_cpu_share", "agreement"]


def summary_fields(rows):
    """The summary's fields for `rows`: runs' metrics, or summary rows (whose system call kinds are
    the ones their servers wrote)."""
    return FIELDS_BEFORE_SYSCALLS + syscall_fields(rows) + FIELDS_AFTER_SYSCALLS


def summarize(records, servers, field=pairing.FIELD, fields=None):
    """Per (length, connections, server): medians of `fields` (default summary_fields of the runs)
    over the runs that count, the lowest round, the spread of `field` (CPU per request, or per the
    workload's unit) over rounds, and its paired ratio against epoll with its interval. A run left
    out as noisy (and re-run) counts in `rerun`, not in the figures."""
    if fields is None:
        fields = summary_fields(r.get("metrics", {}) for r in records)
    cells = {}
    for r in records:
        cells.setdefault((r["length"], r["connections"], r["server"]), []).append(r)
    summary = {}
    for (length, connections, server), runs in cells.items():
        ok = [r for r in runs if pairing.counted(r)]
        rerun = [r for r in runs if r.get("excluded")]
        row = {"length": length, "connections": connections, "server": server,
               "runs": len(runs) - len(rerun), "failed": len(runs) - len(rerun) - len(ok), "rerun": len(rerun),
               "noisy_kept": sum(1 for r in ok if r.get("noisy_kept"))}
        for name in fields:
            row[name] = median([r["metrics"].get(name) for r in ok])
        cpu = [r["metrics"].get(field) for r in ok]
        cpu = [v for v in cpu if v]
        row[f"{field}_min"] = min(cpu) if cpu else None
        row["cpu_spread"] = stats.spread(cpu)
        row["cpu_rounds"] = [round(v, 4) for v in sorted(cpu)]
        row["generator_cpu_share_max"] = max([r["metrics"].get("generator_cpu_share") or 0 for r in ok], default=None)
        row["generator_saturated"] = any(r["metrics"].get("generator_saturated") for r in ok)
        row["bench_errors"] = sum(r["metrics"].get("bench_errors", 0) for r in ok)
        row["windows_inside"] = all(r["metrics"].get("window_inside", True) for r in ok)
        row["errors"] = [r["error"] for r in runs if "error" in r]
        sustained = [r["metrics"]["sustained"] for r in ok if r["metrics"].get("sustained") is not None]
        if sustained:  # open-loop runs only: the rounds where the server fell behind the offered rate
            row["unsustained"] = sustained.count(False)
        row["cpu_ratio_vs_epoll"] = row["rps_ratio_vs_epoll"] = row["cpu_vs_epoll"] = None
        if server != REFERENCE:
            ci = pairing.cell(records, server, REFERENCE, length, connections, field=field)
            if ci is not None:
                row["cpu_vs_epoll"] = ci.as_dict()
                row["cpu_ratio_vs_epoll"] = ci.ratio
            rps = pairing.cell(records, server, REFERENCE, length, connections, field="requests_per_second")
            row["rps_ratio_vs_epoll"] = rps.ratio if rps is not None else None
        summary[(length, connections, server)] = row
    return summary


def ratios(o, records, servers, parents=None):
    """Every paired ratio of a run, for summary.json: each server against epoll in each cell and
    over all cells, the findings' pairs, and (ablation) each row against the row it builds on."""
    cells = [(length, connections) for length in o.lengths for connections in o.connections]
    out = []

    def add(a, b, scope, ci, length=None, connections=None, cells_used=None):
        if ci is None:
            return
        item = {"a": a, "b": b, "scope": scope, "field": pairing.FIELD}
        if length is not None:
            item.update(length=length, connections=connections)
        if cells_used is not None:
            item["cells"] = cells_used
        item.update(ci.as_dict())
        out.append(item)

    pairs = [(s, REFERENCE) for s in servers if s != REFERENCE and REFERENCE in servers]
    pairs += [(s, p) for s, p in (parents or {}).items() if p and s in servers and p in servers]
    pairs += [(a, b) for a, b, _ in needed(o, records, servers)]
    for a, b in dict.fromkeys(pairs):
        for length, connections in cells:
            add(a, b, "cell", pairing.cell(records, a, b, length, connections), length, connections)
        ci, used = pairing.over_cells(records, a, b, cells)
        add(a, b, "cells", ci, cells_used=used)
    return out


def write_csv(path, summary, servers, variants=None):
    fields = ["length", "connections", "server", "flags", "runs", "failed"] + summary_fields(summary.values()) + \
             ["generator_cpu_share_max", "generator_saturated", "bench_errors", "windows_inside",
              "cpu_ratio_vs_epoll", "rps_ratio_vs_epoll"]
    order = {s: i for i, s in enumerate(servers)}
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=fields, extrasaction="ignore")
        w.writeheader()
        for key in sorted(summary, key=lambda k: (k[0], k[1], order.get(k[2], 99))):
            row = dict(summary[key])
            variant = (variants or {}).get(key[2])
            row["flags"] = variant.flags_text if variant else ""
            for k, v in row.items():
                if isinstance(v, float):
                    row[k] = f"{v:.6g}"
            w.writerow(row)



def write_json(path, title, o, summary, extra=None):
    """summary.json: what benchmarks/plot draws from. `extra` adds the paired ratios, the findings,
    the noise record and the rounds (see runner)."""
    data = {"title": title, "servers": [s for s in o.servers], "lengths": o.lengths,
            "connections": o.connections, "rows": list(summary.values())}
    data.update(extra or {})
    with open(path, "w") as f:
        json.dump(data, f, indent=1)
