"""Terminal output: the header line, per-test records and the ``sqlaperf`` summary section."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from ..postgres.server import ServerInfo
    from ..records import TestRecord
    from ..settings import Settings

TOP_TESTS = 10


class Writer(Protocol):
    """What the summary needs of pytest's TerminalReporter."""

    def write_sep(self, sep: str, title: str | None = None, **markup: bool) -> None: ...

    def write_line(self, line: str, **markup: bool) -> None: ...


def header(settings: Settings) -> str:
    where = settings.backend
    if settings.backend == "auto":
        where = "auto (url)" if settings.url else "auto (embedded, started on first use)"
    return f"sqlaperf: backend {where}"


def summary(writer: Writer, records: list[TestRecord], server: ServerInfo | None) -> None:
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
