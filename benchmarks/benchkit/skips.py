"""Rows the running kernel cannot run, found before measuring and dropped with one line each.

An echo variant is asked with `echo --check FLAGS` (binds nothing; exit 0: it can serve; exit 1:
its one stderr line says what the kernel lacks). A peer that uses io_uring (peers.Peer.uring) is
checked against the io_uring feature table of the run (environment.gather). A skipped row is no
failure: the rest of the run goes on, and every summary and report lists what was skipped and why.
A --pair naming a skipped row is dropped the same way. An echo that predates --check (exit 64,
"Unknown option '--check'"), or any other answer, skips nothing: the preflight, which starts every
server once, still stops the run on a server that cannot start.
"""

import subprocess

from benchkit import peers
from benchkit.environment import table_of, unavailable_reason
from benchkit.processes import run_bounded

CHECK_TIMEOUT = 30  # seconds: --check validates the options and probes the kernel, nothing more
ERROR_PREFIX = "echo: error: "


def check_variant(binary, flags, timeout=CHECK_TIMEOUT):
    """Why `binary` with `flags` cannot serve on this kernel (its one error line, without the
    "echo: error: " prefix), or None: it can, or --check gave no verdict."""
    try:
        r = run_bounded([binary, "--check"] + list(flags), timeout=timeout)
    except (OSError, subprocess.TimeoutExpired):
        return None
    if r.returncode != 1:
        return None
    said = [line.strip() for line in r.stderr.splitlines() if line.strip()]
    errors = [line for line in said if line.startswith(ERROR_PREFIX)]
    line = (errors or said or ["echo --check exited with status 1 and said nothing"])[0]
    return line[len(ERROR_PREFIX):] if line.startswith(ERROR_PREFIX) else line


def peer_problem(peer, where):
    """Why the io_uring peer `peer` cannot run here, from the run's feature table, or None (it does
    not use io_uring, the kernel has what it uses, or the table is unknown)."""
    if peer.uring is None:
        return None
    table = table_of(where)
    if table is None:
        return None
    if not table.get("uring_available"):
        return f"io_uring is unavailable: {unavailable_reason(table)}"
    known = {item.get("name"): item for item in table.get("features") or []}
    missing = [known[name] for name in peer.uring if name in known and not known[name].get("available")]
    if not missing:
        return None
    return ("the running kernel lacks " + ", ".join(f"{item['name']} (Linux {item.get('since')})" for item in missing)
            + f", which {peer.name} uses")


def find(o, where, check=check_variant):
    """[{"name", "reason"}] for each row of o.servers this kernel cannot run, in the run's order."""
    skipped = []
    for name in o.servers:
        variant = o.variants[name]
        if variant.is_peer:
            reason = peer_problem(peers.BY_NAME[name], where)
        else:
            reason = check(o.binaries.get(name, o.echo_binary), variant.flags)
        if reason:
            skipped.append({"name": name, "reason": reason})
    return skipped


def drop(o, skipped, say):
    """Drops the skipped rows (and every --pair naming one) from the run, one line each; o.skipped
    keeps them for the summaries and reports. Returns the one-line error when nothing is left to run."""
    reasons = {item["name"]: item["reason"] for item in skipped}
    o.skipped = list(skipped)
    for item in skipped:
        say(f"skipped {item['name']}: {item['reason']}")
    kept_pairs = []
    for a, b in getattr(o, "pairs", []):
        gone = a if a in reasons else b if b in reasons else None
        if gone is None:
            kept_pairs.append((a, b))
        else:
            say(f"skipped {a}/{b}: {reasons[gone]}")
            o.skipped.append({"name": f"{a}/{b}", "reason": f"{gone} is skipped: {reasons[gone]}", "pair": True})
    o.pairs = kept_pairs
    if not reasons:
        return None
    o.servers = [s for s in o.servers if s not in reasons]
    o.backends = [s for s in o.backends if s not in reasons]
    o.peers = [s for s in o.peers if s not in reasons]
    if o.candidate_row in reasons:  # its name stays: the findings and the verdict say it was skipped
        o.candidate_may_alias = False
    if not o.servers:
        return "every row was skipped: this kernel can run none of them (the lines above say why)"
    return None


def candidate_reason(o):
    """Why the candidate was skipped, or None."""
    return next((item["reason"] for item in getattr(o, "skipped", []) if item["name"] == o.candidate), None)
