"""The run's records are kept compact (RecordStore) and read back exactly as they were made."""

from __future__ import annotations

import json
from types import SimpleNamespace

from report_helpers import finding, record

from pytest_sqlaperf import record_of
from pytest_sqlaperf.records import RECORD_ATTRIBUTE, RecordStore, encode_record


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


def test_repeated_sql_and_plans_are_kept_once() -> None:
    made = _records()
    many = RecordStore([made[1]] * 200)
    one = RecordStore([made[1]])
    size_of_many = sum(len(text) for text in many._texts)
    assert size_of_many == 200 * len(one._texts[0])
    assert "SELECT a FROM t" not in many._texts[0]  # the display SQL is kept once per run
    assert len(many._facts) == 1


def test_a_workers_encoded_record_is_decoded_once_stored() -> None:
    made = _records()[1]
    report = SimpleNamespace(**{RECORD_ATTRIBUTE: encode_record(made), "when": "call"})
    assert record_of(report) == made
    store = RecordStore()
    store.append_encoded(encode_record(made))
    assert list(store) == [made]
    assert record_of(SimpleNamespace(when="call")) is None
