"""The read side's query library: typed functions over a clickhouse-connect client.

Every read the HTTP service, the command line or another Python service makes goes through
here; nothing else holds SQL against the projections. Queries read the physical
``<projection>_generations`` tables of the generation readers are shown, and deduplicate by
key with ``argMax(..., version)`` instead of ``FINAL``: ``FINAL`` would turn off the
projection ordered by bot and time and the full-text index that make cross-session reads fast.
Values always travel as query parameters; the SQL is put together only from fragments
written here, chosen by which filters a caller set.
"""

from queries.errors import BadQueryError, NotFoundError
from queries.models import (
    Chunk,
    Completeness,
    IncompletePage,
    IncompleteSession,
    RoleFigures,
    SearchHit,
    SearchPage,
    SessionDetail,
    SessionFilters,
    SessionPage,
    SessionSummary,
    Span,
    Turn,
)
from queries.reader import Reader

__all__ = [
    "BadQueryError",
    "Chunk",
    "Completeness",
    "IncompletePage",
    "IncompleteSession",
    "NotFoundError",
    "Reader",
    "RoleFigures",
    "SearchHit",
    "SearchPage",
    "SessionDetail",
    "SessionFilters",
    "SessionPage",
    "SessionSummary",
    "Span",
    "Turn",
]
