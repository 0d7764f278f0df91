"""Marker signatures and their validation: a function per marker, with the marker's signature."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from .checks.budget import Budget

NAMES_KEY = pytest.StashKey[frozenset[str]]()
"""A test's marker names, from its set-up to its teardown (see :func:`names`)."""


def names(item: pytest.Item) -> frozenset[str]:
    """The names of the markers on a test and the nodes above it, read once per test: the
    plugin's set-up looks for six markers, and each ``get_closest_marker`` walks the chain."""
    found = item.stash.get(NAMES_KEY, None)
    if found is None:
        found = frozenset(mark.name for node in item.listchain() for mark in node.own_markers)
        item.stash[NAMES_KEY] = found
    return found


class MarkerError(ValueError):
    """A marker was given arguments it cannot take; the message names the argument."""


def _limit(name: str, value: object) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise MarkerError(f"{name} must be a whole number >= 0, got {value!r}")
    if value < 0:
        raise MarkerError(f"{name} must be >= 0, got {value}")
    return value


def max_queries_marker(
    n: int | None = None,
    *,
    select: int | None = None,
    insert: int | None = None,
    update: int | None = None,
    delete: int | None = None,
) -> Budget:
    """max_queries(n=None, *, select=None, insert=None, update=None, delete=None)."""
    per_kind = {
        kind: limit
        for kind, limit in (
            ("select", _limit("select", select)),
            ("insert", _limit("insert", insert)),
            ("update", _limit("update", update)),
            ("delete", _limit("delete", delete)),
        )
        if limit is not None
    }
    total = _limit("n", n)
    if total is None and not per_kind:
        raise MarkerError("give a limit: max_queries(3), or per kind, e.g. max_queries(select=2)")
    return Budget(total=total, per_kind=per_kind)


def no_n_plus_one_marker(threshold: int | None = None) -> int | None:
    """no_n_plus_one(threshold=None)."""
    if threshold is not None and (_limit("threshold", threshold) or 0) < 1:
        raise MarkerError(f"threshold must be >= 1, got {threshold}")
    return threshold


def allow_n_plus_one_marker(*targets: str) -> tuple[str, ...]:
    """allow_n_plus_one(*targets)."""
    for target in targets:
        if not isinstance(target, str) or not target.strip():
            raise MarkerError(
                f"each target must be 'Class.attr' or the start of a statement, got {target!r}"
            )
    return tuple(target.strip() for target in targets)


def constant_queries_marker(argname: str, *, slope: float = 0) -> tuple[str, float]:
    """constant_queries(argname, *, slope=0)."""
    if not isinstance(argname, str) or not argname.isidentifier():
        raise MarkerError(f"argname must name the test's parameter, e.g. 'n', got {argname!r}")
    if isinstance(slope, bool) or not isinstance(slope, int | float) or slope < 0:
        raise MarkerError(f"slope must be a number >= 0, got {slope!r}")
    return argname, slope


def strict_loading_marker() -> None:
    """strict_loading()."""


@dataclass(frozen=True)
class MarkerSpec:
    """A marker: its name, the function that validates its arguments, its signature and help."""

    name: str
    validate: Callable[..., Any]
    signature: str
    help: str

    @property
    def line(self) -> str:
        """The ``markers`` ini line: the signature first, as ``pytest --markers`` shows them."""
        return f"{self.signature}: {self.help}"


MARKERS: tuple[MarkerSpec, ...] = (
    MarkerSpec(
        "max_queries",
        max_queries_marker,
        "max_queries(n=None, *, select=None, insert=None, update=None, delete=None)",
        "fail the test when its call phase runs more statements than n in all, or more of a "
        "kind than its limit; fixture set-up and transaction control do not count",
    ),
    MarkerSpec(
        "no_n_plus_one",
        no_n_plus_one_marker,
        "no_n_plus_one(threshold=None)",
        "fail the test on any N+1 finding, even with --sqlaperf-n-plus-one=warn; threshold "
        "overrides sqlaperf_n_plus_one_threshold",
    ),
    MarkerSpec(
        "allow_n_plus_one",
        allow_n_plus_one_marker,
        "allow_n_plus_one(*targets)",
        "do not report N+1 findings of these targets ('Class.attr' or the start of a statement); "
        "none given: all",
    ),
    MarkerSpec(
        "constant_queries",
        constant_queries_marker,
        "constant_queries(argname, *, slope=0)",
        "compare the instances of a test parametrized over argname: fail the last one when the "
        "statement count grows faster than slope per unit of argname",
    ),
    MarkerSpec(
        "strict_loading",
        strict_loading_marker,
        "strict_loading()",
        "make every lazy load in the test a finding that fails it (all listed, none raised)",
    ),
)


def parse(mark: pytest.Mark, nodeid: str, spec: MarkerSpec | None = None) -> Any:
    """Validate one marker's arguments; a bad call fails set-up with one line, no traceback.

    ``spec`` is for markers registered outside :data:`MARKERS` (the plan checks' own).
    """
    if spec is None:
        spec = next(known for known in MARKERS if known.name == mark.name)
    try:
        return spec.validate(*mark.args, **mark.kwargs)
    except TypeError as error:
        reason = str(error).replace(f"{spec.validate.__name__}()", f"{spec.name}()")
        reason = f"{reason}; the signature is {spec.signature}"
    except MarkerError as error:
        reason = str(error)
    pytest.fail(f"{nodeid}: bad marker @pytest.mark.{spec.name}: {reason}", pytrace=False)


def max_queries(
    n: int | None = None,
    *,
    select: int | None = None,
    insert: int | None = None,
    update: int | None = None,
    delete: int | None = None,
) -> pytest.MarkDecorator:
    """``@max_queries(3)`` is ``@pytest.mark.max_queries(3)``, with a signature IDEs can check.

    The marker is looked up when called, not at import, so importing this package never trips
    ``--strict-markers`` in a run where the plugin is disabled.
    """
    limits = {"select": select, "insert": insert, "update": update, "delete": delete}
    positional = () if n is None else (n,)
    return pytest.mark.max_queries(
        *positional, **{kind: limit for kind, limit in limits.items() if limit is not None}
    )
