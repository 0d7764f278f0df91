"""The pytest-free core of baselines: entries from records, comparing, pruning, merging, files."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from report_helpers import finding, record, site

from pytest_sqlaperf import baseline
from pytest_sqlaperf.baseline import Baseline, BaselineError
from pytest_sqlaperf.reports import delta

ENVIRONMENT: dict[str, str | None] = {"postgresql": "16", "sqlalchemy": "2.1", "psycopg": "3"}


def _baseline(*records: object) -> Baseline:
    selected = baseline.select_records(records)  # type: ignore[arg-type]
    return Baseline(environment=dict(ENVIRONMENT), tests=baseline.entries_of(selected))


def test_entry_keeps_only_deterministic_facts() -> None:
    entry = baseline.entry_from_record(
        record(
            fingerprints={"bbbb": (3, "SELECT b FROM t WHERE id = ?"), "aaaa": (1, "SELECT a")},
            findings=[
                finding(),
                finding("budget", target=None),
                finding("seq_scan", target="books", fingerprint="bbbb"),
            ],
            plans={"bbbb": {"indexes": ["ix_b", "books_pkey"], "cost": 1.5}, "aaaa": {}},
        )
    )
    assert entry == {
        "count": 4,
        "by_kind": {"select": 4},
        "fingerprints": {
            "aaaa": {"count": 1, "kind": "select", "sql": "SELECT a"},
            "bbbb": {"count": 3, "kind": "select", "sql": "SELECT b FROM t WHERE id = ?"},
        },
        "findings": ["n_plus_one Author.books at app.py"],
        "plans": {
            "bbbb": {"findings": ["seq_scan books at app.py"], "indexes": ["books_pkey", "ix_b"]}
        },
    }


def test_a_signature_without_a_plain_target_uses_the_fingerprint() -> None:
    long_target = finding("repeated", target="SELECT a FROM t WHERE x = ?", call_site=None)
    assert baseline.finding_signature(long_target) == "repeated f00d"


def test_duplicate_node_ids_keep_the_same_record_whatever_the_order() -> None:
    light = record(fingerprints={"aaaa": (1, "SELECT a")})
    heavy = record(fingerprints={"aaaa": (5, "SELECT a")})
    assert baseline.select_records([light, heavy]) == baseline.select_records([heavy, light])
    assert baseline.select_records([light, heavy])["tests/test_a.py::test_a"]["count"] == 5


def _compare(before: Baseline, *after: object, tolerance: int = 0) -> delta.Comparison:
    records = baseline.select_records(after)  # type: ignore[arg-type]
    return delta.compare(
        before,
        baseline.entries_of(records),
        ENVIRONMENT,
        tolerance=tolerance,
        sites=delta.sites_of(records),
    )


def test_compare_sorts_each_test_into_one_category() -> None:
    before = _baseline(
        record("t.py::grows", {"aaaa": (2, "SELECT a")}),
        record("t.py::shrinks", {"aaaa": (4, "SELECT a")}),
        record("t.py::reshaped", {"aaaa": (1, "SELECT a")}),
        record("t.py::same", {"aaaa": (1, "SELECT a")}),
        record("t.py::gone", {"aaaa": (1, "SELECT a")}),
    )
    comparison = _compare(
        before,
        record("t.py::grows", {"aaaa": (2, "SELECT a"), "cccc": (3, "SELECT c")}),
        record("t.py::shrinks", {"aaaa": (2, "SELECT a")}),
        record("t.py::reshaped", {"bbbb": (1, "SELECT b")}),
        record("t.py::same", {"aaaa": (1, "SELECT a")}),
        record("t.py::new", {"aaaa": (1, "SELECT a")}),
    )
    (regression,) = comparison["regressions"]
    assert regression["nodeid"] == "t.py::grows"
    assert regression["reasons"] == ["statements 2 → 5 (+3)"]
    assert regression["fingerprints"] == [
        {
            "fingerprint": "cccc",
            "sql": "SELECT c",
            "kind": "select",
            "before": 0,
            "after": 3,
            "call_sites": [site()],
        }
    ]
    assert [c["nodeid"] for c in comparison["improvements"]] == ["t.py::shrinks"]
    assert [c["nodeid"] for c in comparison["changed"]] == ["t.py::reshaped"]
    assert comparison["unchanged"] == 1
    assert comparison["new"] == ["t.py::new"]
    assert comparison["not_run"] == ["t.py::gone"]
    assert comparison["gating"]


def test_tolerance_new_findings_and_lost_indexes() -> None:
    before = _baseline(
        record("t.py::a", {"aaaa": (2, "SELECT a")}, plans={"aaaa": {"indexes": ["ix_a"]}}),
    )
    plans = {"aaaa": {"indexes": ["ix_a"]}}
    within = _compare(
        before, record("t.py::a", {"aaaa": (3, "SELECT a")}, plans=plans), tolerance=1
    )
    assert within["regressions"] == []
    assert [c["nodeid"] for c in within["tolerated"]] == ["t.py::a"]
    beyond = _compare(
        before, record("t.py::a", {"aaaa": (4, "SELECT a")}, plans=plans), tolerance=1
    )
    assert beyond["regressions"][0]["reasons"][0] == "statements 2 → 4 (+2, tolerance 1)"
    found = _compare(before, record("t.py::a", {"aaaa": (2, "SELECT a")}, findings=[finding()]))
    assert found["regressions"][0]["reasons"] == [
        "new finding: n_plus_one Author.books at app.py",
        "index no longer used: ix_a",
    ]


def test_another_environment_does_not_gate() -> None:
    before = _baseline(record("t.py::a", {"aaaa": (1, "SELECT a")}))
    before.environment["postgresql"] = "15"
    records = baseline.select_records([record("t.py::a", {"aaaa": (9, "SELECT a")})])
    comparison = delta.compare(before, baseline.entries_of(records), ENVIRONMENT)
    assert comparison["environment"] == ["postgresql 15 (baseline) vs 16 (this run)"]
    assert not comparison["gating"]
    assert len(comparison["regressions"]) == 1


def test_unknown_environment_values_match_anything() -> None:
    assert baseline.environment_differences({"postgresql": None}, {"postgresql": "16"}) == []
    assert baseline.environment_differences({"asyncpg": "0.29"}, {"psycopg": "3"}) == []


def test_environment_of_keeps_what_counts_depend_on() -> None:
    versions = {"sqlalchemy": "2.0.36", "psycopg": "3.2.1", "asyncpg": "0.29.0"}
    assert baseline.environment_of("16.4 (Debian 16.4-1.pgdg120+1)", versions.get) == {
        "postgresql": "16",
        "sqlalchemy": "2.0",
        "psycopg": "3",
        "asyncpg": "0.29",
    }


def test_stale_entries_tell_removed_tests_from_unselected_ones(tmp_path: Path) -> None:
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests/test_a.py").write_text("")
    (tmp_path / "tests/test_b.py").write_text("")
    nodeids = [
        "tests/test_a.py::kept",
        "tests/test_a.py::removed",
        "tests/test_b.py::not_collected",
        "tests/test_gone.py::file_deleted",
    ]
    seen = {"tests/test_a.py::kept"}
    whole = baseline.stale_entries(
        nodeids, rootdir=tmp_path, seen=seen, collected_files={"tests/test_a.py"}, whole_files=True
    )
    assert whole == {"tests/test_a.py::removed", "tests/test_gone.py::file_deleted"}
    by_name = baseline.stale_entries(
        nodeids, rootdir=tmp_path, seen=seen, collected_files={"tests/test_a.py"}, whole_files=False
    )
    assert by_name == {"tests/test_gone.py::file_deleted"}


def test_update_and_ratchet() -> None:
    before = _baseline(
        record("t.py::a", {"aaaa": (3, "SELECT a")}),
        record("t.py::b", {"aaaa": (1, "SELECT a")}),
        record("t.py::old", {"aaaa": (1, "SELECT a")}),
    )
    after = baseline.entries_of(
        baseline.select_records(
            [
                record("t.py::a", {"aaaa": (2, "SELECT a")}),
                record("t.py::b", {"aaaa": (5, "SELECT a")}),
                record("t.py::c", {"aaaa": (1, "SELECT a")}),
            ]
        )
    )
    updated = baseline.updated(before, after, dict(ENVIRONMENT), {"t.py::old"})
    assert {k: v["count"] for k, v in updated.tests.items()} == {
        "t.py::a": 2,
        "t.py::b": 5,
        "t.py::c": 1,
    }
    ratcheted = baseline.ratcheted(before, after, ["t.py::a", "t.py::c"], set())
    assert {k: v["count"] for k, v in ratcheted.tests.items()} == {
        "t.py::a": 2,
        "t.py::b": 1,
        "t.py::c": 1,
        "t.py::old": 1,
    }


def test_merge_unions_shards_and_refuses_conflicts() -> None:
    one = _baseline(record("t.py::a"), record("t.py::shared"))
    two = _baseline(record("t.py::b"), record("t.py::shared"))
    merged = baseline.merge([("one.json", one), ("two.json", two)])
    assert list(merged.tests) == ["t.py::a", "t.py::b", "t.py::shared"]
    conflicting = _baseline(record("t.py::a", {"aaaa": (2, "SELECT a")}))
    with pytest.raises(BaselineError, match=r"t.py::a differs between one.json and three.json"):
        baseline.merge([("one.json", one), ("three.json", conflicting)])
    elsewhere = _baseline(record("t.py::z"))
    elsewhere.environment["sqlalchemy"] = "2.0"
    with pytest.raises(BaselineError, match=r"sqlalchemy 2.1 \(one.json\) vs 2.0 \(four.json\)"):
        baseline.merge([("one.json", one), ("four.json", elsewhere)])


def test_files_round_trip_sorted_and_one_fact_per_line(tmp_path: Path) -> None:
    written = _baseline(record("t.py::b"), record("t.py::a", findings=[finding()]))
    path = tmp_path / "deep/er/baseline.json"
    baseline.write(path, written)
    text = path.read_text()
    assert text == baseline.dumps(baseline.read(path))
    assert text.index('"t.py::a"') < text.index('"t.py::b"')
    assert '\n        "n_plus_one Author.books at app.py"\n' in text
    assert json.loads(text)["schema_version"] == baseline.SCHEMA_VERSION
    assert path.stat().st_mode & 0o777 == 0o644 & ~_umask()


def _umask() -> int:
    current = os.umask(0)
    os.umask(current)
    return current


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("", "is not valid JSON"),
        ('{"kind": "sqlaperf-report", "tests": []}', "is not a sqlaperf baseline"),
        (
            '{"kind": "sqlaperf-baseline", "schema_version": 1, "tests": {"t": {"count": "3"}}}',
            "the entry of 't' has no statement count",
        ),
        (
            '{"kind": "sqlaperf-baseline", "schema_version": 1, "tests": {"t": {"count": 3, '
            '"fingerprints": {"f": {}}}}}',
            "malformed entry",
        ),
    ],
)
def test_read_names_the_file_and_what_to_do(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "b.json"
    path.write_text(content)
    with pytest.raises(BaselineError, match=message) as raised:
        baseline.read(path)
    assert str(path) in str(raised.value)
    assert "--sqlaperf-baseline-mode=update" in str(raised.value)
