"""Bad max_queries arguments: the test errors at set-up, one line naming test and argument."""

from __future__ import annotations

import pytest

from pytest_sqlaperf.markers import MARKERS, max_queries_marker


@pytest.mark.parametrize(
    ("arguments", "expected"),
    [
        ("-1", "n must be >= 0, got -1"),
        ("2.5", "n must be a whole number >= 0, got 2.5"),
        ("'3'", "n must be a whole number >= 0, got '3'"),
        ("True", "n must be a whole number >= 0, got True"),
        ("select=-2", "select must be >= 0, got -2"),
        ("selects=1", "max_queries() got an unexpected keyword argument 'selects'"),
        ("3, n=4", "max_queries() got multiple values for argument 'n'"),
        ("1, 2", "max_queries() takes from 0 to 1 positional arguments but 2 were given"),
        ("", "give a limit: max_queries(3), or per kind, e.g. max_queries(select=2)"),
    ],
)
def test_bad_arguments(pytester: pytest.Pytester, arguments: str, expected: str) -> None:
    pytester.makepyfile(
        test_bad=f"""
        import pytest

        @pytest.mark.max_queries({arguments})
        def test_it():
            pass
        """
    )
    result = pytester.runpytest()
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        [f"*test_bad.py::test_it: bad marker @pytest.mark.max_queries: {expected}*"]
    )
    result.stdout.no_fnmatch_line("*Traceback*")
    result.stdout.no_fnmatch_line("*pytest_sqlaperf*")


def test_markers_registered_with_signature(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--markers")
    result.stdout.fnmatch_lines(
        [
            "@pytest.mark.max_queries(n=None, *, select=None, insert=None, update=None, "
            "delete=None):*"
        ]
    )


def test_signature_text_matches_the_validator() -> None:
    import inspect
    import re

    for spec in MARKERS:
        names = list(inspect.signature(spec.validate).parameters)
        assert spec.signature.startswith(spec.name + "(")
        for name in names:
            assert re.search(rf"\b{name}\b", spec.signature), (spec.signature, name)


def test_validator_accepts_zero_and_per_kind() -> None:
    budget = max_queries_marker(0, select=0, delete=3)
    assert budget.total == 0
    assert dict(budget.per_kind) == {"select": 0, "delete": 3}
    assert budget.describe() == "max_queries(0, select=0, delete=3)"
