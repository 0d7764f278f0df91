"""Writing the report files a run asked for, each in the format its suffix names."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path

from ..baseline import write_atomic
from . import github, html, jsonreport, markdown, sarif
from .jsonreport import Report
from .options import FORMATS


def render(report: Report, suffix: str, rootdir: Path, environ: Mapping[str, str]) -> str:
    """The report in the format of ``suffix`` (one of :data:`FORMATS`)."""
    if suffix == ".json":
        return jsonreport.dumps(report)
    if suffix == ".md":
        return markdown.render(report)
    if suffix == ".html":
        return html.render(report)
    if suffix == ".sarif":
        return sarif.render(report, rootdir, github.source_root(rootdir, environ))
    raise ValueError(f"unknown report format {suffix!r}; choose one of: {', '.join(FORMATS)}")


def shown(path: Path, start: Path) -> str:
    """A path as the summary shows it: relative to where pytest started when under it."""
    return os.path.relpath(path, start) if path.is_relative_to(start) else str(path)


def write_reports(
    report: Report,
    paths: Iterable[Path],
    *,
    rootdir: Path,
    start: Path,
    environ: Mapping[str, str],
) -> list[tuple[str, str]]:
    """Write each report atomically; the Markdown one also goes to ``GITHUB_STEP_SUMMARY`` when
    set. Returns (format, where) for the summary."""
    written = []
    for path in paths:
        suffix = path.suffix.lower()
        text = render(report, suffix, rootdir, environ)
        write_atomic(path, text)
        written.append((FORMATS[suffix], shown(path, start)))
        if suffix == ".md":
            summary = github.append_step_summary(text, environ)
            if summary:
                written.append(("Markdown (job summary)", summary))
    return written
