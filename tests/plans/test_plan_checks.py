"""The plan checks in a run: warn, fail and off, the no_seq_scan marker, ignored tables, bad
values, what records carry, the catalog checks, and xdist."""

from __future__ import annotations

import json

import pytest

SEARCHES = """
import pytest
from sqlalchemy import select
from models import Author, Book


def test_by_name(sqlaperf_session):
    sqlaperf_session.execute(select(Author).where(Author.name == "ada")).all()


def test_by_id(sqlaperf_session):
    sqlaperf_session.execute(select(Author).where(Author.id == 1)).all()


def test_books_by_title(sqlaperf_session):
    sqlaperf_session.execute(select(Book).where(Book.title == "x")).all()
"""

INDEXED_MODELS = """
from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    pass


class Author(Base):
    __tablename__ = "authors"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(50), index=True)
    email: Mapped[str] = mapped_column(String(50), index=True)


class Book(Base):
    __tablename__ = "books"
    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(String(100))
    author_id: Mapped[int] = mapped_column(ForeignKey("authors.id"))
"""


def test_warn_lists_findings_with_the_index_to_create(project: pytest.Pytester) -> None:
    project.makepyfile(test_searches=SEARCHES)
    result = project.runpytest()
    result.assert_outcomes(passed=3)
    result.stdout.fnmatch_lines(
        [
            "*- sqlaperf plans -*",
            "EXPLAIN: 3 statement shapes planned",
            "plan findings: 2 (*)",
            "  [[]seq_scan[]] authors is read in full to find rows by name: no index serves that",
            "    at test_searches.py:7 in test_by_name (test_searches.py::test_by_name)",
            "    CREATE INDEX ix_authors_name ON authors (name);",
            "  [[]seq_scan[]] books is read in full to find rows by title: no index serves that",
            "*CREATE INDEX ix_books_title ON books (title);",
            "foreign keys without an index: 1",
            "  books.author_id: foreign key books_author_id_fkey (books.author_id -> authors) *",
            "    CREATE INDEX ix_books_author_id ON books (author_id);",
        ]
    )


def test_fail_mode_fails_the_test_with_plan_and_fix(project: pytest.Pytester) -> None:
    project.makepyfile(test_searches=SEARCHES)
    result = project.runpytest("--sqlaperf-explain=fail")
    result.assert_outcomes(passed=1, failed=2)
    result.stdout.fnmatch_lines(
        [
            "*_ test_by_name _*",
            "1 read no index serves (--sqlaperf-explain=fail):",
            "1. [[]seq_scan[]] authors is read in full to find rows by name: no index serves that",
            "     SELECT authors.id, authors.name FROM authors WHERE authors.name = ?",
            "     at test_searches.py:7 in test_by_name",
            "   plan:",
            "     Seq Scan on authors (disabled)   <-- here",
            "         Filter: ((authors.name)::text = '?'::text)",
            "   fix:",
            "     CREATE INDEX ix_authors_name ON authors (name);",
            '     SQLAlchemy: Index("ix_authors_name", authors.c.name)',
        ]
    )
    result.stdout.no_fnmatch_line("*Traceback*")
    result.stdout.no_fnmatch_line("*'ada'*")


def test_marker_fails_only_marked_tests_and_ignores_tables(project: pytest.Pytester) -> None:
    project.makepyfile(
        test_marked="""
        import pytest
        from sqlalchemy import select
        from models import Author, Book

        @pytest.mark.no_seq_scan
        def test_marked(sqlaperf_session):
            sqlaperf_session.execute(select(Author).where(Author.name == "ada")).all()

        @pytest.mark.no_seq_scan(ignore=("authors", "public.books"))
        def test_ignored(sqlaperf_session):
            sqlaperf_session.execute(select(Author).where(Author.name == "ada")).all()
            sqlaperf_session.execute(select(Book).where(Book.title == "x")).all()

        def test_unmarked(sqlaperf_session):
            sqlaperf_session.execute(select(Book).where(Book.title == "x")).all()
        """
    )
    result = project.runpytest()
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines(
        ["*1 read no index serves (@pytest.mark.no_seq_scan):*", "FAILED *::test_marked - *"]
    )


def test_ini_ignores_tables(project: pytest.Pytester) -> None:
    project.makepyfile(test_searches=SEARCHES)
    project.makeini(
        """
        [pytest]
        sqlaperf_metadata = models:Base.metadata
        pythonpath = .
        asyncio_default_fixture_loop_scope = function
        sqlaperf_explain = fail
        sqlaperf_seq_scan_ignore = authors
            books
        """
    )
    result = project.runpytest()
    result.assert_outcomes(passed=3)
    result.stdout.fnmatch_lines(["plan findings: none"])


@pytest.mark.parametrize(
    ("marker", "message"),
    [
        (
            "no_seq_scan('books')",
            "*test_bad: bad marker @pytest.mark.no_seq_scan: no_seq_scan() takes 0 positional "
            "arguments but 1 was given; the signature is no_seq_scan(*, ignore=())",
        ),
        (
            "no_seq_scan(ignore=3)",
            "*test_bad: bad marker @pytest.mark.no_seq_scan: ignore must be a table name or a "
            "list of them, got 3",
        ),
    ],
)
def test_bad_marker_is_one_line(project: pytest.Pytester, marker: str, message: str) -> None:
    project.makepyfile(
        test_bad=f"""
        import pytest

        @pytest.mark.{marker}
        def test_bad():
            pass
        """
    )
    result = project.runpytest()
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines([message])
    result.stdout.no_fnmatch_line("*Traceback*")


@pytest.mark.parametrize(
    ("arguments", "ini", "message"),
    [
        (
            ["--sqlaperf-explain=loud"],
            "",
            "ERROR: --sqlaperf-explain (ini sqlaperf_explain) got 'loud'; choose one of: warn, "
            "fail, off",
        ),
        (
            [],
            "sqlaperf_explain_timeout = soon",
            "ERROR: sqlaperf_explain_timeout got 'soon'; give a whole number of milliseconds, "
            "1 to 600000",
        ),
        (
            [],
            "sqlaperf_explain_analyze = maybe",
            "ERROR: sqlaperf_explain_analyze must be true or false, got 'maybe'*",
        ),
    ],
)
def test_bad_option_is_one_line(
    pytester: pytest.Pytester, arguments: list[str], ini: str, message: str
) -> None:
    pytester.makeini(f"[pytest]\nasyncio_default_fixture_loop_scope = function\n{ini}\n")
    pytester.makepyfile(test_x="def test_x(): pass")
    result = pytester.runpytest(*arguments)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([message])
    assert "Traceback" not in result.stderr.str()


def test_off_runs_no_explain(project: pytest.Pytester) -> None:
    project.makepyfile(
        test_off="""
        import pytest
        from sqlalchemy import select
        from models import Author
        from pytest_sqlaperf.plugin import plugin_of

        @pytest.mark.no_seq_scan
        def test_marked(sqlaperf_session, request):
            sqlaperf_session.execute(select(Author).where(Author.name == "ada")).all()
            assert plugin_of(request.config).recorder.after_statement is None
        """
    )
    result = project.runpytest("--sqlaperf-explain=off")
    result.assert_outcomes(passed=1)
    result.stdout.no_fnmatch_line("*sqlaperf plans*")


RECORDS = """
import json, os
from pytest_sqlaperf import record_of

def pytest_runtest_logreport(report):
    record = record_of(report)
    if record is not None and report.when == "call":
        with open(os.environ["SQLAPERF_RECORDS"], "a") as out:
            out.write(json.dumps(record) + "\\n")
"""


def test_records_carry_findings_and_plans_without_values(
    project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    records = project.path / "records.jsonl"
    monkeypatch.setenv("SQLAPERF_RECORDS", str(records))
    project.makeconftest(RECORDS)
    project.makepyfile(test_searches=SEARCHES)
    project.runpytest("--sqlaperf-explain=fail").assert_outcomes(passed=1, failed=2)
    by_test = {
        record["nodeid"]: record for record in map(json.loads, records.read_text().splitlines())
    }
    finding = by_test["test_searches.py::test_by_name"]["findings"][0]
    assert finding["kind"] == "seq_scan"
    assert finding["target"] == "authors"
    assert finding["call_site"] == {
        "path": "test_searches.py",
        "line": 7,
        "function": "test_by_name",
    }
    assert finding["fix"].startswith("CREATE INDEX ix_authors_name ON authors (name);")
    assert "ada" not in json.dumps(by_test)
    (plan,) = by_test["test_searches.py::test_by_id"]["plans"].values()
    assert plan == {
        "method": "custom",
        "shape": ["Index Scan using authors_pkey on authors"],
        "indexes": ["authors_pkey"],
        "findings": [],
    }


def test_unused_indexes_and_their_use(project: pytest.Pytester) -> None:
    project.makepyfile(models=INDEXED_MODELS)
    project.makepyfile(
        test_use="""
        from sqlalchemy import select
        from models import Author

        def test_by_name(sqlaperf_session):
            sqlaperf_session.execute(select(Author).where(Author.name == "ada")).all()
        """
    )
    result = project.runpytest()
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(
        [
            "plan findings: none",
            "foreign keys without an index: 1",
            "*",
            "*",
            "indexes no test used (informational): 1",
            "  ix_authors_email on authors (table read 1 time)",
        ]
    )
    result.stdout.no_fnmatch_line("*ix_authors_name on authors*")


def test_xdist_controller_reports_what_workers_found(project: pytest.Pytester) -> None:
    project.makepyfile(models=INDEXED_MODELS)
    project.makepyfile(
        test_one="""
        from sqlalchemy import select
        from models import Author, Book

        def test_by_name(sqlaperf_session):
            sqlaperf_session.execute(select(Author).where(Author.name == "ada")).all()

        def test_books(sqlaperf_session):
            sqlaperf_session.execute(select(Book).where(Book.title == "x")).all()
        """,
        test_two="""
        from sqlalchemy import select
        from models import Book

        def test_books_again(sqlaperf_session):
            sqlaperf_session.execute(select(Book).where(Book.title == "y")).all()
        """,
    )
    result = project.runpytest_subprocess("-n", "2", "-p", "xdist", "--dist", "loadfile")
    result.assert_outcomes(passed=3)
    result.stdout.fnmatch_lines(
        [
            "plan findings: 1 (*)",
            "  [[]seq_scan[]] books is read in full to find rows by title: no index serves that",
            "*CREATE INDEX ix_books_title ON books (title);",
            "foreign keys without an index: 1",
            "*",
            "*",
            "indexes no test used (informational): 1",
            "  ix_authors_email on authors *",
        ]
    )


def test_repeated_statements_reach_the_checks_until_they_bring_nothing_new(
    project: pytest.Pytester,
) -> None:
    """The plan checks answer the recorder when a statement can bring the test nothing new, so
    a loop of lookups costs them a call per new value until the shape's plans are all taken
    in; the next test takes them in again (its findings are its own)."""
    project.makepyfile(models=INDEXED_MODELS)
    project.makepyfile(
        test_loop="""
        import pytest
        from sqlalchemy import select
        from models import Book
        from pytest_sqlaperf.explain import MAX_VALUES_PER_SHAPE
        from pytest_sqlaperf.plugin import plugin_of

        @pytest.fixture
        def calls(request):
            recorder = plugin_of(request.config).recorder
            checks, seen = recorder.after_statement, []

            def counted(statement, *rest):
                if "books" in statement.sql:
                    seen.append(statement.parameters)
                return checks(statement, *rest)

            recorder.after_statement = counted
            yield seen
            recorder.after_statement = checks

        @pytest.mark.parametrize("run", [1, 2])
        def test_titles(sqlaperf_session, calls, run):
            for k in range(50):
                sqlaperf_session.execute(select(Book).where(Book.title == f"t{k % 10}")).all()
            # run 1: MAX_VALUES_PER_SHAPE values EXPLAINed (each then cached), the next
            # has the shape's first plan, and every plan the shape can have is taken in;
            # run 2: the cached values' plans taken in, and then every plan is
            assert len(calls) == MAX_VALUES_PER_SHAPE + (run == 1)
            assert [c["title_1"] for c in calls] == [f"t{k}" for k in range(len(calls))]
        """
    )
    result = project.runpytest("--sqlaperf-explain=fail", "-o", "sqlaperf_n_plus_one=off")
    result.assert_outcomes(failed=2)  # each by its own plan finding, calls as counted
    result.stdout.fnmatch_lines(
        [
            f"FAILED test_loop.py::test_titles[[]{run}[]] - Failed: 1 read no index serves*"
            for run in (1, 2)
        ]
    )
