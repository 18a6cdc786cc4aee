"""Turns as readers see them: each turn once, in its latest version, with its response latency.

The physical table holds every version of a turn that was inserted (a start, a stop, a
replayed duplicate) until merges fold them. Reading it with ``FINAL`` would fold them too, but
would also switch off the projection and the text index, so queries fold by key instead:
``argMax`` over the version, which puts completeness first and the producer's ``seq`` second
(see ``consumers.projections.transcripts``). A tuple is folded rather than each column, so the
fields of one turn always come from the same version (``argMax`` on a Nullable column alone
would skip its NULLs).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from consumers.storage.migrations import BY_BOT_AND_TIME
from queries.errors import NotFoundError
from queries.models import Turn, Word
from queries.paging import as_utc
from queries.reader import Reader

TURN_FIELDS = (
    "bot_id",
    "framework",
    "role",
    "started_at",
    "stopped_at",
    "duration_ms",
    "text",
    "interrupted",
    "timed_out",
    "user_id",
    "language",
    "words",
    "complete",
    "seq",
)
SUMMARY_FIELDS = tuple(
    c for c in BY_BOT_AND_TIME if c not in ("generation", "session_id", "turn_id", "version")
)
"""What a session's summary needs of its turns: what the projection ordered by bot and time
holds, none of it text."""

_OPEN = "toDateTime64(0, 6, 'UTC')"
"""Stands for a user turn that has not stopped: no latency can be measured from it."""


def latest_turns(fields: Sequence[str], where: str) -> str:
    """SQL of the turns matching ``where`` (a fragment over the physical table's columns,
    with ``{generation:UInt32}`` bound by the caller), one row per turn in its latest version,
    with ``response_latency_ms``: an assistant turn's start minus the stop of the user turn
    before it, when that stop came first (a barge-in is not a latency)."""
    at = {name: index for index, name in enumerate(fields, 1)}
    unpacked = ", ".join(f"latest.{index} AS {name}" for name, index in at.items())
    return f"""
SELECT
    session_id,
    turn_id,
    {unpacked},
    if(role = 'assistant' AND previous_user_stop > {_OPEN}
       AND previous_user_stop <= started_at,
       dateDiff('millisecond', previous_user_stop, started_at), NULL) AS response_latency_ms
FROM (
    SELECT
        session_id,
        turn_id,
        argMax(({", ".join(fields)}), version) AS latest,
        anyLast(if(latest.{at["role"]} = 'user', coalesce(latest.{at["stopped_at"]}, {_OPEN}),
                   NULL)) OVER (
            PARTITION BY session_id ORDER BY latest.{at["started_at"]}, turn_id
            ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING
        ) AS previous_user_stop
    FROM transcripts_generations
    WHERE generation = {{generation:UInt32}} AND {where}
    GROUP BY session_id, turn_id
)"""


def transcript(reader: Reader, session_id: str) -> list[Turn]:
    """A session's turns in speaking order."""
    names = ("turn_id", *TURN_FIELDS, "response_latency_ms")
    rows = reader.rows(
        f"SELECT {', '.join(names)} FROM ({latest_turns(TURN_FIELDS, 'session_id = {sid:String}')})"
        " ORDER BY started_at, seq",
        generation=reader.generation("transcripts"),
        sid=session_id,
    )
    if not rows:
        raise NotFoundError(f"no session {session_id!r} in the store")
    return [_turn(dict(zip(names, row, strict=True))) for row in rows]


def _turn(row: dict[str, Any]) -> Turn:
    stopped = row["stopped_at"]
    return Turn.model_validate(
        row
        | {
            "started_at": as_utc(row["started_at"]),
            "stopped_at": as_utc(stopped) if stopped is not None else None,
            "words": [Word(**w) for w in row["words"]],
        }
    )
