"""The SARIF 2.1.0 report: findings and regressions at their call sites, for code scanning."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any
from urllib.parse import quote

from .. import baseline
from ..records import CallSiteRecord
from .github import repository_path
from .jsonreport import Report

SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
INFORMATION_URI = "https://github.com/pytest-sqlaperf/pytest-sqlaperf#readme"

RULES: dict[str, str] = {
    "regression": "A test runs more statements than its baseline, or has a new finding",
    "budget": "A test ran more statements than its max_queries budget",
    "n_plus_one": "A query runs once per row of an earlier query (N+1)",
    "n_plus_one_write": "A write runs once per row instead of in one statement",
    "lazy_load": "A relationship is lazy-loaded inside a loop",
    "repeated": "The same statement runs repeatedly with different values",
    "duplicate": "The same statement runs more than once with the same values",
    "seq_scan": "A statement scans a whole table where an index would do",
    "index_walk": "A statement walks a whole index with a filter instead of seeking it",
    "sort_without_index": "A statement sorts rows no index provides in order",
}


def _rule_id(kind: str) -> str:
    return f"sqlaperf/{kind}"


def _location(
    site: CallSiteRecord | None, nodeid: str, rootdir: Path, root: Path
) -> dict[str, Any]:
    path = repository_path(site["path"] if site else nodeid.split("::", 1)[0], rootdir, root)
    artifact = (
        {"uri": Path(path).as_uri()}
        if path.startswith("/")
        else {"uri": quote(path), "uriBaseId": "%SRCROOT%"}
    )
    physical: dict[str, Any] = {"artifactLocation": artifact}
    if site is not None and site["line"] > 0:
        physical["region"] = {"startLine": site["line"]}
    return {"physicalLocation": physical}


def _fingerprint(*parts: str) -> str:
    # Line numbers are left out so that a result keeps its identity when code above it moves.
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:32]


def render(report: Report, rootdir: Path, root: Path) -> str:
    """SARIF with paths relative to ``root`` (the repository, see :func:`github.source_root`)."""
    results: list[dict[str, Any]] = []
    kinds: set[str] = set()
    use = report["baseline"]
    comparison = use["comparison"] if use else None
    if comparison is not None and comparison["gating"]:
        for change in comparison["regressions"]:
            sites = [s for fp in change["fingerprints"] for s in fp["call_sites"]]
            kinds.add("regression")
            results.append(
                {
                    "ruleId": _rule_id("regression"),
                    "level": "error",
                    "message": {"text": f"{change['nodeid']}: " + "; ".join(change["reasons"])},
                    "locations": [
                        _location(sites[0] if sites else None, change["nodeid"], rootdir, root)
                    ],
                    "partialFingerprints": {
                        "sqlaperf/v1": _fingerprint("regression", change["nodeid"])
                    },
                }
            )
    for record in report["tests"]:
        for finding in record["findings"]:
            kinds.add(finding["kind"])
            fix = f" Fix: {finding['fix']}" if finding["fix"] else ""
            result: dict[str, Any] = {
                "ruleId": _rule_id(finding["kind"]),
                "level": "error" if record["outcome"] == "failed" else "warning",
                "message": {"text": f"{finding['message']}{fix} (in {record['nodeid']})"},
                "locations": [_location(finding["call_site"], record["nodeid"], rootdir, root)],
                "partialFingerprints": {
                    "sqlaperf/v1": _fingerprint(
                        record["nodeid"], baseline.finding_signature(finding)
                    )
                },
            }
            if finding["source"] is not None:
                related = _location(finding["source"], record["nodeid"], rootdir, root)
                related["id"] = 1
                related["message"] = {"text": "the query whose rows drove the loop"}
                result["relatedLocations"] = [related]
            results.append(result)
    rules = [
        {
            "id": _rule_id(kind),
            "name": kind,
            "shortDescription": {"text": RULES.get(kind, f"sqlaperf finding: {kind}")},
            "helpUri": INFORMATION_URI,
        }
        for kind in sorted(kinds)
    ]
    document = {
        "$schema": SCHEMA,
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "pytest-sqlaperf",
                        "version": report["run"]["tool"],
                        "informationUri": INFORMATION_URI,
                        "rules": rules,
                    }
                },
                "originalUriBaseIds": {"%SRCROOT%": {"uri": root.as_uri() + "/"}},
                "results": results,
            }
        ],
    }
    return json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
