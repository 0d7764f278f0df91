"""The mapped class of a table, for fixes that name real classes (``insert(Post)``, not a table)."""

from __future__ import annotations

from functools import lru_cache


@lru_cache(maxsize=256)
def entity_for_table(table: str) -> str | None:
    """The name of the ORM class mapped to ``table`` (``schema.table`` or ``table``), if one is."""
    from sqlalchemy.orm import mapperlib

    name = table.strip('"').split(".")[-1].strip('"')
    # _mapper_registries is SQLAlchemy's own index of every registry (private, stable since 1.4):
    # the only way to find mapped classes without being told the declarative base.
    for registry in list(mapperlib._mapper_registries):
        for mapper in list(getattr(registry, "mappers", ())):
            local = getattr(mapper, "local_table", None)
            if getattr(local, "name", None) == name:
                return str(mapper.class_.__name__)
    return None
