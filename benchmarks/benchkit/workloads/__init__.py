"""The workloads of benchmarks/run (--workload), each with its unit of work:

| workload | unit |
|---|---|
| pingpong, pipeline, idle, rate | server CPU µs per request |
| churn | server CPU µs per connection |
| stream | server CPU µs per MiB |
"""

from benchkit.workloads.base import Point
from benchkit.workloads.churn import Churn
from benchkit.workloads.idle import Idle
from benchkit.workloads.pingpong import PingPong
from benchkit.workloads.pipeline import Pipeline
from benchkit.workloads.rate import Rate
from benchkit.workloads.stream import Stream

WORKLOADS = {w.name: w for w in (PingPong(), Pipeline(), Rate(), Churn(), Stream(), Idle())}
NAMES = list(WORKLOADS)
DEFAULT = "pingpong"
FIELD = "cpu_us_per_unit"  # what the workloads pair: server CPU µs per unit of work


def get(name):
    return WORKLOADS[name]


def of_record(record):
    """The workload a run record belongs to (records from before workloads are ping-pong)."""
    return WORKLOADS[record.get("workload", DEFAULT)]


def points(o):
    """Every measuring point of the run's workloads, in the order asked, cells set."""
    out = []
    for name in o.workloads:
        for point in WORKLOADS[name].points(o):
            point.cells = cells(o, point.workload)
            out.append(point)
    return out


def cells(o, workload):
    """(length, connections) the workload runs in: the matrix asked, or the verdict's own size."""
    if getattr(o, "verdict_sizes", False):
        return [workload.verdict_cell]
    return [(length, connections) for length in o.lengths for connections in o.connections]


def select(records, point):
    """The runs of one point."""
    return [r for r in records if point.matches(r)]


__all__ = ["WORKLOADS", "NAMES", "DEFAULT", "FIELD", "Point", "get", "of_record", "points", "cells", "select"]
