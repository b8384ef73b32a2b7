"""benchmarks/run --kernel PATH: the same run inside a VM booted on that kernel (benchkit/vm.py, as
benchmarks/on-kernel does). The host builds what the run needs (the guest sees this filesystem
read-only), picks the result folder and lends it to the guest, where benchmarks/run runs again with
the same arguments less --kernel, plus --no-build and --out FOLDER. In the guest ON_KERNEL says under
what it ran, and every report names it: "under KVM" or "under TCG: emulated, no speed meaning"."""

import datetime
import os
import socket
import sys

from benchkit import noise, vm
from benchkit.build import build
from benchkit.paths import BENCH_DIR, RESULTS_DIR
from benchkit.rounds import AUTO
from benchkit.text import duration_text, say

RUN_SCRIPT = os.path.join(BENCH_DIR, "run")
DROPPED = ("--kernel", "--out")   # options that take a value and are the host's to settle


def guest_argv(argv, out):
    """benchmarks/run's arguments for the guest: `argv` without --kernel and --out (also as
    --kernel=PATH, or abbreviated as argparse allows), then --no-build --out OUT."""
    kept, skip_value = [], False
    for arg in argv:
        if skip_value:
            skip_value = False
            continue
        name, has_value, _ = arg.partition("=")
        if len(name) > 2 and name.startswith("--") and any(option.startswith(name) for option in DROPPED):
            skip_value = not has_value
            continue
        kept.append(arg)
    return kept + ["--no-build", "--out", out]


def result_folder(o, kernel):
    """--out, or benchmarks/results/<date>-<host>-<kernel release> (-2, -3... when it has a run)."""
    if o.out:
        folder = os.path.abspath(o.out)
    else:
        base = os.path.join(RESULTS_DIR, f"{datetime.date.today().isoformat()}-{socket.gethostname()}-"
                                         f"{vm.release(kernel)}")
        folder, n = base, 1
        while os.path.exists(os.path.join(folder, "runs.jsonl")):
            n += 1
            folder = f"{base}-{n}"
    os.makedirs(folder, exist_ok=True)
    return folder


def timeout_for(o, estimate_s):
    """The whole VM's time limit: the run's own estimate (or its --rounds auto budget) four times
    over, since setting up servers and connections is slower emulated, plus ten minutes for the boot
    and the preflight."""
    budget = o.budget * 60 if o.rounds == AUTO else 0
    return 600 + 4 * max(estimate_s, budget)


def run(o, argv, estimate_s):
    """Builds here, then runs benchmarks/run in the VM; returns its exit status."""
    kernel = os.path.abspath(o.kernel)
    missing = vm.problems(kernel)
    if missing:
        sys.exit(f"benchmarks/run: error: --kernel: missing {'; '.join(missing)}: run `make vm-deps`")
    build(o)
    if not o.no_calibration and vm.kvm_asked_by_environment():
        noise.build_probe(say)  # under KVM the guest calibrates; it cannot compile into the read-only tree
    out = result_folder(o, kernel)
    timeout = timeout_for(o, estimate_s)
    say(f"kernel: the run goes on in a VM booted on {kernel}; results: {out}; time limit "
        f"{duration_text(timeout)} (boot included)")
    try:
        status = vm.run([sys.executable, RUN_SCRIPT] + guest_argv(argv, out), kernel, rwdirs=[out],
                        timeout=timeout, say=say)
    except vm.VMError as e:
        sys.exit(f"benchmarks/run: error: --kernel: {e}")
    say(f"kernel: the VM's run ended with status {status}; results: {out}")
    return status
