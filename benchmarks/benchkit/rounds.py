"""How many rounds: a fixed count, or `--rounds auto`, which keeps adding rounds until every
interval the findings need is narrower than ±1 %, or the time budget would run out.

Rounds stay short and alternate the servers, since this machine's slow mode lasts tens of
seconds: many short rounds, paired by adjacency, beat a few long ones.
"""

from benchkit import stats

AUTO = "auto"
TARGET = 0.01          # ±1 %: the half-width every needed interval must get under
MIN_AUTO_ROUNDS = 3    # an interval from two rounds is too wide to mean anything
MAX_AUTO_ROUNDS = 200  # a bound on the count, besides the budget
DEFAULT_BUDGET_MINUTES = 40


def parse_rounds(text):
    """`--rounds N` or `--rounds auto`."""
    if text.strip().lower() == AUTO:
        return AUTO
    value = int(text)
    if value < 1:
        raise ValueError("--rounds must be at least 1, or auto")
    return value


class RoundPlan:
    """Decides, after each round, whether another one runs."""

    def __init__(self, rounds, budget_s=None, target=TARGET):
        self.auto = rounds == AUTO
        self.fixed = None if self.auto else rounds
        self.budget_s = budget_s if budget_s is not None else DEFAULT_BUDGET_MINUTES * 60
        self.target = target
        self.reason = None

    @property
    def planned(self):
        """Rounds known in advance: the fixed count, or the minimum of an auto run."""
        return self.fixed if not self.auto else MIN_AUTO_ROUNDS

    def another(self, done, elapsed_s, round_s, cis):
        """Whether round `done + 1` runs. `round_s` is how long the last round took; `cis` are the
        needed intervals (stats.RatioCI or None). Sets `reason` when it says no."""
        if not self.auto:
            if done >= self.fixed:
                self.reason = f"{self.fixed} round(s) as asked"
                return False
            return True
        if done < MIN_AUTO_ROUNDS:
            return True
        cis = [ci for ci in cis if ci is not None]  # a pair that never ran has nothing to narrow
        if cis and not stats.needs_more(cis, self.target):
            self.reason = f"every needed interval is within ±{100 * self.target:g} % after {done} rounds"
            return False
        if not cis:
            self.reason = f"no paired ratio to narrow after {done} rounds"
            return False
        if elapsed_s + round_s > self.budget_s:
            self.reason = (f"the budget of {self.budget_s / 60:g} min would run out during another round "
                           f"(after {done} rounds)")
            return False
        if done >= MAX_AUTO_ROUNDS:
            self.reason = f"{MAX_AUTO_ROUNDS} rounds, the most an auto run takes"
            return False
        return True


def progress(done, named_cis, elapsed_s, budget_left_s, target=TARGET):
    """One line after a round: each needed ratio with its interval, the widest, the time left."""
    parts, widest = [], None
    for a, b, ci in named_cis:
        if ci is None:
            continue
        parts.append(f"{a}÷{b} {stats.ci_text(ci)}")
        if ci.half_width is not None:
            widest = ci.half_width if widest is None else max(widest, ci.half_width)
    width = f"widest ±{100 * widest:.1f} % (target ±{100 * target:g} %)" if widest is not None else "no interval yet"
    left = f"{budget_left_s / 60:.0f} min of budget left" if budget_left_s is not None else ""
    return f"round {done} done: " + "; ".join(parts + [width] + ([left] if left else []))
