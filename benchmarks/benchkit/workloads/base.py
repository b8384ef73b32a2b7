"""What every workload of benchmarks/run is: the echo-bench mode it drives, its unit of work (what
the server's CPU time is divided by), the size the verdict runs it at, and its own figures.

A workload is measured at one or more points (the rate workload: one per offered load level),
each over cells of (message length, connections), like the ping-pong matrix.
"""

from benchkit.text import fmt

# The echo-bench figure that counts each unit per second.
RATE_KEYS = {"request": "requests_per_second", "connection": "connections_per_second", "MiB": "mib_per_second"}


class Point:
    """One measuring point of a workload: the workload, its load level (rate only, a fraction of
    epoll's closed-loop capacity) and the cells it runs in (set by the options)."""

    def __init__(self, workload, level=None, cells=None):
        self.workload, self.level, self.cells = workload, level, list(cells or [])

    @property
    def key(self):
        """How runs.jsonl, the console and the reports name it: "churn", "rate 30 %"."""
        return self.workload.name if self.level is None else f"{self.workload.name} {round(100 * self.level)} %"

    def matches(self, record):
        return record.get("workload", "pingpong") == self.workload.name and record.get("level") == self.level

    def fields(self):
        """What a run's record says about its point."""
        return {"workload": self.workload.name, **({"level": self.level} if self.level is not None else {})}


class Workload:
    """The base: closed-loop ping-pong's behaviour, which most workloads change in one place."""

    name = None
    unit = "request"
    about = ""
    verdict_cell = (128, 50)   # (length, connections) the verdict runs it at
    fields = []                # its own metrics, medians in the summary

    @property
    def unit_label(self):
        return f"server CPU µs per {self.unit}"

    def points(self, o):
        return [Point(self)]

    def bench_args(self, o, point, length, connections):
        """echo-bench's options for this workload, after --connections and --length."""
        return []

    def size_text(self, o, length, connections):
        """The cell as the reports name it, with the workload's own sizes."""
        return f"{length} B × {connections} conn"

    def server_connections(self, o, connections):
        """(count, counter): the server has seen the load start once `counter` ("open": connections
        it holds; "accepted": connections it accepted) reaches `count`."""
        return connections, "open"

    def runs_on(self, variant):
        """Whether this variant can serve the workload (blocking-naive serves one client at a time)."""
        return True

    def units_per_second(self, bench):
        return bench.get(RATE_KEYS[self.unit])

    def extra_metrics(self, bench, first, last, window):
        """The workload's own figures of one run, from echo-bench's JSON and the server's samples."""
        return {}

    def columns(self):
        """[(header, row -> text)]: the workload's own columns in workloads.md."""
        return []


def latency_p99(latency):
    """p99 of an echo-bench latency object (µs), or None."""
    return (latency or {}).get("p99")


def rate_text(value):
    return fmt(value, 0)
