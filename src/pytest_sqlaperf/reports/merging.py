"""Merging the JSON reports of CI shards into one, as if one run had run every shard's tests."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from ..baseline import BaselineError, environment_differences
from ..records import TestRecord
from .delta import Comparison
from .jsonreport import BaselineUse, ComparedWith, Report, RunRecord, build


def _without_timing(record: TestRecord) -> str:
    return json.dumps({k: v for k, v in record.items() if k != "duration"}, sort_keys=True)


def _comparisons(found: Sequence[Comparison | None]) -> Comparison | None:
    present = [c for c in found if c is not None]
    if not present:
        return None
    merged: Comparison = {
        "tolerance": max(c["tolerance"] for c in present),
        "environment": sorted({line for c in present for line in c["environment"]}),
        "gating": all(c["gating"] for c in present),
        "before": {},
        "regressions": [],
        "improvements": [],
        "changed": [],
        "tolerated": [],
        "unchanged": sum(c["unchanged"] for c in present),
        "new": sorted({n for c in present for n in c["new"]}),
        "not_run": [],
    }
    ran: set[str] = set()
    for comparison in present:
        merged["before"].update(comparison["before"])
        ran.update(comparison["before"])
        merged["regressions"] += comparison["regressions"]
        merged["improvements"] += comparison["improvements"]
        merged["changed"] += comparison["changed"]
        merged["tolerated"] += comparison["tolerated"]
    for changes in (merged["regressions"], merged["improvements"], merged["changed"]):
        changes.sort(key=lambda change: change["nodeid"])
    merged["tolerated"].sort(key=lambda change: change["nodeid"])
    ran.update(merged["new"])
    # A test one shard did not run, another may have: only what no shard ran is "not run".
    not_run = set.intersection(*(set(c["not_run"]) for c in present)) if present else set()
    merged["not_run"] = sorted(not_run - ran)
    merged["before"] = dict(sorted(merged["before"].items()))
    return merged


def _unused(found: Sequence[list[Any] | None]) -> list[Any] | None:
    if not found or any(item is None for item in found):
        return None
    # An index is unused by the whole suite only when no shard used it.
    keyed = [{json.dumps(i, sort_keys=True): i for i in items or []} for items in found]
    common = set.intersection(*(set(k) for k in keyed))
    return [keyed[0][key] for key in sorted(common)]


def merge_reports(reports: Sequence[tuple[str, Report]]) -> Report:
    """One report from the shards' reports; the same test with different results is an error."""
    seen: dict[str, tuple[str, str]] = {}
    tests: list[TestRecord] = []
    first_source, first = reports[0]
    environment = dict(first["environment"])
    for source, report in reports:
        differences = environment_differences(
            environment, report["environment"], (first_source, source)
        )
        if differences:
            raise BaselineError(
                f"{source} was recorded in another environment than {first_source} "
                f"({'; '.join(differences)}); merge reports of one environment"
            )
        for key, value in report["environment"].items():
            if environment.get(key) is None:
                environment[key] = value
        for record in report["tests"]:
            key = _without_timing(record)
            previous = seen.get(record["nodeid"])
            if previous is not None and previous[1] != key:
                raise BaselineError(
                    f"{record['nodeid']} differs between {previous[0]} and {source}; "
                    "shards must not run the same test with different results"
                )
            if previous is None:
                seen[record["nodeid"]] = (source, key)
                tests.append(record)
    uses = [r["baseline"] for _, r in reports]
    baseline: BaselineUse | None = None
    if any(use is not None for use in uses):
        present = [use for use in uses if use is not None]
        baseline = {
            "path": present[0]["path"],
            "mode": present[0]["mode"],
            "existed": any(use["existed"] for use in present),
            "written": any(use["written"] for use in present),
            "comparison": _comparisons([use["comparison"] for use in present]),
        }
    compared = [r["compared_with"] for _, r in reports if r["compared_with"] is not None]
    compared_with: ComparedWith | None = None
    if compared:
        comparison = _comparisons([c["comparison"] for c in compared])
        if comparison is not None:
            compared_with = {"path": compared[0]["path"], "comparison": comparison}
    run: RunRecord = {
        "run_id": "+".join(r["run"]["run_id"] for _, r in reports),
        "started": min(r["run"]["started"] for _, r in reports),
        "finished": max(r["run"]["finished"] for _, r in reports),
        "tool": first["run"]["tool"],
        "python": first["run"]["python"],
        "pytest": first["run"]["pytest"],
    }
    return build(
        tests,
        run=run,
        environment=environment,
        server=next((r["server"] for _, r in reports if r["server"] is not None), None),
        baseline=baseline,
        compared_with=compared_with,
        incomplete=sorted({n for _, r in reports for n in r.get("incomplete", [])}),
        unused_indexes=_unused([r["unused_indexes"] for _, r in reports]),
    )
