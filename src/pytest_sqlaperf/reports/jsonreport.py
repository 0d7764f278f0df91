"""The JSON report: every record of a run with its server, environment and comparisons; versioned.

Its schema ships in the package (``schemas/report.schema.json``); the other reports, the CLI and
``--sqlaperf-compare`` are made from this document.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from importlib import resources
from pathlib import Path
from typing import Any, TypedDict

from .. import baseline as baselines
from ..baseline import Baseline, BaselineError
from ..records import TestRecord
from .delta import Comparison

KIND = "sqlaperf-report"
SCHEMA_VERSION = 1
TIMING_FIELDS = ("run.started", "run.finished", "run.run_id", "tests[].duration")
"""What differs between two runs of the same code, besides the server's run directory."""


class ServerRecord(TypedDict):
    backend: str
    description: str  # never the URL with its password: descriptions mask it
    version: str


class RunRecord(TypedDict):
    run_id: str
    started: str  # ISO 8601, UTC
    finished: str
    tool: str  # pytest-sqlaperf's version
    python: str
    pytest: str


class BaselineUse(TypedDict):
    path: str
    mode: str | None  # check, update or ratchet; None when the file does not exist yet
    existed: bool
    written: bool
    comparison: Comparison | None


class ComparedWith(TypedDict):
    path: str
    comparison: Comparison


class Totals(TypedDict):
    tests: int
    statements: int
    by_kind: dict[str, int]
    findings: int


class Report(TypedDict):
    kind: str
    schema_version: int
    run: RunRecord
    environment: dict[str, str | None]
    server: ServerRecord | None
    baseline: BaselineUse | None
    compared_with: ComparedWith | None
    totals: Totals
    tests: list[TestRecord]
    incomplete: list[str]  # tests whose call phase stopped early: their counts are partial
    unused_indexes: list[Any] | None  # as the plan checks give them (names or objects)


def _sort_key(record: TestRecord) -> tuple[str, str]:
    # Under xdist records arrive in any order; their content breaks ties between reruns.
    return record["nodeid"], json.dumps(record, sort_keys=True)


def totals_of(records: Iterable[TestRecord]) -> Totals:
    by_kind: dict[str, int] = {}
    tests = statements = findings = 0
    for record in records:
        tests += 1
        statements += record["count"]
        findings += len(record["findings"])
        for kind, count in record["by_kind"].items():
            by_kind[kind] = by_kind.get(kind, 0) + count
    return {
        "tests": tests,
        "statements": statements,
        "by_kind": dict(sorted(by_kind.items())),
        "findings": findings,
    }


def build(
    records: Iterable[TestRecord],
    *,
    run: RunRecord,
    environment: dict[str, str | None],
    server: ServerRecord | None,
    baseline: BaselineUse | None = None,
    compared_with: ComparedWith | None = None,
    incomplete: Iterable[str] = (),
    unused_indexes: Iterable[Any] | None = None,
) -> Report:
    tests = sorted(records, key=_sort_key)
    unused = None
    if unused_indexes is not None:
        unused = sorted(unused_indexes, key=lambda item: json.dumps(item, sort_keys=True))
    return {
        "kind": KIND,
        "schema_version": SCHEMA_VERSION,
        "run": run,
        "environment": environment,
        "server": server,
        "baseline": baseline,
        "compared_with": compared_with,
        "totals": totals_of(tests),
        "tests": tests,
        "incomplete": sorted(set(incomplete)),
        "unused_indexes": unused,
    }


def dumps(report: Report | Mapping[str, Any]) -> str:
    return json.dumps(report, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def schema() -> dict[str, Any]:
    """The report's JSON schema, as shipped in the package."""
    text = resources.files("pytest_sqlaperf").joinpath("schemas/report.schema.json").read_text()
    loaded: dict[str, Any] = json.loads(text)
    return loaded


# -- reading (the CLI and --sqlaperf-compare) ------------------------------------------------------


def parse(data: object, source: str) -> Report:
    """A report from decoded JSON; raises :class:`BaselineError` saying what is wrong."""
    if not isinstance(data, dict) or data.get("kind") != KIND:
        raise BaselineError(f"{source} is not a sqlaperf report (its kind is not {KIND!r})")
    if data.get("schema_version") != SCHEMA_VERSION:
        raise BaselineError(
            f"{source} has report schema_version {data.get('schema_version')!r}; this "
            f"pytest-sqlaperf reads version {SCHEMA_VERSION}: use the version that wrote it"
        )
    tests = data.get("tests")
    required = set(TestRecord.__annotations__)
    valid = isinstance(tests, list) and all(
        isinstance(t, dict)
        and required <= set(t)
        and isinstance(t["nodeid"], str)
        and isinstance(t["count"], int)
        and isinstance(t["fingerprints"], dict)
        and isinstance(t["findings"], list)
        for t in tests
    )
    if not valid:
        raise BaselineError(f"{source}: 'tests' must be a list of test records")
    missing = set(Report.__annotations__) - set(data)
    if missing:
        raise BaselineError(f"{source}: not a complete report (no {', '.join(sorted(missing))})")
    report: Report = data  # type: ignore[assignment]  # checked above as far as readers need
    return report


def load(path: Path) -> Report | Baseline:
    """A report or a baseline file, whichever ``path`` holds; :class:`BaselineError` otherwise."""
    data = baselines.load_json(path)
    if isinstance(data, dict) and data.get("kind") == KIND:
        return parse(data, str(path))
    if (
        isinstance(data, dict)
        and "tests" in data
        and data.get("kind", baselines.KIND) == baselines.KIND
    ):
        return baselines.parse(data, str(path))
    raise BaselineError(
        f"{path} is neither a sqlaperf report nor a baseline (expected a JSON object with "
        f"kind {KIND!r} or {baselines.KIND!r})"
    )


def as_baseline(loaded: Report | Baseline) -> Baseline:
    """Entries per test of a report (its complete records) or of a baseline, to compare with."""
    if isinstance(loaded, Baseline):
        return loaded
    incomplete = set(loaded.get("incomplete", ()))
    selected = baselines.select_records(t for t in loaded["tests"] if t["nodeid"] not in incomplete)
    return Baseline(environment=dict(loaded["environment"]), tests=baselines.entries_of(selected))


def delta_of(report: Report) -> tuple[str, Comparison] | None:
    """The comparison the human reports show: with ``--sqlaperf-compare``'s file when given, else
    with the baseline; and a label for what it compares with."""
    if report["compared_with"] is not None:
        return report["compared_with"]["path"], report["compared_with"]["comparison"]
    use = report["baseline"]
    if use is not None and use["comparison"] is not None:
        return f"{use['path']} (baseline)", use["comparison"]
    return None


def plural(count: int, word: str) -> str:
    return f"{count} {word}" if count == 1 else f"{count} {word}s"
