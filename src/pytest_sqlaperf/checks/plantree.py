"""EXPLAIN (FORMAT JSON) plans as trees: walking the nodes, the "disabled" marker, and short
text renderings (a shape without values for records, conditions with values masked for people)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from .predicates import mask_values

Node = Mapping[str, Any]

_CONDITIONS = (
    "Index Cond",
    "Recheck Cond",
    "Filter",
    "Join Filter",
    "Hash Cond",
    "Merge Cond",
    "One-Time Filter",
)
# As EXPLAIN's text format names them.
_AGGREGATES = {"Hashed": "HashAggregate", "Sorted": "GroupAggregate", "Mixed": "MixedAggregate"}
DISABLED_COST = 1.0e10
MAX_PLAN_LINES = 16


def nodes(plan: Node, parents: tuple[Node, ...] = ()) -> Iterator[tuple[Node, tuple[Node, ...]]]:
    """Every node with its ancestors (nearest last), depth first."""
    yield plan, parents
    for child in plan.get("Plans", ()):
        yield from nodes(child, (*parents, plan))


def is_disabled(node: Node) -> bool:
    """Whether the planner took this node although its kind was disabled (enable_* = off).

    PostgreSQL 18 says so (``"Disabled": true``); up to 17 a disabled node costs >= 1e10, which
    its parents inherit, so the node is the one whose children do not.
    """
    if "Disabled" in node:
        return node["Disabled"] is True
    if node.get("Total Cost", 0.0) < DISABLED_COST:
        return False
    return all(child.get("Total Cost", 0.0) < DISABLED_COST for child in node.get("Plans", ()))


def _node_line(node: Node) -> str:
    line = str(node.get("Node Type", "?"))
    if line == "Aggregate":
        line = _AGGREGATES.get(str(node.get("Strategy")), line)
    if "Index Name" in node:
        line += f" using {node['Index Name']}"
    if "Relation Name" in node:
        line += f" on {node['Relation Name']}"
        alias = node.get("Alias")
        if alias and alias != node["Relation Name"]:
            line += f" {alias}"
    if is_disabled(node):
        line += " (disabled)"
    return line


def shape(plan: Node) -> list[str]:
    """The plan's nodes, indented, without conditions or values (what a baseline compares)."""
    return ["  " * len(parents) + _node_line(node) for node, parents in nodes(plan)]


def indexes_used(plan: Node) -> list[str]:
    """The names of the indexes the plan reads, sorted."""
    return sorted({str(node["Index Name"]) for node, _ in nodes(plan) if "Index Name" in node})


def render(plan: Node, mark: Node | None = None) -> list[str]:
    """A compact text rendering with conditions, values masked; ``mark`` flags one node.

    A long plan is cut to the path from the root to the marked node.
    """
    keep = None
    lines_in_full = sum(1 + sum(key in n for key in _CONDITIONS) for n, _ in nodes(plan))
    if mark is not None and lines_in_full > MAX_PLAN_LINES:
        keep = next(({id(p) for p in parents} | {id(n)} for n, parents in nodes(plan) if n is mark))
    lines = []
    for node, parents in nodes(plan):
        if keep is not None and id(node) not in keep:
            continue
        indent = "  " * len(parents)
        lines.append(indent + _node_line(node) + ("   <-- here" if node is mark else ""))
        for key in _CONDITIONS:
            if key in node:
                lines.append(f"{indent}    {key}: {mask_values(str(node[key]))}")
        if "Sort Key" in node:
            lines.append(f"{indent}    Sort Key: {mask_values(', '.join(node['Sort Key']))}")
    return lines
