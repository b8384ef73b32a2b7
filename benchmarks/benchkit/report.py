"""report.md: the header every report shares, the seed's matrix tables, and the whole report."""

import io
import os

from benchkit import environment
from benchkit.measure import SATURATED, SYSCALL_PREFIX, network, syscall_fields
from benchkit.procfs import CLOCK_TICKS
from benchkit import findings, stats
from benchkit.text import duration_text, fmt, md_cell, percent  # noqa: F401 (fmt, md_cell, percent: for callers)
from benchkit.variants import REFERENCE, peer_text

def matrix_table(summary, server, lengths, connections, cell):
    """The seed's shape: one row per message length, one column per connection count."""
    head = "| clients | " + " | ".join(str(c) for c in connections) + " |"
    rule = "|:--|" + "--:|" * len(connections)
    rows = [head, rule]
    for length in lengths:
        values = []
        for c in connections:
            row = summary.get((length, c, server))
            values.append(cell(row) if row else " ")
        rows.append(f"| {length} bytes | " + " | ".join(values) + " |")
    return "\n".join(rows)


def server_summaries(o, records):
    """What each server said about its configuration: the preflight's summary, else a run's."""
    summaries = dict(getattr(o, "summaries", None) or {})
    for r in records:
        text = r.get("samples", {}).get("start", {}).get("server", {}).get("summary")
        if text:
            summaries.setdefault(r["server"], text)
    return summaries


PINGPONG_METHOD = "closed loop (each connection sends L bytes, waits for all L back, verifies them)"


def write_header(w, title, env, o, records, servers, started, finished, planned, plots_note, method=PINGPONG_METHOD):
    w(f"# {title}: {env['date'][:10]} on {env['hostname']}")
    w()
    w(f"- Command: `{env['command']}`")
    w(f"- Date: {env['date']} (took {duration_text(finished - started)})")
    where = env.get("where_it_ran")
    if not where:  # a run from before the "Where it ran" record
        w(f"- Kernel: {env['kernel']}; CPU: {env['cpu']} ({env['cpus']} CPUs)")
    w(f"- Pinning: {env['pinning']}")
    w(f"- Swift: {env['swift']}; liburing: {env['liburing']}"
      + f"; commit {env.get('commit', 'unknown')} (plus any local changes)")
    for name, peer in (env.get("peers") or {}).items():
        if "skipped" in peer:
            w(f"- Peer **{name}**: not run: {peer['skipped']}")
        else:
            verified = (getattr(o, "conformance", None) or {}).get(name)
            w(f"- Peer **{name}**: {peer['about']}; built with {peer['version']}"
              + (f"; {verified}" if verified else ""))
    if getattr(o, "path", "loopback") != "loopback":
        w(f"- Network path: {env.get('path', o.path)}")
    w(f"- Method: {method}; "
      f"a fresh server per run; servers alternated, order flipped each round; {rounds_text(o, records)} of "
      f"{fmt(o.warmup, 1)} s warm-up + {fmt(o.duration, 1)} s measured; medians over rounds, the lowest "
      f"round beside them; ratios paired by round with a 95 % interval (Student's t on the log scale). "
      f"echo-bench --threads {o.bench_threads}.")
    w(f"- Server CPU and counters are sampled inside echo-bench's measured window "
      f"(/proc/PID/stat, all threads of the server; echo --stats-json with SIGUSR1), and per-request "
      f"figures divide the server's CPU rate by echo-bench's request rate. CPU times come in clock ticks "
      f"of {1000 // CLOCK_TICKS} ms: a user share below one tick per window reads as 0.")
    if any(o.variants[s].serves_one_client for s in servers):
        w("- " + ", ".join(s for s in servers if o.variants[s].serves_one_client)
          + " runs at 1 connection only (it serves one client at a time).")
    if o.candidate != o.candidate_row and o.candidate_row:
        w(f"- Candidate **{o.candidate}** (`{o.variants[o.candidate].flags_text}`) printed the same summary as "
          f"**{o.candidate_row}**, so it was not run separately: {o.candidate_row}'s rows stand for it.")
    if getattr(o, "interrupted", False):
        w(f"- **Interrupted**: {len(records)} runs done of the {planned} planned; medians cover what was measured.")
    failed = [r for r in records if "error" in r]
    if failed:
        w(f"- **{len(failed)} run(s) failed**: " + "; ".join(
            f"{r['server']} {r.get('workload', 'pingpong') + ' ' if r.get('workload', 'pingpong') != 'pingpong' else ''}"
            f"{r['length']} B × {r['connections']} (round {r['round']}): {r['error']}" for r in failed[:10]))
    if plots_note:
        w(f"- Plots: {plots_note}")
    w()
    environment.block(w, where, env.get("skipped") or [])
    summaries = server_summaries(o, records)
    w("**Servers** (flags as given to `.build/release/echo`, which the runner completes with "
      f"`--host {network(o).server_host} --port P --quiet --stats-json PATH`; summary as the server printed it)")
    w()
    w("| server | flags | server's summary |")
    w("|:--|:--|:--|")
    for s in servers:
        v = o.variants[s]
        if v.is_peer:
            flags = f"`{peer_text(s, o.server_threads)}`"
        else:
            flags = f"`{v.flags_text}`" + (f" (executable {o.binaries[s]})" if s in getattr(o, "binaries", {}) else "")
        origin = "" if v.builtin else " (ad-hoc)"
        w(f"| {s}{origin} | {md_cell(flags)} | {md_cell(summaries.get(s) or v.about)} |")
    w()


def bullet_section(w, title, items):
    """A section of bullet points; nothing when there are none."""
    if items:
        w(f"## {title}")
        w()
        for item in items:
            w(f"- {item}")
        w()


def rounds_text(o, records):
    """'5 round(s)', or for --rounds auto how many ran and why it stopped."""
    done = max((r["round"] for r in records), default=0)
    if getattr(o, "rounds", None) == "auto":
        reason = getattr(o, "rounds_reason", None)
        return f"{done} round(s) (--rounds auto{': ' + reason if reason else ''})"
    return f"{done} round(s)"


def ratio_cell(row):
    ci = stats.RatioCI.from_dict(row.get("cpu_vs_epoll"))
    if ci is None:
        return "–"
    return f"{stats.ci_text(ci)} {ci.verdict} / {fmt(row.get('rps_ratio_vs_epoll'), 3)}"


def noise_section(w, o, records):
    """What the calibration probe saw: which runs it flagged, and what became of them."""
    noise = getattr(o, "noise", None) or {}
    w("## Noise")
    w()
    if not noise.get("enabled"):
        w(f"Calibration: off ({noise.get('reason', 'not run')}). Ratios are still paired by round, which "
          f"cancels a slow mode that both runs of a round share.")
        w()
        return
    probed = [r for r in records if r.get("calibration")]
    flagged = [r for r in probed if r["calibration"].get("noisy")]
    rerun = [r for r in flagged if r.get("excluded")]
    kept = [r for r in flagged if not r.get("excluded")]
    w(f"Before and after every run, a {noise['signal']} calibration probe ({noise.get('about', '')}) ran "
      f"pinned to the server's CPUs. A run is flagged when its slower probe is more than "
      f"{100 * noise['threshold']:g} % above the best probe seen in this invocation "
      f"(best {noise.get('best_ns_per_op', 0):.0f} ns per operation). Flagged runs were re-run, up to "
      f"{noise.get('reruns', 0)} time(s); a flagged run that was re-run is left out of every figure and kept "
      f"in runs.jsonl with `excluded`; one still flagged after the last re-run is counted, marked `noisy_kept`.")
    w()
    w(f"- {len(probed)} run(s) probed, {len(flagged)} flagged: {len(rerun)} re-run and left out, "
      f"{len(kept)} kept after the last re-run.")
    slowdowns = sorted(r["calibration"]["slowdown"] for r in probed if r["calibration"].get("slowdown") is not None)
    if slowdowns:
        w(f"- Probe slowdown against the best: median {100 * stats.median(slowdowns):.1f} %, "
          f"largest {100 * slowdowns[-1]:.1f} %.")
    for r in flagged[:10]:
        w(f"  - {r['server']} {r['length']} B × {r['connections']}, round {r['round']}, attempt "
          f"{r.get('attempt', 1)}: probe {100 * r['calibration']['slowdown']:.1f} % slow"
          + (" (re-run)" if r.get("excluded") else " (kept)"))
    w()


def report(path, env, o, summary, records, plots_note, started, finished, planned):
    lengths = o.lengths
    connections = o.connections
    servers = [s for s in o.servers if any(k[2] == s for k in summary)]
    label = {"uring": "uring (io_uring, default mode)", "epoll": "epoll", "blocking-threaded": "blocking, thread per connection",
             "blocking-naive": "blocking, naive (one client at a time)"}
    label.update({s: f"{s} ({o.variants[s].about})" for s in servers if o.variants[s].is_peer})
    out = io.StringIO()
    w = lambda text="": out.write(text + "\n")
    write_header(w, "Echo server benchmark", env, o, records, servers, started, finished, planned, plots_note)
    findings.write(w, o, findings.findings(o, summary, records, servers))
    noise_section(w, o, records)

    def section(title, text, cell, only=None):
        w(f"## {title}")
        w()
        if text:
            w(text)
            w()
        for server in servers:
            if only and not only(server):
                continue
            w(f"**{label.get(server, server)}**")
            w()
            w(matrix_table(summary, server, lengths, connections, cell))
            w()

    section("Requests per second (median)", "Round trips per second measured by echo-bench.",
            lambda r: fmt(r["requests_per_second"], 0))
    section("Server CPU per request, µs (median; lowest round)",
            "user + system (user, system), then the lowest round: the server process's CPU time in the "
            "window divided by the requests echo-bench completed in it. On loopback the server's send also "
            "runs the client's receive path in the kernel, so most of it is system time.",
            lambda r: (f"{fmt(r['cpu_us_per_request'])} ({fmt(r['user_us_per_request'])} + "
                       f"{fmt(r['system_us_per_request'])}); {fmt(r.get('cpu_us_per_request_min'))}")
            if r.get("cpu_us_per_request") is not None else "–")
    section("Spread of server CPU per request over rounds, µs",
            "Every round's figure, sorted; a | splits them where they fall into two groups (a gap of 5 % or "
            "more holding at least half of the spread): this machine's slow mode. Compare the paired ratios, "
            "which cancel a mode that both runs of a round share.",
            lambda r: (stats.spread_text(r.get("cpu_rounds") or []) +
                       (" (bimodal)" if (r.get("cpu_spread") or {}).get("bimodal") else "")))
    section("User-space share of server CPU (median)", "Δutime / (Δutime + Δstime).",
            lambda r: percent(r.get("user_share")))
    section("System calls per request (median)",
            "Counted by the server itself (echo --stats-json), divided by the requests it served. "
            "Not available for the peers, which keep no counters.",
            lambda r: fmt(r.get("syscalls_per_request"), 3), only=lambda s: not o.variants[s].is_peer)
    section("Latency p99, µs (median)", "From echo-bench; p50 and p99.9 are in summary.csv and the table at the end.",
            lambda r: fmt(r.get("latency_p99_us"), 0))
    others = [s for s in servers if s != REFERENCE]
    if REFERENCE in servers and others:
        section(f"Paired CPU ratio against {REFERENCE} (95 % interval)",
                f"Each run's CPU µs/request divided by the {REFERENCE} run's in the same cell and round; the "
                f"geometric mean over rounds with its 95 % interval and verdict (lower is better; same: the "
                f"interval contains 1); then the requests/s ratio (higher is better).",
                lambda r: ratio_cell(r), only=lambda s: s != REFERENCE)
    section("Load generator CPU share of one core (median; ⚠ when a round exceeded 0.9)",
            "A saturated generator caps requests/s for every server alike: compare CPU per request there.",
            lambda r: fmt(r.get("generator_cpu_share"), 2) + (" ⚠" if r.get("generator_saturated") else ""))
    section("Server vs bench requests (median ratio)",
            "The server's own request count in its window over echo-bench's round trips in the same time. "
            "1.00 means every round trip was one read and one echo; above 1, messages arrived in pieces.",
            lambda r: fmt(r.get("agreement"), 3), only=lambda s: not o.variants[s].is_peer)

    w("## Syscalls by kind, per request (median)")
    w()
    kinds = [f[len(SYSCALL_PREFIX):] for f in syscall_fields(summary.values())
             if any((row.get(f) or 0) > 0 for row in summary.values())]
    w("| length | clients | server | " + " | ".join(kinds) + " | total |")
    w("|--:|--:|:--|" + "--:|" * (len(kinds) + 1))
    for length in lengths:
        for c in connections:
            for server in servers:
                row = summary.get((length, c, server))
                if not row or row.get("syscalls_per_request") is None:
                    continue
                w(f"| {length} | {c} | {server} | " + " | ".join(fmt(row.get(f"syscalls_{k}"), 3) for k in kinds)
                  + f" | {fmt(row.get('syscalls_per_request'), 3)} |")
    w()
    notes = []
    saturated = [k for k, row in summary.items() if row.get("generator_saturated")]
    if saturated:
        notes.append(f"echo-bench used more than {SATURATED:.0%} of its core in {len(saturated)} cell(s) "
                     f"({', '.join(f'{k[2]} {k[0]} B × {k[1]}' for k in sorted(saturated)[:8])}"
                     f"{', …' if len(saturated) > 8 else ''}): requests/s there may be the generator's limit; "
                     f"compare CPU per request.")
    disagree = [k for k, row in summary.items()
                if row.get("agreement") is not None and k[1] >= 50 and not 0.9 <= row["agreement"] <= 1.1]
    if disagree:
        notes.append("server and bench request counts differ by more than 10% at "
                     + ", ".join(f"{k[2]} {k[0]} B × {k[1]} ({summary[k]['agreement']:.3f})" for k in sorted(disagree)))
    bullet_section(w, "Warnings", notes)
    w("## All medians")
    w()
    w("| length | clients | server | req/s | CPU µs/req | user µs | sys µs | user share | syscalls/req | ctx sw/req "
      "| p50 µs | p99 µs | p99.9 µs | gen. CPU | agreement | runs |")
    w("|--:|--:|:--|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|")
    for length in lengths:
        for c in connections:
            for server in servers:
                row = summary.get((length, c, server))
                if not row:
                    continue
                runs = f"{row['runs'] - row['failed']}/{row['runs']}"
                w(f"| {length} | {c} | {server} | {fmt(row['requests_per_second'], 0)} | "
                  f"{fmt(row['cpu_us_per_request'])} | {fmt(row['user_us_per_request'])} | "
                  f"{fmt(row['system_us_per_request'])} | {percent(row.get('user_share'))} | "
                  f"{fmt(row['syscalls_per_request'], 3)} | "
                  f"{fmt(row['context_switches_per_request'], 3)} | {fmt(row['latency_p50_us'], 1)} | "
                  f"{fmt(row['latency_p99_us'], 1)} | {fmt(row['latency_p999_us'], 1)} | "
                  f"{fmt(row['generator_cpu_share'])}{' ⚠' if row['generator_saturated'] else ''} | "
                  f"{fmt(row['agreement'], 3)} | {runs} |")
    w()
    outside = sum(1 for r in records if "metrics" in r and r["metrics"].get("window_inside") is False)
    if outside:
        w(f"Note: in {outside} run(s) a server sample fell outside echo-bench's measured window "
          f"(see window_offsets_ms in runs.jsonl); rates were compared all the same.")
        w()
    errors = sum(row["bench_errors"] for row in summary.values())
    if errors:
        w(f"Note: echo-bench reported {errors} error(s) (mismatch, reset, eof, connect, stalled); see runs.jsonl.")
        w()
    plots = [p for p in ("throughput.png", "cpu_per_request.png", "ratio_vs_epoll.png", "latency_p99.png")
             if os.path.exists(os.path.join(os.path.dirname(path), p))]
    if plots:
        w("## Plots")
        w()
        for p in plots:
            w(f"![{p}]({p})")
            w()
    with open(path, "w") as f:
        f.write(out.getvalue())

