"""What an ORM load was for: a lazy load of ``Class.attr``, an eager batch, a column refresh."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .querylog import Statement


class OrmLoad:
    """Why the ORM ran a SELECT, as ``do_orm_execute`` tells it.

    ``kind`` is ``lazy`` (attribute access on a loaded object: the N+1 suspect), ``eager`` (a
    selectinload/subqueryload batch) or ``column`` (a deferred column or expired attributes being
    loaded for one object). ``parent`` is the statement that loaded the object, when it ran in the
    same test.

    A plain class with ``__slots__``, not a frozen dataclass: one is made for each ORM load the
    tests run, and a frozen dataclass sets each field through ``object.__setattr__``.
    """

    __slots__ = ("attribute", "collection", "configured_lazy", "entity", "kind", "parent", "target")

    def __init__(
        self,
        kind: str,
        target: str,
        entity: str,
        attribute: str | None = None,
        collection: bool = False,
        configured_lazy: str | None = None,
        parent: Statement | None = None,
    ) -> None:
        self.kind = kind
        self.target = target
        self.entity = entity
        self.attribute = attribute
        self.collection = collection
        self.configured_lazy = configured_lazy
        self.parent = parent

    def with_parent(self, parent: Statement | None) -> OrmLoad:
        """A copy whose ``parent`` is ``parent``."""
        return OrmLoad(
            self.kind,
            self.target,
            self.entity,
            self.attribute,
            self.collection,
            self.configured_lazy,
            parent,
        )

    def __repr__(self) -> str:
        return f"OrmLoad(kind={self.kind!r}, target={self.target!r})"


NO_LOAD: tuple[None, None] = (None, None)
"""from_context's answer for a statement that is no ORM load."""

_templates: dict[tuple[str, object], OrmLoad] = {}
"""The OrmLoad of each (kind, relationship) seen: the same for every load of it. Bounded by the
relationships of the mapped classes."""


def _class_name(value: Any) -> str | None:
    class_ = getattr(value, "class_", None)
    return getattr(class_, "__name__", None)


def from_context(context: Any, loaded_by: dict[int, int]) -> tuple[OrmLoad | None, int | None]:
    """The OrmLoad of the statement an execution context is about to run (None when it is no ORM
    load), and the serial of the statement that loaded the lazy load's or refresh's object
    (from ``loaded_by``, ``id(InstanceState)`` -> serial), when it ran in the same test.

    It reads what ``ORMExecuteState`` reads (the ``_sa_orm_load_options`` execution option and
    the statement's compile options) without listening to ``do_orm_execute``: with a listener
    there, SQLAlchemy builds an ORMExecuteState for every ORM execution, which is most of what
    telling loads apart would cost. The OrmLoad of a relationship's loads is made once; the
    QueryLog gives each statement's its parent when it makes the Statement.
    """
    load_options = context.execution_options.get("_sa_orm_load_options")
    if load_options is None:
        return NO_LOAD
    compile_options = getattr(context.invoked_statement, "_compile_options", None)
    path = getattr(compile_options, "_current_path", None)
    lazy_from = getattr(load_options, "_lazy_loaded_from", None)
    relationship = path[-1] if path is not None and len(path) >= 2 else None
    if lazy_from is not None:
        parent = loaded_by.get(id(lazy_from))
        if relationship is not None:
            template = _templates.get(("lazy", relationship))
            if template is not None:
                return template, parent
        owner = _class_name(getattr(relationship, "parent", None))
        entity = owner or lazy_from.class_.__name__
        key = getattr(relationship, "key", None)
        load = OrmLoad(
            kind="lazy",
            target=f"{entity}.{key}" if key else f"{entity}.<lazy load>",
            entity=entity,
            attribute=key,
            collection=bool(getattr(relationship, "uselist", False)),
            configured_lazy=getattr(relationship, "lazy", None),
        )
        if relationship is not None and owner is not None:  # the same for every load of it
            _templates["lazy", relationship] = load
        return load, parent
    if getattr(compile_options, "_for_refresh_state", False):
        refreshed = getattr(load_options, "_refresh_state", None)
        entity = _class_name(refreshed) or "<object>"
        names = getattr(load_options, "_only_load_props", None)
        attribute = ", ".join(str(name) for name in names) if names else None
        load = OrmLoad(
            kind="column",
            target=f"{entity}.{attribute}" if attribute else f"{entity} (expired attributes)",
            entity=entity,
            attribute=attribute,
        )
        return load, (loaded_by.get(id(refreshed)) if refreshed is not None else None)
    if relationship is not None:
        template = _templates.get(("eager", relationship))
        if template is None:
            entity = _class_name(getattr(relationship, "parent", None)) or "?"
            key = getattr(relationship, "key", "?")
            template = OrmLoad(kind="eager", target=f"{entity}.{key}", entity=entity, attribute=key)
            _templates["eager", relationship] = template
        return template, None
    return NO_LOAD
