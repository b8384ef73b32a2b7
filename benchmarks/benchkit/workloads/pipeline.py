"""pipeline: closed loop with D requests in flight per connection (Redis-style pipelining)."""

from benchkit.workloads.base import Workload

DEPTH = 16  # requests in flight per connection (--pipeline-depth)


class Pipeline(Workload):
    name = "pipeline"
    about = "closed loop, D requests in flight per connection (echo-bench --pipeline D)"

    def bench_args(self, o, point, length, connections):
        return ["--pipeline", str(o.pipeline_depth)]

    def size_text(self, o, length, connections):
        return f"{length} B × {connections} conn, {o.pipeline_depth} in flight each"
