"""The Markdown report, for a pull-request comment or a job summary: deltas and findings."""

from __future__ import annotations

from ..records import CallSiteRecord, TestRecord
from .delta import Change, Comparison
from .jsonreport import Report, delta_of, plural

MAX_ROWS = 50
MAX_FINDINGS = 50
MAX_SQL = 200


def code(text: str, *, in_table: bool = False) -> str:
    """An inline code span that holds any text: a fence longer than its longest backtick run."""
    text = " ".join(text.split())
    if in_table:
        text = text.replace("|", "\\|")
    run = longest = 0
    for character in text:
        run = run + 1 if character == "`" else 0
        longest = max(longest, run)
    fence = "`" * (longest + 1)
    padding = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{fence}{padding}{text}{padding}{fence}"


def plain(text: str) -> str:
    """Free text (messages, fixes) with what Markdown or GitHub's HTML would interpret escaped."""
    text = " ".join(text.split())
    for character, escaped in (("&", "&amp;"), ("<", "&lt;"), (">", "&gt;")):
        text = text.replace(character, escaped)
    for character in "\\`*_[]|":
        text = text.replace(character, "\\" + character)
    return text


def _sql(sql: str) -> str:
    return sql if len(sql) <= MAX_SQL else sql[: MAX_SQL - 1] + "…"


def _site(site: CallSiteRecord) -> str:
    return f"{code(site['path'] + ':' + str(site['line']))} in {code(site['function'])}"


def _signed(delta: int) -> str:
    return f"+{delta}" if delta > 0 else ("±0" if delta == 0 else f"−{-delta}")


def _summary_line(label: str, comparison: Comparison) -> str:
    parts = [
        f"**{plural(len(comparison['regressions']), 'regression')}**"
        if comparison["regressions"]
        else "no regressions",
        plural(len(comparison["improvements"]), "improvement"),
        f"{plural(len(comparison['new']), 'new test')}",
        f"{comparison['unchanged']} unchanged",
    ]
    if comparison["tolerated"]:
        parts.append(f"{len(comparison['tolerated'])} within tolerance ({comparison['tolerance']})")
    if comparison["not_run"]:
        parts.append(f"{len(comparison['not_run'])} not run")
    return f"Against {code(label)}: " + ", ".join(parts) + "."


def _delta_table(counts: dict[str, int], comparison: Comparison) -> list[str]:
    regressed = {c["nodeid"] for c in comparison["regressions"]}
    rows: list[tuple[int, str, str, str, str]] = []
    for nodeid, before in comparison["before"].items():
        after = counts.get(nodeid)
        if after is None or after == before:
            continue
        mark = "❌" if nodeid in regressed else ("✅" if after < before else "➖")
        rows.append((-abs(after - before), nodeid, mark, str(before), f"{after}"))
    for nodeid in comparison["new"]:
        if nodeid in counts:
            rows.append((0, nodeid, "🆕", "", str(counts[nodeid])))
    if not rows:
        return ["No test changed its statement count."]
    rows.sort(key=lambda row: (row[2] != "❌", row[0], row[1]))
    lines = ["| | test | before | after | Δ |", "|---|---|--:|--:|--:|"]
    for _, nodeid, mark, was, now in rows[:MAX_ROWS]:
        delta = _signed(int(now) - int(was)) if was else ""
        lines.append(f"| {mark} | {code(nodeid, in_table=True)} | {was} | {now} | {delta} |")
    if len(rows) > MAX_ROWS:
        lines.append(f"\n…and {len(rows) - MAX_ROWS} more tests (see the HTML or JSON report).")
    return lines


def _regression(change: Change) -> list[str]:
    lines = [
        f"**{code(change['nodeid'])}**: {change['before']} → {change['after']} statements",
    ]
    lines += [f"- {plain(reason)}" for reason in change["reasons"]]
    for fingerprint in change["fingerprints"]:
        grown = fingerprint["after"] - fingerprint["before"]
        new = " (new)" if fingerprint["before"] == 0 else ""
        lines.append(
            f"- {_signed(grown)}{new} {fingerprint['kind'].upper()} ×{fingerprint['after']} "
            f"{code(_sql(fingerprint['sql']))}"
        )
        lines += [f"  - at {_site(site)}" for site in fingerprint["call_sites"]]
    return lines


def _findings(records: list[TestRecord]) -> list[str]:
    found = [(record, finding) for record in records for finding in record["findings"]]
    if not found:
        return []
    lines = ["", f"### Findings ({len(found)})", ""]
    for record, finding in found[:MAX_FINDINGS]:
        where = f" at {_site(finding['call_site'])}" if finding["call_site"] else ""
        lines.append(
            f"- **{plain(finding['kind'])}** in {code(record['nodeid'])}{where}: "
            f"{plain(finding['message'])}"
        )
        if finding["source"]:
            lines.append(f"  - rows from {_site(finding['source'])}")
        if finding["fix"]:
            lines.append(f"  - fix: {plain(finding['fix'])}")
    if len(found) > MAX_FINDINGS:
        lines.append(f"- …and {len(found) - MAX_FINDINGS} more (see the HTML or JSON report)")
    return lines


def comparison_section(label: str, comparison: Comparison, counts: dict[str, int]) -> list[str]:
    """The summary line, the delta table and the regressions; ``counts`` are the new counts."""
    lines = [_summary_line(label, comparison)]
    if comparison["environment"]:
        lines += [
            "",
            "> **Environment differs**: " + plain("; ".join(comparison["environment"])) + ". "
            "Differences are not counted as regressions; re-record the baseline in this "
            "environment.",
        ]
    lines += ["", *_delta_table(counts, comparison)]
    if comparison["regressions"]:
        lines += ["", "### Regressions", ""]
        for change in comparison["regressions"]:
            lines += [*_regression(change), ""]
    return lines


def render(report: Report) -> str:
    totals = report["totals"]
    kinds = ", ".join(f"{kind} {count}" for kind, count in totals["by_kind"].items())
    lines = [
        f"## sqlaperf: {plural(totals['statements'], 'statement')} in "
        f"{plural(totals['tests'], 'test')}",
        "",
    ]
    if kinds:
        lines += [f"By kind: {kinds}.", ""]
    chosen = delta_of(report)
    if chosen is None:
        use = report["baseline"]
        if use is not None and not use["existed"]:
            lines.append(
                f"No baseline yet: record {code(use['path'])} with "
                f"{code('--sqlaperf-baseline-mode=update')} and commit it."
            )
        else:
            lines.append("No baseline to compare with.")
    else:
        counts = {record["nodeid"]: record["count"] for record in report["tests"]}
        lines += comparison_section(*chosen, counts)
    lines += _findings(report["tests"])
    if report["unused_indexes"]:
        names = ", ".join(code(str(index)) for index in report["unused_indexes"])
        lines += ["", f"Indexes no statement used: {names}."]
    server = report["server"]
    lines += ["", f"<sub>{plain(server['description'] if server else 'no server started')}</sub>"]
    return "\n".join(lines).rstrip() + "\n"
