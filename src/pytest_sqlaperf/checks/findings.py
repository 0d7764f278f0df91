"""Finding: one problem a check found, with where it happened, the evidence and the fix."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..capture.querylog import CallSite


@dataclass(frozen=True)
class Finding:
    """One problem: what kind, where (the user's call site), the evidence and how to fix it.

    ``target`` names what the problem is about (``"Post.comments"``, a table, or display SQL);
    ``source`` is the call site of the query whose rows drove a loop, when known.
    """

    kind: str
    message: str
    call_site: CallSite | None = None
    evidence: tuple[str, ...] = field(default_factory=tuple)
    fix: str | None = None
    target: str | None = None
    count: int = 1
    source: CallSite | None = None
    fingerprint: str | None = None
    display_sql: str | None = None
