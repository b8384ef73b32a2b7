"""Where a run ran: the kernel release, the CPU model, the CPU's mitigations and the io_uring feature
table of the echo under test, gathered once per run (gather); and the short "Where it ran" block the
reports render from that record (lines, design_text).

The mitigations are the files of /sys/devices/system/cpu/vulnerabilities, each name with its one
line: they set what a system call costs, which is much of what io_uring saves. The feature table is
`echo --features --json` (one JSON object: kernel_release, uring_available, reason, default, features);
an echo built before that flag existed, or none at all, leaves it "unknown" with the reason why.
"""

import json
import os
import platform
import subprocess

from benchkit import vm
from benchkit.processes import run_bounded
from benchkit.procfs import cpu_model

VULNERABILITIES = "/sys/devices/system/cpu/vulnerabilities"
UNKNOWN = "unknown"
FEATURES_TIMEOUT = 30  # seconds: the probe sets up a few small rings


def mitigations(directory=VULNERABILITIES):
    """{name: its one line} for every file in `directory`, sorted by name; {} where there is none."""
    try:
        names = sorted(os.listdir(directory))
    except OSError:
        return {}
    out = {}
    for name in names:
        try:
            with open(os.path.join(directory, name)) as f:
                out[name] = f.read().strip()
        except OSError:
            out[name] = UNKNOWN
    return out


def mitigation_groups(lines):
    """The mitigations by state: {"vulnerable": [names], "mitigated": [...], "not affected": [...],
    "other": [...]}, each sorted. "Vulnerable: ..." and "Mitigation: ..." lines are read by their start."""
    groups = {"vulnerable": [], "mitigated": [], "not affected": [], "other": []}
    for name, line in sorted(lines.items()):
        if line.startswith("Vulnerable"):
            groups["vulnerable"].append(name)
        elif line.startswith("Mitigation"):
            groups["mitigated"].append(name)
        elif line.startswith("Not affected"):
            groups["not affected"].append(name)
        else:
            groups["other"].append(name)
    return groups


def io_uring_features(echo, timeout=FEATURES_TIMEOUT):
    """(the table from `echo --features --json`, None) or (UNKNOWN, why)."""
    if not echo or not os.access(echo, os.X_OK):
        return UNKNOWN, f"no echo executable at {echo}" if echo else "no echo executable"
    try:
        r = run_bounded([echo, "--features", "--json"], timeout=timeout)
    except subprocess.TimeoutExpired:
        return UNKNOWN, f"echo --features --json did not finish in {timeout} s"
    except OSError as e:
        return UNKNOWN, f"echo --features --json could not run: {e.strerror or e}"
    if r.returncode != 0:
        first = next((line.strip() for line in (r.stderr or r.stdout).splitlines() if line.strip()), "")
        if "--features" in first:
            return UNKNOWN, "this echo predates --features"
        return UNKNOWN, f"echo --features --json exited with status {r.returncode}: {first}"
    try:
        table = json.loads(r.stdout)
    except ValueError:
        return UNKNOWN, "echo --features --json printed no JSON object"
    if not isinstance(table, dict) or "features" not in table:
        return UNKNOWN, "echo --features --json printed no feature table"
    return table, None


def gather(echo):
    """The record of where this run ran, for every summary and report (JSON-ready)."""
    table, why = io_uring_features(echo)
    record = {"kernel_release": platform.release(), "machine": platform.machine(), "cpu_model": cpu_model(),
              "cpus": os.cpu_count(), "mitigations": mitigations(), "io_uring": table}
    if vm.report_note():  # in a VM booted by benchmarks/on-kernel: under KVM, or emulated (TCG)
        record["vm"] = vm.report_note()
    if why:
        record["io_uring_unknown"] = why
    if echo:
        record["echo"] = echo
    return record


def kernel_words(where):
    """"Linux 6.1.0-57-amd64", with ", under TCG: emulated, no speed meaning" (or ", under KVM") when it
    ran in a VM."""
    return f"Linux {where.get('kernel_release', UNKNOWN)}" + (f", {where['vm']}" if where.get("vm") else "")


def table_of(where):
    """The io_uring feature table of a record, or None when it is unknown."""
    table = (where or {}).get("io_uring")
    return table if isinstance(table, dict) else None


def unavailable_reason(table):
    """Why io_uring cannot be set up, from a table whose uring_available is false, without echo's own
    "io_uring is unavailable: " in front."""
    reason = (table.get("reason") or "no reason given").strip()
    prefix = "io_uring is unavailable: "
    return reason[len(prefix):] if reason.startswith(prefix) else reason


def feature_text(item):
    return f"{item.get('name')} (Linux {item.get('since')})"


def left_out_text(left_out):
    """"nothing left out", or "left out: incremental-buffers (needs Linux 6.12, this kernel is 6.1)"."""
    if not left_out:
        return "nothing left out"
    return "left out: " + ", ".join(f"{item.get('feature')} ({item.get('reason')})" if item.get("reason")
                                    else str(item.get("feature")) for item in left_out)


def design_text(where):
    """The io_uring design echo negotiates here, in a few words, for a header ("io_uring: ..."): the
    design, "unavailable" or "features unknown"."""
    table = table_of(where)
    if table is None:
        return "features unknown"
    if not table.get("uring_available"):
        return "unavailable"
    return (table.get("default") or {}).get("design") or "design unknown"


def mitigations_text(lines):
    """"2 mitigated, 3 vulnerable (spec_store_bypass, ...), 14 not affected"."""
    if not lines:
        return "unknown (no /sys/devices/system/cpu/vulnerabilities)"
    groups = mitigation_groups(lines)
    parts = []
    for state in ("vulnerable", "mitigated", "not affected", "other"):
        names = groups[state]
        if not names:
            continue
        named = f" ({', '.join(names)})" if state in ("vulnerable", "other") else ""
        parts.append(f"{len(names)} {state}{named}")
    return ", ".join(parts)


def lines(where):
    """The "Where it ran" block as bullet texts; [] for an older run that has no record."""
    if not where:
        return []
    table = table_of(where)
    out = [f"Kernel: Linux {where.get('kernel_release', UNKNOWN)}"
           + (f" ({where['machine']})" if where.get("machine") else "") + (f", {where['vm']}" if where.get("vm") else ""),
           f"CPU: {where.get('cpu_model', UNKNOWN)}" + (f" ({where['cpus']} CPUs)" if where.get("cpus") else ""),
           f"Mitigations ({VULNERABILITIES}): {mitigations_text(where.get('mitigations'))}"]
    if table is None:
        out.append(f"io_uring: features unknown ({where.get('io_uring_unknown', 'not recorded')})")
    elif not table.get("uring_available"):
        out.append(f"io_uring: unavailable here: {unavailable_reason(table)}")
    else:
        default = table.get("default") or {}
        out.append(f"io_uring: echo's negotiated default here is {default.get('design', UNKNOWN)}; "
                   f"{left_out_text(default.get('left_out'))}")
    if table is not None:
        features = table.get("features") or []
        missing = [item for item in features if not item.get("available")]
        if not missing:
            out.append(f"io_uring features: all {len(features)} that echo knows are available")
        elif table.get("uring_available"):
            out.append(f"io_uring features missing ({len(missing)} of {len(features)}): "
                       + ", ".join(feature_text(item) for item in missing))
    return out


def block(w, where, skipped=()):
    """The "Where it ran" block of a Markdown report, then the rows skipped there; nothing for an
    older run without the record."""
    items = lines(where)
    if items:
        w("**Where it ran**")
        w()
        for item in items:
            w(f"- {item}")
        w()
    if skipped:
        w("**Skipped** (rows this kernel cannot run; the rest ran)")
        w()
        for item in skipped:
            w(f"- {item['name']}: {item['reason']}")
        w()


def console_line(where):
    """One line for the console at the start of a run."""
    table = table_of(where)
    if table is None:
        uring = f"io_uring features unknown ({where.get('io_uring_unknown')})"
    elif not table.get("uring_available"):
        uring = f"io_uring unavailable ({unavailable_reason(table)})"
    else:
        default = table.get("default") or {}
        uring = f"io_uring default: {default.get('design', UNKNOWN)} ({left_out_text(default.get('left_out'))})"
    return (f"where: {kernel_words(where)}, {where.get('cpu_model')}; mitigations "
            f"{mitigations_text(where.get('mitigations'))}; {uring}")
