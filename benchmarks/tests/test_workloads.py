"""The workloads' arithmetic: each one's unit of work from echo-bench's JSON and the server's samples,
the rate workload's offered loads and curve, and the options that choose them."""

import os
import socket
import sys
import tempfile
import unittest

from benchkit import measure, procfs, summary, workloads
from benchkit.server import Server
from benchkit.options import parse_options
from benchkit.variants import VERDICT_SERVERS, VERDICT_SPLICE_SERVERS
from benchkit.workloads import rate
from tests.test_netpath import ECHO_ONCE
from tests.test_options import rejected


def sample(seconds, cpu_s, accepted=0, syscalls=0, requests=0, kinds=None):
    """A server sample; `kinds` is its syscalls object but the total (the server's kinds, its order)."""
    return {"time_ns": int(seconds * 1e9), "utime_s": cpu_s * 0.1, "stime_s": cpu_s * 0.9,
            "voluntary_ctxt_switches": 0, "nonvoluntary_ctxt_switches": 0,
            "server": {"requests": requests, "connections_accepted": accepted,
                       "syscalls": dict(kinds or {"epoll_wait": 0, "read": 0, "write": 0}, total=syscalls)}}


def record(workload, bench, cpu_s=0.5, window_s=2.0, accepted=0, syscalls=0, **fields):
    """A run whose server spent cpu_s of CPU in a window of window_s seconds."""
    bench = dict({"requests_per_second": 0, "latency_us": {"p50": 10, "p99": 50, "p999": 90},
                  "cpu": {"share_of_one_core": 0.5}, "errors": {"mismatch": 0, "dropped": 0}}, **bench)
    return dict({"workload": workload, "bench": bench, "round": 1, "server": "uring", "length": 128,
                 "connections": 50, "samples": {"start": sample(10, 1.0),
                                                "end": sample(10 + window_s, 1.0 + cpu_s, accepted, syscalls)}},
                **fields)


class UnitTests(unittest.TestCase):
    def test_request_workloads_divide_by_requests(self):
        for name in ("pingpong", "pipeline", "idle", "rate"):
            m = measure.metrics(record(name, {"requests_per_second": 100_000, "idle_established": 10_000}))
            self.assertEqual(m["unit"], "request", name)
            self.assertAlmostEqual(m[workloads.FIELD], 0.5 / 200_000 * 1e6, msg=name)  # 2.5 µs
        self.assertEqual(measure.metrics(record("idle", {"requests_per_second": 1, "idle_established": 9})
                                         )["idle_established"], 9)

    def test_churn_divides_by_connections_and_checks_the_accepts(self):
        m = measure.metrics(record("churn", {"requests_per_second": 20_000, "connections_per_second": 20_000,
                                             "connect_latency_us": {"p99": 70}, "first_echo_latency_us": {"p99": 95}},
                                   accepted=40_400, syscalls=200_000))
        self.assertEqual(m["unit"], "connection")
        self.assertAlmostEqual(m[workloads.FIELD], 0.5 / 40_000 * 1e6)  # 12.5 µs per connection
        self.assertAlmostEqual(m["accept_agreement"], 40_400 / 40_000)
        self.assertAlmostEqual(m["syscalls_per_unit"], 5.0)
        self.assertEqual((m["connect_p99_us"], m["first_echo_p99_us"]), (70, 95))

    def test_stream_divides_by_mebibytes(self):
        m = measure.metrics(record("stream", {"requests_per_second": 3000, "mib_per_second": 250.0,
                                              "stream_window": 262144}))
        self.assertEqual(m["unit"], "MiB")
        self.assertAlmostEqual(m[workloads.FIELD], 0.5 / 500 * 1e6)  # 1000 µs per MiB
        self.assertEqual(workloads.get("stream").unit_label, "server CPU µs per MiB")

    def test_drops_are_no_errors_but_make_the_point_unsustained(self):
        bench = {"requests_per_second": 9000, "target_rate": 10_000, "offered_rate": 10_010.0,
                 "achieved_rate": 9000.0, "sustained": False, "errors": {"mismatch": 0, "stalled": 2, "dropped": 700}}
        m = measure.metrics(record("rate", bench, level=0.9))
        self.assertEqual((m["bench_errors"], m["dropped"], m["sustained"]), (2, 700, False))
        ok = dict(bench, sustained=True, achieved_rate=10_000.0, errors={"dropped": 0})
        records = [dict(record("rate", bench, level=0.9), metrics=m, round=1),
                   dict(record("rate", ok, level=0.9), round=2)]
        records[1]["metrics"] = measure.metrics(records[1])
        row = summary.summarize(records, ["uring"], field=workloads.FIELD)[(128, 50, "uring")]
        self.assertEqual(row["unsustained"], 1)
        closed = dict(records[1], metrics={"cpu_us_per_request": 1.0})  # no open loop, no such column
        self.assertNotIn("unsustained", summary.summarize([closed], ["uring"])[(128, 50, "uring")])

    def test_the_system_call_kinds_are_the_servers(self):
        """The kinds come from the server's own document, in its order: a kind the kit never heard of
        is a metric, a summary field and a CSV column, in its place."""
        r = record("pingpong", {"requests_per_second": 1000})
        r["samples"]["start"] = sample(10, 1.0, kinds={"read": 10, "splice": 0, "write": 10}, syscalls=20)
        r["samples"]["end"] = sample(12, 1.5, requests=2000, syscalls=4520,
                                     kinds={"read": 2010, "splice": 500, "write": 2010})
        m = measure.metrics(r)
        self.assertEqual(measure.syscall_fields([m]), ["syscalls_read", "syscalls_splice", "syscalls_write"])
        self.assertEqual((m["syscalls_read"], m["syscalls_splice"], m["syscalls_per_request"]), (1.0, 0.25, 2.25))
        row = summary.summarize([dict(r, metrics=m)], ["uring"])[(128, 50, "uring")]
        self.assertEqual(row["syscalls_splice"], 0.25)
        fields = summary.summary_fields([row])
        self.assertEqual(fields[fields.index("syscalls_per_request"):][:4],
                         ["syscalls_per_request", "syscalls_read", "syscalls_splice", "syscalls_write"])
        with tempfile.TemporaryDirectory() as d:
            summary.write_csv(os.path.join(d, "summary.csv"), {(128, 50, "uring"): row}, ["uring"])
            with open(os.path.join(d, "summary.csv")) as f:
                header = f.readline().strip().split(",")
        self.assertIn("syscalls_splice", header)
        self.assertEqual(header.index("syscalls_splice"), header.index("syscalls_read") + 1)


# A stand-in peer that holds every connection it accepts, with a runtime's own socket pair beside its listener.
HOLDER = ("import socket, sys, time\n"
          "wake = socket.socketpair()\n"
          "s = socket.socket(); s.bind(('127.0.0.1', int(sys.argv[1]))); s.listen()\n"
          "held = []\n"
          "while True:\n"
          "    held.append(s.accept()[0])\n")


class ReadinessTests(unittest.TestCase):
    def test_a_peers_connections_count_from_its_sockets_at_rest(self):
        with tempfile.TemporaryDirectory() as d:
            server = Server(lambda port: [sys.executable, "-c", HOLDER, str(port)], os.path.join(d, "log"),
                            start_timeout=5)
            server.start()
            clients = []
            try:
                before = measure.connection_count(server, "open")
                # the listener, the socket pair, and the readiness probe's connection once accepted (never closed)
                self.assertIn(before, (3, 4))
                clients = [socket.create_connection(("127.0.0.1", server.port), timeout=3) for _ in range(5)]
                _, seen = measure.wait_for_connections(server, 5, limit=3, before=before)
                self.assertTrue(seen)
                _, seen = measure.wait_for_connections(server, 6, limit=0.1, before=before)
                self.assertFalse(seen, "the runtime's own sockets are no connections")
            finally:
                for c in clients:
                    c.close()
                server.stop()


    def test_a_peers_accepts_are_counted_from_before_the_load(self):
        """A server without counters (a peer) under churn: its accepts since the load began."""
        with tempfile.TemporaryDirectory() as d:
            server = Server(lambda port: [sys.executable, "-c", ECHO_ONCE, "127.0.0.1", str(port)],
                            os.path.join(d, "log"), start_timeout=5)
            server.start()
            try:
                before = measure.connection_count(server, "accepted")
                self.assertEqual(before, procfs.passive_opens(server.pid))
                for _ in range(5):
                    with socket.create_connection(("127.0.0.1", server.port), timeout=3) as c:
                        c.sendall(b"x")
                        self.assertEqual(c.recv(1), b"x")
                _, seen = measure.wait_for_connections(server, 5, limit=3, counter="accepted", before=before)
                self.assertTrue(seen)
                _, seen = measure.wait_for_connections(server, 10_000, limit=0.1, counter="accepted", before=before)
                self.assertFalse(seen)
            finally:
                server.stop()


class RateTests(unittest.TestCase):
    def test_offered_loads_are_shares_of_the_capacity(self):
        self.assertEqual(rate.targets(200_000, [0.1, 0.5, 0.9]), [20_000, 100_000, 180_000])
        with self.assertRaises(ValueError):
            rate.targets(None, [0.5])
        o = parse_options(["--workload", "rate", "--rate-levels", "30,70", "--no-build"])
        self.assertEqual([p.key for p in o.points], ["rate 30 %", "rate 70 %"])
        o.capacity = {(128, 50): 150_000.0}
        self.assertEqual(rate.Rate().bench_args(o, o.points[1], 128, 50),
                         ["--rate", "105000.0", "--arrival", "poisson"])
        with self.assertRaises(ValueError):
            rate.Rate().bench_args(o, o.points[1], 512, 50)  # no capacity measured there

    def test_curve_orders_levels_and_keeps_unsustained(self):
        def row(server, p99, missed):
            return {"runs": 3, "failed": 0, "latency_p50_us": 10, "latency_p99_us": p99, "latency_p999_us": p99 * 2,
                    "offered_rate": 1000, "achieved_rate": 990, "unsustained": missed, "target_rate": 1000}
        summaries = {0.9: {(128, 50, "epoll"): row("epoll", 900, 2), (128, 50, "uring"): row("uring", 800, 0)},
                     0.1: {(128, 50, "uring"): row("uring", 60, 0), (128, 50, "epoll"): row("epoll", 70, 0)}}
        points = rate.curve(summaries, ["uring", "epoll"])
        self.assertEqual([(p["level"], p["server"]) for p in points],
                         [(0.1, "uring"), (0.1, "epoll"), (0.9, "uring"), (0.9, "epoll")])
        self.assertEqual(points[3]["unsustained"], 2)
        self.assertEqual(points[2]["p999_us"], 1600)
        self.assertEqual(rate.sustained_text(row("epoll", 1, 2)), "⚠ 2 of 3 rounds not")
        self.assertEqual(rate.sustained_text(row("epoll", 1, 0)), "all 3 rounds")


class OptionTests(unittest.TestCase):
    def test_pingpong_is_the_default_and_classic(self):
        o = parse_options(["--quick"])
        self.assertEqual((o.workloads, o.classic), (["pingpong"], True))
        self.assertEqual(o.points[0].cells, [(128, 1), (128, 50)])

    def test_workloads_repeat_or_list(self):
        o = parse_options(["--workload", "churn,stream", "--workload", "churn", "--quick"])
        self.assertEqual(o.workloads, ["churn", "stream"])
        self.assertFalse(o.classic)
        self.assertIn("unknown nope", rejected(["--workload", "nope"]))
        self.assertIn("ping-pong only", rejected(["--ablation", "--workload", "churn"]))

    def test_workload_sizes_are_checked(self):
        self.assertIn("--pipeline-depth", rejected(["--pipeline-depth", "0"]))
        self.assertIn("--requests-per-connection", rejected(["--requests-per-connection", "0"]))
        self.assertIn("--idle-connections", rejected(["--idle-connections", "0"]))
        self.assertIn("percentages above 0", rejected(["--rate-levels", "0,50"]))
        self.assertIn("invalid choice", rejected(["--arrival", "bursty"]))

    def test_network_path_options(self):
        self.assertIn("needs --path veth", rejected(["--netem-delay", "5"]))
        self.assertIn("above 0", rejected(["--path", "veth", "--netem-delay", "-1", "--dry-run"]))
        self.assertEqual(parse_options(["--path", "veth", "--dry-run"]).path, "veth")

    def test_verdict_defaults_and_overrides(self):
        o = parse_options(["--verdict"])
        self.assertEqual(sorted(o.servers), sorted(VERDICT_SERVERS + VERDICT_SPLICE_SERVERS))
        self.assertEqual(o.workloads, workloads.NAMES)
        self.assertEqual(o.rounds, "auto")
        cells = {p.workload.name: p.cells for p in o.points}
        self.assertEqual(cells["stream"], [workloads.get("stream").verdict_cell])
        self.assertEqual(cells["churn"], [(128, 50)])
        self.assertEqual(len(o.points), len(workloads.NAMES) - 1 + 5)  # rate: five levels
        small = parse_options(["--verdict", "--connections", "10", "--workload", "stream,churn", "--rounds", "2"])
        self.assertEqual({p.workload.name: p.cells for p in small.points}, {"stream": [(128, 10)], "churn": [(128, 10)]})
        self.assertIn("not allowed with argument", rejected(["--verdict", "--quick"]))


if __name__ == "__main__":
    unittest.main()
