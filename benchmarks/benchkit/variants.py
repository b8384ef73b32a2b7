"""The one table of server variants: every name run, soak and hold know, with its echo flags.

A variant is a name for `echo` plus its flags (the runner adds --host, --port, --quiet and
--stats-json), or a peer: another server a user might pick (SwiftNIO, tokio, Go) or a C reference
server, from the peer table in peers.py. `parent` is the variant an ablation step adds one feature to.
"""

import shlex

from benchkit import peers

NIO = "nio"
PEERS = list(peers.NAMES)
BACKENDS = ["uring", "epoll", "blocking-threaded", "blocking-naive"]
REFERENCE = "epoll"      # paired ratios are against this server
C_FLOOR = ("c-uring", "c-epoll")  # the C floor ratio: c-uring ÷ c-epoll, shown beside the candidate's
# Flags the runner (and hold) set themselves; a variant may not carry them.
RESERVED_FLAGS = ["--host", "--port", "--quiet", "--stats-json", "-h", "--help"]


class Variant:
    """One server row: a name for `echo` with its flags (the runner adds --host, --port, --quiet and
    --stats-json), or a peer (peers.py). `parent` is the variant it adds one feature to
    (ablation steps)."""

    def __init__(self, name, flags, about, parent=None, builtin=True):
        self.name, self.flags, self.about, self.parent, self.builtin = name, list(flags), about, parent, builtin

    @property
    def is_peer(self):
        return self.name in PEERS

    @property
    def flags_text(self):
        return " ".join(shlex.quote(f) for f in self.flags)

    def option(self, name, default):
        """The value of `--name V` or `--name=V` in the flags (the last one wins, as in echo)."""
        value = default
        for i, flag in enumerate(self.flags):
            if flag == name and i + 1 < len(self.flags):
                value = self.flags[i + 1]
            elif flag.startswith(name + "="):
                value = flag.split("=", 1)[1]
        return value

    @property
    def serves_one_client(self):
        """blocking, naive mode (echo's default blocking mode): runs at 1 connection only."""
        return (not self.is_peer and self.option("--backend", "uring") == "blocking"
                and self.option("--blocking-mode", "naive") == "naive")


# The ladder's steps before buffer size and incremental consumption: the shared pool of the
# multishot mode as it was, 4096 whole 4 KiB buffers.
WHOLE_4K = ["--no-incremental-buffers", "--buffer-size", "4096", "--buffer-count", "4096"]

BUILTIN_VARIANTS = [Variant(*v) for v in [
    ("uring", ["--backend", "uring"], "io_uring in the server's default mode"),
    ("epoll", ["--backend", "epoll"], "epoll in the server's default mode (level-triggered)"),
    ("blocking-threaded", ["--backend", "blocking", "--blocking-mode", "threaded"], "blocking, thread per connection"),
    ("blocking-naive", ["--backend", "blocking", "--blocking-mode", "naive"], "blocking, naive (one client at a time)"),
    ("uring-legacy", ["--backend", "uring", "--uring-mode", "legacy"],
     "single-shot accept and recv, IORING_OP_PROVIDE_BUFFERS (the seed's design)"),
    ("uring-multishot", ["--backend", "uring", "--uring-mode", "multishot", "--no-defer-taskrun"] + WHOLE_4K,
     "multishot recv + provided-buffer ring (4 KiB buffers, one per receive) + multishot accept; "
     "a connection's queued buffers leave in one sendmsg", "uring-legacy"),
    ("uring-multishot-defer", ["--backend", "uring", "--uring-mode", "multishot", "--defer-taskrun"] + WHOLE_4K,
     "+ SINGLE_ISSUER + DEFER_TASKRUN", "uring-multishot"),
    ("uring-multishot-defer-64k", ["--backend", "uring", "--uring-mode", "multishot", "--defer-taskrun",
                                   "--no-incremental-buffers", "--buffer-size", "65536", "--buffer-count", "256"],
     "+ 64 KiB buffers (256: the same 16 MiB), still one per receive", "uring-multishot-defer"),
    ("uring-multishot-defer-inc", ["--backend", "uring", "--uring-mode", "multishot", "--defer-taskrun",
                                   "--incremental-buffers", "--buffer-size", "65536", "--buffer-count", "256"],
     "+ incremental consumption (IOU_PBUF_RING_INC, 6.12): receives share buffers, a few hot ones in the ring "
     "(the server's default)", "uring-multishot-defer-64k"),
    ("uring-multishot-defer-fixed",
     ["--backend", "uring", "--uring-mode", "multishot", "--defer-taskrun", "--fixed-files"] + WHOLE_4K,
     "+ fixed files (direct accept into a sparse registered table)", "uring-multishot-defer"),
    ("uring-multishot-defer-bundle",
     ["--backend", "uring", "--uring-mode", "multishot", "--defer-taskrun", "--bundle"],
     "+ recv bundles on a buffer ring per connection (8 × 4 KiB), gathered sends (instead of the shared ring)",
     "uring-multishot-defer"),
    ("uring-multishot-sqpoll", ["--backend", "uring", "--uring-mode", "multishot", "--sqpoll"] + WHOLE_4K,
     "multishot + SQPOLL (a kernel thread of the server polls the SQ; no DEFER_TASKRUN, no gathered sends)",
     "uring-multishot"),
    ("uring-multishot-defer-zc",
     ["--backend", "uring", "--uring-mode", "multishot", "--defer-taskrun", "--zerocopy-send", "512"] + WHOLE_4K,
     "+ IORING_OP_SEND_ZC from 512 B (so at 1000 B, not at 128 B; no gathered sends)", "uring-multishot-defer"),
    ("epoll-edge", ["--backend", "epoll", "--epoll-mode", "edge"], "edge-triggered epoll", "epoll"),
    ("epoll-splice", ["--backend", "epoll", "--splice"],
     "epoll with splice(2) through a pipe: no copy into user space", "epoll"),
    ("uring-splice-poll", ["--backend", "uring", "--splice", "--splice-mode", "poll"],
     "io_uring multishot poll, splice(2) from the loop: no copy into user space", "uring"),
    ("uring-splice-linked", ["--backend", "uring", "--splice", "--splice-mode", "linked"],
     "io_uring poll, then hard-linked IORING_OP_SPLICE pairs run in io-wq", "uring"),
]] + [Variant(p.name, [], p.about) for p in peers.TABLE]
BUILTIN = {v.name: v for v in BUILTIN_VARIANTS}
# Other names for built-in variants (the soak's older names). Not offered by the runner, whose
# rows are named by the table above.
ALIASES = {"uring-bundle": "uring-multishot-defer-bundle"}
# The feature ladder, then the separate switches, then the reference.
ABLATION_LADDER = ["uring-legacy", "uring-multishot", "uring-multishot-defer", "uring-multishot-defer-64k",
                   "uring-multishot-defer-inc", "uring-multishot-defer-fixed",
                   "uring-multishot-defer-bundle", "uring-multishot-sqpoll", "uring-multishot-defer-zc"]
ABLATION_REFERENCE = ["epoll", "epoll-edge"]
# The servers of `benchmarks/run --verdict`, in its order: the candidate, the reference, the C floor
# and the peers. Peers added to the kit join the verdict by being named here.
VERDICT_SERVERS = ["uring", "epoll", "c-uring", "c-epoll", NIO]


def lookup(name):
    """The built-in variant called `name` (or an alias of one); KeyError when there is none."""
    return BUILTIN[ALIASES.get(name, name)]


def echo_flags(name):
    """The echo flags of the built-in variant `name`; ValueError for a peer, which is not echo."""
    variant = lookup(name)
    if variant.is_peer:
        raise ValueError(f"{name} is a peer server, not echo")
    return list(variant.flags)


def peer_text(name, threads=1):
    """How a peer is shown in place of echo flags: its command, without host and port."""
    return peers.BY_NAME[name].shown(threads)


def variants_help():
    width = max(len(v.name) for v in BUILTIN_VARIANTS)
    lines = ["built-in variants (echo flags; the runner adds --host, --port, --quiet, --stats-json) and peers",
             "(their command; the runner adds the port and the host; N: the CPUs of --server-cpus):"]
    for v in BUILTIN_VARIANTS:
        flags = v.flags_text if not v.is_peer else peer_text(v.name, "N")
        lines.append(f"  {v.name:<{width}}  {flags}")
    return "\n".join(lines)
