"""A test's record: the plain-data summary of its statements and findings that leaves the worker.

Records travel from xdist workers to the controller (as a TestReport attribute) and are what
baselines and reports are made of, so they hold only JSON types, paths relative to the rootdir,
and never bound parameters.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Sequence
from functools import lru_cache
from typing import Any, TypedDict, overload

from .capture.querylog import CallSite, QueryLog
from .checks.findings import Finding

RECORD_VERSION = 1
RECORD_ATTRIBUTE = "sqlaperf"
"""The TestReport attribute that carries a call report's record, encoded (see encode_record)."""


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


_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)
_DECODER = json.JSONDecoder()


def encode_record(record: TestRecord) -> str:
    """A record as compact JSON text: how the run keeps records and how they leave a worker."""
    return _ENCODER.encode(record)


class RecordStore(Sequence[TestRecord]):
    """The run's test records, kept compact and decoded each time they are read.

    A record as dicts and lists is some sixty objects for a test of two dozen statements, kept
    for the whole run, and most of its bytes repeat from test to test: the display SQL of each
    fingerprint and its plan facts. Here a record is one JSON string without them, and the
    repeated parts are kept once per run (per fingerprint, per distinct plan facts): for the
    benchmark's 24-statement tests, 4 KB a test instead of 11 KB of JSON or some 40 KB of
    objects, and no objects for the garbage collector to walk. The summaries and reports that
    read the records at the end of the run decode them then (plan facts are decoded once and
    shared by the records read back: treat them as read-only).
    """

    __slots__ = ("_fact_ids", "_facts", "_shapes", "_texts")

    def __init__(self, records: Sequence[TestRecord] = ()) -> None:
        self._texts: list[str] = []
        self._shapes: dict[str, tuple[str, str]] = {}  # fingerprint -> (display_sql, kind)
        self._facts: list[Any] = []  # distinct plan facts, shared by the records read back
        self._fact_ids: dict[str, int] = {}  # their JSON -> index
        for record in records:
            self.append(record)

    def append(self, record: TestRecord) -> None:
        shapes = self._shapes
        fingerprints = {}
        for fingerprint, entry in record["fingerprints"].items():
            if fingerprint not in shapes:
                shapes[fingerprint] = (entry["display_sql"], entry["kind"])
            fingerprints[fingerprint] = [entry["count"], entry["call_sites"]]
        plans = {}
        for fingerprint, facts in record["plans"].items():
            text = _ENCODER.encode(facts)
            fact_id = self._fact_ids.get(text)
            if fact_id is None:
                fact_id = self._fact_ids[text] = len(self._facts)
                self._facts.append(_DECODER.decode(text))  # a copy: the record's may change
            plans[fingerprint] = fact_id
        compact = {**record, "fingerprints": fingerprints, "plans": plans}
        self._texts.append(_ENCODER.encode(compact))

    def append_encoded(self, text: str) -> None:
        """Keep a record encoded by :func:`encode_record` (a worker's, say)."""
        self.append(_decode(text))

    def _expand(self, text: str) -> TestRecord:
        compact = _DECODER.decode(text)
        shapes, facts = self._shapes, self._facts
        compact["fingerprints"] = {
            fingerprint: {
                "display_sql": shapes[fingerprint][0],
                "kind": shapes[fingerprint][1],
                "count": count,
                "call_sites": call_sites,
            }
            for fingerprint, (count, call_sites) in compact["fingerprints"].items()
        }
        compact["plans"] = {
            fingerprint: facts[fact_id] for fingerprint, fact_id in compact["plans"].items()
        }
        record: TestRecord = compact
        return record

    def __len__(self) -> int:
        return len(self._texts)

    @overload
    def __getitem__(self, index: int) -> TestRecord: ...

    @overload
    def __getitem__(self, index: slice) -> list[TestRecord]: ...

    def __getitem__(self, index: int | slice) -> TestRecord | list[TestRecord]:
        if isinstance(index, slice):
            return [self._expand(text) for text in self._texts[index]]
        return self._expand(self._texts[index])

    def __iter__(self) -> Iterator[TestRecord]:
        for text in self._texts:
            yield self._expand(text)

    def __repr__(self) -> str:
        return f"<RecordStore of {len(self._texts)} records>"


def decode_record(text: str) -> TestRecord:
    """A record from :func:`encode_record`'s text."""
    return _decode(text)


def _decode(text: str) -> TestRecord:
    record: TestRecord = _DECODER.decode(text)
    return record


def record_of(report: Any) -> TestRecord | None:
    """The record a test's call report carries (decoded), or None: for conftests that read them.

    ``pytest_runtest_logreport(report)`` sees it for each test, in xdist's controller too.
    """
    text = getattr(report, RECORD_ATTRIBUTE, None)
    return _decode(text) if isinstance(text, str) else None
