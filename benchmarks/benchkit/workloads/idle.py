"""idle: ping-pong on the active connections while N more connections sit idle, opened before the
warm-up and held through the run: what many idle peers cost per request."""

from benchkit.text import fmt
from benchkit.workloads.base import Workload

IDLE_CONNECTIONS = 10_000  # --idle-connections


class Idle(Workload):
    name = "idle"
    about = "ping-pong among N idle connections held through the run (echo-bench --idle N)"
    fields = ["idle_established"]

    def bench_args(self, o, point, length, connections):
        return ["--idle", str(o.idle_connections)]

    def size_text(self, o, length, connections):
        return f"{length} B × {connections} conn + {o.idle_connections:,} idle"

    def server_connections(self, o, connections):
        return connections + o.idle_connections, "open"

    def runs_on(self, variant):
        return not variant.serves_one_client  # it would serve an idle client and never the others

    def extra_metrics(self, bench, first, last, window):
        return {"idle_established": bench.get("idle_established")}

    def columns(self):
        return [("idle held", lambda r: fmt(r.get("idle_established"), 0))]
