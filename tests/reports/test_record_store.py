"""The run's records are kept compact (RecordStore) and read back exactly as they were made."""

from __future__ import annotations

import copy
import json
import pickle
from types import SimpleNamespace

from report_helpers import finding, record

from pytest_sqlaperf import record_of
from pytest_sqlaperf.capture.fingerprint import shape_of
from pytest_sqlaperf.capture.querylog import CallSite, QueryLog, Statement
from pytest_sqlaperf.records import RECORD_ATTRIBUTE, RecordStore, StoredRecord, encode_record


def _records() -> list:
    plan = {"method": "custom", "shape": ["Seq Scan on t"], "indexes": [], "findings": []}
    other_plan = {"method": "generic", "shape": ["Index Scan using t_pkey on t"], "indexes": []}
    return [
        record("t.py::test_a", {"aaaa": (3, "SELECT a FROM t"), "bbbb": (1, "UPDATE t SET a = ?")}),
        record(
            "t.py::test_b",
            {"aaaa": (1, "SELECT a FROM t")},
            findings=[finding()],
            plans={"aaaa": plan},
        ),
        record("t.py::test_c", {"cccc": (2, "DELETE FROM t")}, plans={"cccc": other_plan}),
        record("t.py::test_d", {"aaaa": (1, "SELECT a FROM t")}, plans={"aaaa": dict(plan)}),
    ]


def test_records_read_back_equal_to_what_was_stored() -> None:
    made = _records()
    store = RecordStore(made[:2])
    for one in made[2:]:
        store.append(one)
    assert len(store) == 4
    assert list(store) == made
    assert store[1] == made[1]
    assert store[-1] == made[-1]
    assert store[1:3] == made[1:3]
    # key order too: the JSON report writes records as they come back
    assert [json.dumps(r) for r in store] == [json.dumps(r) for r in made]


def test_repeated_sql_sites_and_plans_are_kept_once() -> None:
    made = _records()
    many = RecordStore([made[1]] * 200)
    first, last = many._records[0], many._records[-1]
    assert first == last
    # the parts of a record are shared by the records that repeat them, not copied
    assert all(a is b for a, b in zip(first, last, strict=True))
    assert "SELECT a FROM t" not in repr(first)  # the display SQL is kept once per run
    assert len(many._facts) == 1


def test_a_record_made_from_a_log_reads_back_as_dicts() -> None:
    site = CallSite("/project/app.py", 10, "load")
    other = CallSite("/elsewhere/lib.py", 3, "run")
    log = QueryLog("t.py::test_a")
    for sql, call_site, duration in (
        ("BEGIN", None, 0.5),
        ("SELECT a FROM t WHERE id = 1", site, 0.25),
        ("SELECT a FROM t WHERE id = 2", site, 0.25),
        ("SELECT a FROM t WHERE id = 3", other, None),
        ("UPDATE t SET a = 1", site, 1.0),
    ):
        shape = shape_of(sql)
        statement = Statement(
            sql,
            shape.display_sql,
            shape.fingerprint,
            shape.kind,
            None,
            1,
            call_site,
            None,
            duration,
        )
        log.append(statement)
    store = RecordStore()
    facts = {"method": "custom", "shape": ["Seq Scan on t"], "indexes": [], "findings": []}
    select, update = shape_of("SELECT a FROM t WHERE id = 1"), shape_of("UPDATE t SET a = 1")
    compact = store.make(
        "t.py::test_a",
        log,
        rootdir="/project",
        outcome="passed",
        budget="max_queries(3)",
        plans={select.fingerprint: facts},
    )
    store.add(compact)
    assert list(store) == [
        {
            "version": 1,
            "nodeid": "t.py::test_a",
            "outcome": "passed",
            "count": 4,  # BEGIN is recorded, not counted
            "by_kind": {"select": 3, "update": 1},
            "fingerprints": {
                select.fingerprint: {
                    "display_sql": select.display_sql,
                    "kind": "select",
                    "count": 3,
                    "call_sites": [
                        {"path": "app.py", "line": 10, "function": "load"},
                        {"path": "/elsewhere/lib.py", "line": 3, "function": "run"},
                    ],
                },
                update.fingerprint: {
                    "display_sql": update.display_sql,
                    "kind": "update",
                    "count": 1,
                    "call_sites": [{"path": "app.py", "line": 10, "function": "load"}],
                },
            },
            "budget": "max_queries(3)",
            "violation": None,
            "findings": [],
            "plans": {select.fingerprint: facts},
            "duration": 2.0,
        }
    ]
    summary = next(store.summaries())
    assert summary["count"] == 4
    assert summary["by_kind"] == {"select": 3, "update": 1}
    assert summary["plans"] == {select.fingerprint: facts}
    # the same facts object again is the same facts: kept once
    store.add(
        store.make(
            "t.py::test_b",
            log,
            rootdir="/project",
            outcome="passed",
            plans={select.fingerprint: facts},
        )
    )
    assert len(store._facts) == 1


def test_a_report_carries_its_record_and_a_workers_arrives_as_text() -> None:
    made = _records()[1]
    here = RecordStore()
    here.append(made)
    report = SimpleNamespace(**{RECORD_ATTRIBUTE: StoredRecord(here, here._records[0])})
    assert record_of(report) == made
    # another plugin pickling or copying the report gets the record, not the run's store
    assert getattr(pickle.loads(pickle.dumps(report)), RECORD_ATTRIBUTE) == made
    assert copy.deepcopy(getattr(report, RECORD_ATTRIBUTE)) == made
    report = SimpleNamespace(**{RECORD_ATTRIBUTE: encode_record(made), "when": "call"})
    assert record_of(report) == made
    store = RecordStore()
    store.append_encoded(encode_record(made))
    assert list(store) == [made]
    assert record_of(SimpleNamespace(when="call")) is None
