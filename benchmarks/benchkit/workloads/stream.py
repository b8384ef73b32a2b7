"""stream: each connection writes continuously (at most echo-bench's --stream-window in flight) and
reads concurrently; the unit is a MiB echoed (one way)."""

from benchkit.text import fmt
from benchkit.workloads.base import Workload


class Stream(Workload):
    name = "stream"
    unit = "MiB"
    about = "continuous writes and reads, every byte checked (echo-bench --stream)"
    verdict_cell = (16384, 10)
    fields = ["mib_per_second", "stream_window"]

    def bench_args(self, o, point, length, connections):
        return ["--stream"]

    def size_text(self, o, length, connections):
        return f"{connections} conn streaming (payload period {length} B)"

    def extra_metrics(self, bench, first, last, window):
        return {"mib_per_second": bench.get("mib_per_second"), "stream_window": bench.get("stream_window")}

    def columns(self):
        return [("MiB/s", lambda r: fmt(r.get("mib_per_second"), 1)),
                ("window KiB", lambda r: fmt((r.get("stream_window") or 0) / 1024, 0))]
