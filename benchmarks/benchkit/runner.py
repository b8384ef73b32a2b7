"""benchmarks/run: the plan, the result folder, the main loop, Ctrl-C and SIGTERM."""

import datetime
import json
import os
import signal
import subprocess
import sys
import tempfile
import time

from benchkit import capacity, environment as where_it_ran, findings, kernel_run, netpath, noise, plots, skips, \
    variants, verdict, vm, workload_report, workloads
from benchkit.ablation import ablation_data, ablation_report
from benchkit.build import build, environment
from benchkit.measure import one_run, preflight
from benchkit.options import cpu_set, parse_options
from benchkit.paths import PLOT_SCRIPT, RESULTS_DIR, VENV_PYTHON
from benchkit.processes import run_bounded
from benchkit.report import report
from benchkit.findings import needed
from benchkit.rounds import AUTO, MIN_AUTO_ROUNDS, TARGET, RoundPlan, progress
from benchkit.summary import ratios, summarize, write_csv, write_json
from benchkit.text import duration_text, fmt, say
from benchkit.variants import REFERENCE, peer_text


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


def round_runs(o, round_index):
    """One round's runs in order, (point, length, connections, server): each workload point in its
    cells; within a cell the servers alternate, flipped every other round."""
    order = o.servers if round_index % 2 == 1 else list(reversed(o.servers))
    return [(point, length, connections, server) for point in o.points for length, connections in point.cells
            for server in order if not (o.variants[server].serves_one_client and connections != 1)
            and point.workload.runs_on(o.variants[server])
            and (not o.verdict or variants.runs_in_verdict(point.workload.name, server))]


def plan(o, count=None):
    """Every run of the first `count` rounds (default: the rounds known in advance)."""
    count = count or RoundPlan(o.rounds).planned
    return [(k, *run) for k in range(1, count + 1) for run in round_runs(o, k)]


def run_label(o, point, length, connections):
    """A run's cell on the console: "128 B × 50 conn", with its workload point when there are others."""
    if o.classic:
        return f"{length} B × {connections} conn"
    return f"{point.key}, {point.workload.size_text(o, length, connections)}"


def intervals(o, records):
    """The named intervals --rounds auto narrows and the progress line shows."""
    if o.classic:
        return needed(o, records, o.servers)
    return workload_report.needed(o, records, o.servers)


def setup_noise(o):
    """The calibration probe and its gate, or None (said why) when calibration is off or can't run.
    A few probes up front give the gate its first 'best', so the first runs are judged too."""
    o.noise = {"enabled": False}
    if o.no_calibration:
        o.noise["reason"] = "--no-calibration"
        return None
    if vm.guest_accelerator() == "tcg":  # emulated: every probe reads noisy, and speed means nothing
        o.noise["reason"] = "emulated (TCG): no speed meaning"
        say("noise: off: emulated (TCG), where speed means nothing")
        return None
    binary = noise.build_probe(say)
    if binary is None:
        o.noise["reason"] = "the probe could not be built (no C compiler?)"
        return None
    calibration = noise.Calibration(binary, o.server_cpus)
    gate = noise.NoiseGate(o.noise_threshold / 100)
    try:
        readings = [calibration.measure() for _ in range(5)]
    except (OSError, subprocess.SubprocessError, ValueError, KeyError) as e:
        o.noise["reason"] = f"the probe failed: {e}"
        say(f"noise: the calibration probe failed ({e}); no run is flagged")
        return None
    for reading in readings:
        gate.observe(reading)
    o.noise = {"enabled": True, "signal": calibration.signal, "threshold": gate.threshold,
               "about": noise.ABOUT.get(calibration.signal, ""), "reruns": o.reruns,
               "best_ns_per_op": gate.best, "start_ns_per_op": [round(r["ns_per_op"], 1) for r in readings]}
    say(f"noise: {calibration.signal} probe on CPUs {o.server_cpus}: best {gate.best:.0f} ns/op; a run is "
        f"flagged when a probe reads over {100 * gate.threshold:g} % slower than the best, and re-run "
        f"(up to {o.reruns} times)")
    return calibration, gate


class Hog:
    """--inject-hog: a CPU spinner pinned to the server's CPUs, the interference the probe must flag."""

    def __init__(self, cpus):
        self.process = subprocess.Popen(["taskset", "-c", cpus, sys.executable, "-c", "while True: pass"],
                                        stdin=subprocess.DEVNULL)
        time.sleep(0.1)  # scheduled before the probe runs

    def stop(self):
        self.process.kill()
        self.process.wait()


def measured_run(o, workdir, probe, point, length, connections, server, round_index, attempt, hog):
    """One run between two calibration probes; the record says whether the probes flagged it."""
    spinner = Hog(o.server_cpus) if hog else None
    try:
        before = probe[0].measure() if probe else None
        record = one_run(o, workdir, server, length, connections, round_index, point)
        after = probe[0].measure() if probe else None
    finally:
        if spinner:
            spinner.stop()
    record["attempt"] = attempt
    if hog:
        record["injected_hog"] = True
    if probe:
        gate = probe[1]
        noisy = gate.is_noisy(before, after)
        record["calibration"] = {"before": before, "after": after, "noisy": noisy,
                                 "slowdown": round(gate.slowdown(max(before["ns_per_op"], after["ns_per_op"])), 4),
                                 "best_ns_per_op": gate.best}
    return record


def result_text(record):
    if "error" in record:
        return f"FAILED: {record['error']}"
    m = record["metrics"]
    unit = m.get("unit", "request")
    if unit == "request":
        text = f"{fmt(m['requests_per_second'], 0):>9} req/s, {fmt(m.get('cpu_us_per_request'))} µs CPU/req"
    else:
        text = f"{fmt(m.get('units_per_second'), 1):>9} {unit}/s, {fmt(m.get(workloads.FIELD))} µs CPU/{unit}"
    if m.get("sustained") is False:
        text += f" ⚠ NOT sustained ({fmt(m.get('achieved_rate'), 0)} of {fmt(m.get('offered_rate'), 0)}/s)"
    text = (text
            + (f", {fmt(m.get('syscalls_per_request'), 3)} syscalls/req" if "syscalls_per_request" in m else "")
            + f", p99 {fmt(m.get('latency_p99_us'), 0)} µs, gen {fmt(m.get('generator_cpu_share'))}"
            + (" ⚠ saturated" if m.get("generator_saturated") else ""))
    calibration = record.get("calibration")
    if calibration:
        text += f", probe +{100 * calibration['slowdown']:.1f} %"
        if calibration["noisy"]:
            text += " ⚠ NOISY: " + ("re-run" if record.get("excluded") else "kept (last attempt)")
    return text


def measure_all(o, out, env, started, per_run):
    """The rounds: every run, its probes and re-runs, a progress line after each round. Returns the
    records (re-run ones included, marked `excluded`) and whether the user interrupted."""
    o.rounds_reason = None
    probe = setup_noise(o)
    round_plan = RoundPlan(o.rounds, o.budget * 60)
    width = max(17, max(len(s) for s in o.servers))
    measuring_started = time.monotonic()
    records, done, last_round_s, index = [], 0, 0.0, 0
    run_env = {k: v for k, v in env.items() if k != "where_it_ran"}  # that record once, in the summaries
    total = len(plan(o))
    with tempfile.TemporaryDirectory(prefix="echo-bench-run-") as workdir, \
            open(os.path.join(out, "runs.jsonl"), "w") as log:
        try:
            capacity.measure(o, workdir, log)
        except KeyboardInterrupt:
            say("\ninterrupted while measuring the rate workload's capacity")
            return records, True
        while round_plan.another(done, time.monotonic() - measuring_started, last_round_s,
                                 [ci for _, _, ci in intervals(o, records)]):
            round_index, round_started = done + 1, time.monotonic()
            shown_rounds = str(o.rounds) if o.rounds != AUTO else "auto"
            for point, length, connections, server in round_runs(o, round_index):
                index += 1
                for attempt in range(1, o.reruns + 2):
                    print(f"[{index}/{max(total, index)}] round {round_index}/{shown_rounds}, "
                          f"{run_label(o, point, length, connections)}, {server:<{width}}"
                          + (f" (re-run {attempt - 1})" if attempt > 1 else ""), end=" ", flush=True)
                    try:
                        record = measured_run(o, workdir, probe, point, length, connections, server, round_index,
                                              attempt, hog=(o.inject_hog == index and attempt == 1))
                    except KeyboardInterrupt:
                        say("\ninterrupted: writing the report for the runs done so far")
                        return records, True
                    noisy = record.get("calibration", {}).get("noisy") and "error" not in record
                    if noisy and attempt <= o.reruns:
                        record["excluded"] = "noisy calibration; re-run"
                    elif noisy:
                        record["noisy_kept"] = True
                    record["environment"] = run_env
                    records.append(record)
                    log.write(json.dumps(record) + "\n")
                    log.flush()
                    elapsed = time.monotonic() - measuring_started
                    left = elapsed / index * max(0, total - index) if total > index else 0
                    say(f"{result_text(record)}   [elapsed {duration_text(time.monotonic() - started)}"
                        + (f", ~{duration_text(left)} left" if o.rounds != AUTO else "") + "]")
                    if not record.get("excluded"):
                        break
            done, last_round_s = round_index, time.monotonic() - round_started
            if o.rounds == AUTO:
                total = max(total, index + len(round_runs(o, done + 1)))  # one more round, as far as is known
            if done >= 2:
                budget_left = o.budget * 60 - (time.monotonic() - measuring_started) if o.rounds == AUTO else None
                say(progress(done, intervals(o, records), time.monotonic() - measuring_started, budget_left))
    o.rounds_reason = round_plan.reason
    if round_plan.reason:
        say(f"rounds: stopped: {round_plan.reason}")
    return records, False


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
    per_run = o.warmup + o.duration + 1.5  # start, connect, stop, two probes: measured on this machine
    announce(o, runs, per_run)
    if o.dry_run:
        for index, (round_index, point, length, connections, server) in enumerate(runs, 1):
            say(f"  [{index}/{len(runs)}] round {round_index}, {run_label(o, point, length, connections)}, {server}")
        return
    if o.kernel:
        sys.exit(kernel_run.run(o, sys.argv[1:], len(runs) * per_run))
    started = time.monotonic()
    planned = len(o.servers)
    build(o)
    skip_what_the_kernel_cannot_run(o)
    if len(o.servers) < planned:
        runs = plan(o)
        say(f"plan: {len(runs)} runs without the skipped row(s), about {duration_text(len(runs) * per_run)}")
    o.net = netpath.open_path(o)
    try:
        with o.net:
            measure_and_report(o, runs, per_run, started)
    except netpath.NetPathError as e:
        sys.exit(f"benchmarks/run: error: {e}")


def features_echo(o):
    """The echo whose `--features` describes the run: the one under test, else a --binary one."""
    for path in [o.echo_binary] + list(o.binaries.values()):
        if os.access(path, os.X_OK):
            return path
    return o.echo_binary


def skip_what_the_kernel_cannot_run(o):
    """Where it runs (once per run), then every row checked against this kernel: one line per row
    skipped, and the run goes on with the rest; exits when nothing is left."""
    o.where = where_it_ran.gather(features_echo(o))
    say(where_it_ran.console_line(o.where))
    problem = skips.drop(o, skips.find(o, o.where), say)
    if problem:
        sys.exit(f"benchmarks/run: error: {problem}")
    if o.verdict:
        for item in verdict.skipped_columns(o):
            say(f"skipped {item['name']}: {item['reason']}")


def announce(o, runs, per_run):
    """What the run will do, how long it may take, and its servers."""
    cells = len(o.lengths) * len(o.connections)
    one_client = [s for s in o.servers if o.variants[s].serves_one_client]
    naive = f" ({', '.join(one_client)} at 1 connection only)" if one_client else ""
    shape = (f"{cells} cells" if o.classic else
             f"{len(o.points)} workload points ({', '.join(o.workloads)}) in their cells")
    if o.rounds == AUTO:
        rounds_said = (f"--rounds auto: at least {len(runs)} runs ({shape} × {len(o.servers)} servers{naive} × "
                       f"{MIN_AUTO_ROUNDS} rounds), then rounds until the findings' intervals are within "
                       f"±{100 * TARGET:g} % or the {o.budget:g}-minute budget runs out; ")
        least = len(runs) * per_run
        estimate = (f"{duration_text(least)} to {duration_text(o.budget * 60)}" if least < o.budget * 60 else
                    f"{duration_text(least)} ({MIN_AUTO_ROUNDS} rounds, the fewest --rounds auto runs, exceed the "
                    f"{o.budget:g}-minute budget)")
    else:
        rounds_said = (f"{len(runs)} runs: {shape} × {len(o.servers)} servers{naive} × {o.rounds} round(s), ")
        estimate = duration_text(len(runs) * per_run)
    mode = " --verdict" if o.verdict else " --ablation" if o.ablation else ""
    say(f"benchmarks/run{mode}: {rounds_said}"
        f"{fmt(o.warmup, 1)} s warm-up + {fmt(o.duration, 1)} s each; "
        f"estimated {estimate} of measuring after the builds"
        + (f" (less if {o.candidate} turns out to be the same server as another row)" if o.candidate_may_alias else ""))
    if capacity.cells(o):
        say(f"rate: first one closed-loop run of {REFERENCE} per rate cell ({len(capacity.cells(o))}), "
            f"whose requests/s the levels {', '.join(f'{round(100 * v)} %' for v in o.rate_levels)} are shares of")
    if o.path != "loopback":
        say(f"path: {o.path}" + (f", netem delay {o.netem_delay:g} ms each direction" if o.netem_delay else ""))
    width = max(len(s) for s in o.servers)
    for server in o.servers:
        v = o.variants[server]
        say(f"  {server:<{width}}  {v.flags_text if not v.is_peer else peer_text(server, o.server_threads)}"
            + ("   (candidate)" if server == o.candidate_row and (o.ablation or o.candidate != 'uring') else ""))


def measure_and_report(o, runs, per_run, started):
    """The preflight, the rounds and every output, on the network path already set up."""
    width = max(len(s) for s in o.servers)
    o.summaries, problems = preflight(o)
    if problems:
        sys.exit("benchmarks/run: error: a server failed its preflight (drop it from --backends or --peers, or fix "
                 "it):\n  " + "\n  ".join(problems))
    for server in o.servers:
        said = o.summaries.get(server) or o.conformance.get(server)
        if said:
            say(f"preflight: {server:<{width}}  {said}")
    if o.candidate_may_alias:
        mine = o.summaries.get(o.candidate)
        same = [s for s in o.servers if s != o.candidate and mine and o.summaries.get(s) == mine]
        if same:
            o.servers.remove(o.candidate)
            o.backends.remove(o.candidate)
            o.candidate_row = same[0]
            runs = plan(o)
            say(f"candidate: {o.candidate} printed the same summary as {same[0]}, so it is not run again; "
                f"{same[0]}'s rows stand for it: {len(runs)} runs a round set, about "
                f"{duration_text(len(runs) * per_run)}")
    env = environment(o)
    env["path"] = o.net.describe()
    out = result_directory(o, env)
    say(f"results: {out}")
    say(f"machine: kernel {vm.kernel_text(env)}, {env['cpu']}, {env['swift']}, liburing {env['liburing']}")
    if o.path != "loopback":
        say(f"path: {env['path']}")

    # The runner itself stays off the server's core.
    try:
        os.sched_setaffinity(0, cpu_set(o.load_cpus))
    except OSError:
        pass
    records, o.interrupted = measure_all(o, out, env, started, per_run)
    done_rounds = max((r["round"] for r in records), default=0)
    env["rounds_run"] = done_rounds
    written, closing = write_results(o, out, env, records, started, len(runs))

    failed = sum(1 for r in records if "error" in r)
    rerun = sum(1 for r in records if r.get("excluded"))
    say(f"done in {duration_text(time.monotonic() - started)}: {done_rounds} round(s), "
        f"{len(records) - failed - rerun} runs ok, {failed} failed, {rerun} flagged noisy and re-run"
        + (f"; {len(env['skipped'])} skipped (this kernel cannot run them)" if env["skipped"] else ""))
    for name, peer in env["peers"].items():
        if "skipped" in peer:
            say(f"peers: {name} not run: {peer['skipped']}")
    for line in closing:
        say(line)
    for path in written:
        say(f"{os.path.splitext(os.path.basename(path))[0]}: {shown_path(path)}")
    if failed or o.interrupted:
        sys.exit(130 if o.interrupted else 1)


def write_results(o, out, env, records, started, planned):
    """summary.*, report.md (ping-pong), ablation.*, workloads.*, verdict.*. Returns the reports
    written and the findings' lines for the console."""
    done_rounds = env["rounds_run"]
    written, closing = [], []
    pingpong = [r for r in records if workloads.of_record(r).name == workloads.DEFAULT]
    if workloads.DEFAULT in o.workloads:
        summary = summarize(pingpong, o.servers)
        write_csv(os.path.join(out, "summary.csv"), summary, o.servers, o.variants)
        servers_run = [s for s in o.servers if any(k[2] == s for k in summary)]
        found = findings.findings(o, summary, pingpong, servers_run)
        parents = {s: o.variants[s].parent for s in servers_run} if o.ablation else None
        write_json(os.path.join(out, "summary.json"), title(env), o, summary, extra={
            "method": {"interval": "95 % confidence interval, Student's t on the log of the per-round "
                                   "paired ratios", "verdict": "lower / higher: the interval excludes 1; "
                                                               "same: it contains 1"},
            "rounds": done_rounds, "rounds_asked": o.rounds, "rounds_reason": o.rounds_reason,
            "ratios": ratios(o, pingpong, servers_run, parents),
            "findings": [f.as_dict() for f in found],
            "peers": env["peers"],
            "noise": o.noise,
            "where_it_ran": env.get("where_it_ran"), "skipped": env.get("skipped", [])})
        if o.classic:
            findings.say_all(o, found, closing.append)
    if not o.classic:
        data = workload_report.results(o, records, o.servers)
        workload_report.write_json(os.path.join(out, "workloads.json"), title(env), o,
                                   dict(data, where_it_ran=env.get("where_it_ran"), skipped=env.get("skipped", [])))
    ablation = None
    if o.ablation:
        ablation = ablation_data(o, summary, pingpong, servers_run)
        with open(os.path.join(out, "ablation.json"), "w") as f:
            json.dump(dict(ablation, title=f"{title(env)}, {done_rounds} round(s) of {fmt(o.duration, 1)} s",
                           where_it_ran=env.get("where_it_ran"), skipped=env.get("skipped", [])), f, indent=1)
    plots_note = draw_plots(o, out)
    finished = time.monotonic()
    if workloads.DEFAULT in o.workloads:
        written.append(os.path.join(out, "report.md"))
        report(written[-1], env, o, summary, pingpong, plots_note, started, finished, planned=planned)
    if ablation is not None:
        written.append(os.path.join(out, "ablation.md"))
        ablation_report(written[-1], env, o, summary, pingpong, plots_note, started, finished, planned, ablation)
    if not o.classic:
        written.append(os.path.join(out, "workloads.md"))
        workload_report.write(written[-1], env, o, records, data, plots_note, started, finished, planned)
        workload_report.say_all(o, data, closing.append)
    if o.verdict:
        rows = verdict.rows(o, data)
        verdict.write_json(os.path.join(out, "verdict.json"), title(env), env, o, rows)
        written.append(os.path.join(out, "verdict.md"))
        verdict.write(written[-1], env, o, records, rows, started, finished)
    return written, closing


def title(env):
    return f"{env['hostname']}, {env['date'][:10]}, kernel {vm.kernel_text(env)}"


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
