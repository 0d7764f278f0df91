"""The baseline and report options: their flags, ini keys and help, resolved once per run."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from ..baseline import MODES
from ..settings import Option, OptionSource, SettingsError, choice, resolve_values

BASELINE = Option(
    "baseline",
    "Baseline file of statement counts, fingerprints and plan facts per test, to check or "
    "record (e.g. sqlaperf-baseline.json, committed with the code)",
)
COMPARE = Option(
    "compare",
    "Another run's JSON report (or a baseline) that the Markdown and HTML reports show "
    "deltas against, instead of the baseline",
)
OPTIONS: tuple[Option, ...] = (
    BASELINE,
    Option(
        "baseline_mode",
        "What to do with the baseline: check (fail on regressions; the default when the file "
        "exists), update (rewrite it from this run) or ratchet (record improvements and new "
        "tests, fail on regressions)",
    ),
    Option(
        "tolerance",
        "Extra statements a test may run over its baseline count before it is a regression "
        "(an absolute number per test; default: 0)",
        flag=False,
    ),
    Option(
        "fail_on_missing",
        "Fail the run when tests that ran are not in the baseline (check mode; default: false)",
        flag=False,
        ini_type="bool",
    ),
    COMPARE,
)
FORMATS = {".json": "JSON", ".md": "Markdown", ".html": "HTML", ".sarif": "SARIF"}
"""Report formats by file suffix."""
REPORT_HELP = (
    "Write a report; the format comes from the suffix: .json, .md, .html or .sarif "
    "(repeatable; ini sqlaperf_report takes a list)"
)


def _tolerance(option: Option, value: str) -> int:
    text = value.strip()
    if not text.isdigit():
        raise SettingsError(
            f"{option.ini} got {value!r}; give a whole number of statements, 0 or more"
        )
    return int(text)


VALIDATORS = {
    "baseline_mode": lambda option, value: choice(option, value.strip().lower(), MODES),
    "tolerance": _tolerance,
}


@dataclass(frozen=True)
class ReportingSettings:
    baseline: Path | None = None
    baseline_label: str = ""
    mode: str | None = None
    tolerance: int = 0
    fail_on_missing: bool = False
    compare: Path | None = None
    compare_label: str = ""
    reports: tuple[Path, ...] = ()


def resolve(
    source: OptionSource, environ: Mapping[str, str], *, invocation_dir: Path, ini_dir: Path
) -> ReportingSettings:
    """The reporting settings. Paths from the command line are relative to ``invocation_dir``,
    those from the ini file to ``ini_dir`` (pytest's own rule for ``paths`` ini values).

    Raises :class:`SettingsError` naming the option, the value and the choices.
    """
    values = resolve_values(OPTIONS, source, environ, VALIDATORS)

    def path(option: Option) -> Path | None:
        value = values.get(option.name)
        if value is None:
            return None
        from_cli = option.flag and source.getoption(option.dest) is not None
        return (invocation_dir if from_cli else ini_dir) / str(value)

    cli_reports: list[str] | None = source.getoption("sqlaperf_report")
    if cli_reports is not None:
        reports = [invocation_dir / report for report in cli_reports]
    else:
        reports = [Path(report) for report in source.getini("sqlaperf_report")]
    for report in reports:
        if report.suffix.lower() not in FORMATS:
            raise SettingsError(
                f"--sqlaperf-report (ini sqlaperf_report) got {str(report)!r}: unknown report "
                f"format {report.suffix or '(no suffix)'!r}; choose one of: {', '.join(FORMATS)}"
            )
    mode = values.get("baseline_mode")
    if mode is not None and values.get("baseline") is None:
        raise SettingsError(
            f"--sqlaperf-baseline-mode={mode} needs a baseline file: set --sqlaperf-baseline=PATH "
            "(or ini sqlaperf_baseline)"
        )
    return ReportingSettings(
        baseline=path(BASELINE),
        baseline_label=str(values.get("baseline") or ""),
        mode=None if mode is None else str(mode),
        tolerance=int(str(values.get("tolerance", 0))),
        fail_on_missing=bool(values.get("fail_on_missing", False)),
        compare=path(COMPARE),
        compare_label=str(values.get("compare") or ""),
        reports=tuple(reports),
    )
