"""Small helpers for assertions on query logs and plans."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from blog.query_optimization import QueryPlan
from pytest_sqlaperf import QueryLog


def kinds(log: QueryLog) -> dict[str, int]:
    """A query log's statement counts per kind, the kinds it ran none of left out."""
    return {kind: count for kind, count in log.count_by_kind().items() if count}


def rows_removed_by_filter(plan: QueryPlan) -> int:
    """Rows an analysed plan read and then discarded, summed over its nodes."""
    return sum(node.get("Rows Removed by Filter", 0) for node in plan.nodes())


async def prefer_indexes(session: AsyncSession) -> None:
    """Price sequential scans out for the rest of the test's transaction.

    On tables this small a sequential scan is cheapest whatever the indexes; with it priced
    out, plans show what the indexes can do, as they would on production-sized tables.
    """
    await session.execute(text("SET LOCAL enable_seqscan = off"))
