"""pingpong: closed loop, one request in flight per connection (the kit's original workload)."""

from benchkit.workloads.base import Workload


class PingPong(Workload):
    name = "pingpong"
    about = "closed loop, one request in flight per connection"
