"""A numbered migration, as applied once and recorded in ``schema_migrations``."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from consumers.projections import PROJECTIONS


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str


def each_projection(first: int, name: str, sql: Callable[[str], str]) -> tuple[Migration, ...]:
    """One migration per projection, numbered from ``first``: ``sql`` of the projection."""
    return tuple(
        Migration(first + n, f"{projection}_{name}", sql(projection))
        for n, projection in enumerate(PROJECTIONS)
    )
