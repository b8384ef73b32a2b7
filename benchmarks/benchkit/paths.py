"""Where things are: the repository, the kit, its venv, the peer servers and the default binaries."""

import os

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BENCH_DIR = os.path.join(ROOT, "benchmarks")
VENV = os.path.join(BENCH_DIR, ".venv")
VENV_PYTHON = os.path.join(VENV, "bin", "python")
PLOT_SCRIPT = os.path.join(BENCH_DIR, "plot")
RESULTS_DIR = os.path.join(BENCH_DIR, "results")

PEERS_DIR = os.path.join(BENCH_DIR, "peers")  # one folder per peer server (benchkit/peers.py)

ECHO_RELEASE = os.path.join(ROOT, ".build", "release", "echo")
ECHO_DEBUG = os.path.join(ROOT, ".build", "debug", "echo")
BENCH_RELEASE = os.path.join(ROOT, ".build", "release", "echo-bench")


def default_echo():
    """The release echo when built, else the debug one; None when neither is executable."""
    for path in (ECHO_RELEASE, ECHO_DEBUG):
        if os.access(path, os.X_OK):
            return path
    return None
