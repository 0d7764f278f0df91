"""A test's record: the plain-data summary of its statements and findings that leaves the worker.

Records travel from xdist workers to the controller (as a TestReport attribute) and are what
baselines and reports are made of, so they hold only JSON types, paths relative to the rootdir,
and never bound parameters.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from functools import lru_cache
from typing import Any, TypedDict, overload

from .capture.querylog import (
    CallSite,
    QueryLog,
    call_site_of,
    duration_of,
    fingerprint_of,
)
from .checks.findings import Finding

RECORD_VERSION = 1
RECORD_ATTRIBUTE = "sqlaperf"
"""The TestReport attribute that carries a call report's record: a :class:`StoredRecord` in the
process that ran the test, its JSON text (:func:`encode_record`) once it left an xdist worker.
Read it with :func:`record_of`."""


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


Compact = tuple[Any, ...]
"""A record as the store keeps it (see :class:`RecordStore`)."""

_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)
_DECODER = json.JSONDecoder()


def encode_record(record: TestRecord) -> str:
    """A record as compact JSON text: how a record leaves an xdist worker."""
    return _ENCODER.encode(record)


def decode_record(text: str) -> TestRecord:
    """A record from :func:`encode_record`'s text."""
    record: TestRecord = _DECODER.decode(text)
    return record


class RecordSummary(TypedDict):
    """What the terminal summaries read of a record: all of it but its fingerprints."""

    nodeid: str
    outcome: str
    count: int
    by_kind: dict[str, int]
    budget: str | None
    violation: str | None
    findings: list[FindingRecord]
    plans: dict[str, Any]


class _SiteMap(dict[Any, Any]):
    """CallSite (or None) -> its ``(path, line, function)`` as records keep it, made on first
    use: a record maps its statements' call sites through ``__getitem__`` in C."""

    __slots__ = ("_interned", "_rootdir")

    def __init__(self, rootdir: str, interned: dict[Any, Any]) -> None:
        super().__init__()
        self._rootdir = rootdir
        self._interned = interned

    def __missing__(self, call_site: CallSite | None) -> tuple[str, int, str] | None:
        site = None
        if call_site is not None:
            site = (_relative(call_site.path, self._rootdir), call_site.line, call_site.function)
            site = self._interned.setdefault(site, site)  # the same tuple a worker's would be
        self[call_site] = site
        return site


class RecordStore(Sequence[TestRecord]):
    """The run's test records, kept as tuples of shared parts and read back as dicts.

    Records are made for every test and kept to the end of the run, so they are made straight
    from the test's QueryLog (no dicts on the way) and kept small and out of the garbage
    collector's way:

    - a record is a tuple of strings, numbers and tuples: no dict or list per test for the
      garbage collector to walk (CPython stops tracking such tuples once it has seen that they
      hold nothing it tracks);
    - the display SQL and kind of a fingerprint are kept once per run, and a call site once per
      run (as a ``(path, line, function)`` tuple shared by every record that names it);
    - a record's fingerprints are two tuples: ``(fingerprint, count)`` pairs and the distinct
      ``(fingerprint, call site)`` pairs, both made in C from the test's statements;
    - the per-fingerprint counts and sites, the counts per kind and the plans of a record are
      interned: the instances of a parametrized test share one copy;
    - findings, rare, are kept as JSON text, and plan facts once per distinct facts.

    Reading a record (iteration, indexing) builds its dicts; :meth:`summaries` skips the
    fingerprints, which is what the terminal summaries read. Plan facts are shared by the
    records read back: treat them as read-only.
    """

    __slots__ = (
        "_fact_index",
        "_fact_refs",
        "_facts",
        "_interned",
        "_records",
        "_shapes",
        "_sites",
    )

    def __init__(self, records: Iterable[TestRecord] = ()) -> None:
        self._records: list[Compact] = []
        self._shapes: dict[str, tuple[str, str]] = {}  # fingerprint -> (display_sql, kind)
        self._sites: dict[str, _SiteMap] = {}  # per rootdir
        self._interned: dict[Any, Any] = {}
        self._facts: list[Any] = []  # distinct plan facts, shared by the records read back
        self._fact_index: dict[Any, int] = {}  # id(facts) of the plan checks' objects, or JSON
        self._fact_refs: list[Any] = []  # the objects whose id is in _fact_index
        for record in records:
            self.append(record)

    # -- making -------------------------------------------------------------------------------

    def make(
        self,
        nodeid: str,
        log: QueryLog,
        *,
        rootdir: str,
        outcome: str,
        budget: str | None = None,
        violation: str | None = None,
        findings: Sequence[Finding] | None = None,
        plans: dict[str, Any] | None = None,
    ) -> Compact:
        """Summarise a test's QueryLog into a record (counts, fingerprints, findings; no
        parameters). Keep it with :meth:`add`; :meth:`expand` reads it."""
        # Runs once per test over each of its statements: the per-statement work is done by
        # map, Counter and dict.fromkeys (in C); Python loops only over distinct shapes and sites.
        duration = sum(filter(None, map(duration_of, log.statements)), 0.0)  # None: it failed
        statements = log.counted
        count = len(statements)
        by_kind = log.count_by_kind()
        fingerprints = list(map(fingerprint_of, statements))
        counts = Counter(fingerprints)
        shapes = self._shapes
        # (not counts.keys() - shapes.keys(): that walks every shape the run has seen)
        for fingerprint in [fingerprint for fingerprint in counts if fingerprint not in shapes]:
            first = statements[fingerprints.index(fingerprint)]
            shapes[fingerprint] = (first.display_sql, first.kind)
        site_of = self._site_map(rootdir).__getitem__
        # (fingerprint, call site) pairs, distinct, in order of first appearance
        sites = map(site_of, map(call_site_of, statements))
        at = dict.fromkeys(zip(fingerprints, sites, strict=True))
        intern = self._intern
        return (
            RECORD_VERSION,
            nodeid,
            outcome,
            count,
            intern(tuple((kind, n) for kind, n in by_kind.items() if n)),
            intern((intern(tuple(counts.items())), intern(tuple(at)))),
            budget,
            violation,
            self._findings([finding_record(f, rootdir) for f in findings or ()]),
            self._plans(plans, by_identity=True) if plans else (),
            duration,
        )

    def add(self, compact: Compact) -> None:
        """Keep a record made by :meth:`make`."""
        self._records.append(compact)

    def append(self, record: TestRecord) -> None:
        """Keep a record given as dicts (a worker's, decoded)."""
        shapes = self._shapes
        counts: list[tuple[str, int]] = []
        at: list[tuple[str, tuple[str, int, str]]] = []
        for fingerprint, entry in record["fingerprints"].items():
            if fingerprint not in shapes:
                shapes[fingerprint] = (entry["display_sql"], entry["kind"])
            counts.append((fingerprint, entry["count"]))
            at.extend((fingerprint, self._site_of(site)) for site in entry["call_sites"])
        intern = self._intern
        self._records.append(
            (
                record["version"],
                record["nodeid"],
                record["outcome"],
                record["count"],
                intern(tuple(record["by_kind"].items())),
                intern((intern(tuple(counts)), intern(tuple(at)))),
                record["budget"],
                record["violation"],
                self._findings(record["findings"]),
                self._plans(record["plans"], by_identity=False),
                record["duration"],
            )
        )

    def append_encoded(self, text: str) -> None:
        """Keep a record encoded by :func:`encode_record` (a worker's)."""
        self.append(decode_record(text))

    def _intern(self, value: tuple[Any, ...]) -> tuple[Any, ...]:
        interned: tuple[Any, ...] = self._interned.setdefault(value, value)
        return interned

    def _findings(self, findings: list[FindingRecord]) -> str | None:
        if not findings:
            return None
        text = _ENCODER.encode(findings)
        interned: str = self._interned.setdefault(text, text)
        return interned

    def _site_map(self, rootdir: str) -> _SiteMap:
        found = self._sites.get(rootdir)
        if found is None:
            found = self._sites[rootdir] = _SiteMap(rootdir, self._interned)
        return found

    def _site_of(self, site: CallSiteRecord) -> tuple[str, int, str]:
        key = (site["path"], site["line"], site["function"])
        found: tuple[str, int, str] = self._interned.setdefault(key, key)
        return found

    def _plans(self, plans: dict[str, Any], *, by_identity: bool) -> tuple[Any, ...]:
        """``(fingerprint, fact index)`` pairs. The plan checks hand the same facts object for
        a plan seen before, so the store knows it by identity (and keeps it, so the identity
        stays its); a worker's decoded facts are known by their JSON."""
        index, facts_kept = self._fact_index, self._facts
        pairs = []
        for fingerprint, facts in plans.items():
            key: Any = id(facts) if by_identity else _ENCODER.encode(facts)
            fact_id = index.get(key)
            if fact_id is None:
                text = _ENCODER.encode(facts) if by_identity else key
                fact_id = index.get(text)
                if fact_id is None:
                    fact_id = index[text] = len(facts_kept)
                    facts_kept.append(_DECODER.decode(text))  # a copy: the caller's may change
                if by_identity:
                    index[key] = fact_id
                    self._fact_refs.append(facts)  # keeps id(facts) from naming another object
            pairs.append((fingerprint, fact_id))
        return self._intern(tuple(pairs))

    # -- reading ------------------------------------------------------------------------------

    def expand(self, compact: Compact) -> TestRecord:
        """A record as dicts, from the tuple :meth:`make` or :meth:`append` kept."""
        (version, nodeid, outcome, count, by_kind, (counts, at), budget, violation) = compact[:8]
        findings, plans, duration = compact[8:]
        shapes, facts = self._shapes, self._facts
        sites: dict[str, list[CallSiteRecord]] = {}
        for fingerprint, site in at:
            if site is not None:
                path, line, function = site
                sites.setdefault(fingerprint, []).append(
                    {"path": path, "line": line, "function": function}
                )
        return {
            "version": version,
            "nodeid": nodeid,
            "outcome": outcome,
            "count": count,
            "by_kind": dict(by_kind),
            "fingerprints": {
                fingerprint: {
                    "display_sql": shapes[fingerprint][0],
                    "kind": shapes[fingerprint][1],
                    "count": n,
                    "call_sites": sites.get(fingerprint, []),
                }
                for fingerprint, n in counts
            },
            "budget": budget,
            "violation": violation,
            "findings": _DECODER.decode(findings) if findings else [],
            "plans": {fingerprint: facts[fact_id] for fingerprint, fact_id in plans},
            "duration": duration,
        }

    def summaries(self) -> Iterator[RecordSummary]:
        """Each record without its fingerprints: what the terminal summaries need, read cheaply
        (findings are decoded only for the tests that have any)."""
        facts = self._facts
        for compact in self._records:
            findings, plans = compact[8], compact[9]
            yield {
                "nodeid": compact[1],
                "outcome": compact[2],
                "count": compact[3],
                "by_kind": dict(compact[4]),
                "budget": compact[6],
                "violation": compact[7],
                "findings": _DECODER.decode(findings) if findings else [],
                "plans": {fingerprint: facts[fact_id] for fingerprint, fact_id in plans},
            }

    def statements_counted(self) -> int:
        """The statements all records count toward budgets, summed."""
        return sum(map(count_of, self._records))

    def __len__(self) -> int:
        return len(self._records)

    @overload
    def __getitem__(self, index: int) -> TestRecord: ...

    @overload
    def __getitem__(self, index: slice) -> list[TestRecord]: ...

    def __getitem__(self, index: int | slice) -> TestRecord | list[TestRecord]:
        if isinstance(index, slice):
            return [self.expand(compact) for compact in self._records[index]]
        return self.expand(self._records[index])

    def __iter__(self) -> Iterator[TestRecord]:
        for compact in self._records:
            yield self.expand(compact)

    def __repr__(self) -> str:
        return f"<RecordStore of {len(self._records)} records>"


def count_of(compact: Compact) -> int:
    """The statements a kept record counts toward budgets."""
    count: int = compact[3]
    return count


def by_kind_of(compact: Compact) -> tuple[tuple[str, int], ...]:
    """``(kind, count)`` of a kept record, for the kinds with statements."""
    pairs: tuple[tuple[str, int], ...] = compact[4]
    return pairs


class StoredRecord:
    """What a call report carries in its ``sqlaperf`` attribute in the process that ran the
    test: the record, read (as dicts) only when asked for. It leaves an xdist worker as the
    record's JSON text (the plugin's ``pytest_report_to_serializable``)."""

    __slots__ = ("compact", "store")

    def __init__(self, store: RecordStore, compact: Compact) -> None:
        self.store = store
        self.compact = compact

    def record(self) -> TestRecord:
        return self.store.expand(self.compact)

    def __reduce__(self) -> tuple[Any, tuple[str]]:
        # a report pickled or deep-copied by another plugin takes the record, not the store
        return decode_record, (encode_record(self.record()),)

    def __repr__(self) -> str:
        return f"<StoredRecord {self.compact[1]!r}>"


def record_of(report: Any) -> TestRecord | None:
    """The record a test's call report carries (as dicts), or None: for conftests that read
    them. ``pytest_runtest_logreport(report)`` sees it for each test, in xdist's controller too.
    """
    value = getattr(report, RECORD_ATTRIBUTE, None)
    if isinstance(value, StoredRecord):
        return value.record()
    return decode_record(value) if isinstance(value, str) else None
