"""rate: an open loop at a fixed offered load (the wrk2 method), at several levels of epoll's
closed-loop capacity in the same cell, measured first: the latency-throughput curve.

Latency counts from each request's due time, so a stall shows in every request it delays. A run
whose server could not answer every request due in the window is *unsustained*: echo-bench says so
(`sustained`), and drops at a full queue are counted apart from the errors (`dropped`)."""

from benchkit.text import fmt
from benchkit.workloads.base import Point, Workload

LEVELS = (0.1, 0.3, 0.5, 0.7, 0.9)   # --rate-levels, fractions of epoll's capacity
ARRIVALS = ("poisson", "uniform")     # --arrival; the first is the default


def targets(capacity, levels):
    """The offered rates, requests/s, for a cell whose closed-loop capacity is `capacity`."""
    if not capacity or capacity <= 0:
        raise ValueError("no closed-loop capacity measured for this cell")
    return [level * capacity for level in levels]


class Rate(Workload):
    name = "rate"
    about = "open loop at fixed shares of epoll's closed-loop capacity (echo-bench --rate R)"
    fields = ["target_rate", "offered_rate", "achieved_rate", "dropped"]

    def points(self, o):
        return [Point(self, level) for level in o.rate_levels]

    def bench_args(self, o, point, length, connections):
        target, = targets((getattr(o, "capacity", None) or {}).get((length, connections)), [point.level])
        return ["--rate", f"{target:.1f}", "--arrival", o.arrival]

    def size_text(self, o, length, connections):
        return f"{length} B × {connections} conn, {o.arrival} arrivals"

    def extra_metrics(self, bench, first, last, window):
        return {"target_rate": bench.get("target_rate"), "offered_rate": bench.get("offered_rate"),
                "achieved_rate": bench.get("achieved_rate"), "sustained": bench.get("sustained"),
                "dropped": (bench.get("errors") or {}).get("dropped", 0)}

    def columns(self):
        return [("offered/s", lambda r: fmt(r.get("offered_rate"), 0)),
                ("achieved/s", lambda r: fmt(r.get("achieved_rate"), 0)),
                ("sustained", sustained_text)]


def sustained_text(row):
    """"all 5 rounds", or "⚠ 2 of 5 rounds not" when the server fell behind in some."""
    runs = row["runs"] - row["failed"]
    missed = row.get("unsustained")
    if missed is None:
        return "–"
    return f"all {runs} rounds" if not missed else f"⚠ {missed} of {runs} rounds not"


def curve(summaries, servers):
    """The latency-throughput curve from the rate points' summaries {level: {(length, connections,
    server): row}}: one entry per cell, server and level, in level order."""
    out = []
    for level in sorted(summaries):
        for (length, connections, server), row in sorted(summaries[level].items(),
                                                        key=lambda kv: (kv[0][0], kv[0][1], servers.index(kv[0][2])
                                                                        if kv[0][2] in servers else 99)):
            out.append({"level": level, "length": length, "connections": connections, "server": server,
                        "target_rate": row.get("target_rate"), "offered_rate": row.get("offered_rate"),
                        "achieved_rate": row.get("achieved_rate"), "p50_us": row.get("latency_p50_us"),
                        "p99_us": row.get("latency_p99_us"), "p999_us": row.get("latency_p999_us"),
                        "unsustained": row.get("unsustained"), "runs": row["runs"] - row["failed"],
                        "dropped": row.get("dropped")})
    return out
