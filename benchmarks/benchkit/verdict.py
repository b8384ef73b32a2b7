"""--verdict: one row per workload, to paste into a design document (verdict.md, verdict.json).

Each row: the candidate's (uring's) server CPU per unit of work against epoll's, paired by round
with its 95 % interval, over the workload's cells (and load levels); the C floor c-uring ÷ c-epoll
beside it, which says what io_uring can save on this kernel at all; p99 for both (and p99.9 for the
rate workload, at the highest load both sustained); the verdict in words. The servers are
variants.VERDICT_SERVERS, so a peer added there joins every table here. The stream workload also
runs variants.VERDICT_SPLICE_SERVERS, and its row carries the copy-or-splice ratios
(variants.VERDICT_SPLICE_PAIRS).
"""

import io
import json

from benchkit import environment, stats
from benchkit.report import bullet_section, rounds_text
from benchkit.text import duration_text, fmt, md_cell, percent
from benchkit.variants import C_FLOOR, REFERENCE, VERDICT_SPLICE_PAIRS
from benchkit.vm import kernel_text
from benchkit.workload_report import FIELD, ratio_of


def latency_place(entry, cand):
    """(point, cell, note) where the row's latencies and CPU figures are read: the workload's last cell;
    for the rate workload, at the highest level that the candidate and epoll sustained in every round
    (else the lowest level), since past it latency measures the queue, not the server."""
    points = entry["points"]
    if entry["name"] == "rate":
        def sustained(point):
            rows = [r for r in point["rows"] if r["server"] in (cand, REFERENCE)]
            return len(rows) == 2 and all(r.get("unsustained") == 0 and r["runs"] > r["failed"] for r in rows)
        ok = [p for p in points if sustained(p)]
        point = max(ok, key=lambda p: p["level"]) if ok else min(points, key=lambda p: p["level"])
        note = f"at {round(100 * point['level'])} % of {REFERENCE}'s capacity" + ("" if ok else ", not sustained")
    else:
        point, note = points[0], ""
    return point, point["cells"][-1], note


def verdict_words(ci, cand, unit):
    """The verdict column: who uses less CPU per unit, or no measurable difference."""
    if ci is None:
        return "not measured"
    if ci.ci_low is None:
        return "one round: no interval, no verdict"
    return {"lower": f"{cand} uses less CPU per {unit}", "higher": f"{cand} uses more CPU per {unit}",
            "same": "no measurable difference"}[ci.verdict]


def skipped_columns(o):
    """The verdict's ratios that name a row skipped on this kernel: [{"name", "reason"}], the
    candidate ÷ epoll and the C floor, each with the reason of the row that was skipped."""
    reasons = {item["name"]: item["reason"] for item in getattr(o, "skipped", [])}
    out = []
    for label, (a, b) in ((f"the verdict's {o.candidate} ÷ {REFERENCE}", (o.candidate_row, REFERENCE)),
                          (f"the verdict's C floor {C_FLOOR[0]} ÷ {C_FLOOR[1]}", C_FLOOR)):
        if a not in o.servers and b not in o.servers and a not in reasons and b not in reasons:
            continue  # not asked for in this run
        gone = next((s for s in (a, b) if s in reasons), None)
        if gone:
            out.append({"name": label, "reason": f"{gone} is skipped: {reasons[gone]}"})
    return out


def rows(o, data):
    """The verdict's rows from workload_report.results()."""
    cand, out = data["candidate"], []
    skipped = {item["name"]: item["reason"] for item in getattr(o, "skipped", [])}
    for entry in data["workloads"]:
        point, (length, connections), note = latency_place(entry, cand)
        at = {r["server"]: r for r in point["rows"] if r["length"] == length and r["connections"] == connections}
        ci, floor = ratio_of(entry, cand, REFERENCE), ratio_of(entry, *C_FLOOR)
        pair = [s for s in (cand, REFERENCE) if s in at]
        words = verdict_words(ci, cand, entry["unit"])
        if ci is None and cand in skipped:
            words = f"not run: {cand} is skipped on this kernel"
        out.append({
            "workload": entry["name"], "unit": entry["unit"], "unit_label": entry["unit_label"],
            "size": entry["sizes"][-1], "latency_at": note,
            "ratio": ci.as_dict() if ci else None, "c_floor": floor.as_dict() if floor else None,
            "verdict": ci.verdict if ci and ci.ci_low is not None else None,
            "verdict_words": words,
            "words": stats.words(ci, cand, REFERENCE) if ci else f"no data to compare {cand} and {REFERENCE}",
            "p99_us": {s: at[s].get("latency_p99_us") for s in pair},
            "p999_us": {s: at[s].get("latency_p999_us") for s in pair} if entry["name"] == "rate" else None,
            "cpu_us_per_unit": {s: r.get(FIELD) for s, r in at.items()},
            "syscalls_per_unit": {s: r.get("syscalls_per_unit") for s, r in at.items() if r.get("syscalls_per_unit")},
            "user_share": {s: r.get("user_share") for s, r in at.items()},
            "unsustained": sorted({f"{c['server']} at {round(100 * c['level'])} %" for c in entry.get("curve", [])
                                   if c.get("unsustained")}),
            "failed_runs": sum(r["failed"] for p in entry["points"] for r in p["rows"]),
            "splice": splice_ratios(entry),
        })
    return out


def splice_ratios(entry):
    """The stream workload's copy-or-splice ratios that were measured: [{a, b, ratio, words}]."""
    out = []
    for a, b in VERDICT_SPLICE_PAIRS:
        ci = ratio_of(entry, a, b)
        if ci is not None:
            out.append({"a": a, "b": b, "ratio": ci.as_dict(), "words": stats.words(ci, a, b)})
    return out


def write_json(path, title, env, o, verdict_rows):
    where = env.get("where_it_ran")
    with open(path, "w") as f:
        json.dump({"title": title, "candidate": o.candidate_row, "reference": REFERENCE, "c_floor": list(C_FLOOR),
                   "kernel_release": (where or {}).get("kernel_release", env.get("kernel")),
                   "uring_design": environment.design_text(where) if where else None,
                   "where_it_ran": where, "skipped": env.get("skipped", []),
                   "servers": o.servers, "path": env.get("path"), "rounds": env.get("rounds_run"),
                   "rounds_asked": o.rounds, "rounds_reason": o.rounds_reason, "budget_minutes": o.budget,
                   "method": {"ratio": "server CPU per unit of work, paired by round, geometric mean over the "
                                       "workload's cells and load levels per round",
                              "interval": "95 % confidence interval, Student's t on the log of the per-round ratios",
                              "verdict": "lower / higher: the interval excludes 1; same: it contains 1"},
                   "rows": verdict_rows}, f, indent=1)


def micros(values, servers):
    """"412 / 398": the servers' figures in µs, in order."""
    shown = [fmt(values.get(s), 0) for s in servers if s in values]
    return " / ".join(shown) if shown else "–"


def write(path, env, o, records, verdict_rows, started, finished):
    cand = o.candidate_row
    servers = [s for s in o.servers if any(r["server"] == s for r in records)]
    out = io.StringIO()
    w = lambda text="": out.write(text + "\n")
    where = env.get("where_it_ran")
    on = (f"; {environment.kernel_words(where)}, io_uring: {environment.design_text(where)}" if where else "")
    w(f"# Verdict: {cand} against {REFERENCE}, per workload ({env['date'][:10]} on {env['hostname']}{on})")
    w()
    w(f"- Command: `{env['command']}` (took {duration_text(finished - started)})")
    w(f"- Kernel {kernel_text(env)}; {env['cpu']} ({env['cpus']} CPUs); {env['pinning']}; path: {env.get('path')}")
    w(f"- {rounds_text(o, records)} of {fmt(o.warmup, 1)} s warm-up + {fmt(o.duration, 1)} s per run, the servers "
      f"alternated within each cell, a fresh server per run; budget {o.budget:g} min")
    w(f"- Ratios: server CPU (user + system, /proc/PID/stat) per unit of work, each run divided by {REFERENCE}'s in "
      f"the same cell and round; the geometric mean over rounds (and the workload's load levels), with its 95 % "
      f"interval (Student's t on the log scale). *no measurable difference*: the interval contains 1.")
    w()
    environment.block(w, where, (env.get("skipped") or []) + skipped_columns(o))
    w(f"| workload | size | unit | {cand} ÷ {REFERENCE}, CPU per unit (95 % interval) | C floor {C_FLOOR[0]} ÷ "
      f"{C_FLOOR[1]} | p99 µs {cand} / {REFERENCE} | p99.9 µs {cand} / {REFERENCE} | verdict |")
    w("|:--|:--|:--|--:|--:|--:|--:|:--|")
    for row in verdict_rows:
        ci, floor = stats.RatioCI.from_dict(row["ratio"]), stats.RatioCI.from_dict(row["c_floor"])
        order = [cand, REFERENCE]
        at = f" ({row['latency_at']})" if row["latency_at"] else ""
        w(f"| {row['workload']} | {md_cell(row['size'])} | {row['unit']} | {stats.ci_text(ci)} | {stats.ci_text(floor)} | "
          f"{micros(row['p99_us'], order)}{at} | {micros(row['p999_us'] or {}, order)} | {row['verdict_words']} |")
    w()
    w("In words:")
    w()
    for row in verdict_rows:
        floor = stats.RatioCI.from_dict(row["c_floor"])
        w(f"- **{row['workload']}** ({row['unit_label']}): {row['words']}"
          + (f"; the C floor: {stats.words(floor, *C_FLOOR)}" if floor else "") + ".")
    w()
    spliced = [(row, item) for row in verdict_rows for item in row["splice"]]
    if spliced:
        w("## Streams: copy or splice")
        w()
        w("Server CPU per unit, paired by round, each backend with `--splice` (bytes moved socket → pipe → "
          "socket in the kernel) against the same backend copying through user space, and the two against "
          "each other:")
        w()
        w("| workload | ratio | CPU per unit (95 % interval) | in words |")
        w("|:--|:--|--:|:--|")
        for row, item in spliced:
            w(f"| {row['workload']} | {item['a']} ÷ {item['b']} | "
              f"{stats.ci_text(stats.RatioCI.from_dict(item['ratio']))} | {item['words']} |")
        w()
    w("## Server CPU per unit of work, every server (µs, median)")
    w()
    w("| workload | unit | " + " | ".join(servers) + " |")
    w("|:--|:--|" + "--:|" * len(servers))
    for row in verdict_rows:
        w(f"| {row['workload']} | {row['unit']} | " + " | ".join(fmt(row["cpu_us_per_unit"].get(s)) for s in servers)
          + " |")
    w()
    counted = [s for s in servers if any(s in row["syscalls_per_unit"] for row in verdict_rows)]
    w("## Why: system calls per unit (the server's own count) and user-space share of its CPU")
    w()
    w("| workload | " + " | ".join(f"{s} syscalls" for s in counted) + " | "
      + " | ".join(f"{s} user" for s in servers) + " |")
    w("|:--|" + "--:|" * (len(counted) + len(servers)))
    for row in verdict_rows:
        w(f"| {row['workload']} | " + " | ".join(fmt(row["syscalls_per_unit"].get(s), 3) for s in counted) + " | "
          + " | ".join(percent(row["user_share"].get(s)) for s in servers) + " |")
    w()
    notes = [f"{row['workload']}: not sustained: {', '.join(row['unsustained'])}" for row in verdict_rows
             if row["unsustained"]]
    notes += [f"{row['workload']}: {row['failed_runs']} run(s) failed" for row in verdict_rows if row["failed_runs"]]
    noise = getattr(o, "noise", None) or {}
    flagged = sum(1 for r in records if (r.get("calibration") or {}).get("noisy"))
    notes.append(f"noise: {flagged} run(s) flagged by the calibration probe and re-run" if noise.get("enabled")
                 else f"noise: calibration off ({noise.get('reason', 'not run')})")
    notes.append("every table per workload: workloads.md; every run: runs.jsonl")
    bullet_section(w, "Notes", notes)
    with open(path, "w") as f:
        f.write(out.getvalue())
