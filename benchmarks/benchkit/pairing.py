"""Paired ratios between servers, from the runs of one invocation.

Every ratio the kit reports is paired: a server's figure in one round divided by the other
server's figure in the same cell and round, so that drift which hits both runs of a round
cancels. Cells combine by a geometric mean taken per round, so a ratio over many cells still
has one value per round and a confidence interval (stats.ratio_ci).
"""

from benchkit import stats

FIELD = "cpu_us_per_request"


def counted(record):
    """Whether a run counts: it has metrics and was not left out (a noisy run that was re-run)."""
    return "metrics" in record and not record.get("excluded")


def round_values(records, server, length, connections, field=FIELD):
    """{round: value} of one server in one cell, over the runs that count."""
    values = {}
    for r in records:
        if (r["server"] == server and r["length"] == length and r["connections"] == connections
                and counted(r)):
            value = r["metrics"].get(field)
            if value is not None and value > 0:
                values[r["round"]] = value
    return values


def round_ratios(records, a, b, length, connections, field=FIELD):
    """{round: a ÷ b} in one cell, for the rounds where both ran."""
    va = round_values(records, a, length, connections, field)
    vb = round_values(records, b, length, connections, field)
    return {k: va[k] / vb[k] for k in va if k in vb}


def cell(records, a, b, length, connections, field=FIELD):
    """a ÷ b in one cell: a stats.RatioCI (with the ratio of the lowest rounds), or None."""
    return stats.paired(round_values(records, a, length, connections, field),
                        round_values(records, b, length, connections, field))


def over_cells(records, a, b, cells, field=FIELD):
    """a ÷ b over several cells: the geometric mean over cells per round, then its interval.
    Cells where the pair never ran are left out; `cells_used` says how many counted. `lowest` is
    the geometric mean over cells of each cell's ratio of lowest rounds."""
    return combine([(round_values(records, a, length, connections, field),
                     round_values(records, b, length, connections, field)) for length, connections in cells])


def combine(value_pairs):
    """The paired ratio over cells given as [({round: a's value}, {round: b's value})], one pair per
    cell, from whatever records they came from (the workloads pair over cells and load levels).
    Returns (stats.RatioCI or None, the cells that counted)."""
    per_cell, lowest = [], []
    for va, vb in value_pairs:
        ratios = {k: va[k] / vb[k] for k in va if k in vb}
        if ratios:
            per_cell.append(ratios)
            lowest.append(min(va.values()) / min(vb.values()))
    if not per_cell:
        return None, 0
    return stats.geomean_ci(per_cell, lowest=stats.geomean(lowest)), len(per_cell)
