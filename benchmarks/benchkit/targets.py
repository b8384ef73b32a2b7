"""The issue's targets for the candidate: PASS/FAIL rows in the reports and on the console."""

from benchkit.stats import geomean
from benchkit.summary import paired_ratio
from benchkit.text import fmt, md_cell, percent, say
from benchkit.variants import C_FLOOR, C_PEERS, NIO, REFERENCE

# The targets are stated over these cells.
TARGET_LENGTHS = [128, 1000]
TARGET_CONNECTIONS = [50, 300, 1000]

def candidate_name(o):
    if o.candidate_row and o.candidate_row != o.candidate:
        return f"{o.candidate} (= {o.candidate_row})"
    return o.candidate


def target_results(o, summary, records, servers):
    """The issue's targets for the candidate, as (target, goal, measured, verdict) rows; None when the
    candidate or epoll is not in the run. Cells are 50/300/1000 connections × 128/1000 B, as many of
    them as the run has; a verdict over fewer cells than the target names says 'partial'."""
    cand = o.candidate_row
    if not cand or cand not in servers or REFERENCE not in servers:
        return None
    name = o.candidate  # in the text; cand is the row whose runs stand for it
    cells = [(l, c) for l in TARGET_LENGTHS for c in TARGET_CONNECTIONS]
    rows = []

    def verdict(ok, have, want):
        if have == 0:
            return "n/a"
        text = "PASS" if ok else "FAIL"
        return text if have == want else f"{text} (partial: {have}/{want} cells)"

    def ratios(a, b, wanted):
        return [(l, c, paired_ratio(records, a, b, l, c)) for l, c in wanted
                if paired_ratio(records, a, b, l, c) is not None]

    def cells_text(values, digits=3):
        return ", ".join(f"{l} B×{c}: {fmt(v, digits)}" for l, c, v in values)

    # With both C reference servers in the run, each uring ÷ epoll target is followed by the same
    # ratio for them (c-uring ÷ c-epoll): the floor, what io_uring can buy over epoll on this kernel.
    c_floor = all(s in servers for s in C_FLOOR)

    def floor_verdict(ok, have, want):
        if have == 0:
            return "n/a"
        text = "C meets it" if ok else "C misses it"
        return text if have == want else f"{text} (partial: {have}/{want} cells)"

    have = ratios(cand, REFERENCE, cells)
    g = geomean([v for _, _, v in have])
    rows.append((f"CPU µs/req {name} ÷ epoll, geometric mean over 50/300/1000 conn × 128/1000 B", "≤ 0.95",
                 f"{fmt(g, 3)} ({cells_text(have)})" if have else "no paired cells in this run",
                 verdict(g is not None and g <= 0.95, len(have), len(cells))))
    if c_floor:
        have = ratios(*C_FLOOR, cells)
        g = geomean([v for _, _, v in have])
        rows.append(("C floor: CPU µs/req c-uring ÷ c-epoll, geometric mean over the same cells", "≤ 0.95",
                     f"{fmt(g, 3)} ({cells_text(have)})" if have else "no paired cells in this run",
                     floor_verdict(g is not None and g <= 0.95, len(have), len(cells))))

    wanted = [(l, 1000) for l in TARGET_LENGTHS]
    have = ratios(cand, REFERENCE, wanted)
    rows.append((f"CPU µs/req {name} ÷ epoll at 1000 connections (each length)", "≤ 0.90",
                 cells_text(have) or "1000 connections not in this run",
                 verdict(all(v <= 0.90 for _, _, v in have), len(have), len(wanted))))
    if c_floor:
        have = ratios(*C_FLOOR, wanted)
        rows.append(("C floor: CPU µs/req c-uring ÷ c-epoll at 1000 connections (each length)", "≤ 0.90",
                     cells_text(have) or "1000 connections not in this run",
                     floor_verdict(all(v <= 0.90 for _, _, v in have), len(have), len(wanted))))
    if c_floor and cand not in C_PEERS:
        # How far ours are from the C servers doing the same thing (1 = as cheap as C).
        mine = ratios(cand, "c-uring", cells)
        theirs = ratios(REFERENCE, "c-epoll", cells)
        gm, gt = geomean([v for _, _, v in mine]), geomean([v for _, _, v in theirs])
        rows.append((f"against C: {name} ÷ c-uring and epoll ÷ c-epoll, geometric mean over the same cells",
                     "(reference)",
                     f"{name} ÷ c-uring {fmt(gm, 3)} ({cells_text(mine)}); epoll ÷ c-epoll {fmt(gt, 3)} "
                     f"({cells_text(theirs)})" if mine or theirs else "no paired cells in this run",
                     "info" if mine or theirs else "n/a"))

    if NIO in servers and cand != NIO:
        have = ratios(cand, NIO, cells)
        g = geomean([v for _, _, v in have])
        rows.append((f"CPU µs/req {name} ÷ nio, geometric mean over the same cells", "≤ 0.70",
                     f"{fmt(g, 3)} ({cells_text(have)})" if have else "no paired cells in this run",
                     verdict(g is not None and g <= 0.70, len(have), len(cells))))
        wanted = [(l, c) for l in TARGET_LENGTHS for c in (50, 300)]
        have = ratios(REFERENCE, NIO, wanted)
        rows.append(("CPU µs/req epoll ÷ nio at 50 and 300 connections (each cell)", "≤ 0.75",
                     cells_text(have) or "50/300 connections not in this run",
                     verdict(all(v <= 0.75 for _, _, v in have), len(have), len(wanted))))
    else:
        rows.append((f"CPU µs/req {name} ÷ nio", "≤ 0.70", "nio not in this run (add --peers nio)", "n/a"))
        rows.append(("CPU µs/req epoll ÷ nio at 50 and 300 connections", "≤ 0.75",
                     "nio not in this run (add --peers nio)", "n/a"))

    row = summary.get((128, 50, cand))
    share = row.get("user_share") if row else None
    rows.append((f"user-space share of {name}'s CPU at 50 conn × 128 B", "≤ 3 %",
                 percent(share, 2) if share is not None else "50 × 128 B not in this run",
                 verdict(share is not None and share <= 0.03, int(share is not None), 1)))

    have = []
    for l in TARGET_LENGTHS:
        a, b = summary.get((l, 1000, cand)), summary.get((l, 1000, REFERENCE))
        if a and b and a.get("latency_p99_us") is not None and b.get("latency_p99_us") is not None:
            have.append((l, a["latency_p99_us"], b["latency_p99_us"]))
    rows.append((f"p99 latency of {name} at 1000 connections (median, each length)", "≤ epoll's",
                 ", ".join(f"{l} B: {fmt(x, 0)} vs epoll {fmt(y, 0)} µs" for l, x, y in have)
                 or "1000 connections not in this run",
                 verdict(all(x <= y for _, x, y in have), len(have), len(TARGET_LENGTHS))))
    return rows


def write_targets(w, o, rows):
    w(f"## Targets: candidate {candidate_name(o)}")
    w()
    w("Ratios are paired: each run's server CPU µs/request divided by the other server's in the same cell "
      "and round, median over rounds; a geometric mean then combines cells. `partial` means the run did "
      "not have every cell the target names (50/300/1000 connections × 128/1000 B). Pick another "
      "candidate with --candidate NAME.")
    if any(t.startswith("C floor") for t, _, _, _ in rows):
        w()
        w("The *C floor* rows hold the C reference servers (benchmarks/peers/c) to the same goal: "
          "c-uring ÷ c-epoll is what io_uring's modern features buy over a good epoll server on this kernel "
          "when neither side has any language overhead. Where C misses a goal, the goal is below the floor.")
    w()
    w("| target | goal | measured | result |")
    w("|:--|:--|:--|:--|")
    for target, goal, measured, verdict in rows:
        shown = f"**{verdict}**" if verdict.startswith(("PASS", "FAIL")) else verdict
        w(f"| {md_cell(target)} | {goal} | {md_cell(measured)} | {shown} |")
    w()


def say_targets(o, rows):
    say(f"targets (candidate {candidate_name(o)}):")
    width = max(28, max(len(verdict) for _, _, _, verdict in rows))
    for target, goal, measured, verdict in rows:
        say(f"  {verdict:<{width}} {target} {goal}: {measured}")


