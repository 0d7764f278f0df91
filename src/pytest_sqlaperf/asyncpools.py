"""Pooled asyncpg connections for ``sqlaperf_async_session`` on event loops that outlive a test."""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import AsyncGenerator
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine


class LoopPools:
    """One pooled AsyncEngine per event loop that has served more than one test.

    An asyncpg connection works only on the loop that opened it, and pytest-asyncio gives each
    test a loop of its own by default: there, a connection per test (the NullPool engine of
    ``sqlaperf_async_engine``) is all that can be done. A loop seen a second time lives longer
    (class, module, package or session scope): its tests share a pool, which saves a connect
    per test (docs/benchmarks.md).

    Each pool is disposed on its own loop while the loop still runs: an async generator of ours,
    suspended on that loop, holds it, and ``asyncio.Runner.close()`` (how pytest-asyncio ends a
    loop) closes the loop's open async generators before it closes the loop. :meth:`close`, at
    the end of the session, disposes what a loop ended without that.
    """

    def __init__(self, url: str) -> None:
        self._url = url
        self._enabled = _runner_closes_async_generators()
        self._seen: weakref.WeakSet[asyncio.AbstractEventLoop] = weakref.WeakSet()
        self._pools: dict[
            asyncio.AbstractEventLoop, tuple[AsyncEngine, AsyncGenerator[None, None]]
        ] = {}

    async def engine_for(
        self, loop: asyncio.AbstractEventLoop, fallback: AsyncEngine
    ) -> AsyncEngine:
        """The engine a test on ``loop`` (the running one) takes its connection from."""
        if not self._enabled:
            return fallback
        found = self._pools.get(loop)
        if found is not None:
            return found[0]
        if loop not in self._seen:  # maybe a loop for this test only
            self._seen.add(loop)
            return fallback
        from sqlalchemy.ext.asyncio import create_async_engine

        engine = create_async_engine(self._url)
        holder = self._dispose_at_shutdown(loop, engine)
        await anext(holder)  # the loop now knows it as one of its open async generators
        self._pools[loop] = (engine, holder)
        return engine

    async def _dispose_at_shutdown(
        self, loop: asyncio.AbstractEventLoop, engine: AsyncEngine
    ) -> AsyncGenerator[None, None]:
        try:
            yield
        finally:
            self._pools.pop(loop, None)
            await engine.dispose()

    def close(self) -> None:
        """Dispose the pools still open (their loop ended without closing its async generators)."""
        while self._pools:
            loop, (engine, holder) = self._pools.popitem()
            if not loop.is_closed() and not loop.is_running():
                loop.run_until_complete(holder.aclose())
            else:
                # its connections cannot be closed off their loop; they end with the process,
                # and the run's database is dropped WITH (FORCE) all the same
                engine.sync_engine.dispose(close=False)


def _runner_closes_async_generators() -> bool:
    """Whether pytest-asyncio ends its loops with ``asyncio.Runner`` (1.0 and later), which
    closes a loop's open async generators first; before 1.0 its loop fixtures just closed it."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return int(version("pytest-asyncio").split(".")[0]) >= 1
    except (PackageNotFoundError, ValueError):
        return False
