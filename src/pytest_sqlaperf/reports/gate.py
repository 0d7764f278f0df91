"""The CI gate: compare a run with its baseline, decide whether it fails, and what to record."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from .. import baseline as baselines
from ..baseline import Baseline
from ..records import TestRecord
from . import delta
from .jsonreport import BaselineUse, plural


@dataclass(frozen=True)
class GateSettings:
    path: Path
    label: str  # the path as the user gave it
    mode: str | None  # check, update, ratchet; None: the file does not exist and no mode given
    tolerance: int = 0
    fail_on_missing: bool = False


@dataclass
class Outcome:
    use: BaselineUse
    failures: list[str] = field(default_factory=list)  # why the run fails; empty when it passes
    text: str | None = None  # the new baseline file, when it should be written
    note: str | None = None  # what happened to the file, for the summary


def run(
    settings: GateSettings,
    before: Baseline | None,
    before_text: str | None,
    records: Mapping[str, TestRecord],
    environment: dict[str, str | None],
    stale: set[str],
) -> Outcome:
    """Compare ``records`` (complete ones, by node id) with ``before`` and say what to write.

    ``check`` and ``ratchet`` fail on regressions, unless the baseline was recorded in another
    environment: then differences are reported, nothing fails and ratchet writes nothing.
    """
    entries = baselines.entries_of(records)
    comparison = None
    if before is not None:
        comparison = delta.compare(
            before,
            entries,
            environment,
            tolerance=settings.tolerance,
            sites=delta.sites_of(records),
        )
    outcome = Outcome(
        use={
            "path": settings.label,
            "mode": settings.mode,
            "existed": before is not None,
            "written": False,
            "comparison": comparison,
        }
    )
    if comparison is not None and settings.mode in ("check", "ratchet") and comparison["gating"]:
        if comparison["regressions"]:
            regressions = plural(len(comparison["regressions"]), "regression")
            outcome.failures.append(f"{regressions} against {settings.label}")
        if settings.mode == "check" and settings.fail_on_missing and comparison["new"]:
            missing = plural(len(comparison["new"]), "test")
            outcome.failures.append(f"{missing} not in {settings.label}")
    if settings.mode == "update" or (settings.mode == "ratchet" and before is None):
        new = baselines.updated(before or Baseline(), entries, environment, stale)
        note = f"{plural(len(entries), 'test')} recorded"
    elif settings.mode == "ratchet" and before is not None and comparison is not None:
        if not comparison["gating"]:
            outcome.note = f"{settings.label} not ratcheted: recorded in another environment"
            return outcome
        accepted = [c["nodeid"] for c in (*comparison["improvements"], *comparison["changed"])]
        new = baselines.ratcheted(before, entries, [*accepted, *comparison["new"]], stale)
        note = (
            f"{plural(len(comparison['improvements']), 'improvement')} and "
            f"{plural(len(comparison['new']), 'new test')} recorded"
        )
        if comparison["regressions"]:
            note += ", regressions kept at their recorded counts"
    else:
        return outcome
    if stale:
        note += f", {len(stale)} removed (tests that no longer exist)"
    text = baselines.dumps(new)
    if text == before_text:
        outcome.note = f"{settings.label} unchanged ({settings.mode})"
    else:
        outcome.text = text
        outcome.note = f"{settings.label} written ({settings.mode}): {note}"
    return outcome
