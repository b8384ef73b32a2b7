"""The PNG plots of a result folder, from summary.json (and ablation.json): benchmarks/plot DIR.

matplotlib is the kit's one dependency outside the standard library, and only this step needs it:
`make bench-deps` installs it into benchmarks/.venv (pinned in benchmarks/requirements.txt), and
benchmarks/plot runs itself again with that venv's python when the current one lacks it.
"""

import argparse
import json
import os
import subprocess
import sys

from benchkit.paths import PLOT_SCRIPT, VENV_PYTHON

NOT_INSTALLED = "benchmarks/plot: matplotlib is not installed: run `make bench-deps` (creates benchmarks/.venv)"
PNGS = ("throughput.png", "cpu_per_request.png", "latency_p99.png", "ablation.png")


def venv_has_matplotlib():
    """Whether benchmarks/.venv's python can import matplotlib (the runner plots only then)."""
    if not os.path.exists(VENV_PYTHON):
        return False
    try:
        return subprocess.run([VENV_PYTHON, "-c", "import matplotlib"], capture_output=True,
                              stdin=subprocess.DEVNULL, timeout=120).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def in_venv():
    return os.path.realpath(sys.prefix) == os.path.realpath(os.path.dirname(os.path.dirname(VENV_PYTHON)))


def main(argv):
    p = argparse.ArgumentParser(
        prog="benchmarks/plot",
        description="Draw the PNG plots of a benchmarks/run result folder from its summary.json "
                    "(and ablation.json when present). Needs matplotlib: make bench-deps.")
    p.add_argument("directory", metavar="DIR", help="a result folder written by benchmarks/run")
    o = p.parse_args(argv)
    if not os.path.exists(os.path.join(o.directory, "summary.json")):
        p.error(f"{o.directory}: no summary.json there (a folder benchmarks/run wrote)")
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        if os.access(VENV_PYTHON, os.X_OK) and not in_venv():
            sys.stdout.flush()
            os.execv(VENV_PYTHON, [VENV_PYTHON, PLOT_SCRIPT] + list(argv))
        print(NOT_INSTALLED, file=sys.stderr)
        return 1
    plot(o.directory)
    written = [name for name in PNGS if os.path.exists(os.path.join(o.directory, name))]
    print(f"plots: {', '.join(written)} in {o.directory}")
    return 0


def plot_ablation(directory, plt):
    """ablation.png: left, each row's paired CPU ratio against epoll per cell (or its CPU µs/request
    when epoll was not run); right, the geometric mean over the cells against the 0.95 target."""
    with open(os.path.join(directory, "ablation.json")) as f:
        data = json.load(f)
    cells, rows, reference = data["cells"], data["rows"], data["reference"]
    have_reference = any(r["server"] == reference for r in rows)
    names = [f"{l} B × {c}" for l, c in cells]
    fig, (left, right) = plt.subplots(1, 2, figsize=(13, 5.6), gridspec_kw={"width_ratios": [1.6, 1]})
    markers = "osD^v<>pXh*"
    shown = [r for r in rows if r["server"] != reference] if have_reference else rows
    spread = 0.5 / max(1, len(shown))
    for i, row in enumerate(shown):
        values = row["ratio"] if have_reference else row["cpu"]
        points = [(j + (i - (len(shown) - 1) / 2) * spread, v) for j, v in enumerate(values) if v is not None]
        if points:
            xs, ys = zip(*points)
            left.plot(xs, ys, marker=markers[i % len(markers)], linestyle="none", markersize=7,
                      label=row["server"])
    if have_reference:
        left.axhline(1.0, color="black", linewidth=1, label=f"{reference} = 1")
        left.axhline(0.95, color="tab:red", linestyle="--", linewidth=1, label="target 0.95")
        left.set_ylabel(f"server CPU µs/request ÷ {reference} (paired)")
        left.set_title("per cell (lower is better)", fontsize="medium")
    else:
        left.set_ylabel("server CPU µs/request (median)")
        left.set_title(f"per cell ({reference} not in this run)", fontsize="medium")
    left.set_xticks(range(len(cells)))
    left.set_xticklabels(names, fontsize="small")
    left.set_xlim(-0.6, len(cells) - 0.4)
    left.grid(True, axis="y", alpha=0.3)
    left.legend(fontsize="x-small", ncol=3, loc="upper center", bbox_to_anchor=(0.5, -0.1), frameon=False)
    shown = [r for r in rows if r["server"] != reference and r["ratio_geomean"] is not None]
    if shown:
        ys = list(range(len(shown)))[::-1]
        right.barh(ys, [r["ratio_geomean"] for r in shown],
                   color=["tab:green" if r["ratio_geomean"] <= 0.95 else "tab:gray" for r in shown])
        right.set_yticks(ys)
        right.set_yticklabels([r["server"] for r in shown], fontsize="small")
        right.axvline(1.0, color="black", linewidth=1, label=f"{reference} = 1")
        right.axvline(0.95, color="tab:red", linestyle="--", linewidth=1, label="target 0.95")
        low = min(0.85, min(r["ratio_geomean"] for r in shown) - 0.05)
        high = max(1.05, max(r["ratio_geomean"] for r in shown) + 0.05)
        right.set_xlim(low, high)
        for y, r in zip(ys, shown):
            right.text(r["ratio_geomean"], y, f" {r['ratio_geomean']:.3f}", va="center", fontsize="x-small")
        right.legend(fontsize="x-small", ncol=2, loc="upper center", bbox_to_anchor=(0.5, -0.16), frameon=False)
    right.set_xlabel(f"CPU µs/request ÷ {reference}, geometric mean over cells")
    right.set_title("overall (green: ≤ 0.95)", fontsize="medium")
    right.grid(True, axis="x", alpha=0.3)
    fig.suptitle(f"io_uring feature ablation ({data['title']})", fontsize="medium")
    fig.tight_layout()
    fig.savefig(os.path.join(directory, "ablation.png"), dpi=110)
    plt.close(fig)


def plot(directory):
    """Runs inside benchmarks/.venv: draws the PNGs from summary.json."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter, NullLocator

    with open(os.path.join(directory, "summary.json")) as f:
        data = json.load(f)
    rows, servers, lengths = data["rows"], data["servers"], data["lengths"]
    connections = data["connections"]
    figures = [("throughput.png", "requests_per_second", "requests/s", False),
               ("cpu_per_request.png", "cpu_us_per_request", "server CPU µs / request", False),
               ("latency_p99.png", "latency_p99_us", "p99 latency, µs", True)]
    for filename, field, ylabel, logy in figures:
        fig, axes = plt.subplots(1, len(lengths), figsize=(5.2 * len(lengths), 4.2), squeeze=False)
        for axis, length in zip(axes[0], lengths):
            for server in servers:
                points = sorted((r["connections"], r[field]) for r in rows
                                if r["server"] == server and r["length"] == length and r.get(field) is not None)
                if not points:
                    continue
                xs, ys = zip(*points)
                axis.plot(xs, ys, marker="o", label=server)
            axis.set_title(f"{length} bytes")
            axis.set_xlabel("connections")
            if len(connections) > 1 and max(connections) / max(1, min(connections)) > 20:
                axis.set_xscale("symlog", linthresh=1)
            axis.set_xticks(connections)
            axis.set_xticklabels([str(c) for c in connections])
            axis.xaxis.set_minor_locator(NullLocator())
            if not logy:
                axis.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.0f}" if v >= 100 else f"{v:g}"))
            if logy:
                axis.set_yscale("log")
            else:
                axis.set_ylim(bottom=0)
            axis.set_ylabel(ylabel)
            axis.grid(True, alpha=0.3)
            axis.legend(fontsize="small")
        fig.suptitle(f"{ylabel} ({data['title']})", fontsize="medium")
        fig.tight_layout()
        fig.savefig(os.path.join(directory, filename), dpi=110)
        plt.close(fig)
    if os.path.exists(os.path.join(directory, "ablation.json")):
        plot_ablation(directory, plt)

