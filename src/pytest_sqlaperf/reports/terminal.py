"""Terminal output: the header line, per-test records and the ``sqlaperf`` summary section."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from ..capture import listeners
from .jsonreport import plural

if TYPE_CHECKING:
    from collections.abc import Iterable

    from ..postgres.server import ServerInfo
    from ..records import RecordSummary
    from ..settings import Settings
    from .delta import Comparison
    from .jsonreport import BaselineUse

TOP_TESTS = 10


class Writer(Protocol):
    """What the summary needs of pytest's TerminalReporter."""

    def write_sep(self, sep: str, title: str | None = None, **markup: bool) -> None: ...

    def write_line(self, line: str, **markup: bool) -> None: ...


def header(settings: Settings) -> str:
    where = settings.backend
    if settings.backend == "auto":
        where = "auto (url)" if settings.url else "auto (embedded, started on first use)"
    # which statement listener records (capture/listeners.py): the C one costs less
    recorder = "C" if listeners.accelerated() else "Python"
    if not listeners.accelerated() and listeners.EXTENSION_ERROR:
        recorder += f" ({listeners.EXTENSION_ERROR})"
    return f"sqlaperf: backend {where}; statements recorded in {recorder}"


def summary(writer: Writer, records: Iterable[RecordSummary], server: ServerInfo | None) -> None:
    """The ``sqlaperf`` section: server, totals, the heaviest tests and budget violations."""
    total = measured = budgeted = tests = 0
    by_kind: dict[str, int] = {}
    ran: list[tuple[int, str, str | None]] = []  # (count, nodeid, budget) of tests that ran any
    violations: list[tuple[str, str]] = []
    for record in records:
        tests += 1
        count = record["count"]
        total += count
        if count:
            measured += 1
            ran.append((count, record["nodeid"], record["budget"]))
        for kind, n in record["by_kind"].items():
            by_kind[kind] = by_kind.get(kind, 0) + n
        if record["violation"]:
            violations.append((record["nodeid"], record["violation"]))
        if record["budget"]:
            budgeted += 1
    if not total and server is None:
        return
    writer.write_sep("=", "sqlaperf")
    if server is not None:
        writer.write_line(f"server: {server.description}")
    else:
        writer.write_line("server: none started (the tests used engines of their own)")
    kinds = ", ".join(f"{kind} {count}" for kind, count in sorted(by_kind.items()))
    writer.write_line(
        f"measured: {tests} tests, {measured} ran statements; "
        f"{total} statements" + (f" ({kinds})" if kinds else "")
    )
    heaviest = sorted(ran, key=lambda entry: (-entry[0], entry[1]))[:TOP_TESTS]
    if heaviest:
        writer.write_line(f"top {len(heaviest)} tests by statements:")
        width = len(str(heaviest[0][0]))
        for count, nodeid, budget in heaviest:
            marked = f"  [{budget}]" if budget else ""
            writer.write_line(f"  {count:>{width}}  {nodeid}{marked}")
    if violations:
        writer.write_line(f"budget violations: {len(violations)}", red=True, bold=True)
        for nodeid, violation in violations:
            writer.write_line(f"  {nodeid}: {violation}", red=True)
    elif budgeted:
        writer.write_line(f"budgets: {budgeted} tests, all within budget", green=True)


def comparison_lines(comparison: Comparison, *, listed: int = TOP_TESTS) -> list[tuple[str, bool]]:
    """The comparison as lines (and whether each is bad news): counts, then every regression with
    the fingerprints added or grown and their call sites."""
    lines: list[tuple[str, bool]] = []
    parts = [
        plural(len(comparison["regressions"]), "regression"),
        plural(len(comparison["improvements"]), "improvement"),
        f"{len(comparison['new'])} not in the baseline",
        f"{comparison['unchanged']} unchanged",
    ]
    if comparison["changed"]:
        parts.append(f"{len(comparison['changed'])} with other statements at the same count")
    if comparison["tolerated"]:
        parts.append(f"{len(comparison['tolerated'])} within tolerance {comparison['tolerance']}")
    lines.append((", ".join(parts), bool(comparison["regressions"])))
    if comparison["environment"]:
        lines.append(
            (
                "environment differs: " + "; ".join(comparison["environment"]) + "; differences "
                "are not counted as regressions: re-record the baseline in this environment "
                "(--sqlaperf-baseline-mode=update)",
                True,
            )
        )
    for change in comparison["regressions"]:
        label = "REGRESSION" if comparison["gating"] else "difference"
        lines.append(
            (f"{label} {change['nodeid']}: {change['before']} → {change['after']} statements", True)
        )
        lines += [(f"    {reason}", True) for reason in change["reasons"]]
        for fingerprint in change["fingerprints"]:
            grown = fingerprint["after"] - fingerprint["before"]
            new = "new, " if fingerprint["before"] == 0 else ""
            lines.append(
                (
                    f"    +{grown} ({new}×{fingerprint['after']}) {fingerprint['kind'].upper()}  "
                    f"{fingerprint['sql']}",
                    False,
                )
            )
            lines += [
                (f"        at {site['path']}:{site['line']} in {site['function']}", False)
                for site in fingerprint["call_sites"]
            ]
    for change in comparison["improvements"][:listed]:
        lines.append(
            (
                f"improved {change['nodeid']}: {change['before']} → {change['after']} statements",
                False,
            )
        )
    if len(comparison["improvements"]) > listed:
        lines.append(
            (f"...and {len(comparison['improvements']) - listed} more improvements", False)
        )
    return lines


def baseline_summary(
    writer: Writer, use: BaselineUse, *, fail_on_missing: bool, written: str | None
) -> None:
    """The baseline's part of the ``sqlaperf`` section: what was compared or written, and why the
    run failed when it did."""
    if not use["existed"] and use["mode"] is None:
        writer.write_line(
            f"baseline: {use['path']} does not exist yet; record it with "
            "--sqlaperf-baseline-mode=update and commit it",
            yellow=True,
        )
        return
    comparison = use["comparison"]
    if comparison is not None and use["mode"] != "update":
        lines = comparison_lines(comparison)
        first, bad = lines[0]
        writer.write_line(f"baseline: {use['path']} ({use['mode']}): {first}", red=bad, bold=bad)
        for line, bad in lines[1:]:
            writer.write_line(line, red=bad)
        if comparison["new"]:
            verb = "failing" if fail_on_missing and use["mode"] == "check" else "not failed"
            names = ", ".join(comparison["new"][:TOP_TESTS])
            more = (
                f", ...and {len(comparison['new']) - TOP_TESTS} more"
                if len(comparison["new"]) > TOP_TESTS
                else ""
            )
            writer.write_line(
                f"not in the baseline ({verb}; record with --sqlaperf-baseline-mode=update or "
                f"ratchet): {names}{more}",
                yellow=True,
            )
        if use["mode"] == "check" and comparison["improvements"]:
            writer.write_line(
                "record the improvements with --sqlaperf-baseline-mode=ratchet (or update)"
            )
    if written is not None:
        writer.write_line(f"baseline: {written}", green=use["written"])


def report_paths(writer: Writer, written: list[tuple[str, str]]) -> None:
    """Where each report was written."""
    for what, path in written:
        writer.write_line(f"{what} report: {path}")
