"""benchmarks/run: the plan, the result folder, the main loop, Ctrl-C and SIGTERM."""

import datetime
import json
import os
import signal
import subprocess
import sys
import tempfile
import time

from benchkit import plots
from benchkit.ablation import ablation_data, ablation_report
from benchkit.build import build, environment
from benchkit.measure import one_run, preflight
from benchkit.options import cpu_set, parse_options
from benchkit.paths import PLOT_SCRIPT, RESULTS_DIR, VENV_PYTHON
from benchkit.processes import run_bounded
from benchkit.report import report
from benchkit.summary import summarize, write_csv, write_json
from benchkit.targets import say_targets, target_results
from benchkit.text import duration_text, fmt, say
from benchkit.variants import peer_text


def shown_path(path):
    relative = os.path.relpath(path, os.getcwd())
    return path if relative.startswith("..") else relative


def result_directory(o, env):
    if o.out:
        os.makedirs(o.out, exist_ok=True)
        return os.path.abspath(o.out)
    base = os.path.join(RESULTS_DIR, f"{datetime.date.today().isoformat()}-{env['hostname']}")
    directory, n = base, 1
    while os.path.exists(os.path.join(directory, "runs.jsonl")):
        n += 1
        directory = f"{base}-{n}"
    os.makedirs(directory, exist_ok=True)
    return directory


def plan(o):
    """Every run in order: rounds outermost; within a cell the servers alternate, flipped each round."""
    runs = []
    for round_index in range(1, o.rounds + 1):
        order = o.servers if round_index % 2 == 1 else list(reversed(o.servers))
        for length in o.lengths:
            for connections in o.connections:
                for server in order:
                    if o.variants[server].serves_one_client and connections != 1:
                        continue
                    runs.append((round_index, length, connections, server))
    return runs


def main():
    o = parse_options(sys.argv[1:])
    if o.plot:  # the old internal hook, now benchmarks/plot DIR
        sys.exit(plots.main([o.plot]))
    if not os.path.exists("/proc/self/stat"):
        sys.exit("benchmarks/run: error: needs Linux (/proc)")
    if (os.cpu_count() or 1) < 2:
        sys.exit("benchmarks/run: error: needs 2 CPUs (server on CPU 0, load on CPU 1)")
    for tool in ("taskset", "swift"):
        if not any(os.access(os.path.join(d, tool), os.X_OK) for d in os.environ.get("PATH", "").split(os.pathsep)):
            if tool == "swift" and o.no_build:
                continue
            sys.exit(f"benchmarks/run: error: {tool} not found")

    runs = plan(o)
    per_run = o.warmup + o.duration + 1.2  # start, connect, stop: measured on this machine
    cells = len(o.lengths) * len(o.connections)
    one_client = [s for s in o.servers if o.variants[s].serves_one_client]
    naive = f" ({', '.join(one_client)} at 1 connection only)" if one_client else ""
    say(f"benchmarks/run{' --ablation' if o.ablation else ''}: {len(runs)} runs: {cells} cells × "
        f"{len(o.servers)} servers{naive} × {o.rounds} round(s), "
        f"{fmt(o.warmup, 1)} s warm-up + {fmt(o.duration, 1)} s each; "
        f"estimated {duration_text(len(runs) * per_run)} of measuring after the builds"
        + (f" (less if {o.candidate} turns out to be the same server as another row)" if o.candidate_may_alias else ""))
    width = max(len(s) for s in o.servers)
    for server in o.servers:
        v = o.variants[server]
        say(f"  {server:<{width}}  {v.flags_text if not v.is_peer else peer_text(server)}"
            + ("   (candidate)" if server == o.candidate_row and (o.ablation or o.candidate != 'uring') else ""))
    if o.dry_run:
        for index, (round_index, length, connections, server) in enumerate(runs, 1):
            say(f"  [{index}/{len(runs)}] round {round_index}, {length} B × {connections} conn, {server}")
        return
    started = time.monotonic()
    build(o)
    o.summaries, problems = preflight(o)
    if problems:
        sys.exit("benchmarks/run: error: a server would not start (drop it from --backends or fix its flags):\n  "
                 + "\n  ".join(problems))
    for server in o.servers:
        if server in o.summaries:
            say(f"preflight: {server:<{width}}  {o.summaries[server]}")
    if o.candidate_may_alias:
        mine = o.summaries.get(o.candidate)
        same = [s for s in o.servers if s != o.candidate and mine and o.summaries.get(s) == mine]
        if same:
            o.servers.remove(o.candidate)
            o.backends.remove(o.candidate)
            o.candidate_row = same[0]
            runs = plan(o)
            say(f"candidate: {o.candidate} printed the same summary as {same[0]}, so it is not run again; "
                f"{same[0]}'s rows stand for it: {len(runs)} runs, about {duration_text(len(runs) * per_run)}")
    env = environment(o)
    out = result_directory(o, env)
    say(f"results: {out}")
    say(f"machine: kernel {env['kernel']}, {env['cpu']}, {env['swift']}, liburing {env['liburing']}")

    # The runner itself stays off the server's core.
    try:
        os.sched_setaffinity(0, cpu_set(o.load_cpus))
    except OSError:
        pass
    measuring_started = time.monotonic()
    records = []
    interrupted = False
    with tempfile.TemporaryDirectory(prefix="echo-bench-run-") as workdir, \
            open(os.path.join(out, "runs.jsonl"), "w") as log:
        for index, (round_index, length, connections, server) in enumerate(runs, 1):
            elapsed = time.monotonic() - measuring_started
            left = (elapsed / (index - 1) if index > 1 else per_run) * (len(runs) - index + 1)
            prefix = (f"[{index}/{len(runs)}] round {round_index}/{o.rounds}, {length} B × {connections} conn, "
                      f"{server:<{max(17, width)}}")
            print(prefix, end=" ", flush=True)
            try:
                record = one_run(o, workdir, server, length, connections, round_index)
            except KeyboardInterrupt:
                say("\ninterrupted: writing the report for the runs done so far")
                interrupted = True
                break
            record["environment"] = env
            records.append(record)
            log.write(json.dumps(record) + "\n")
            log.flush()
            if "error" in record:
                result = f"FAILED: {record['error']}"
            else:
                m = record["metrics"]
                result = (f"{fmt(m['requests_per_second'], 0):>9} req/s, "
                          f"{fmt(m.get('cpu_us_per_request'))} µs CPU/req"
                          + (f", {fmt(m.get('syscalls_per_request'), 3)} syscalls/req" if "syscalls_per_request" in m else "")
                          + f", p99 {fmt(m.get('latency_p99_us'), 0)} µs, gen {fmt(m.get('generator_cpu_share'))}"
                          + (" ⚠ saturated" if m.get("generator_saturated") else ""))
            say(f"{result}   [elapsed {duration_text(time.monotonic() - started)}, "
                f"~{duration_text(max(0, left - (time.monotonic() - measuring_started - elapsed)))} left]")

    summary = summarize(records, o.servers)
    write_csv(os.path.join(out, "summary.csv"), summary, o.servers, o.variants)
    write_json(os.path.join(out, "summary.json"), f"{env['hostname']}, {env['date'][:10]}, kernel {env['kernel']}",
               o, summary)
    servers_run = [s for s in o.servers if any(k[2] == s for k in summary)]
    data = None
    if o.ablation:
        data = ablation_data(o, summary, records, servers_run)
        with open(os.path.join(out, "ablation.json"), "w") as f:
            json.dump(dict(data, title=f"{env['hostname']}, {env['date'][:10]}, kernel {env['kernel']}, "
                                       f"{o.rounds} round(s) of {fmt(o.duration, 1)} s"), f, indent=1)
    plots_note = draw_plots(o, out)
    report(os.path.join(out, "report.md"), env, o, summary, records, plots_note, started, time.monotonic(),
           planned=len(runs))
    if data is not None:
        ablation_report(os.path.join(out, "ablation.md"), env, o, summary, records, plots_note, started,
                        time.monotonic(), len(runs), data)
    failed = sum(1 for r in records if "error" in r)
    say(f"done in {duration_text(time.monotonic() - started)}: {len(records) - failed} runs ok, {failed} failed")
    targets = target_results(o, summary, records, servers_run)
    if targets:
        say_targets(o, targets)
    say(f"report: {shown_path(os.path.join(out, 'report.md'))}")
    if data is not None:
        say(f"ablation: {shown_path(os.path.join(out, 'ablation.md'))}")
    if failed or interrupted:
        sys.exit(130 if interrupted else 1)


def interrupt(number, frame):
    raise KeyboardInterrupt


def draw_plots(o, out):
    """The plot step (benchmarks/plot) in benchmarks/.venv, when it has matplotlib; nothing is ever
    installed here. Returns the note for the reports, None when the plots were drawn."""
    if o.no_plots:
        return "skipped (--no-plots)"
    if not plots.venv_has_matplotlib():
        note = f"skipped: run `make bench-deps`, then `benchmarks/plot {shown_path(out)}`"
        say(f"plots: {note}")
        return note
    try:
        r = run_bounded([VENV_PYTHON, PLOT_SCRIPT, out], timeout=600)
    except subprocess.TimeoutExpired:
        r = subprocess.CompletedProcess([], 1, "", "timed out after 600 s")
    if r.returncode != 0:
        note = f"matplotlib failed: {(r.stderr.strip().splitlines() or ['?'])[-1]}"
        say(f"plots: {note}")
        return note
    return None


def run_main():
    # Ctrl-C, and a SIGTERM from whoever started the run, stop it cleanly: the current server
    # is stopped and the report covers the runs done so far.
    signal.signal(signal.SIGINT, interrupt)
    signal.signal(signal.SIGTERM, interrupt)
    try:
        main()
    except KeyboardInterrupt:
        sys.exit("benchmarks/run: interrupted")
    except BrokenPipeError:
        # Output piped into something that stopped reading (| head): leave quietly.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(1)
