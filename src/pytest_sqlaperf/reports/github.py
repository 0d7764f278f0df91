"""GitHub Actions: annotations (``::error``, ``::warning``) at call sites; repository paths."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from ..records import CallSiteRecord
from .jsonreport import Report

MAX_MESSAGE = 600


def source_root(rootdir: Path, environ: Mapping[str, str]) -> Path:
    """Where repository-relative paths start: ``GITHUB_WORKSPACE`` when the rootdir is in it.

    Records hold paths relative to pytest's rootdir, which is not the repository's top when the
    configuration lives in a subdirectory (``pytest -c example_project/pytest.ini``).
    """
    workspace = environ.get("GITHUB_WORKSPACE")
    if workspace:
        top = Path(workspace).resolve()
        if rootdir.resolve().is_relative_to(top):
            return top
    return rootdir.resolve()


def repository_path(path: str, rootdir: Path, root: Path) -> str:
    """A record's path (relative to the rootdir, or absolute) relative to ``root`` when under it."""
    absolute = (rootdir / path).resolve()
    if absolute.is_relative_to(root):
        return absolute.relative_to(root).as_posix()
    return absolute.as_posix()


def _escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(text: str) -> str:
    return _escape_data(text).replace(":", "%3A").replace(",", "%2C")


def command(level: str, message: str, *, file: str | None, line: int | None, title: str) -> str:
    """One workflow command, escaped as GitHub requires."""
    properties = []
    if file:
        properties.append(f"file={_escape_property(file)}")
        if line:
            properties.append(f"line={line}")
    properties.append(f"title={_escape_property(title)}")
    if len(message) > MAX_MESSAGE:
        message = message[: MAX_MESSAGE - 1] + "…"
    return f"::{level} {','.join(properties)}::{_escape_data(message)}"


def _site(site: CallSiteRecord | None, nodeid: str) -> tuple[str, int | None]:
    if site is not None:
        return site["path"], site["line"] or None
    return nodeid.split("::", 1)[0], None


def workflow_commands(
    report: Report, rootdir: Path, environ: Mapping[str, str] | None = None
) -> list[str]:
    """Errors for regressions and for findings of failed tests; warnings for the other findings.

    A finding in a passing test did not fail the job, and an error annotation would say it did.
    """
    environ = os.environ if environ is None else environ
    root = source_root(rootdir, environ)
    lines = []
    use = report["baseline"]
    comparison = use["comparison"] if use else None
    if comparison is not None and comparison["gating"]:
        for change in comparison["regressions"]:
            sites = [s for fp in change["fingerprints"] for s in fp["call_sites"]]
            path, line = _site(sites[0] if sites else None, change["nodeid"])
            lines.append(
                command(
                    "error",
                    f"{change['nodeid']}: " + "; ".join(change["reasons"]),
                    file=repository_path(path, rootdir, root),
                    line=line,
                    title="sqlaperf regression",
                )
            )
    for record in report["tests"]:
        level = "error" if record["outcome"] == "failed" else "warning"
        for finding in record["findings"]:
            path, line = _site(finding["call_site"], record["nodeid"])
            fix = f" Fix: {finding['fix']}" if finding["fix"] else ""
            lines.append(
                command(
                    level,
                    f"{finding['message']}{fix} ({record['nodeid']})",
                    file=repository_path(path, rootdir, root),
                    line=line,
                    title=f"sqlaperf {finding['kind']}",
                )
            )
    return lines


def append_step_summary(markdown: str, environ: Mapping[str, str] | None = None) -> str | None:
    """Append to ``GITHUB_STEP_SUMMARY`` when set; returns its path."""
    environ = os.environ if environ is None else environ
    target = environ.get("GITHUB_STEP_SUMMARY")
    if not target:
        return None
    with open(target, "a", encoding="utf-8") as handle:
        handle.write(markdown if markdown.endswith("\n") else markdown + "\n")
    return target
