"""churn: each connection does N echoes, closes, and a new one opens (HTTP/1.0 at N=1).

The unit is a connection: the server's CPU per connection served (accept, N echoes, close),
counted by echo-bench's connections done in the window; for echo, the server's own count of
accepted connections in its window is the check (`accept_agreement`)."""

from benchkit.text import fmt
from benchkit.workloads.base import Workload, latency_p99

REQUESTS_PER_CONNECTION = 1  # --requests-per-connection


class Churn(Workload):
    name = "churn"
    unit = "connection"
    about = "a new connection after N echoes (echo-bench --requests-per-connection N)"
    fields = ["connections_per_second", "connect_p99_us", "first_echo_p99_us", "accept_agreement"]

    def bench_args(self, o, point, length, connections):
        return ["--requests-per-connection", str(o.requests_per_connection)]

    def size_text(self, o, length, connections):
        n = o.requests_per_connection
        return f"{length} B × {connections} conn, {n} request{'s' if n != 1 else ''} per connection"

    def server_connections(self, o, connections):
        # Connections come and go: count accepts, not the ones open at one moment.
        return connections, "accepted"

    def extra_metrics(self, bench, first, last, window):
        m = {"connections_per_second": bench.get("connections_per_second"),
             "connect_p99_us": latency_p99(bench.get("connect_latency_us")),
             "first_echo_p99_us": latency_p99(bench.get("first_echo_latency_us"))}
        done = (bench.get("connections_per_second") or 0) * window
        if "server" in first and "server" in last and done > 0:
            accepted = last["server"]["connections_accepted"] - first["server"]["connections_accepted"]
            m["accept_agreement"] = accepted / done
        return m

    def columns(self):
        return [("conn/s", lambda r: fmt(r.get("connections_per_second"), 0)),
                ("connect p99 µs", lambda r: fmt(r.get("connect_p99_us"), 0)),
                ("1st echo p99 µs", lambda r: fmt(r.get("first_echo_p99_us"), 0)),
                ("accepted ÷ done", lambda r: fmt(r.get("accept_agreement"), 3))]
