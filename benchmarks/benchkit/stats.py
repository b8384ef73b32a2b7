"""Statistics for paired benchmark ratios: log-scale Student-t intervals, verdicts, report text.

Why these choices: costs are ratios, so everything is done on the log scale (a 0.5x and a 2x
are equally far from 1, and the geometric mean is the natural centre). Each round runs every
server once per cell, so the per-round ratio A/B cancels slow drifts the two shared. The noise
here is one-sided and bimodal, so a second estimator, the ratio of the lowest rounds, is kept
beside the interval, and spread() flags cells whose rounds fall into two clusters.

Standard library only (the benchmark machines need nothing installed).
"""

import math
from dataclasses import dataclass
from typing import Optional

__all__ = ["median", "geomean", "t_cdf", "t_quantile", "RatioCI", "ratio_ci", "paired_ratios",
           "paired", "geomean_ci", "words", "ci_text", "spread", "spread_text",
           "needs_more"]


def _number(v):
    """A finite float, or None: None, NaN, inf and non-numbers are missing data, not values."""
    if v is None or isinstance(v, bool):
        return None
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def _positive(values):
    """The finite positive values: a cost or a ratio of costs is never zero or negative."""
    out = []
    for v in values:
        f = _number(v)
        if f is not None and f > 0:
            out.append(f)
    return out


def median(values):
    """Median ignoring None/NaN (a failed run is missing, not zero); None when empty."""
    vs = sorted(f for f in map(_number, values) if f is not None)
    if not vs:
        return None
    mid = len(vs) // 2
    return vs[mid] if len(vs) % 2 else (vs[mid - 1] + vs[mid]) / 2


def geomean(values):
    """Geometric mean ignoring None and non-positive values; None when empty."""
    vs = _positive(values)
    if not vs:
        return None
    return math.exp(math.fsum(math.log(v) for v in vs) / len(vs))


# ---------------------------------------------------------------------------------------------
# Student's t from the regularized incomplete beta function (no scipy on the benchmark machines)

def _beta_cf(a, b, x):
    """Continued fraction for I_x(a, b) (modified Lentz); converges fast for x < (a+1)/(a+b+2)."""
    tiny = 1e-300
    qab, qap, qam = a + b, a + 1.0, a - 1.0
    c = 1.0
    d = 1.0 - qab * x / qap
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 10000):
        m2 = 2 * m
        for num in (m * (b - m) * x / ((qam + m2) * (a + m2)),          # even step d_{2m}
                    -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))):  # odd step d_{2m+1}
            d = 1.0 + num * d
            d = 1.0 / (d if abs(d) > tiny else tiny)
            c = 1.0 + num / c
            c = c if abs(c) > tiny else tiny
            delta = c * d
            h *= delta
        if abs(delta - 1.0) < 1e-16:
            break
    return h


def _betainc(a, b, x, y=None):
    """Regularized incomplete beta I_x(a, b); y = 1 - x may be given exactly to avoid cancellation."""
    if y is None:
        y = 1.0 - x
    if x <= 0.0:
        return 0.0
    if y <= 0.0:
        return 1.0
    log_front = (a * math.log(x) + b * math.log(y)
                 + math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b))
    if x < (a + 1.0) / (a + b + 2.0):
        return math.exp(log_front) * _beta_cf(a, b, x) / a
    return 1.0 - math.exp(log_front) * _beta_cf(b, a, y) / b


def _t_tail(t, df):
    """P(T > t) for t >= 0, computed directly so tiny tails keep their precision."""
    t2 = t * t
    return 0.5 * _betainc(df / 2.0, 0.5, df / (df + t2), t2 / (df + t2))


def t_cdf(t, df):
    """Student's t CDF with df > 0 degrees of freedom (df may be fractional)."""
    if df <= 0:
        raise ValueError("df must be positive")
    tail = _t_tail(abs(t), df)
    return 1.0 - tail if t >= 0 else tail


def t_quantile(p, df):
    """Student's t quantile by bisection on the tail probability; accurate far below 1e-6."""
    if not 0.0 < p < 1.0:
        raise ValueError("p must be in (0, 1)")
    if df <= 0:
        raise ValueError("df must be positive")
    if p == 0.5:
        return 0.0
    if p < 0.5:
        return -t_quantile(1.0 - p, df)
    q = 1.0 - p
    lo, hi = 0.0, 1.0
    while _t_tail(hi, df) > q:
        lo, hi = hi, hi * 2.0
        if hi > 1e300:
            return math.inf
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if _t_tail(mid, df) > q:
            lo = mid
        else:
            hi = mid
        if hi - lo <= 1e-13 * hi:
            break
    return 0.5 * (lo + hi)


# ---------------------------------------------------------------------------------------------
# Ratio intervals

def _sig(x, digits=6):
    return None if x is None else float(f"{x:.{digits}g}")


@dataclass
class RatioCI:
    """A ratio A/B (geometric mean over rounds) with its log-scale t interval and verdict."""
    ratio: float
    ci_low: Optional[float]
    ci_high: Optional[float]
    rounds: int
    verdict: str
    half_width: Optional[float]
    lowest: Optional[float] = None

    def as_dict(self):
        return {"ratio": _sig(self.ratio), "ci_low": _sig(self.ci_low), "ci_high": _sig(self.ci_high),
                "rounds": self.rounds, "verdict": self.verdict, "half_width": _sig(self.half_width),
                "lowest": _sig(self.lowest)}

    @classmethod
    def from_dict(cls, d):
        """Back from ``as_dict`` (summary.json and ablation.json keep dicts); None for None."""
        if not d:
            return None
        return cls(d["ratio"], d["ci_low"], d["ci_high"], d["rounds"], d["verdict"], d.get("half_width"),
                   d.get("lowest"))


def _verdict(low, high):
    """Only an interval wholly below or above 1 is a difference; touching 1 counts as the same."""
    if low is None or high is None:
        return "same"
    if high < 1.0:
        return "lower"
    if low > 1.0:
        return "higher"
    return "same"


def ratio_ci(ratios, level=0.95, lowest=None):
    """Geometric mean of per-round ratios with mean(log) +- t * sd/sqrt(n), exponentiated."""
    logs = [math.log(r) for r in _positive(ratios)]
    n = len(logs)
    if n == 0:
        return None
    m = math.fsum(logs) / n
    ratio = math.exp(m)
    if n < 2:
        return RatioCI(ratio, None, None, n, "same", None, lowest)
    sd = math.sqrt(math.fsum((x - m) ** 2 for x in logs) / (n - 1))
    if sd == 0.0:
        low = high = ratio  # identical ratios: the interval is the point
        half = 0.0
    else:
        w = t_quantile((1.0 + level) / 2.0, n - 1) * sd / math.sqrt(n)
        low, high, half = math.exp(m - w), math.exp(m + w), math.expm1(w)
    return RatioCI(ratio, low, high, n, _verdict(low, high), half, lowest)


def _ordered(keys):
    """Rounds in a stable order (sorted when comparable) so results don't depend on dict order."""
    keys = list(keys)
    try:
        return sorted(keys)
    except TypeError:
        return keys


def paired_ratios(values_a, values_b):
    """a/b for each round present in both dicts with both values positive."""
    out = []
    for k in _ordered(values_a):
        if k in values_b:
            a, b = _number(values_a[k]), _number(values_b[k])
            if a is not None and b is not None and a > 0 and b > 0:
                out.append(a / b)
    return out


def _lowest(values_a, values_b):
    """Ratio of the lowest rounds: one-sided noise only adds cost, so minima are the cleanest."""
    a, b = _positive(values_a.values()), _positive(values_b.values())
    return min(a) / min(b) if a and b else None


def paired(values_a, values_b, level=0.95):
    """The paired ratio A/B over rounds (dicts round -> cost), with the lowest-rounds ratio."""
    return ratio_ci(paired_ratios(values_a, values_b), level, _lowest(values_a, values_b))


def _round_geomeans(per_cell):
    """Per round present (positive) in every cell: the geometric mean over cells."""
    cells = [{k: f for k, f in ((k, _number(v)) for k, v in c.items()) if f is not None and f > 0}
             for c in per_cell]
    if not cells:
        return []
    common = [k for k in _ordered(cells[0]) if all(k in c for c in cells[1:])]
    return [geomean([c[k] for c in cells]) for k in common]


def geomean_ci(per_cell, level=0.95, lowest=None):
    """Interval for the geometric mean over cells, kept per round so the pairing survives;
    a round missing any cell is dropped rather than averaged over fewer cells."""
    return ratio_ci(_round_geomeans(list(per_cell)), level, lowest)


def _f(x, d):
    return f"{x:.{d}f}"


def _digits(ci, digits):
    """Fewest digits (>= digits) that keep the bounds apart from each other and, when there is a
    verdict, from 1; at least 3 digits when the interval is narrower than 0.02, and so on."""
    lo, hi = ci.ci_low, ci.ci_high
    d = digits
    while d < 6:
        crowded = (_f(lo, d) == _f(hi, d) or hi - lo < 2 * 10.0 ** -d
                   or (ci.verdict == "lower" and _f(hi, d) == _f(1.0, d))
                   or (ci.verdict == "higher" and _f(lo, d) == _f(1.0, d)))
        if not crowded:
            break
        d += 1
    return d


def words(ci, a, b, digits=2):
    """The report sentence for A vs B, e.g. "uring costs 0.97× epoll (0.95–0.99)"."""
    if ci is None:
        return f"no data to compare {a} and {b}"
    if ci.ci_low is None or ci.ci_high is None:
        return f"{a} costs {_f(ci.ratio, digits)}× {b} (one round: no interval)"
    d = _digits(ci, digits)
    bounds = f"({_f(ci.ci_low, d)}–{_f(ci.ci_high, d)})"
    if ci.verdict == "same":
        return f"no measurable difference between {a} and {b}: {_f(ci.ratio, d)}× {bounds}"
    return f"{a} costs {_f(ci.ratio, d)}× {b} {bounds}"


def ci_text(ci, digits=3):
    """Compact table cell: "0.972 (0.951–0.994)", "0.972" for one round, "–" for no data."""
    if ci is None:
        return "–"
    if ci.ci_low is None or ci.ci_high is None:
        return _f(ci.ratio, digits)
    return f"{_f(ci.ratio, digits)} ({_f(ci.ci_low, digits)}–{_f(ci.ci_high, digits)})"


# ---------------------------------------------------------------------------------------------
# Bimodality: the slow mode lasts tens of seconds, so a cell's rounds can fall into two clusters

BIMODAL_GAP = 0.05  # a gap between clusters of at least 5 % ...
BIMODAL_SHARE = 0.5  # ... that is at least half of the whole spread (on the log scale)


def spread(values):
    """How the rounds spread, and whether they split in two.

    bimodal: n >= 4, the largest relative gap between consecutive sorted values is >= 5 %, at
    least 2 values lie on each side of it, and it accounts for at least half of log(max/min).
    The last condition tells two clusters from values spread evenly (several 5 % steps).
    Ignores None, NaN and non-positive values; None when nothing is left."""
    v = sorted(_positive(values))
    n = len(v)
    if n == 0:
        return None
    gap, gap_at = 0.0, None
    for i in range(n - 1):
        g = v[i + 1] / v[i] - 1.0
        if gap_at is None or g > gap:
            gap, gap_at = g, i
    total = math.log(v[-1] / v[0])
    bimodal = (n >= 4 and gap_at is not None and gap >= BIMODAL_GAP
               and gap_at + 1 >= 2 and n - gap_at - 1 >= 2
               and math.log1p(gap) >= BIMODAL_SHARE * total)
    return {"n": n, "min": v[0], "median": median(v), "max": v[-1], "spread": v[-1] / v[0] - 1.0,
            "gap": gap, "gap_at": gap_at, "bimodal": bimodal}


def spread_text(values, digits=2):
    """Sorted values, with " | " at the gap when they split in two: "4.61 4.63 | 5.88 5.90"."""
    s = spread(values)
    if s is None:
        return "–"
    v = [_f(x, digits) for x in sorted(_positive(values))]
    if s["bimodal"]:
        i = s["gap_at"] + 1
        return " ".join(v[:i]) + " | " + " ".join(v[i:])
    return " ".join(v)


def needs_more(cis, target=0.01):
    """For --rounds auto: True while any interval is missing (no data or one round) or wider than
    +-target (relative, log scale). An empty iterable needs nothing."""
    for ci in cis:
        if ci is None or ci.half_width is None or ci.half_width > target:
            return True
    return False
