"""What an ORM load was for: a lazy load of ``Class.attr``, an eager batch, a column refresh."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sqlalchemy.orm import ORMExecuteState

    from .querylog import Statement


@dataclass(frozen=True, slots=True)
class OrmLoad:
    """Why the ORM ran a SELECT, as ``do_orm_execute`` tells it.

    ``kind`` is ``lazy`` (attribute access on a loaded object: the N+1 suspect), ``eager`` (a
    selectinload/subqueryload batch) or ``column`` (a deferred column or expired attributes being
    loaded for one object). ``parent`` is the statement that loaded the object, when it ran in the
    same test.
    """

    kind: str
    target: str
    entity: str
    attribute: str | None = None
    collection: bool = False
    configured_lazy: str | None = None
    parent: Statement | None = None


def _relationship(state: ORMExecuteState) -> Any:
    path = state.loader_strategy_path
    if path is not None and len(path) >= 2:
        return path[-1]
    return None


def describe(state: ORMExecuteState, loaded_by: dict[int, Statement]) -> OrmLoad | None:
    """The OrmLoad of one ORM execution, or None for a statement the user's code asked for."""
    if not state.is_select:
        return None
    lazy_from = state.lazy_loaded_from
    if lazy_from is not None:
        prop = _relationship(state)
        entity = lazy_from.class_.__name__
        key = getattr(prop, "key", None)
        parent_class = getattr(getattr(prop, "parent", None), "class_", None)
        if parent_class is not None:
            entity = parent_class.__name__
        return OrmLoad(
            kind="lazy",
            target=f"{entity}.{key}" if key else f"{entity}.<lazy load>",
            entity=entity,
            attribute=key,
            collection=bool(getattr(prop, "uselist", False)),
            configured_lazy=getattr(prop, "lazy", None),
            parent=loaded_by.get(id(lazy_from)),
        )
    if state.is_column_load:
        options = state.load_options
        refreshed = getattr(options, "_refresh_state", None)
        mapper = state.bind_mapper
        entity = mapper.class_.__name__ if mapper is not None else "<object>"
        names = getattr(options, "_only_load_props", None)
        attribute = ", ".join(str(name) for name in names) if names else None
        return OrmLoad(
            kind="column",
            target=f"{entity}.{attribute}" if attribute else f"{entity} (expired attributes)",
            entity=entity,
            attribute=attribute,
            parent=loaded_by.get(id(refreshed)) if refreshed is not None else None,
        )
    if state.is_relationship_load:
        prop = _relationship(state)
        entity = getattr(getattr(getattr(prop, "parent", None), "class_", None), "__name__", "?")
        key = getattr(prop, "key", "?")
        return OrmLoad(kind="eager", target=f"{entity}.{key}", entity=entity, attribute=key)
    return None
