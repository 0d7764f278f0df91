"""Budget check: a limit on statement counts, in all and per kind, and the evidence of a break."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from ..capture.querylog import QueryLog, Statement
from .findings import Finding

PARAMETERS_SHOWN = 300
"""Characters of a statement's parameters shown in evidence before it is cut."""


@dataclass(frozen=True)
class Budget:
    """At most ``total`` counted statements, and at most ``per_kind[kind]`` of each kind given."""

    total: int | None = None
    per_kind: Mapping[str, int] = field(default_factory=dict)

    def describe(self) -> str:
        parts = [] if self.total is None else [f"{self.total}"]
        parts += [f"{kind}={limit}" for kind, limit in self.per_kind.items()]
        return f"max_queries({', '.join(parts)})"


def _plural(count: int, word: str) -> str:
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


def check(log: QueryLog, budget: Budget, *, show_parameters: bool = False) -> Finding | None:
    """A ``budget`` finding when ``log`` ran more than the budget allows, else None."""
    counted = log.counted
    by_kind = log.count_by_kind()
    broken: list[str] = []
    if budget.total is not None and len(counted) > budget.total:
        broken.append(f"expected at most {_plural(budget.total, 'statement')}, ran {len(counted)}")
    for kind, limit in budget.per_kind.items():
        if by_kind[kind] > limit:
            broken.append(f"expected at most {limit} {kind}, ran {by_kind[kind]}")
    if not broken:
        return None
    ran = ", ".join(f"{kind} {count}" for kind, count in by_kind.items() if count)
    message = f"{budget.describe()}: {'; '.join(broken)} ({ran or 'none'})"
    relevant = counted
    if budget.total is None:
        relevant = [s for s in counted if s.kind in budget.per_kind]
    evidence = describe_statements(relevant, show_parameters=show_parameters)
    first = relevant[0].call_site if relevant else None
    return Finding(kind="budget", message=message, call_site=first, evidence=tuple(evidence))


def _group(statements: Iterable[Statement]) -> list[list[Statement]]:
    """Statements of one fingerprint from one call site together, in order of first appearance."""
    groups: dict[tuple[str, object], list[Statement]] = {}
    for statement in statements:
        groups.setdefault((statement.fingerprint, statement.call_site), []).append(statement)
    return list(groups.values())


def _parameters(statement: Statement) -> str:
    text = repr(statement.parameters)
    return text if len(text) <= PARAMETERS_SHOWN else text[: PARAMETERS_SHOWN - 3] + "..."


def describe_statements(
    statements: Sequence[Statement], *, show_parameters: bool = False
) -> list[str]:
    """Numbered lines, one group per fingerprint and call site (``×N`` when repeated)."""
    lines: list[str] = []
    groups = _group(statements)
    width = len(str(len(groups)))
    for number, group in enumerate(groups, start=1):
        first = group[0]
        repeat = f" ×{len(group)}" if len(group) > 1 else ""
        lines.append(f"{number:>{width}}. {first.kind.upper()}{repeat}  {first.display_sql}")
        indent = " " * (width + 2)
        if first.call_site is not None:
            lines.append(f"{indent}  at {first.call_site}")
        if first.lazy_load:
            lines.append(f"{indent}  lazy load of {first.lazy_load}")
        if show_parameters:
            for statement in group:
                lines.append(f"{indent}  parameters: {_parameters(statement)}")
    if not show_parameters and statements:
        lines.append("(use -v to list parameters)")
    return lines
