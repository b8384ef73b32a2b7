"""Text for the console and the reports: a line out, durations, numbers, percentages, table cells."""

import math


def say(text=""):
    print(text, flush=True)


def duration_text(seconds):
    seconds = max(0, int(round(seconds)))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


def fmt(value, digits=2, none="–"):
    if value is None:
        return none
    if isinstance(value, float) and math.isnan(value):
        return none
    return f"{value:,.{digits}f}"


def md_cell(text):
    """Text for a Markdown table cell: a | would end the cell."""
    return str(text).replace("|", "\\|").replace("\n", " ")


def percent(share, digits=1):
    return "–" if share is None else f"{100 * share:.{digits}f} %"
