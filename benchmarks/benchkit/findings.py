"""What a run found, in words: each ratio with its confidence interval and verdict.

A user running the kit on their own machine wants to know what io_uring costs against epoll
there, and how far both are from the C reference servers (the floor on that kernel), not
whether some goal of ours was met. The findings name the candidate (--candidate, default uring),
always put the C floor beside a candidate ÷ epoll ratio when both C servers ran, and give the
candidate ÷ every other peer that ran (SwiftNIO, tokio, Go).
"""

from benchkit import pairing, stats
from benchkit.variants import C_FLOOR, NIO, PEERS, REFERENCE


class Finding:
    """One sentence of the findings, with the interval behind it when it is a ratio."""

    def __init__(self, key, text, ci=None, a=None, b=None, cells=None):
        self.key, self.text, self.ci, self.a, self.b, self.cells = key, text, ci, a, b, cells

    def as_dict(self):
        d = {"key": self.key, "text": self.text}
        if self.ci is not None:
            d.update(a=self.a, b=self.b, cells=self.cells, **self.ci.as_dict())
        return d


def candidate_name(o):
    """The candidate as the text names it; `(= row)` when another row's runs stand for it."""
    if o.candidate_row and o.candidate_row != o.candidate:
        return f"{o.candidate} (= {o.candidate_row})"
    return o.candidate


def run_cells(o):
    return [(length, connections) for length in o.lengths for connections in o.connections]


def _detail(ci, used, total):
    parts = []
    if total > 1:
        parts.append(f"geometric mean over {used} cell{'s' if used != 1 else ''}"
                     + (f" of {total}" if used < total else ""))
    parts.append(f"{ci.rounds} round{'s' if ci.rounds != 1 else ''}")
    if ci.lowest is not None:
        parts.append(f"lowest rounds {ci.lowest:.3f}×")
    return "; ".join(parts)


def ratio_finding(key, records, a, b, cells, a_name=None, b_name=None, prefix=""):
    """a ÷ b over the run's cells as a Finding, or None when the pair never ran together."""
    ci, used = pairing.over_cells(records, a, b, cells)
    if ci is None:
        return None
    text = prefix + stats.words(ci, a_name or a, b_name or b) + f" [{_detail(ci, used, len(cells))}]"
    return Finding(key, text, ci, a, b, used)


def per_cell(key, records, a, b, cells, a_name=None, prefix=""):
    """a ÷ b in each cell, as Findings, when the run has more than one cell."""
    out = []
    for length, connections in cells if len(cells) > 1 else []:
        ci = pairing.cell(records, a, b, length, connections)
        if ci is not None:
            out.append(Finding(f"{key} {length}x{connections}", f"{prefix}at {length} B × {connections}: "
                               + stats.words(ci, a_name or a, b), ci, a, b, 1))
    return out


def findings(o, summary, records, servers):
    """The findings of a run, in the order the report prints them."""
    cells = run_cells(o)
    cand = o.candidate_row
    name = candidate_name(o)
    out = []
    have = set(servers)
    c_floor = all(s in have for s in C_FLOOR)

    def add(finding):
        if finding is not None:
            out.append(finding)

    skipped = next((item["reason"] for item in getattr(o, "skipped", []) if item["name"] == cand), None)
    if skipped:
        add(Finding("candidate_skipped", f"{name} was not run: this kernel cannot run it ({skipped})"))
    if cand in have and REFERENCE in have and cand != REFERENCE:
        add(ratio_finding("candidate", records, cand, REFERENCE, cells, a_name=name))
        if c_floor:
            add(ratio_finding("c_floor", records, *C_FLOOR, cells, prefix="C floor: "))
        out += per_cell("candidate", records, cand, REFERENCE, cells, a_name=name)
    if c_floor and cand in have and cand not in C_FLOOR:
        add(ratio_finding("candidate_vs_c", records, cand, C_FLOOR[0], cells, a_name=name,
                          prefix="against C: "))
        if REFERENCE in have:
            add(ratio_finding("reference_vs_c", records, REFERENCE, C_FLOOR[1], cells, prefix="against C: "))
    # Against each other peer a user might pick instead (nio, nio-uring, tokio, go, ...).
    for peer in [s for s in servers if s in PEERS and s not in C_FLOOR and s != cand]:
        if cand in have:
            add(ratio_finding(f"candidate_vs_{peer}", records, cand, peer, cells, a_name=name))
        if peer == NIO and REFERENCE in have and REFERENCE != cand:
            add(ratio_finding("reference_vs_nio", records, REFERENCE, NIO, cells))

    for a, b in getattr(o, "pairs", []):
        if a in have and b in have:
            add(ratio_finding(f"pair {a}/{b}", records, a, b, cells, prefix="asked (--pair): "))
            out += per_cell(f"pair {a}/{b}", records, a, b, cells, prefix="asked (--pair), ")

    # The user-space share: what the server's own code costs, beside the kernel's work.
    for length, connections in cells:
        row = summary.get((length, connections, cand))
        if row and row.get("user_share") is not None and connections > 1:
            out.append(Finding("user_share", f"user-space share of {name}'s CPU: "
                                             f"{100 * row['user_share']:.2f} % (at {length} B × {connections}; "
                                             f"the rest is the kernel)"))
            break

    # Tail latency where there are the most connections.
    if cand in have and REFERENCE in have and cand != REFERENCE and cells:
        most = max(c for _, c in cells)
        parts = []
        for length in o.lengths:
            a, b = summary.get((length, most, cand)), summary.get((length, most, REFERENCE))
            if a and b and a.get("latency_p99_us") is not None and b.get("latency_p99_us") is not None:
                parts.append(f"{length} B: {_micros(a['latency_p99_us'])} vs {_micros(b['latency_p99_us'])}")
        if parts:
            out.append(Finding("p99", f"p99 latency at {most} connection{'s' if most != 1 else ''}, "
                                      f"{name} vs {REFERENCE} (medians): " + ", ".join(parts)))
    return out


def needed(o, records, servers):
    """The intervals `--rounds auto` narrows: the candidate ÷ epoll over the cells, the C floor when
    both C servers run, every --pair, and with --ablation every row ÷ epoll. Per-cell intervals are reported but
    do not hold the run open: at ±1 % each they would take far more rounds than the question needs."""
    cells = run_cells(o)
    have = set(servers)
    pairs = []
    if REFERENCE in have:
        rows = [s for s in servers if s != REFERENCE] if o.ablation else [o.candidate_row]
        pairs += [(s, REFERENCE) for s in rows if s in have and s != REFERENCE]
    if all(s in have for s in C_FLOOR):
        pairs.append(C_FLOOR)
    pairs += [(a, b) for a, b in getattr(o, "pairs", []) if a in have and b in have]
    return [(a, b, pairing.over_cells(records, a, b, cells)[0]) for a, b in dict.fromkeys(pairs)]


def _micros(value):
    return f"{value / 1000:.1f} ms" if value >= 10_000 else f"{value:.0f} µs"


def write(w, o, items):
    """The findings block of report.md and ablation.md."""
    w(f"## Findings: candidate {candidate_name(o)}")
    w()
    w("Ratios are server CPU µs per request, paired: each run divided by the other server's run in the "
      "same cell and round, combined over cells by a geometric mean per round. In brackets: the 95 % "
      "confidence interval (Student's t on the log of the per-round ratios). *no measurable difference* "
      "means the interval contains 1. *lowest rounds* divides the two servers' cheapest rounds: "
      "interference here only adds cost, so the minimum is a second, noise-resistant estimate. "
      "The C floor is what a C io_uring server saves over a C epoll server on this kernel.")
    w()
    for item in items:
        w(f"- {item.text}")
    w()


def say_all(o, items, say):
    say(f"findings (candidate {candidate_name(o)}):")
    for item in items:
        say(f"  {item.text}")
