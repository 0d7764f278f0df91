"""QueryLog's records read back as Statements (no database: the records are written by hand)."""

from __future__ import annotations

from pytest_sqlaperf.capture.ormloads import OrmLoad
from pytest_sqlaperf.capture.querylog import QueryLog, Statement


def _record(sql: str, form: object, items: tuple[object, ...], *, load=None, parent=None, serial=0):
    """A record as the recorder writes it (see QueryLog)."""
    return (sql, sql, "f" + sql, "select", form, 1, None, load, 0.5, 1, parent, serial,
            len(items), *items)  # fmt: skip


def test_records_read_back_as_statements_with_their_parameters_and_sources() -> None:
    log = QueryLog("t")
    log.append(Statement("SELECT 0", "SELECT 0", "f0", "select", {"kept": 1}, 1, None))
    log._data.extend(_record("SELECT 1", dict, ("a", "b", 1, 2), serial=7))
    log._data.extend(_record("SELECT 2", tuple, (3, 4), serial=8))
    load = OrmLoad("lazy", "Post.author", "Post", "author")
    log._data.extend(_record("SELECT 3", list, (5,), load=load, parent=7, serial=9))
    log._data.extend(_record("SELECT 4", None, (), load=load, parent=6, serial=10))
    appended, named, positional, lazy, orphan = log.statements
    assert appended.parameters == {"kept": 1}
    assert named.parameters == {"a": 1, "b": 2}
    assert positional.parameters == (3, 4)
    assert lazy.parameters == [5]
    assert orphan.parameters is None
    # the source is this log's Statement for the serial, found past a statement without one
    assert lazy.orm_load is not None
    assert lazy.orm_load.parent is named
    assert lazy.lazy_load == "Post.author"
    assert orphan.orm_load is not None
    assert orphan.orm_load.parent is None
    assert load.parent is None  # the recorder's shared OrmLoad is left alone
    assert log.statements[1] is named  # made once
    log._data.extend(_record("SELECT 5", tuple, (), serial=11))
    assert log.statements[1] is named
    assert len(log.statements) == 6
    assert log.count == 6


def test_clear_drops_records_and_statements() -> None:
    log = QueryLog("t")
    log._data.extend(_record("SELECT 1", tuple, (1,)))
    assert not log.empty
    assert len(log.statements) == 1
    log.clear()
    assert log.empty
    assert log.statements == []
    assert log.count == 0
