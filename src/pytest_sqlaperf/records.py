"""A test's record: the plain-data summary of its statements and findings that leaves the worker.

Records travel from xdist workers to the controller (as a TestReport attribute) and are what
baselines and reports are made of, so they hold only JSON types, paths relative to the rootdir,
and never bound parameters.
"""

from __future__ import annotations

import os
from functools import lru_cache
from typing import Any, TypedDict

from .capture.querylog import CallSite, QueryLog
from .checks.findings import Finding

RECORD_VERSION = 1


class CallSiteRecord(TypedDict):
    path: str  # relative to the rootdir when under it, "/" separated
    line: int
    function: str


class FindingRecord(TypedDict):
    kind: str  # budget, n_plus_one, repeated, duplicate, n_plus_one_write, seq_scan, ...
    message: str
    target: str | None  # "Post.comments", a table, or the display SQL
    count: int
    call_site: CallSiteRecord | None
    source: CallSiteRecord | None  # the query whose rows drove the loop, when known
    fingerprint: str | None
    fix: str | None
    evidence: list[str]


class FingerprintRecord(TypedDict):
    display_sql: str
    kind: str
    count: int
    call_sites: list[CallSiteRecord]  # distinct, in order of first appearance


class TestRecord(TypedDict):
    version: int
    nodeid: str
    outcome: str  # the call phase's: passed, failed, skipped
    count: int
    by_kind: dict[str, int]  # kinds with at least one statement
    fingerprints: dict[str, FingerprintRecord]
    budget: str | None  # "max_queries(3)" when the test has one
    violation: str | None
    findings: list[FindingRecord]
    plans: dict[str, Any]  # per fingerprint: plan facts (filled by the plan checks)
    duration: float  # seconds spent in the database; the only non-deterministic field


@lru_cache(maxsize=4096)
def _relative(path: str, rootdir: str) -> str:
    """The path as records keep it (every statement's call site goes through here: cached)."""
    if path.startswith(rootdir.rstrip(os.sep) + os.sep):
        path = os.path.relpath(path, rootdir)
    return path.replace(os.sep, "/")


def call_site_record(call_site: CallSite | None, rootdir: str) -> CallSiteRecord | None:
    if call_site is None:
        return None
    return {
        "path": _relative(call_site.path, rootdir),
        "line": call_site.line,
        "function": call_site.function,
    }


def finding_record(finding: Finding, rootdir: str) -> FindingRecord:
    return {
        "kind": finding.kind,
        "message": finding.message,
        "target": finding.target,
        "count": finding.count,
        "call_site": call_site_record(finding.call_site, rootdir),
        "source": call_site_record(finding.source, rootdir),
        "fingerprint": finding.fingerprint,
        "fix": finding.fix,
        "evidence": list(finding.evidence),
    }


def make_record(
    nodeid: str,
    log: QueryLog,
    *,
    rootdir: str,
    outcome: str,
    budget: str | None = None,
    violation: str | None = None,
    findings: list[Finding] | None = None,
    plans: dict[str, Any] | None = None,
) -> TestRecord:
    """Summarise a test's QueryLog into a record (counts, fingerprints, findings; no parameters)."""
    fingerprints: dict[str, FingerprintRecord] = {}
    seen: set[tuple[str, CallSite | None]] = set()
    for statement in log.counted:
        entry = fingerprints.get(statement.fingerprint)
        if entry is None:
            entry = fingerprints[statement.fingerprint] = {
                "display_sql": statement.display_sql,
                "kind": statement.kind,
                "count": 0,
                "call_sites": [],
            }
        entry["count"] += 1
        key = (statement.fingerprint, statement.call_site)
        if statement.call_site is not None and key not in seen:
            seen.add(key)
            site = call_site_record(statement.call_site, rootdir)
            if site is not None and site not in entry["call_sites"]:
                entry["call_sites"].append(site)
    return {
        "version": RECORD_VERSION,
        "nodeid": nodeid,
        "outcome": outcome,
        "count": log.count,
        "by_kind": {kind: n for kind, n in log.count_by_kind().items() if n},
        "fingerprints": fingerprints,
        "budget": budget,
        "violation": violation,
        "findings": [finding_record(finding, rootdir) for finding in findings or ()],
        "plans": plans or {},
        "duration": sum(s.duration or 0.0 for s in log.statements),
    }
