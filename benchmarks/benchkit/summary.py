"""The medians of a run: per cell and server (summarize), paired ratios, summary.csv and summary.json."""

import csv
import json

from benchkit.measure import SYSCALL_KINDS
from benchkit.stats import median
from benchkit.variants import REFERENCE

SUMMARY_FIELDS = ["requests_per_second", "cpu_us_per_request", "user_us_per_request", "system_us_per_request",
                  "user_share", "server_cpu_share", "syscalls_per_request"] + \
                 [f"syscalls_{k}" for k in SYSCALL_KINDS] + \
                 ["context_switches_per_request", "latency_p50_us", "latency_p99_us", "latency_p999_us",
                  "generator_cpu_share", "agreement"]


def summarize(records, servers):
    """Medians per (length, connections, server), and paired ratios against epoll per round."""
    cells = {}
    for r in records:
        cells.setdefault((r["length"], r["connections"], r["server"]), []).append(r)
    by_round = {(r["length"], r["connections"], r["server"], r["round"]): r for r in records if "metrics" in r}
    summary = {}
    for (length, connections, server), runs in cells.items():
        ok = [r for r in runs if "metrics" in r]
        row = {"length": length, "connections": connections, "server": server,
               "runs": len(runs), "failed": len(runs) - len(ok)}
        for field in SUMMARY_FIELDS:
            row[field] = median([r["metrics"].get(field) for r in ok])
        row["generator_cpu_share_max"] = max([r["metrics"].get("generator_cpu_share") or 0 for r in ok], default=None)
        row["generator_saturated"] = any(r["metrics"].get("generator_saturated") for r in ok)
        row["bench_errors"] = sum(r["metrics"].get("bench_errors", 0) for r in ok)
        row["windows_inside"] = all(r["metrics"].get("window_inside", True) for r in ok)
        row["errors"] = [r["error"] for r in runs if "error" in r]
        cpu_ratios, rps_ratios = [], []
        for r in ok:
            ref = by_round.get((length, connections, REFERENCE, r["round"]))
            if ref is None or server == REFERENCE:
                continue
            a, b = r["metrics"], ref["metrics"]
            if a.get("cpu_us_per_request") and b.get("cpu_us_per_request"):
                cpu_ratios.append(a["cpu_us_per_request"] / b["cpu_us_per_request"])
            if a.get("requests_per_second") and b.get("requests_per_second"):
                rps_ratios.append(a["requests_per_second"] / b["requests_per_second"])
        row["cpu_ratio_vs_epoll"] = median(cpu_ratios)
        row["rps_ratio_vs_epoll"] = median(rps_ratios)
        summary[(length, connections, server)] = row
    return summary


def write_csv(path, summary, servers, variants=None):
    fields = ["length", "connections", "server", "flags", "runs", "failed"] + SUMMARY_FIELDS + \
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



def write_json(path, title, o, summary):
    """summary.json: what benchmarks/plot draws from."""
    with open(path, "w") as f:
        json.dump({"title": title, "servers": [s for s in o.servers], "lengths": o.lengths,
                   "connections": o.connections, "rows": list(summary.values())}, f, indent=1)


def paired_ratio(records, a, b, length, connections, field="cpu_us_per_request"):
    """Median over rounds of (a's run / b's run) in the same cell and round; None without a pair."""
    rounds = {}
    for r in records:
        if "metrics" in r and r["length"] == length and r["connections"] == connections and r["server"] in (a, b):
            rounds.setdefault(r["round"], {})[r["server"]] = r["metrics"].get(field)
    return median([v[a] / v[b] for v in rounds.values() if v.get(a) and v.get(b)])
