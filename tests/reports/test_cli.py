"""The ``sqlaperf`` console script: diff, show, merge; bad input is one line and exit code 2."""

from __future__ import annotations

import json
import subprocess
import sys
from fnmatch import fnmatch
from pathlib import Path

import jsonschema
import pytest
from report_helpers import finding, record

from pytest_sqlaperf import baseline, cli, records
from pytest_sqlaperf.baseline import Baseline
from pytest_sqlaperf.reports import jsonreport

ENVIRONMENT: dict[str, str | None] = {"postgresql": "16", "sqlalchemy": "2.1"}


def _report(path: Path, *tests: records.TestRecord, run_id: str = "run1") -> Path:
    report = jsonreport.build(
        tests,
        run={
            "run_id": run_id,
            "started": "2026-01-01T00:00:00+00:00",
            "finished": "2026-01-01T00:01:00+00:00",
            "tool": "0.1.0",
            "python": "3.12.0",
            "pytest": "9.0.0",
        },
        environment=dict(ENVIRONMENT),
        server=None,
    )
    path.write_text(jsonreport.dumps(report))
    return path


def _baseline(path: Path, *tests: records.TestRecord) -> Path:
    entries = baseline.entries_of(baseline.select_records(tests))
    baseline.write(path, Baseline(environment=dict(ENVIRONMENT), tests=entries))
    return path


@pytest.fixture
def main_and_pr(tmp_path: Path) -> tuple[Path, Path]:
    main = _baseline(tmp_path / "main.json", record("t.py::a", {"aaaa": (2, "SELECT a")}))
    pr = _report(
        tmp_path / "pr.json",
        record("t.py::a", {"aaaa": (2, "SELECT a"), "bbbb": (3, "SELECT b")}, findings=[finding()]),
        record("t.py::new"),
    )
    return main, pr


def test_diff_text_exits_1_on_regressions(
    main_and_pr: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    main, pr = main_and_pr
    assert cli.main(["diff", str(main), str(pr)]) == 1
    out = capsys.readouterr().out
    assert "REGRESSION t.py::a: 2 → 5 statements" in out
    assert "    +3 (new, ×3) SELECT  SELECT b" in out
    assert "        at app.py:10 in load" in out
    assert "not in " + str(main) + ": t.py::new" in out
    assert cli.main(["diff", str(main), str(pr), "--tolerance", "3"]) == 1  # the new finding
    assert cli.main(["diff", str(pr), str(pr)]) == 0


def test_diff_md_and_json(
    main_and_pr: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    main, pr = main_and_pr
    cli.main(["diff", str(main), str(pr), "--format", "md"])
    markdown = capsys.readouterr().out
    assert "| ❌ | `t.py::a` | 2 | 5 | +3 |" in markdown
    assert "| 🆕 | `t.py::new` |  | 1 |  |" in markdown
    cli.main(["diff", str(main), str(pr), "--format", "json"])
    comparison = json.loads(capsys.readouterr().out)
    assert comparison["regressions"][0]["nodeid"] == "t.py::a"


def test_show_report_and_baseline(
    main_and_pr: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    main, pr = main_and_pr
    assert cli.main(["show", str(pr)]) == 0
    out = capsys.readouterr().out
    assert "measured: 2 tests, 6 statements (select 6), 1 finding" in out
    assert "t.py::a: n_plus_one: n_plus_one of Author.books ×3" in out
    assert cli.main(["show", str(main)]) == 0
    assert "baseline of 1 test, 2 statements" in capsys.readouterr().out


def test_merge_reports_of_shards(tmp_path: Path) -> None:
    one = _report(tmp_path / "1.json", record("t.py::a"), run_id="one")
    two = _report(tmp_path / "2.json", record("t.py::b"), record("t.py::a"), run_id="two")
    assert cli.main(["merge", str(one), str(two), "-o", str(tmp_path / "all.json")]) == 0
    merged = jsonreport.load(tmp_path / "all.json")
    assert not isinstance(merged, Baseline)
    assert [t["nodeid"] for t in merged["tests"]] == ["t.py::a", "t.py::b"]
    assert merged["run"]["run_id"] == "one+two"
    jsonschema.Draft202012Validator(jsonreport.schema()).validate(merged)


def test_merge_baselines(tmp_path: Path) -> None:
    one = _baseline(tmp_path / "1.json", record("t.py::a"))
    two = _baseline(tmp_path / "2.json", record("t.py::b"))
    out = tmp_path / "all.json"
    assert cli.main(["merge", str(one), str(two), "-o", str(out)]) == 0
    assert list(baseline.read(out).tests) == ["t.py::a", "t.py::b"]


def _run(*arguments: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pytest_sqlaperf.cli", *arguments],
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize(
    ("files", "message"),
    [
        (("missing.json",), "missing.json: no such file"),
        (("corrupt.json",), "corrupt.json is not valid JSON (line 1, column 1: Expecting value)"),
        (("other.json",), "other.json is neither a sqlaperf report nor a baseline"),
        (("base1.json", "report.json"), "merge reports with reports and baselines with baselines"),
        (("base1.json", "base2.json"), "t.py::a differs between *base1.json and *base2.json"),
    ],
    ids=["missing", "corrupt", "wrong-kind", "mixed", "conflict"],
)
def test_bad_input_is_one_line_and_exit_2(
    tmp_path: Path, files: tuple[str, ...], message: str
) -> None:
    (tmp_path / "corrupt.json").write_text("not json")
    (tmp_path / "other.json").write_text('{"hello": "world"}')
    _baseline(tmp_path / "base1.json", record("t.py::a"))
    _baseline(tmp_path / "base2.json", record("t.py::a", {"aaaa": (7, "SELECT a")}))
    _report(tmp_path / "report.json", record("t.py::b"))
    paths = [str(tmp_path / name) for name in files]
    command = ["merge", *paths, "-o", str(tmp_path / "out.json")] if len(files) > 1 else None
    result = _run(*(command or ["show", *paths]))
    assert result.returncode == 2
    assert result.stdout == ""
    (line,) = result.stderr.splitlines()
    assert line.startswith("sqlaperf ")
    assert "Traceback" not in result.stderr
    assert fnmatch(line, f"*{message}*"), line
    assert not (tmp_path / "out.json").exists()


def test_usage_errors_exit_2(tmp_path: Path) -> None:
    result = _run("diff", "only-one.json")
    assert result.returncode == 2
    assert "the following arguments are required: head" in result.stderr
    result = _run("diff", "a.json", "b.json", "--tolerance", "-1")
    assert result.returncode == 2
    assert "is not a whole number of statements" in result.stderr
