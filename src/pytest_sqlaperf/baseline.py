"""Baselines: recorded counts, fingerprints and plan facts per test; read, merge, update, write.

The file is JSON with sorted keys and one fact per line, so that its ``git diff`` reads as evidence.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import tempfile
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypedDict

from .errors import SqlaperfError
from .records import FindingRecord, TestRecord

SCHEMA_VERSION = 1
KIND = "sqlaperf-baseline"
LOOP_FINDINGS = frozenset({"n_plus_one", "repeated", "duplicate", "n_plus_one_write", "lazy_load"})
PLAN_FINDINGS = frozenset({"seq_scan", "index_walk", "sort_without_index"})
MODES = ("check", "update", "ratchet")
_USING = re.compile(r"\bIndex (?:Only )?Scan(?: Backward)? using (\S+)")


class BaselineError(SqlaperfError):
    """A baseline (or report) file that cannot be used; the message names it and what to do."""


class FingerprintEntry(TypedDict):
    count: int
    kind: str
    sql: str


class PlanEntry(TypedDict):
    findings: list[str]
    indexes: list[str]


class Entry(TypedDict):
    """One test in the baseline: only what is deterministic (no call-site lines, no durations)."""

    count: int
    by_kind: dict[str, int]
    fingerprints: dict[str, FingerprintEntry]
    findings: list[str]  # loop findings (N+1, repeats), as signatures: "kind subject at path"
    plans: dict[str, PlanEntry]  # per fingerprint, only those with plan facts


@dataclass
class Baseline:
    environment: dict[str, str | None] = field(default_factory=dict)
    tests: dict[str, Entry] = field(default_factory=dict)


# -- from records ---------------------------------------------------------------------------------


def finding_signature(finding: FindingRecord) -> str:
    """A finding's identity across runs: kind, subject and file. Not the line, which moves with
    every edit above it, nor the function, which is ``<listcomp>`` on Python 3.11 only."""
    target = finding["target"]
    subject = target if target and not any(c.isspace() for c in target) else None
    subject = subject or finding["fingerprint"] or "-"
    site = finding["call_site"]
    where = f" at {site['path']}" if site else ""
    return f"{finding['kind']} {subject}{where}"


def select_records(records: Iterable[TestRecord]) -> dict[str, TestRecord]:
    """Records by node id, sorted. A node id run twice (reruns, ``--dist each``) keeps its
    heaviest run, so that the choice does not depend on the order xdist workers report in."""
    chosen: dict[str, TestRecord] = {}
    for record in records:
        other = chosen.get(record["nodeid"])
        if other is None or _weight(record) > _weight(other):
            chosen[record["nodeid"]] = record
    return dict(sorted(chosen.items()))


def _weight(record: TestRecord) -> tuple[int, str]:
    return record["count"], json.dumps(entry_from_record(record), sort_keys=True)


def _plan_indexes(facts: object) -> list[str]:
    """The indexes a plan used: an ``indexes`` list when the plan checks give one, else the
    ``using NAME`` of the plan's shape lines (``Index Scan using ix_posts_author on posts``)."""
    if not isinstance(facts, Mapping):
        return []
    for key in ("indexes", "indexes_used"):
        value = facts.get(key)
        if isinstance(value, (list, tuple)):
            return sorted({str(name) for name in value})
    shape = facts.get("shape")
    if isinstance(shape, (list, tuple)):
        return sorted({match for line in shape for match in _USING.findall(str(line))})
    return []


def entry_from_record(record: TestRecord) -> Entry:
    plans: dict[str, PlanEntry] = {}
    for fingerprint, facts in record["plans"].items():
        indexes = _plan_indexes(facts)
        if indexes:
            plans[fingerprint] = {"findings": [], "indexes": indexes}
    loop_findings: set[str] = set()
    for finding in record["findings"]:
        if finding["kind"] in LOOP_FINDINGS:
            loop_findings.add(finding_signature(finding))
        elif finding["kind"] in PLAN_FINDINGS:
            key = finding["fingerprint"] or "-"
            plan = plans.setdefault(key, {"findings": [], "indexes": []})
            if finding_signature(finding) not in plan["findings"]:
                plan["findings"] = sorted([*plan["findings"], finding_signature(finding)])
    return {
        "count": record["count"],
        "by_kind": dict(sorted(record["by_kind"].items())),
        "fingerprints": {
            fingerprint: {
                "count": entry["count"],
                "kind": entry["kind"],
                "sql": entry["display_sql"],
            }
            for fingerprint, entry in sorted(record["fingerprints"].items())
        },
        "findings": sorted(loop_findings),
        "plans": dict(sorted(plans.items())),
    }


def major_of(version: str | None) -> str | None:
    """``"16"`` from ``"16.4 (Debian 16.4-1)"``; None when unknown."""
    if not version:
        return None
    head = version.split()[0]
    digits = head.split(".")[0]
    return digits if digits.isdigit() else None


def release_of(version: str) -> str:
    """The part of a version that may change behaviour: major (x.y for 0.x releases)."""
    parts = version.split(".")
    if parts[0] == "0" and len(parts) > 1:
        return f"0.{parts[1]}"
    return parts[0]


def environment_of(
    server_version: str | None, versions: Callable[[str], str | None]
) -> dict[str, str | None]:
    """What counts and plans legitimately depend on: SQLAlchemy x.y, the drivers, PostgreSQL major.

    ``versions`` gives an installed distribution's version (None when not installed).
    """
    sqlalchemy = versions("sqlalchemy")
    environment: dict[str, str | None] = {
        "postgresql": major_of(server_version),
        "sqlalchemy": ".".join(sqlalchemy.split(".")[:2]) if sqlalchemy else None,
    }
    for driver in ("asyncpg", "psycopg", "psycopg2"):
        version = versions(driver)
        if version:
            environment[driver] = release_of(version)
    return environment


def environment_differences(
    recorded: Mapping[str, str | None],
    current: Mapping[str, str | None],
    labels: tuple[str, str] = ("baseline", "this run"),
) -> list[str]:
    """How two environments differ, e.g. ``"sqlalchemy 2.0 (baseline) vs 2.1 (this run)"``.

    Unknown values (a run that started no server) match anything; a driver installed on only one
    side is not a difference (the tests may not use it).
    """
    differences = []
    for key in sorted(set(recorded) & set(current)):
        before, after = recorded[key], current[key]
        if before is not None and after is not None and before != after:
            differences.append(f"{key} {before} ({labels[0]}) vs {after} ({labels[1]})")
    return differences


# -- reading and writing --------------------------------------------------------------------------


def _entry(nodeid: str, raw: object, source: str) -> Entry:
    if not isinstance(raw, dict) or not isinstance(raw.get("count"), int):
        raise BaselineError(f"{source}: the entry of {nodeid!r} has no statement count")
    fingerprints = raw.get("fingerprints", {})
    plans = raw.get("plans", {})
    if not isinstance(fingerprints, dict) or not isinstance(plans, dict):
        raise BaselineError(f"{source}: the entry of {nodeid!r} is malformed")
    return {
        "count": raw["count"],
        "by_kind": {str(k): int(v) for k, v in dict(raw.get("by_kind", {})).items()},
        "fingerprints": {
            str(fp): {"count": int(e["count"]), "kind": str(e["kind"]), "sql": str(e["sql"])}
            for fp, e in fingerprints.items()
        },
        "findings": sorted(str(f) for f in raw.get("findings", [])),
        "plans": {
            str(fp): {
                "findings": sorted(str(f) for f in p.get("findings", [])),
                "indexes": sorted(str(i) for i in p.get("indexes", [])),
            }
            for fp, p in plans.items()
        },
    }


def parse(data: object, source: str) -> Baseline:
    """A baseline from decoded JSON; raises :class:`BaselineError` saying what is wrong."""
    if not isinstance(data, dict) or data.get("kind", KIND) != KIND or "tests" not in data:
        raise BaselineError(f"{source} is not a sqlaperf baseline (no 'tests' of kind {KIND!r})")
    version = data.get("schema_version")
    if version != SCHEMA_VERSION:
        raise BaselineError(
            f"{source} has schema_version {version!r}; this pytest-sqlaperf reads version "
            f"{SCHEMA_VERSION}: upgrade pytest-sqlaperf, or re-record the file with "
            "--sqlaperf-baseline-mode=update"
        )
    tests, environment = data["tests"], data.get("environment", {})
    if not isinstance(tests, dict) or not isinstance(environment, dict):
        raise BaselineError(f"{source}: 'tests' and 'environment' must be objects")
    try:
        entries = {str(nodeid): _entry(nodeid, raw, source) for nodeid, raw in tests.items()}
    except (KeyError, TypeError, ValueError, AttributeError) as error:
        raise BaselineError(
            f"{source}: malformed entry ({type(error).__name__}: {error})"
        ) from None
    return Baseline(
        environment={str(k): None if v is None else str(v) for k, v in environment.items()},
        tests=dict(sorted(entries.items())),
    )


def load_json(path: Path) -> object:
    """A JSON file's content; raises :class:`BaselineError` naming the file when it cannot."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise BaselineError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError) as error:
        raise BaselineError(f"{path}: cannot be read ({error})") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise BaselineError(
            f"{path} is not valid JSON (line {error.lineno}, column {error.colno}: {error.msg})"
        ) from None


def read(path: Path) -> Baseline:
    """Read a baseline file; a corrupt file or an unknown schema version raises, never resets."""
    try:
        return parse(load_json(path), str(path))
    except BaselineError as error:
        raise BaselineError(
            f"{error}; fix the file (see its git history), or delete it and record a new one "
            "with --sqlaperf-baseline-mode=update"
        ) from None


def dumps(baseline: Baseline) -> str:
    document = {
        "environment": baseline.environment,
        "kind": KIND,
        "schema_version": SCHEMA_VERSION,
        "tests": baseline.tests,
    }
    return json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def write_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` so that readers see the old file or the new one, never a part.

    A temporary file in the same directory, fsynced, then renamed over the target: a crash
    mid-write leaves the old file (and a stray temporary), and concurrent writers each replace
    the whole file.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(
        prefix=f".{path.name}.", suffix=".tmp", dir=path.parent
    )
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temporary, 0o644 & ~_umask())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
    with contextlib.suppress(OSError):  # the rename itself is durable once the directory is
        directory = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)


def _umask() -> int:
    # mkstemp makes 0600 files; a committed baseline should get the usual permissions.
    current = os.umask(0)
    os.umask(current)
    return current


def write(path: Path, baseline: Baseline) -> None:
    write_atomic(path, dumps(baseline))


# -- updating -------------------------------------------------------------------------------------


def stale_entries(
    nodeids: Iterable[str],
    *,
    rootdir: Path,
    seen: set[str],
    collected_files: set[str],
    whole_files: bool,
) -> set[str]:
    """Entries of tests that no longer exist, telling them from tests merely not selected.

    An entry is stale when its file no longer exists, or when its file was collected whole in
    this run (``whole_files``: no ``file::name`` argument) and the test was neither collected nor
    deselected (``seen``).
    """
    stale = set()
    for nodeid in nodeids:
        path = nodeid.split("::", 1)[0]
        gone = not (rootdir / path).exists()
        if gone or (whole_files and path in collected_files and nodeid not in seen):
            stale.add(nodeid)
    return stale


def updated(
    before: Baseline,
    entries: Mapping[str, Entry],
    environment: dict[str, str | None],
    stale: set[str],
) -> Baseline:
    """``update`` mode: this run's entries replace the recorded ones; stale entries go."""
    tests = {nodeid: entry for nodeid, entry in before.tests.items() if nodeid not in stale}
    tests.update(entries)
    return Baseline(environment=environment, tests=dict(sorted(tests.items())))


def ratcheted(
    before: Baseline,
    entries: Mapping[str, Entry],
    accepted: Iterable[str],
    stale: set[str],
) -> Baseline:
    """``ratchet`` mode: record the ``accepted`` tests (new ones, and changes that are no worse);
    keep the rest as it was."""
    tests = {nodeid: entry for nodeid, entry in before.tests.items() if nodeid not in stale}
    for nodeid in accepted:
        tests[nodeid] = entries[nodeid]
    return Baseline(environment=before.environment, tests=dict(sorted(tests.items())))


def merge(baselines: Iterable[tuple[str, Baseline]]) -> Baseline:
    """One baseline from several (CI shards); a node id with different entries is an error."""
    merged = Baseline()
    origin: dict[str, str] = {}
    first = ""
    for source, baseline in baselines:
        first = first or source
        differences = environment_differences(
            merged.environment, baseline.environment, (first, source)
        )
        if differences:
            raise BaselineError(
                f"{source} was recorded in another environment than {first} "
                f"({'; '.join(differences)}); merge files recorded in one environment"
            )
        for key, value in baseline.environment.items():
            if merged.environment.get(key) is None:
                merged.environment[key] = value
        for nodeid, entry in baseline.tests.items():
            if nodeid in merged.tests and merged.tests[nodeid] != entry:
                raise BaselineError(
                    f"{nodeid} differs between {origin[nodeid]} and {source}; "
                    "shards must not run the same test with different results"
                )
            merged.tests[nodeid] = entry
            origin.setdefault(nodeid, source)
    merged.environment = dict(sorted(merged.environment.items()))
    merged.tests = dict(sorted(merged.tests.items()))
    return merged


def entries_of(records: Mapping[str, TestRecord]) -> dict[str, Entry]:
    return {nodeid: entry_from_record(record) for nodeid, record in records.items()}
