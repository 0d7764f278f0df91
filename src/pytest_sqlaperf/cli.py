"""The ``sqlaperf`` console script: diff, show and merge reports and baselines.

Exit codes: 0 fine, 1 ``diff`` found regressions, 2 bad input (one line on stderr, no traceback).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from . import baseline as baselines
from .baseline import Baseline, BaselineError
from .reports import delta, jsonreport, markdown, merging, terminal
from .reports.jsonreport import Report, plural

TOP_TESTS = 10


def _load(path: str) -> Report | Baseline:
    return jsonreport.load(Path(path))


def _head(loaded: Report | Baseline) -> tuple[Baseline, dict[str, int], delta.Sites]:
    """Entries, counts and call sites of the newer side of a diff."""
    entries = jsonreport.as_baseline(loaded)
    counts = {nodeid: entry["count"] for nodeid, entry in entries.tests.items()}
    sites: delta.Sites = {}
    if not isinstance(loaded, Baseline):
        sites = delta.sites_of(baselines.select_records(loaded["tests"]))
    return entries, counts, sites


def diff(args: argparse.Namespace) -> int:
    before = jsonreport.as_baseline(_load(args.base))
    after, counts, sites = _head(_load(args.head))
    comparison = delta.compare(
        before, after.tests, after.environment, tolerance=args.tolerance, sites=sites
    )
    if args.format == "json":
        print(json.dumps(comparison, indent=2, sort_keys=True, ensure_ascii=False))
    elif args.format == "md":
        print("\n".join(markdown.comparison_section(args.base, comparison, counts)))
    else:
        print(f"{args.base} → {args.head}")
        for line, _ in terminal.comparison_lines(comparison):
            print(line)
        if comparison["new"]:
            print(f"not in {args.base}: " + ", ".join(comparison["new"]))
        if comparison["not_run"]:
            print(f"not in {args.head}: " + ", ".join(comparison["not_run"]))
    return 1 if comparison["regressions"] and comparison["gating"] else 0


def _show_baseline(path: str, loaded: Baseline) -> None:
    environment = ", ".join(f"{k} {v}" for k, v in loaded.environment.items() if v)
    total = sum(entry["count"] for entry in loaded.tests.values())
    print(f"{path}: baseline of {plural(len(loaded.tests), 'test')}, {total} statements")
    print(f"recorded with: {environment or 'unknown'}")
    heaviest = sorted(loaded.tests.items(), key=lambda item: (-item[1]["count"], item[0]))
    for nodeid, entry in heaviest[:TOP_TESTS]:
        findings = len(entry["findings"]) + sum(len(p["findings"]) for p in entry["plans"].values())
        print(f"  {entry['count']:>5}  {nodeid}" + (f"  ({findings} findings)" if findings else ""))


def _show_report(path: str, report: Report) -> None:
    totals = report["totals"]
    kinds = ", ".join(f"{kind} {count}" for kind, count in totals["by_kind"].items())
    server = report["server"]
    print(f"{path}: report of run {report['run']['run_id']} ({report['run']['finished']})")
    print(f"server: {server['description'] if server else 'none started'}")
    print(
        f"measured: {plural(totals['tests'], 'test')}, {totals['statements']} statements"
        + (f" ({kinds})" if kinds else "")
        + f", {plural(totals['findings'], 'finding')}"
    )
    heaviest = sorted(report["tests"], key=lambda r: (-r["count"], r["nodeid"]))[:TOP_TESTS]
    for record in heaviest:
        print(f"  {record['count']:>5}  {record['nodeid']}")
    for record in report["tests"]:
        for finding in record["findings"]:
            print(f"{record['nodeid']}: {finding['kind']}: {finding['message']}")
            if finding["fix"]:
                print(f"    fix: {finding['fix']}")
    chosen = jsonreport.delta_of(report)
    if chosen is not None:
        label, comparison = chosen
        print(f"against {label}:")
        for line, _ in terminal.comparison_lines(comparison):
            print(line)


def show(args: argparse.Namespace) -> int:
    loaded = _load(args.file)
    if isinstance(loaded, Baseline):
        _show_baseline(args.file, loaded)
    else:
        _show_report(args.file, loaded)
    return 0


def merge(args: argparse.Namespace) -> int:
    loaded = [(path, _load(path)) for path in args.files]
    kinds = {isinstance(item, Baseline) for _, item in loaded}
    if len(kinds) > 1:
        raise BaselineError("merge reports with reports and baselines with baselines, not both")
    output = Path(args.output)
    if kinds == {True}:
        shards = [(path, item) for path, item in loaded if isinstance(item, Baseline)]
        merged = baselines.merge(shards)
        baselines.write(output, merged)
        print(f"{output}: baseline of {plural(len(merged.tests), 'test')} from {len(shards)} files")
    else:
        reports = [(path, item) for path, item in loaded if not isinstance(item, Baseline)]
        report = merging.merge_reports(reports)
        baselines.write_atomic(output, jsonreport.dumps(report))
        print(
            f"{output}: report of {plural(len(report['tests']), 'test')} from {len(reports)} files"
        )
    return 0


def _tolerance(value: str) -> int:
    if not value.isdigit():
        raise argparse.ArgumentTypeError(
            f"{value!r} is not a whole number of statements, 0 or more"
        )
    return int(value)


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(
        prog="sqlaperf",
        description="Compare, show and merge pytest-sqlaperf reports (--sqlaperf-report=*.json) "
        "and baselines (--sqlaperf-baseline)",
    )
    commands = top.add_subparsers(dest="command", required=True, metavar="COMMAND")
    diff_command = commands.add_parser(
        "diff",
        help="What changed from BASE to HEAD (reports or baselines); exit 1 when HEAD regressed",
    )
    diff_command.add_argument("base", help="The older report or baseline, e.g. main's artifact")
    diff_command.add_argument("head", help="The newer one, e.g. the pull request's")
    diff_command.add_argument("--format", choices=("text", "md", "json"), default="text")
    diff_command.add_argument(
        "--tolerance",
        type=_tolerance,
        default=0,
        help="Extra statements a test may run before it is a regression (default: 0)",
    )
    diff_command.set_defaults(run=diff)
    show_command = commands.add_parser("show", help="Summarise a report or a baseline")
    show_command.add_argument("file")
    show_command.set_defaults(run=show)
    merge_command = commands.add_parser(
        "merge", help="Merge the reports (or baselines) of CI shards into one file"
    )
    merge_command.add_argument("files", nargs="+", metavar="FILE")
    merge_command.add_argument("-o", "--output", required=True, help="The merged file to write")
    merge_command.set_defaults(run=merge)
    return top


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        code: int = args.run(args)
    except BaselineError as error:
        print(f"sqlaperf {args.command}: {error}", file=sys.stderr)
        return 2
    except OSError as error:
        print(f"sqlaperf {args.command}: {error}", file=sys.stderr)
        return 2
    return code


if __name__ == "__main__":
    sys.exit(main())
