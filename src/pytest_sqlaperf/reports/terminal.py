"""Terminal output: the header line, per-test records and the ``sqlaperf`` summary section."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

from ..capture.querylog import QueryLog

if TYPE_CHECKING:
    from ..postgres.server import ServerInfo
    from ..settings import Settings

TOP_TESTS = 10


class Writer(Protocol):
    """What the summary needs of pytest's TerminalReporter."""

    def write_sep(self, sep: str, title: str | None = None, **markup: bool) -> None: ...

    def write_line(self, line: str, **markup: bool) -> None: ...


def make_record(
    nodeid: str, log: QueryLog, budget: str | None, violation: str | None, outcome: str
) -> dict[str, Any]:
    """A test's record: counts and fingerprints, never parameters (records may reach files)."""
    fingerprints: dict[str, dict[str, Any]] = {}
    for statement in log.counted:
        entry = fingerprints.setdefault(
            statement.fingerprint, {"display_sql": statement.display_sql, "count": 0}
        )
        entry["count"] += 1
    return {
        "nodeid": nodeid,
        "outcome": outcome,
        "count": log.count,
        "by_kind": {kind: n for kind, n in log.count_by_kind().items() if n},
        "fingerprints": fingerprints,
        "budget": budget,
        "violation": violation,
        "duration": sum(s.duration or 0.0 for s in log.statements),
    }


def header(settings: Settings) -> str:
    where = settings.backend
    if settings.backend == "auto":
        where = "auto (url)" if settings.url else "auto (embedded, started on first use)"
    return f"sqlaperf: backend {where}"


def summary(writer: Writer, records: list[dict[str, Any]], server: ServerInfo | None) -> None:
    """The ``sqlaperf`` section: server, totals, the heaviest tests and budget violations."""
    total = sum(record["count"] for record in records)
    if not total and server is None:
        return
    writer.write_sep("=", "sqlaperf")
    if server is not None:
        writer.write_line(f"server: {server.description}")
    else:
        writer.write_line("server: none started (the tests used engines of their own)")
    measured = sum(1 for record in records if record["count"])
    by_kind: dict[str, int] = {}
    for record in records:
        for kind, count in record["by_kind"].items():
            by_kind[kind] = by_kind.get(kind, 0) + count
    kinds = ", ".join(f"{kind} {count}" for kind, count in sorted(by_kind.items()))
    writer.write_line(
        f"measured: {len(records)} tests, {measured} ran statements; "
        f"{total} statements" + (f" ({kinds})" if kinds else "")
    )
    heaviest = sorted(
        (record for record in records if record["count"]),
        key=lambda record: (-record["count"], record["nodeid"]),
    )[:TOP_TESTS]
    if heaviest:
        writer.write_line(f"top {len(heaviest)} tests by statements:")
        width = len(str(heaviest[0]["count"]))
        for record in heaviest:
            budget = f"  [{record['budget']}]" if record["budget"] else ""
            writer.write_line(f"  {record['count']:>{width}}  {record['nodeid']}{budget}")
    violations = [record for record in records if record["violation"]]
    if violations:
        writer.write_line(f"budget violations: {len(violations)}", red=True, bold=True)
        for record in violations:
            writer.write_line(f"  {record['nodeid']}: {record['violation']}", red=True)
    else:
        budgeted = sum(1 for record in records if record["budget"])
        if budgeted:
            writer.write_line(f"budgets: {budgeted} tests, all within budget", green=True)
