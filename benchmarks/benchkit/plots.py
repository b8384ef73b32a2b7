"""The PNG plots of a result folder, from summary.json (and ablation.json, and workloads.json for the
rate workload's latency curve): benchmarks/plot DIR.

matplotlib is the kit's one dependency outside the standard library, and only this step needs it:
`make bench-deps` installs it into benchmarks/.venv (pinned in benchmarks/requirements.txt), and
benchmarks/plot runs itself again with that venv's python when the current one lacks it.

Error bars: cpu_per_request.png spans the lowest to the highest round (cpu_rounds); the ratio plots
show the paired 95 % interval (ci_low–ci_high). Older result folders without those fields plot
without bars.
"""

import argparse
import json
import os
import subprocess
import sys

from benchkit.paths import PLOT_SCRIPT, VENV_PYTHON

NOT_INSTALLED = "benchmarks/plot: matplotlib is not installed: run `make bench-deps` (creates benchmarks/.venv)"
PNGS = ("throughput.png", "cpu_per_request.png", "ratio_vs_epoll.png", "latency_p99.png", "ablation.png", "rate.png")
SOURCES = ("summary.json", "workloads.json")  # a result folder has one or both
PERCENTILES = (("p50_us", "p50"), ("p99_us", "p99"), ("p999_us", "p99.9"))
REFERENCE = "epoll"
VERDICT_COLORS = {"lower": "tab:green", "higher": "tab:red", "same": "tab:gray"}
VERDICT_LABELS = {"lower": "lower: interval wholly below 1", "higher": "higher: interval wholly above 1",
                  "same": "same: interval includes 1", None: "no interval (one round or older result)"}
NO_VERDICT_COLOR = "silver"


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
                    "(and ablation.json and workloads.json when present). Needs matplotlib: make bench-deps.")
    p.add_argument("directory", metavar="DIR", help="a result folder written by benchmarks/run")
    o = p.parse_args(argv)
    if not any(os.path.exists(os.path.join(o.directory, name)) for name in SOURCES):
        p.error(f"{o.directory}: no summary.json or workloads.json there (a folder benchmarks/run wrote)")
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


# Pure helpers (no matplotlib): what each point's value and bar are.

def ci_of(d):
    """(ratio, ci_low, ci_high) of a CI dict; the bounds are None when unknown; None without a ratio."""
    if not isinstance(d, dict) or d.get("ratio") is None:
        return None
    low, high = d.get("ci_low"), d.get("ci_high")
    return (d["ratio"], low, high) if low is not None and high is not None else (d["ratio"], None, None)


def bar(center, low, high):
    """Asymmetric error-bar lengths (below, above) around center, or None when a bound is unknown."""
    if center is None or low is None or high is None:
        return None
    return max(0.0, center - low), max(0.0, high - center)


def ci_label(center, low, high):
    """ "0.972 (0.951–0.994)", or "0.972" without an interval."""
    return f"{center:.3f}" if low is None or high is None else f"{center:.3f} ({low:.3f}–{high:.3f})"


def cpu_point(row):
    """(median, bar) of a row's CPU µs/request; the bar spans the lowest to the highest round."""
    median, rounds = row.get("cpu_us_per_request"), row.get("cpu_rounds") or []
    if median is None:
        return None
    return median, (bar(median, min(rounds), max(rounds)) if len(rounds) > 1 else None)


def ratio_point(row):
    """(CPU ÷ epoll, bar) of a row: the paired ratio and its 95 % interval, or the old plain ratio."""
    ci = ci_of(row.get("cpu_vs_epoll"))
    if ci is not None:
        return ci[0], bar(*ci)
    old = row.get("cpu_ratio_vs_epoll")
    return (old, None) if old is not None else None


def has_interval(d):
    """Whether a CI dict has both bounds."""
    ci = ci_of(d)
    return ci is not None and ci[1] is not None


def rate_series(curve, length, connections, server, key):
    """One server's line on the latency curve of one cell: [(offered load in %, latency µs, sustained)],
    by load; points without that percentile are left out."""
    points = [c for c in curve if c["length"] == length and c["connections"] == connections
              and c["server"] == server and c.get(key) is not None]
    return [(100 * c["level"], c[key], not c.get("unsustained")) for c in sorted(points, key=lambda c: c["level"])]


def verdict_of(d):
    """A CI dict's verdict when it has an interval, else None (drawn as 'no interval')."""
    return d.get("verdict") if has_interval(d) and d.get("verdict") in VERDICT_COLORS else None


# Drawing.

def _yerr(bars):
    return [[b[0] for b in bars], [b[1] for b in bars]]


def _series(axis, points, dx, **style):
    """Draws points [(x, y, bar or None)] shifted dx points sideways (so bars of close series do not
    hide each other), with error bars only where a bar is known. Returns the line."""
    from matplotlib.transforms import offset_copy
    shift = offset_copy(axis.transData, fig=axis.figure, x=dx, y=0, units="points")
    line, = axis.plot([p[0] for p in points], [p[1] for p in points], transform=shift, **style)
    barred = [p for p in points if p[2] is not None]
    if barred:
        axis.errorbar([p[0] for p in barred], [p[1] for p in barred], yerr=_yerr([p[2] for p in barred]),
                      fmt="none", ecolor=line.get_color(), elinewidth=1, capsize=3, alpha=0.8, transform=shift)
    # a shifted transform keeps matplotlib from autoscaling to these points: tell it their extent
    axis.update_datalim([(x, y) for x, y, _ in points]
                        + [(x, y + s * d) for x, y, b in barred for s, d in ((-1, b[0]), (1, b[1]))])
    axis.autoscale_view()
    return line


def _connections_axis(axis, connections):
    axis.set_xlabel("connections")
    if len(connections) > 1 and max(connections) / max(1, min(connections)) > 20:
        axis.set_xscale("symlog", linthresh=1)
    axis.set_xticks(connections)
    axis.set_xticklabels([str(c) for c in connections])
    from matplotlib.ticker import NullLocator
    axis.xaxis.set_minor_locator(NullLocator())
    axis.grid(True, alpha=0.3)


def _save(fig, directory, name, bottom=0.0):
    fig.tight_layout(rect=(0, bottom, 1, 1))
    fig.savefig(os.path.join(directory, name), dpi=110)
    import matplotlib.pyplot as plt
    plt.close(fig)


MANY = 5  # more series than this: one legend under the plots instead of one inside each


def _ncol(width):
    """Legend columns that fit a figure this many inches wide (server names are long)."""
    return max(1, int(width / 2.4))


def _look(i):
    """Marker and line style of the i-th series: past the 10 default colours, squares and dashes."""
    return {"marker": "o"} if i < 10 else {"marker": "s", "linestyle": "--"}


def _cell_figure(plt, lengths, series):
    """A figure with one panel per length, taller when the legend goes underneath."""
    width = max(7.0, 5.2 * len(lengths))
    rows = -(-series // _ncol(width)) if series > MANY else 0
    return plt.subplots(1, len(lengths), figsize=(width, 4.6 + 0.25 * rows), squeeze=False)


def _finish(fig, axes, directory, name, title):
    """Legends (inside each panel, or one underneath for many series), title, PNG."""
    seen = {}
    for axis in axes:
        for handle, label in zip(*axis.get_legend_handles_labels()):
            seen.setdefault(label, handle)
    bottom = 0.0
    if len(seen) > MANY:
        ncol = _ncol(fig.get_figwidth())
        rows = -(-len(seen) // ncol)
        fig.legend(seen.values(), seen.keys(), loc="lower center", ncol=ncol, fontsize="small", frameon=False)
        bottom = (0.25 * rows + 0.1) / fig.get_figheight()
    else:
        for axis in axes:
            axis.legend(fontsize="small")
    fig.suptitle(title, fontsize="medium")
    _save(fig, directory, name, bottom)


def plot_cells(directory, data, plt):
    """throughput.png, cpu_per_request.png, latency_p99.png: medians per server against connections;
    the CPU plot adds bars from the lowest to the highest round."""
    from matplotlib.ticker import FuncFormatter
    rows, servers, lengths, connections = data["rows"], data["servers"], data["lengths"], data["connections"]
    spread = ("bars: lowest–highest round" if any(len(r.get("cpu_rounds") or []) > 1 for r in rows)
              else "no per-round values in this result")
    figures = [("throughput.png", "requests_per_second", "requests/s", "requests/s (median)", False),
               ("cpu_per_request.png", "cpu_us_per_request", "server CPU µs / request",
                f"server CPU µs / request (median; {spread})", False),
               ("latency_p99.png", "latency_p99_us", "p99 latency, µs", "p99 latency, µs (median)", True)]
    for filename, field, ylabel, title, logy in figures:
        fig, axes = _cell_figure(plt, lengths, len(servers))
        bars = field == "cpu_us_per_request" and not spread.startswith("no ")
        for axis, length in zip(axes[0], lengths):
            _connections_axis(axis, connections)  # the scale first: autoscaling happens in it
            for i, server in enumerate(servers):
                cell = sorted((r for r in rows if r["server"] == server and r["length"] == length
                               and r.get(field) is not None), key=lambda r: r["connections"])
                if field == "cpu_us_per_request":
                    points = [(r["connections"],) + cpu_point(r) for r in cell]
                else:
                    points = [(r["connections"], r[field], None) for r in cell]
                if points:
                    dx = (i - (len(servers) - 1) / 2) * 3 if bars else 0
                    _series(axis, points, dx, markersize=4 if bars else 6, label=server, **_look(i))
            axis.set_title(f"{length} bytes")
            if logy:
                axis.set_yscale("log")
            else:
                axis.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.0f}" if v >= 100 else f"{v:g}"))
                axis.set_ylim(bottom=0)
            axis.set_ylabel(ylabel)
        _finish(fig, axes[0], directory, filename, f"{title}\n{data['title']}")


def plot_ratio(directory, data, plt):
    """ratio_vs_epoll.png: each server's CPU µs/request ÷ epoll's per cell, bars the paired 95 % interval."""
    rows, servers, lengths, connections = data["rows"], data["servers"], data["lengths"], data["connections"]
    others = [s for s in servers if s != REFERENCE]
    if REFERENCE not in servers or not others:
        return
    fig, axes = _cell_figure(plt, lengths, len(others) + 1)
    drawn, shift = False, 4 if any(has_interval(r.get("cpu_vs_epoll")) for r in rows) else 0
    for axis, length in zip(axes[0], lengths):
        _connections_axis(axis, connections)
        for i, server in enumerate(others):
            cell = sorted((r for r in rows if r["server"] == server and r["length"] == length),
                          key=lambda r: r["connections"])
            points = [(r["connections"],) + p for r, p in ((r, ratio_point(r)) for r in cell) if p is not None]
            if points:
                drawn = True
                _series(axis, points, (i - (len(others) - 1) / 2) * shift, markersize=5, label=server, **_look(i))
        axis.axhline(1.0, color="black", linewidth=1, label=f"{REFERENCE} = 1")
        axis.set_title(f"{length} bytes")
        axis.set_ylabel(f"server CPU µs/request ÷ {REFERENCE}")
    if not drawn:
        plt.close(fig)
        return
    bars = "paired over rounds; bars: 95 % interval" if shift else "no intervals in this result"
    _finish(fig, axes[0], directory, "ratio_vs_epoll.png",
            f"server CPU µs/request ÷ {REFERENCE}, lower is better ({bars})\n{data['title']}")


def plot_ablation(directory, plt):
    """ablation.png: left, each row's paired CPU ratio against epoll per cell with its 95 % interval
    (or its CPU µs/request when epoll was not run); right, the geometric mean over the cells, coloured
    by verdict."""
    from matplotlib.patches import Patch
    with open(os.path.join(directory, "ablation.json")) as f:
        data = json.load(f)
    cells, rows, reference = data["cells"], data["rows"], data.get("reference", REFERENCE)
    have_reference = any(r["server"] == reference for r in rows)
    names = [f"{l} B × {c}" for l, c in cells]
    fig, (left, right) = plt.subplots(1, 2, figsize=(14, 6), gridspec_kw={"width_ratios": [1.5, 1]})
    markers = "osD^v<>pXh*"
    shown = [r for r in rows if r["server"] != reference] if have_reference else rows
    spread = 0.6 / max(1, len(shown))
    for i, row in enumerate(shown):
        values = row.get("ratio") if have_reference else row.get("cpu")
        cis = (row.get("ratio_ci") or []) if have_reference else []
        points = []
        for j, v in enumerate(values or []):
            if v is None:
                continue
            ci = ci_of(cis[j]) if j < len(cis) else None
            points.append((j + (i - (len(shown) - 1) / 2) * spread, v, bar(v, *ci[1:]) if ci else None))
        if points:
            _series(left, points, 0, marker=markers[i % len(markers)], linestyle="none", markersize=6,
                    label=row["server"])
    if have_reference:
        left.axhline(1.0, color="black", linewidth=1, label=f"{reference} = 1")
        left.set_ylabel(f"server CPU µs/request ÷ {reference} (paired)")
        bars = any(has_interval(d) for r in rows for d in (r.get("ratio_ci") or []))
        left.set_title("per cell, lower is better" + (" (bars: 95 % interval over rounds)" if bars else ""),
                       fontsize="medium")
    else:
        left.set_ylabel("server CPU µs/request (median)")
        left.set_title(f"per cell ({reference} not in this run)", fontsize="medium")
    left.set_xticks(range(len(cells)))
    left.set_xticklabels(names, fontsize="small")
    left.set_xlim(-0.6, len(cells) - 0.4)
    left.grid(True, axis="y", alpha=0.3)
    left.legend(fontsize="x-small", ncol=3, loc="upper center", bbox_to_anchor=(0.5, -0.08), frameon=False)
    shown = [r for r in rows if r["server"] != reference and r.get("ratio_geomean") is not None]
    if shown:
        ys = list(range(len(shown)))[::-1]
        g = [r["ratio_geomean"] for r in shown]
        cis = [ci_of(r.get("ratio_geomean_ci")) or (v, None, None) for r, v in zip(shown, g)]
        verdicts = [verdict_of(r.get("ratio_geomean_ci")) for r in shown]
        right.barh(ys, g, height=0.6, color=[VERDICT_COLORS.get(v, NO_VERDICT_COLOR) for v in verdicts])
        barred = [(y, v, bar(v, *c[1:])) for y, v, c in zip(ys, g, cis) if c[1] is not None]
        if barred:
            right.errorbar([b[1] for b in barred], [b[0] for b in barred], xerr=_yerr([b[2] for b in barred]),
                           fmt="none", ecolor="black", elinewidth=1, capsize=3)
        right.set_yticks(ys)
        right.set_yticklabels([r["server"] for r in shown], fontsize="small")
        right.axvline(1.0, color="black", linewidth=1)
        ends = [c[2] if c[2] is not None else v for v, c in zip(g, cis)]
        starts = [c[1] if c[1] is not None else v for v, c in zip(g, cis)]
        low = min(0.9, min(starts) - 0.03)
        high = max(1.05, max(ends) + 0.02)
        high += (high - low) * 0.45  # room for the labels
        right.set_xlim(low, high)
        for y, v, c, end in zip(ys, g, cis, ends):
            right.text(end + (high - low) * 0.01, y, ci_label(*c), va="center", fontsize="x-small")
        seen = [v for v in ("lower", "same", "higher") if any(verdicts)] + [None] * (None in verdicts)
        handles = [Patch(color=VERDICT_COLORS.get(v, NO_VERDICT_COLOR), label=VERDICT_LABELS[v]) for v in seen]
        right.legend(handles=handles, fontsize="x-small", ncol=2, loc="upper center",
                     bbox_to_anchor=(0.5, -0.1), frameon=False, title=f"black line: {reference} = 1",
                     title_fontsize="x-small")
    right.set_xlabel(f"CPU µs/request ÷ {reference}, geometric mean over cells")
    bars = any(has_interval(r.get("ratio_geomean_ci")) for r in rows)
    right.set_title("overall" + (" (bars: 95 % interval)" if bars else ""), fontsize="medium")
    right.grid(True, axis="x", alpha=0.3)
    fig.suptitle(f"io_uring feature ablation ({data.get('title', '')})", fontsize="medium")
    _save(fig, directory, "ablation.png")


def plot_rate(directory, plt):
    """rate.png: p50, p99 and p99.9 against the offered load, one line per server, one row of panels per
    cell; a cross marks a point the server did not sustain."""
    with open(os.path.join(directory, "workloads.json")) as f:
        data = json.load(f)
    entry = next((w for w in data["workloads"] if w["name"] == "rate"), None)
    curve = (entry or {}).get("curve") or []
    if not curve:
        return
    cells = list(dict.fromkeys((c["length"], c["connections"]) for c in curve))
    servers = [s for s in data["servers"] if any(c["server"] == s for c in curve)]
    fig, axes = plt.subplots(len(cells), len(PERCENTILES), figsize=(15, 4.4 * len(cells)), squeeze=False)
    for row, (length, connections) in zip(axes, cells):
        for axis, (key, label) in zip(row, PERCENTILES):
            for i, server in enumerate(servers):
                points = rate_series(curve, length, connections, server, key)
                if not points:
                    continue
                line, = axis.plot([p[0] for p in points], [p[1] for p in points], label=server, **_look(i))
                missed = [p for p in points if not p[2]]
                if missed:
                    axis.scatter([p[0] for p in missed], [p[1] for p in missed], marker="x", s=90,
                                 color=line.get_color(), zorder=3)
            axis.set_yscale("log")
            axis.set_xlabel(f"offered load, % of {data.get('reference', REFERENCE)}'s closed-loop capacity")
            axis.set_ylabel(f"{label} latency, µs")
            axis.set_title(f"{label}, {length} B × {connections} conn")
            axis.grid(True, alpha=0.3)
    _finish(fig, [a for row in axes for a in row], directory, "rate.png",
            f"latency against offered load (open loop; ×: not sustained)\n{data.get('title', '')}")


def plot(directory):
    """Runs inside benchmarks/.venv: draws the PNGs from summary.json (and ablation.json, workloads.json)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    if os.path.exists(os.path.join(directory, "summary.json")):
        with open(os.path.join(directory, "summary.json")) as f:
            data = json.load(f)
        plot_cells(directory, data, plt)
        plot_ratio(directory, data, plt)
    if os.path.exists(os.path.join(directory, "ablation.json")):
        plot_ablation(directory, plt)
    if os.path.exists(os.path.join(directory, "workloads.json")):
        plot_rate(directory, plt)
