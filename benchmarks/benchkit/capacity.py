"""The rate workload's yardstick: epoll's closed-loop (ping-pong) capacity in each cell the rate
workload runs in, measured once before the rounds, so that every server is offered the same rates
in every round (the levels are shares of it)."""

import json

from benchkit.measure import one_run
from benchkit.text import fmt, say
from benchkit.variants import REFERENCE

ROLE = "capacity"  # the role of these runs in runs.jsonl; they are in no figure


def cells(o):
    """The rate workload's cells, each once."""
    return list(dict.fromkeys(cell for point in o.points if point.workload.name == "rate" for cell in point.cells))


def measure(o, workdir, log):
    """One ping-pong run of epoll per rate cell; sets o.capacity {(length, connections): requests/s}
    (a cell whose run failed is missing: its rate runs fail, saying why) and logs the runs."""
    o.capacity = {}
    for length, connections in cells(o):
        print(f"capacity: {REFERENCE} closed loop, {length} B × {connections} conn", end=" ", flush=True)
        record = one_run(o, workdir, REFERENCE, length, connections, 0)
        record["role"] = ROLE
        log.write(json.dumps(record) + "\n")
        log.flush()
        if "metrics" in record and record["metrics"].get("requests_per_second"):
            o.capacity[(length, connections)] = record["metrics"]["requests_per_second"]
            say(f"{fmt(o.capacity[(length, connections)], 0)} req/s")
        else:
            say(f"FAILED: {record.get('error', 'no requests')}; the rate runs of this cell will fail")
    return o.capacity


def as_json(capacity):
    """{"128x50": requests/s}, for workloads.json."""
    return {f"{length}x{connections}": value for (length, connections), value in capacity.items()}
