"""Scale check: does a code path run the same number of statements whatever the data size?"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import pairwise

SQL_WIDTH = 70


@dataclass(frozen=True)
class Sample:
    """The counted statements of one run of the code path at one scale (data size)."""

    scale: float
    count: int
    fingerprints: Counter[str] = field(default_factory=Counter)


def _short(sql: str) -> str:
    return sql if len(sql) <= SQL_WIDTH else sql[: SQL_WIDTH - 3] + "..."


def compare_samples(name: str, samples: Sequence[Sample], *, slope: float = 0) -> str | None:
    """None when the count grows no faster than ``slope`` per unit of scale; else a table of the
    statements (display SQL) per scale, those that grew marked."""
    ordered = sorted(samples, key=lambda sample: sample.scale)
    broken = [
        (low, high)
        for low, high in pairwise(ordered)
        if high.count - low.count > slope * (high.scale - low.scale)
    ]
    if not broken:
        return None
    low, high = broken[0]
    allowed = "the same count" if not slope else f"at most {slope:g} more per unit of {name}"
    lines = [
        f"constant_queries({name!r}): statements grow with {name}: "
        f"{low.count} at {name}={low.scale:g}, {high.count} at {name}={high.scale:g} "
        f"(expected {allowed})",
    ]
    header = "  ".join(f"{name}={sample.scale:g}".rjust(6) for sample in ordered)
    lines.append(f"  {'statement'.ljust(SQL_WIDTH)}  {header}")
    every = Counter[str]()
    for sample in ordered:
        every.update(sample.fingerprints.keys())
    first, last = ordered[0].fingerprints, ordered[-1].fingerprints
    for sql in sorted(every, key=lambda sql: (first[sql] >= last[sql], sql)):
        counts = "  ".join(
            str(sample.fingerprints[sql]).rjust(max(6, len(name) + 4)) for sample in ordered
        )
        grew = "  grew" if last[sql] > first[sql] else ""
        lines.append(f"  {_short(sql).ljust(SQL_WIDTH)}  {counts}{grew}")
    return "\n".join(lines)
