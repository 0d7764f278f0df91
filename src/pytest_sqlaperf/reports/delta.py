"""What changed between a baseline (or an earlier report) and this run: regressions."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TypedDict

from ..baseline import Baseline, Entry, environment_differences
from ..records import CallSiteRecord, TestRecord

Sites = dict[str, dict[str, list[CallSiteRecord]]]
"""Call sites per node id and fingerprint."""


class FingerprintChange(TypedDict):
    fingerprint: str
    sql: str
    kind: str
    before: int
    after: int
    call_sites: list[CallSiteRecord]


class Change(TypedDict):
    nodeid: str
    before: int
    after: int
    reasons: list[str]
    fingerprints: list[FingerprintChange]  # added or grown
    new_findings: list[str]
    lost_indexes: list[str]


class Comparison(TypedDict):
    tolerance: int
    environment: list[str]  # how the environments differ; empty when they match
    gating: bool  # whether regressions fail the run (not when the environment differs)
    before: dict[str, int]  # baseline count of every compared test
    regressions: list[Change]
    improvements: list[Change]  # fewer statements or findings, nothing worse
    changed: list[Change]  # other differences, nothing worse (e.g. another query shape)
    tolerated: list[Change]  # more statements, within the tolerance
    unchanged: int
    new: list[str]  # ran, not in the baseline
    not_run: list[str]  # in the baseline, not run (or not completed) here


def _indexes(entry: Entry) -> set[str]:
    return {index for plan in entry["plans"].values() for index in plan["indexes"]}


def _plan_findings(entry: Entry) -> set[str]:
    return {finding for plan in entry["plans"].values() for finding in plan["findings"]}


def _change(
    nodeid: str,
    before: Entry,
    after: Entry,
    tolerance: int,
    sites: Mapping[str, list[CallSiteRecord]],
) -> tuple[Change, str]:
    """The change of one test and its category: regression, tolerated, improvement, changed or
    unchanged."""
    reasons: list[str] = []
    grown: list[FingerprintChange] = []
    for fingerprint, entry in after["fingerprints"].items():
        previous = before["fingerprints"].get(fingerprint)
        was = previous["count"] if previous else 0
        if entry["count"] > was:
            grown.append(
                {
                    "fingerprint": fingerprint,
                    "sql": entry["sql"],
                    "kind": entry["kind"],
                    "before": was,
                    "after": entry["count"],
                    "call_sites": list(sites.get(fingerprint, [])),
                }
            )
    grown.sort(key=lambda c: (c["before"] - c["after"], c["fingerprint"]))
    new_findings = sorted(
        (set(after["findings"]) - set(before["findings"]))
        | (_plan_findings(after) - _plan_findings(before))
    )
    lost_indexes = sorted(_indexes(before) - _indexes(after))
    delta = after["count"] - before["count"]
    if delta > tolerance:
        allowed = f", tolerance {tolerance}" if tolerance else ""
        reasons.append(f"statements {before['count']} → {after['count']} (+{delta}{allowed})")
    reasons += [f"new finding: {finding}" for finding in new_findings]
    reasons += [f"index no longer used: {index}" for index in lost_indexes]
    change: Change = {
        "nodeid": nodeid,
        "before": before["count"],
        "after": after["count"],
        "reasons": reasons,
        "fingerprints": grown,
        "new_findings": new_findings,
        "lost_indexes": lost_indexes,
    }
    if reasons:
        return change, "regression"
    if delta > 0:
        return change, "tolerated"
    fixed = (set(before["findings"]) - set(after["findings"])) | (
        _plan_findings(before) - _plan_findings(after)
    )
    if delta < 0 or fixed:
        return change, "improvement"
    return change, "unchanged" if after == before else "changed"


def compare(
    before: Baseline,
    after: Mapping[str, Entry],
    environment: Mapping[str, str | None],
    *,
    tolerance: int = 0,
    sites: Mapping[str, Mapping[str, list[CallSiteRecord]]] | None = None,
) -> Comparison:
    """Compare this run's entries with the baseline's.

    A regression: more statements than recorded plus ``tolerance`` (an absolute number of
    statements per test), a new loop or plan finding, or an index no longer used.
    ``sites`` gives the call sites per node id and fingerprint, for the regressions' evidence.
    """
    differences = environment_differences(before.environment, environment)
    categories: dict[str, list[Change]] = {
        "regression": [],
        "improvement": [],
        "changed": [],
        "tolerated": [],
        "unchanged": [],
    }
    counts: dict[str, int] = {}
    for nodeid, entry in sorted(after.items()):
        recorded = before.tests.get(nodeid)
        if recorded is None:
            continue
        counts[nodeid] = recorded["count"]
        change, category = _change(
            nodeid, recorded, entry, tolerance, (sites or {}).get(nodeid, {})
        )
        categories[category].append(change)
    return {
        "tolerance": tolerance,
        "environment": differences,
        "gating": not differences,
        "before": counts,
        "regressions": categories["regression"],
        "improvements": categories["improvement"],
        "changed": categories["changed"],
        "tolerated": categories["tolerated"],
        "unchanged": len(categories["unchanged"]),
        "new": sorted(set(after) - set(before.tests)),
        "not_run": sorted(set(before.tests) - set(after)),
    }


def sites_of(records: Mapping[str, TestRecord]) -> Sites:
    """Call sites per node id and fingerprint, for the evidence of regressions."""
    return {
        nodeid: {fp: entry["call_sites"] for fp, entry in record["fingerprints"].items()}
        for nodeid, record in records.items()
    }
