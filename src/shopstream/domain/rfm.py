"""RFM segments (METRICS.md): the usual table from R and F scores, and its SQL. No I/O.

The scores themselves are SQL's NTILE(5) (see metrics.RFM_SCORES): customers ordered by
the value and then by customer_id, so equal values split deterministically; recency is
ordered from the longest ago, so the most recent fifth scores 5.
"""

from __future__ import annotations

SEGMENT_TABLE = {
    # R score: the segments for F scores 1, 2, 3, 4, 5
    1: ("Lost", "Hibernating", "At risk", "At risk", "Can't lose them"),
    2: ("Hibernating", "Hibernating", "At risk", "At risk", "Can't lose them"),
    3: ("About to sleep", "About to sleep", "Need attention", "Loyal", "Loyal"),
    4: ("Promising", "Potential loyalists", "Potential loyalists", "Loyal", "Loyal"),
    5: ("New", "Potential loyalists", "Potential loyalists", "Champions", "Champions"),
}
# best first: the order the API and the dashboard list them in
SEGMENTS = ("Champions", "Loyal", "Potential loyalists", "New", "Promising", "Need attention",
            "About to sleep", "At risk", "Can't lose them", "Hibernating", "Lost")


def segment(r: int, f: int) -> str:
    return SEGMENT_TABLE[r][f - 1]


def segment_sql(r: str, f: str) -> str:
    """A portable CASE expression naming the segment of the score columns `r` and `f`."""
    branches = " ".join(
        f"WHEN {r_score * 10 + f_score} THEN '{name.replace(chr(39), chr(39) * 2)}'"
        for r_score, names in SEGMENT_TABLE.items()
        for f_score, name in enumerate(names, start=1)
    )
    return f"CASE {r} * 10 + {f} {branches} END"
