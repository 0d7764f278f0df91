"""Terminal output of the plan checks: a failed test's plan findings, and the ``sqlaperf plans``
summary section (plan findings, EXPLAIN counts, foreign keys without index, unused indexes)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ..checks.plans import KINDS

if TYPE_CHECKING:
    from ..checks.findings import Finding
    from ..records import CallSiteRecord, FindingRecord, RecordSummary
    from .terminal import Writer

MAX_LISTED = 20


def failure(findings: Sequence[Finding], why: str) -> str:
    """The failure message of a test whose statements read what no index serves."""
    count = len(findings)
    lines = [f"{count} read{'s' if count > 1 else ''} no index serves ({why}):"]
    for number, finding in enumerate(findings, 1):
        lines.append(f"{number}. [{finding.kind}] {finding.message}")
        sql, *plan = finding.evidence
        lines.append(f"     {sql}")
        if finding.call_site is not None:
            lines.append(f"     at {finding.call_site}")
        lines.append("   plan:")
        lines += [f"     {line}" for line in plan]
        if finding.fix:
            lines.append("   fix:")
            lines += [f"     {line}" for line in finding.fix.splitlines()]
    return "\n".join(lines)


def _site(site: CallSiteRecord | None) -> str:
    return "" if site is None else f"{site['path']}:{site['line']} in {site['function']}"


def _explain_counts(records: Sequence[RecordSummary]) -> tuple[int, Counter[str]]:
    planned: set[str] = set()
    skipped: dict[str, str] = {}
    for record in records:
        for fingerprint, facts in record["plans"].items():
            if "skipped" in facts:
                skipped.setdefault(fingerprint, str(facts["skipped"]))
            else:
                planned.add(fingerprint)
    reasons = Counter(reason for fp, reason in skipped.items() if fp not in planned)
    return len(planned), reasons


def summary(
    writer: Writer,
    records: Sequence[RecordSummary],
    *,
    mode: str,
    catalog_findings: Sequence[FindingRecord],
    unused_indexes: Sequence[dict[str, Any]],
    notes: Sequence[str],
) -> None:
    """The ``sqlaperf plans`` section; nothing when no statement was EXPLAINed."""
    planned, skipped = _explain_counts(records)
    if not planned and not skipped and not catalog_findings:
        return
    writer.write_sep("-", "sqlaperf plans")
    line = f"EXPLAIN: {planned} statement shape{'s' if planned != 1 else ''} planned"
    if skipped:
        reasons = ", ".join(f"{reason} {n}" for reason, n in skipped.most_common())
        line += f", {sum(skipped.values())} skipped ({reasons})"
    writer.write_line(line)
    _plan_findings(writer, records, mode)
    if catalog_findings:
        writer.write_line(f"foreign keys without an index: {len(catalog_findings)}", yellow=True)
        for finding in catalog_findings[:MAX_LISTED]:
            writer.write_line(f"  {finding['target']}: {finding['message'].split(':')[0]}")
            fix = (finding["fix"] or "").splitlines()
            if fix:
                writer.write_line(f"    {fix[0]}")
    if unused_indexes:
        writer.write_line(
            f"indexes no test used (informational): {len(unused_indexes)}", yellow=True
        )
        for index in unused_indexes[:MAX_LISTED]:
            reads = index["table_reads"]
            table = (
                index["table"]
                if index["schema"] == "public"
                else (f"{index['schema']}.{index['table']}")
            )
            times = f"{reads} time{'s' if reads != 1 else ''}"
            writer.write_line(f"  {index['index']} on {table} (table read {times})")
    for note in notes:
        writer.write_line(f"note: {note}")


def _plan_findings(writer: Writer, records: Sequence[RecordSummary], mode: str) -> None:
    grouped: dict[tuple[str, str, str], list[tuple[str, FindingRecord]]] = {}
    for record in records:
        for finding in record["findings"]:
            if finding["kind"] in KINDS:
                key = (finding["kind"], finding["message"], finding["fix"] or "")
                grouped.setdefault(key, []).append((record["nodeid"], finding))
    if not grouped:
        writer.write_line("plan findings: none", green=True)
        return
    failing = mode == "fail"
    advice = (
        "their tests failed"
        if failing
        else "listed only; --sqlaperf-explain=fail or @pytest.mark.no_seq_scan fail the tests"
    )
    writer.write_line(f"plan findings: {len(grouped)} ({advice})", red=failing, yellow=not failing)
    for (kind, message, fix), where in list(grouped.items())[:MAX_LISTED]:
        nodeid, first = where[0]
        more = f", +{len(where) - 1} more" if len(where) > 1 else ""
        writer.write_line(f"  [{kind}] {message}")
        writer.write_line(f"    at {_site(first['call_site'])} ({nodeid}{more})")
        for statement in fix.splitlines():
            if statement.startswith("CREATE "):
                writer.write_line(f"    {statement}")
