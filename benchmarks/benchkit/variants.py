"""The server variants: every name run, soak and hold know, with its echo flags.

A variant is a name for `echo` plus its flags (the runner adds --host, --port, --quiet and
--stats-json), or a peer: another server a user might pick (SwiftNIO, tokio, Go) or a C reference
server, from the peer table in peers.py. `parent` is the variant an ablation step adds one feature to.
The echo variants are echo's own named configurations (variants.json, `echo --list-variants
--json`); only the peers are defined here.
"""

import json
import os
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


# echo's named configurations, as `echo --list-variants --json` prints them. The file is that
# output, committed so the kit runs before a build; a Swift test (ConfigurationTests) fails when it
# differs from what echo prints. The flags are rendered from each configuration's options, written
# once in Sources/EchoCLI/NamedConfiguration.swift.
VARIANTS_FILE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "variants.json")


def load_echo_variants(path=VARIANTS_FILE):
    """The built-in echo variants in the file's order."""
    with open(path, encoding="utf-8") as f:
        rows = json.load(f)["variants"]
    return [Variant(row["name"], row["flags"], row["about"], row.get("parent")) for row in rows]


def load_scarcity(path=VARIANTS_FILE):
    """The flags that squeeze an io_uring server to the tests' scarcity (8 SQ and CQ entries, eight
    512-byte buffers; Scarcity in Sources/EchoCLI), added to a variant's own flags."""
    with open(path, encoding="utf-8") as f:
        return json.load(f)["scarcity"]


ECHO_VARIANTS = load_echo_variants()
SCARCITY_FLAGS = load_scarcity()
BUILTIN_VARIANTS = ECHO_VARIANTS + [Variant(p.name, [], p.about) for p in peers.TABLE]
BUILTIN = {v.name: v for v in BUILTIN_VARIANTS}
# Other names for built-in variants (the soak's older names). Not offered by the runner, whose
# rows are named by the table above.
ALIASES = {"uring-bundle": "uring-multishot-defer-bundle"}


def ablation_steps(backend):
    """The variants of `backend` in an ablation chain (a parent or a child of another), in the
    table's order: for uring the feature ladder, then the separate switches."""
    parents = {v.parent for v in ECHO_VARIANTS if v.parent}
    return [v.name for v in ECHO_VARIANTS if v.option("--backend", "uring") == backend
            and (v.parent or v.name in parents)]


ABLATION_LADDER = ablation_steps("uring")
# The reference rows the ablation pairs the ladder against.
ABLATION_REFERENCE = ablation_steps("epoll")
# The servers of `benchmarks/run --verdict`, in its order: the candidate, the reference, the C floor
# and the peers. Peers added to the kit join the verdict by being named here.
VERDICT_SERVERS = ["uring", "epoll", "c-uring", "c-epoll", NIO]
# Servers the verdict runs in its stream workload only, so that it compares uring and epoll each
# with the copy path and with splice (`--splice`; uring in its default splice mode).
VERDICT_SPLICE_SERVERS = ["uring-splice-poll", "epoll-splice"]
# The stream workload's copy-or-splice ratios, (a, b) each: what splice buys each backend, and the
# two splice servers against each other.
VERDICT_SPLICE_PAIRS = [("epoll-splice", "epoll"), ("uring-splice-poll", "uring"),
                        ("uring-splice-poll", "epoll-splice")]


def runs_in_verdict(workload_name, server):
    """Whether the verdict runs `server` in the workload called `workload_name`: the splice
    servers serve the stream workload only."""
    return server not in VERDICT_SPLICE_SERVERS or workload_name == "stream"


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
