"""The workloads beyond ping-pong: their figures (workloads.json) and workloads.md.

Per workload point (the rate workload has one per load level) the runs are summarized as the
ping-pong matrix is, but per the workload's unit of work: server CPU µs per request, per connection
or per MiB (workloads.FIELD). Per workload, every server's paired ratio against epoll is combined
over its cells and points with its interval, and the C floor beside the candidate's.
"""

import io
import json
import os

from benchkit import capacity, pairing, stats, summary, workloads
from benchkit.report import noise_section, write_header
from benchkit.text import fmt, md_cell, percent
from benchkit.variants import C_FLOOR, REFERENCE, VERDICT_SPLICE_PAIRS
from benchkit.workloads import rate

FIELD = workloads.FIELD
# Beside the summary's fields: the figures per unit of work.
PER_UNIT_FIELDS = [FIELD, "units_per_second", "syscalls_per_unit"]
METHOD = ("each workload as its section says (echo-bench's mode); server CPU divided by the workload's unit of work "
          "done in the window")


def points_of(o, name):
    return [p for p in o.points if p.workload.name == name]


def point_summary(records, point, servers):
    """{(length, connections, server): row} of one point, per unit (summary.summarize)."""
    selected = workloads.select(records, point)
    fields = summary.summary_fields(r.get("metrics", {}) for r in selected) + PER_UNIT_FIELDS
    return summary.summarize(selected, servers, field=FIELD, fields=fields + point.workload.fields)


def pair(records, points, a, b):
    """a ÷ b per unit over every cell of every point: (stats.RatioCI or None, cells counted)."""
    value_pairs = []
    for point in points:
        chosen = workloads.select(records, point)
        value_pairs += [(pairing.round_values(chosen, a, length, connections, FIELD),
                         pairing.round_values(chosen, b, length, connections, FIELD)) for length, connections in point.cells]
    return pairing.combine(value_pairs)


def pairs(o, servers):
    """(a, b) of each workload's ratios: every server against epoll, then the C floor and the
    copy-or-splice ratios (a workload without splice runs has none of those)."""
    have = set(servers)
    out = [(s, REFERENCE) for s in servers if s != REFERENCE and REFERENCE in have]
    if all(s in have for s in C_FLOOR):
        out.append(C_FLOOR)
    return out + [(a, b) for a, b in VERDICT_SPLICE_PAIRS if a in have and b in have and (a, b) not in out]


def needed(o, records, servers):
    """The intervals --rounds auto narrows: per workload, the candidate ÷ epoll and the C floor;
    in the verdict's stream workload, the copy-or-splice ratios too."""
    have, cand, out = set(servers), o.candidate_row, []
    for name in o.workloads:
        points = points_of(o, name)
        wanted = ([(cand, REFERENCE)] if cand in have and REFERENCE in have and cand != REFERENCE else []) \
            + ([C_FLOOR] if all(s in have for s in C_FLOOR) else []) \
            + [(a, b) for a, b in VERDICT_SPLICE_PAIRS if o.verdict and name == "stream" and a in have and b in have]
        out += [(f"{name}: {a}", b, pair(records, points, a, b)[0]) for a, b in wanted]
    return out


def results(o, records, servers):
    """Everything workloads.md, verdict.md and the plots need, as JSON-ready data."""
    out = []
    for name in o.workloads:
        workload, points = workloads.get(name), points_of(o, name)
        entry = {"name": name, "unit": workload.unit, "unit_label": workload.unit_label, "about": workload.about,
                 "sizes": [workload.size_text(o, *cell) for cell in points[0].cells], "points": [], "ratios": []}
        summaries = {}
        for point in points:
            rows = point_summary(records, point, servers)
            summaries[point.level] = rows
            entry["points"].append({"key": point.key, "level": point.level, "cells": point.cells,
                                    "rows": list(rows.values())})
        for a, b in pairs(o, servers):
            ci, used = pair(records, points, a, b)
            if ci is not None:
                entry["ratios"].append(dict(a=a, b=b, field=FIELD, unit=workload.unit, cells=used, **ci.as_dict()))
        if name == "rate":
            entry["curve"] = rate.curve(summaries, servers)
        out.append(entry)
    return {"servers": [s for s in servers if any(r["server"] == s for r in records)], "candidate": o.candidate_row,
            "reference": REFERENCE, "workloads": out, "capacity": capacity.as_json(getattr(o, "capacity", {}) or {}),
            "rate_reference": f"{REFERENCE} closed loop (ping-pong) in the same cell, measured once first"}


def ratio_of(entry, a, b):
    """A workload's a ÷ b as a stats.RatioCI, or None."""
    item = next((r for r in entry["ratios"] if r["a"] == a and r["b"] == b), None)
    return stats.RatioCI.from_dict(item)


def write_json(path, title, o, data):
    with open(path, "w") as f:
        json.dump(dict(data, title=title, rounds_asked=o.rounds, rounds_reason=o.rounds_reason, noise=o.noise), f,
                  indent=1)


def finding_lines(o, data):
    """Per workload, the candidate against epoll and the C floor, in words."""
    cand, lines = data["candidate"], []
    for entry in data["workloads"]:
        parts = []
        ci = ratio_of(entry, cand, REFERENCE)
        if ci is not None:
            parts.append(stats.words(ci, cand, REFERENCE))
        floor = ratio_of(entry, *C_FLOOR)
        if floor is not None:
            parts.append("C floor: " + stats.words(floor, *C_FLOOR))
        if parts:
            lines.append(f"{entry['name']} ({entry['unit_label']}): " + "; ".join(parts)
                         + f" [{ci.rounds if ci else floor.rounds} rounds]")
    return lines


def say_all(o, data, say):
    say(f"workloads (candidate {data['candidate']}):")
    for line in finding_lines(o, data):
        say(f"  {line}")


def point_table(w, entry, point, servers):
    """One point's cells: a row per server, in the workload's unit."""
    workload = workloads.get(entry["name"])
    unit = entry["unit"]
    extra = workload.columns()
    for length, connections in point["cells"]:
        rows = {r["server"]: r for r in point["rows"] if r["length"] == length and r["connections"] == connections}
        if not rows:
            continue
        w(f"**{point['key']}: {md_cell(entry['sizes'][0] if len(point['cells']) == 1 else f'{length} B × {connections} conn')}**")
        w()
        w(f"| server | {unit}/s | CPU µs/{unit} (lowest) | ÷ {REFERENCE} (95 % interval) | syscalls/{unit} | user share "
          f"| p50 µs | p99 µs | p99.9 µs | " + "".join(f"{h} | " for h, _ in extra) + "runs |")
        w("|:--|" + "--:|" * (9 + len(extra)))
        for server in servers:
            r = rows.get(server)
            if not r:
                continue
            ci = stats.RatioCI.from_dict(r.get("cpu_vs_epoll"))
            ratio = "1" if server == REFERENCE else (f"{stats.ci_text(ci)} {ci.verdict}" if ci else "–")
            w(f"| {server} | {fmt(r.get('units_per_second'), 1 if unit == 'MiB' else 0)} | {fmt(r.get(FIELD))} ({fmt(r.get(FIELD + '_min'))}) | "
              f"{ratio} | {fmt(r.get('syscalls_per_unit'), 3)} | {percent(r.get('user_share'))} | "
              f"{fmt(r.get('latency_p50_us'), 1)} | {fmt(r.get('latency_p99_us'), 1)} | {fmt(r.get('latency_p999_us'), 1)} | "
              + "".join(f"{cell(r)} | " for _, cell in extra) + f"{r['runs'] - r['failed']}/{r['runs']} |")
        w()


def curve_table(w, entry, servers):
    """The rate workload's latency-throughput curve as text: the plot's figures, always written."""
    curve = entry.get("curve") or []
    if not curve:
        return
    w("### Latency against offered load")
    w()
    w(f"Offered load in percent of {REFERENCE}'s closed-loop capacity in the cell (measured first); latency from each "
      f"request's due time. ⚠: the server did not answer every request due in the window in some round "
      f"(dropped at a full queue, or still unanswered): the point is past what it sustains.")
    w()
    w("| cell | load | server | offered/s | achieved/s | p50 µs | p99 µs | p99.9 µs | sustained |")
    w("|:--|--:|:--|--:|--:|--:|--:|--:|:--|")
    for p in curve:
        missed = p.get("unsustained")
        w(f"| {p['length']} B × {p['connections']} | {round(100 * p['level'])} % | {p['server']} | "
          f"{fmt(p.get('offered_rate'), 0)} | {fmt(p.get('achieved_rate'), 0)} | {fmt(p.get('p50_us'), 1)} | "
          f"{fmt(p.get('p99_us'), 1)} | {fmt(p.get('p999_us'), 1)} | "
          + ("–" if missed is None else "yes" if not missed else f"⚠ no, {missed} of {p['runs']} rounds") + " |")
    w()


def write(path, env, o, records, data, plots_note, started, finished, planned):
    servers = data["servers"]
    out = io.StringIO()
    w = lambda text="": out.write(text + "\n")
    write_header(w, "Echo server workloads", env, o, records, servers, started, finished, planned, plots_note,
                 method=METHOD)
    w(f"## Findings: candidate {data['candidate']}")
    w()
    w("Per workload, server CPU per unit of work, paired by round against epoll and combined over the workload's "
      "cells (and load levels) by a geometric mean per round; in brackets the 95 % confidence interval. "
      "*no measurable difference* means the interval contains 1.")
    w()
    for line in finding_lines(o, data):
        w(f"- {line}")
    w()
    noise_section(w, o, records)
    for entry in data["workloads"]:
        w(f"## {entry['name']}: {entry['about']}")
        w()
        w(f"Unit: **{entry['unit_label']}**. Size: {md_cell('; '.join(dict.fromkeys(entry['sizes'])))}.")
        if entry["name"] == "rate" and data["capacity"]:
            w(f"{REFERENCE}'s closed-loop capacity: "
              + ", ".join(f"{cell.replace('x', ' B × ')} conn: {fmt(v, 0)} req/s" for cell, v in data["capacity"].items())
              + ".")
        w()
        for a_b in entry["ratios"]:
            ci = stats.RatioCI.from_dict(a_b)
            w(f"- {stats.words(ci, a_b['a'], a_b['b'])}")
        w()
        for point in entry["points"]:
            point_table(w, entry, point, servers)
        curve_table(w, entry, servers)
    if os.path.exists(os.path.join(os.path.dirname(path), "rate.png")):
        w("![rate.png](rate.png)")
        w()
    with open(path, "w") as f:
        f.write(out.getvalue())
