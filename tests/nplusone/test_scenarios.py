"""The N+1 scenario suite: labelled real N+1s and clean code that naive detectors flag.

One inner pytest run (a subprocess, like a user's) holds every scenario, sync and async; its
records say what the plugin found, and this module asserts zero false positives and zero misses.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

HERE = Path(__file__).parent
LABELS = {
    "N1": "n_plus_one",
    "REPEATED": "repeated",
    "DUPLICATE": "duplicate",
    "WRITE": "n_plus_one_write",
}


def expected_kinds() -> dict[str, list[str]]:
    """Each scenario's label, read from its ``@expect(...)`` decorator."""
    tree = ast.parse((HERE / "scenario_tests.py").read_text())
    expected: dict[str, list[str]] = {}
    for node in tree.body:
        if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        for decorator in node.decorator_list:
            if isinstance(decorator, ast.Call) and getattr(decorator.func, "id", "") == "expect":
                expected[node.name] = sorted(
                    LABELS[arg.id] for arg in decorator.args if isinstance(arg, ast.Name)
                )
    return expected


@pytest.fixture(scope="module")
def found(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    directory = tmp_path_factory.mktemp("scenarios")
    for name in ("scenario_models.py", "scenario_app.py", "scenario_tests.py"):
        (directory / name).write_text((HERE / name).read_text())
    (directory / "conftest.py").write_text((HERE / "scenario_conftest.py").read_text())
    (directory / "pytest.ini").write_text(
        "[pytest]\npython_files = scenario_tests.py\nasyncio_mode = auto\n"
        "asyncio_default_fixture_loop_scope = function\npythonpath = .\n"
        "sqlaperf_metadata = scenario_models:Base.metadata\n"
    )
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"]
    result = subprocess.run(
        # the plan checks have their own scenario suite; here only N+1 findings are judged
        [*command, "--sqlaperf-n-plus-one=warn", "--sqlaperf-explain=off"],
        cwd=directory,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    findings: dict[str, Any] = json.loads((directory / "findings.json").read_text())
    return findings


def _score(expected: dict[str, list[str]], found: dict[str, Any]) -> tuple[float, float, list[str]]:
    true_positive = false_positive = false_negative = 0
    wrong = []
    for name, kinds in expected.items():
        actual = found[name]["kinds"]
        if kinds and actual == kinds:
            true_positive += 1
        else:
            if actual and actual != kinds:
                false_positive += 1
            if kinds and actual != kinds:
                false_negative += 1
        if actual != kinds:
            wrong.append(f"{name}: expected {kinds}, found {actual} {found[name]['messages']}")
    precision = true_positive / max(1, true_positive + false_positive)
    recall = true_positive / max(1, true_positive + false_negative)
    return precision, recall, wrong


def test_the_suite_is_large_and_balanced(found: dict[str, Any]) -> None:
    expected = expected_kinds()
    assert set(expected) == set(found), set(expected) ^ set(found)
    real = sum(1 for kinds in expected.values() if kinds)
    assert len(expected) >= 40
    assert 0.4 <= real / len(expected) <= 0.6
    assert any(name.startswith("test_async") for name, kinds in expected.items() if kinds)
    assert any(name.startswith("test_async") for name, kinds in expected.items() if not kinds)


@pytest.mark.parametrize("flavour", ["sync", "async"])
def test_precision_and_recall_are_one(found: dict[str, Any], flavour: str) -> None:
    expected = {
        name: kinds
        for name, kinds in expected_kinds().items()
        if name.startswith("test_async") == (flavour == "async")
    }
    precision, recall, wrong = _score(expected, found)
    assert wrong == []
    assert (precision, recall) == (1.0, 1.0)


@pytest.mark.parametrize(
    ("scenario", "fix"),
    [
        ("test_lazy_one_to_many_loop", "selectinload(Post.comments)"),
        ("test_lazy_many_to_one_loop", "joinedload(Post.author)"),
        ("test_lazy_many_to_many_loop", "selectinload(Post.tags)"),
        ("test_nested_fixed_at_first_level_only", "joinedload(Comment.author)"),
        ("test_immediateload_option", "use selectinload(Post.comments)"),
        ("test_loop_of_select_where_equals", ".where(Comment.post_id.in_(keys))"),
        ("test_nested_lazy_loads", "selectinload(Post.comments).joinedload(Comment.author)"),
        ("test_insert_per_row", "session.execute(insert(Tag), rows)"),
        ("test_delete_per_row", "delete(Tag).where(<key>.in_(keys))"),
        ("test_async_awaitable_attrs_collection", "selectinload(Post.comments)"),
    ],
)
def test_findings_name_the_real_relationship_in_the_fix(
    found: dict[str, Any], scenario: str, fix: str
) -> None:
    assert any(fix in text for text in found[scenario]["fixes"]), found[scenario]["fixes"]
