"""N+1 controls: modes, markers, ini ignore, the allow block, strict loading, constant_queries."""

from __future__ import annotations

import pytest

LOOP = """
import pytest
from sqlalchemy import select
from models import Author, Book

@pytest.fixture
def books(sqlaperf_session):
    for i in range(4):
        sqlaperf_session.add(Book(title=f"b{i}", author=Author(name=f"a{i}")))
    sqlaperf_session.commit()
    sqlaperf_session.expunge_all()
    return sqlaperf_session

{marker}
def test_loop(books, sqlaperf):
    for book in books.scalars(select(Book)).all():
        book.author.name
"""


def test_fail_mode_names_call_site_count_and_fix(project: pytest.Pytester) -> None:
    project.makepyfile(test_loop=LOOP.replace("{marker}", ""))
    result = project.runpytest()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "N+1: 1 finding",
            "1. n_plus_one: lazy load of Book.author ×4 at test_loop.py:16 in test_loop",
            "         book.author.name",
            "     statement: SELECT authors.id*authors.name* FROM authors WHERE authors.id = ?",
            "     rows from: test_loop.py:15 in test_loop  SELECT books.id, * FROM books",
            "     fix: add .options(joinedload(Book.author)) to the query at test_loop.py:15*",
        ]
    )
    result.stdout.no_fnmatch_line("*Traceback*")


def test_warn_mode_passes_and_lists_in_summary(project: pytest.Pytester) -> None:
    project.makepyfile(test_loop=LOOP.replace("{marker}", ""))
    result = project.runpytest("--sqlaperf-n-plus-one=warn")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(
        [
            "*sqlaperf: 1 N+1 findings in passing tests*",
            "test_loop.py::test_loop: lazy load of Book.author ×4 at test_loop.py:16 in test_loop",
            "    fix: add .options(joinedload(Book.author)*",
        ]
    )


def test_off_mode_and_no_n_plus_one_marker(project: pytest.Pytester) -> None:
    project.makepyfile(test_loop=LOOP.replace("{marker}", ""))
    project.runpytest("--sqlaperf-n-plus-one=off").assert_outcomes(passed=1)
    project.makepyfile(test_loop=LOOP.replace("{marker}", "@pytest.mark.no_n_plus_one"))
    project.runpytest("--sqlaperf-n-plus-one=warn").assert_outcomes(failed=1)
    project.makepyfile(
        test_loop=LOOP.replace("{marker}", "@pytest.mark.no_n_plus_one(threshold=5)")
    )
    project.runpytest().assert_outcomes(passed=1)


@pytest.mark.parametrize(
    "marker",
    [
        "@pytest.mark.allow_n_plus_one",
        "@pytest.mark.allow_n_plus_one('Book.author')",
        "@pytest.mark.allow_n_plus_one('SELECT authors.id')",
    ],
)
def test_allow_marker(project: pytest.Pytester, marker: str) -> None:
    project.makepyfile(test_loop=LOOP.replace("{marker}", marker))
    project.runpytest().assert_outcomes(passed=1)


def test_allow_marker_for_another_target_still_fails(project: pytest.Pytester) -> None:
    project.makepyfile(
        test_loop=LOOP.replace("{marker}", "@pytest.mark.allow_n_plus_one('Author.books')")
    )
    project.runpytest().assert_outcomes(failed=1)


@pytest.mark.parametrize("entry", ["Book.author", "test_loop.py", "test_loop.py:16", "*.py"])
def test_ini_ignore(project: pytest.Pytester, entry: str) -> None:
    project.makepyfile(test_loop=LOOP.replace("{marker}", ""))
    project.runpytest(f"-osqlaperf_ignore={entry}").assert_outcomes(passed=1)


def test_allow_block(project: pytest.Pytester) -> None:
    project.makepyfile(
        test_block=LOOP.replace("{marker}", "")
        .replace(
            "    for book in books", "    with sqlaperf.allow_n_plus_one():\n     for book in books"
        )
        .replace("        book.author.name", "         book.author.name")
    )
    project.runpytest().assert_outcomes(passed=1)


def test_strict_loading_lists_every_lazy_load(project: pytest.Pytester) -> None:
    project.makepyfile(
        test_strict="""
        import pytest
        from sqlalchemy import select
        from models import Author, Book

        @pytest.mark.strict_loading
        def test_one_lazy_load(sqlaperf_session):
            sqlaperf_session.add(Book(title="b", author=Author(name="a")))
            sqlaperf_session.commit()
            sqlaperf_session.expunge_all()
            book = sqlaperf_session.scalars(select(Book)).one()
            book.author.name
            len(book.author.books)
        """
    )
    result = project.runpytest()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "N+1: 2 findings",
            "*lazy_load: lazy load of Book.author ×1 at test_strict.py:11*",
            "*lazy_load: lazy load of Author.books ×1 at test_strict.py:12*",
        ]
    )


CONSTANT = """
import pytest
from sqlalchemy import select
from sqlalchemy.orm import selectinload
from models import Author, Book

@pytest.fixture
def authors(sqlaperf_session, n):
    for i in range(n):
        sqlaperf_session.add(Author(name=f"a{i}", books=[Book(title="t")]))
    sqlaperf_session.flush()
    sqlaperf_session.expunge_all()

@pytest.mark.constant_queries("n")
@pytest.mark.parametrize("n", [1, 2])
def test_listing(authors, sqlaperf_session, n):
    query = select(Author){options}
    for author in sqlaperf_session.scalars(query).all():
        len(author.books)
"""


def test_constant_queries_catches_a_two_iteration_n_plus_one(project: pytest.Pytester) -> None:
    project.makepyfile(test_const=CONSTANT.replace("{options}", ""))
    result = project.runpytest("--sqlaperf-n-plus-one=off")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(
        [
            "*FAILED test_const.py::test_listing[[]2[]]*",
        ]
    )
    result.stdout.fnmatch_lines(
        [
            "constant_queries('n'): statements grow with n: * at n=1, * at n=2 "
            "(expected the same count)",
            # SQLAlchemy 2.0 labels a lazy load's columns (books.id AS books_id); 2.1 does not
            "  SELECT books.id* *1  *2  grew",
            "  SELECT authors.id, authors.name FROM authors  *1  *1",
        ]
    )


def test_constant_queries_passes_selectinload(project: pytest.Pytester) -> None:
    project.makepyfile(
        test_const=CONSTANT.replace("{options}", ".options(selectinload(Author.books))")
    )
    project.runpytest().assert_outcomes(passed=2)


def test_constant_queries_slope(project: pytest.Pytester) -> None:
    marked = CONSTANT.replace("{options}", "").replace(
        'constant_queries("n")', 'constant_queries("n", slope=1)'
    )
    project.makepyfile(test_const=marked)
    project.runpytest("--sqlaperf-n-plus-one=off").assert_outcomes(passed=2)


@pytest.mark.parametrize(
    ("marker", "message"),
    [
        ("no_n_plus_one(threshold=0)", "threshold must be >= 1, got 0"),
        (
            "allow_n_plus_one(3)",
            "each target must be 'Class.attr' or the start of a statement, got 3",
        ),
        ("constant_queries('x y')", "argname must name the test's parameter"),
        ("constant_queries('n', slope=-1)", "slope must be a number >= 0, got -1"),
        ("constant_queries('n')", "needs the test parametrized over 'n'"),
        ("strict_loading(1)", "strict_loading() takes 0 positional arguments but 1 was given"),
    ],
)
def test_bad_markers(pytester: pytest.Pytester, marker: str, message: str) -> None:
    pytester.makepyfile(
        test_bad=f"""
        import pytest

        @pytest.mark.{marker}
        def test_it():
            pass
        """
    )
    result = pytester.runpytest()
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines([f"*test_bad.py::test_it*{message}*"])
    result.stdout.no_fnmatch_line("*Traceback*")


def test_bad_options(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_x="def test_x(): pass")
    result = pytester.runpytest("--sqlaperf-n-plus-one=loud")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--sqlaperf-n-plus-one (ini sqlaperf_n_plus_one) got 'loud'*"])
    result = pytester.runpytest("-osqlaperf_n_plus_one_threshold=zero")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*sqlaperf_n_plus_one_threshold must be a whole number >= 1*"])


ASSERT_CONSTANT = """
import pytest
from sqlalchemy import select
from sqlalchemy.orm import selectinload
from pytest_sqlaperf import BudgetExceeded
from models import Author, Book

def populate(session, n):
    for i in range(n):
        session.add(Author(name=f"a{i}", books=[Book(title="t")]))

def listing(session, options=()):
    for author in session.scalars(select(Author).options(*options)).all():
        len(author.books)

@pytest.mark.allow_n_plus_one
def test_sync_n_plus_one(sqlaperf_session, sqlaperf):
    with pytest.raises(BudgetExceeded, match="statements grow with n: 3 at n=2, 6 at n=5"):
        sqlaperf.assert_constant_queries(
            lambda n: populate(sqlaperf_session, n), lambda: listing(sqlaperf_session)
        )
    # every scale was rolled back
    assert sqlaperf_session.scalars(select(Author)).all() == []

def test_sync_selectinload(sqlaperf_session, sqlaperf):
    sqlaperf.assert_constant_queries(
        lambda n: populate(sqlaperf_session, n),
        lambda: listing(sqlaperf_session, [selectinload(Author.books)]),
        scales=(1, 3, 10),
    )

@pytest.mark.asyncio
@pytest.mark.allow_n_plus_one
async def test_async_n_plus_one(sqlaperf_async_session, sqlaperf):
    session = sqlaperf_async_session

    async def populate_async(n):
        await session.run_sync(populate, n)

    async def run():
        await session.run_sync(listing)

    with pytest.raises(BudgetExceeded, match="statements grow with n"):
        await sqlaperf.assert_constant_queries(populate_async, run, scales=(2, 3))

@pytest.mark.asyncio
async def test_async_selectinload(sqlaperf_async_session, sqlaperf):
    session = sqlaperf_async_session

    async def run():
        await session.run_sync(listing, [selectinload(Author.books)])

    await sqlaperf.assert_constant_queries(lambda n: session.run_sync(populate, n), run)
"""


def test_assert_constant_queries(project: pytest.Pytester) -> None:
    project.makepyfile(test_assert_constant=ASSERT_CONSTANT)
    project.runpytest().assert_outcomes(passed=4)
