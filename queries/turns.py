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

from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from consumers.storage.migrations import SESSION_TURN
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
SHOWN_FIELDS = tuple(name for name in TURN_FIELDS if name not in ("bot_id", "framework"))
"""What a ``Turn`` shows: its session's bot and framework are the summary's. Each column a read
of a session's turns takes costs it about 0.17 ms (a timing script on ``bench.query``'s store),
about 6% of a transcript's read for these two."""
SUMMARY_FIELDS = tuple(name for name, _ in SESSION_TURN if name not in ("turn_id", "version"))
"""What a session's summary needs of its turns: all but the text, the words and the user."""

BY_SESSION_SETTINGS = (
    "SETTINGS optimize_use_projections = 0, use_skip_indexes = 0, optimize_move_to_prewhere = 0"
)
"""For a read of a few sessions by their key. On ``transcripts_generations`` the engine weighed
the projection ordered by bot and time, the text index and a PREWHERE for each, though none
serves a key's range: about a millisecond of a transcript's 6 (a timing script on
``bench.query``'s store: 5.8 ms p50 and 6.0 ms of CPU a read, 4.9 and 5.1 without them); the
other tables have no projection or index, and only the PREWHERE is left out there."""

_OPEN = "toDateTime64(0, 6, 'UTC')"
"""Stands for a user turn that has not stopped: no latency can be measured from it."""


def session_turns(fields: Sequence[str], where: str) -> str:
    """SQL of the sessions with turns matching ``where`` (a fragment over the physical table's
    columns, with ``{generation:UInt32}`` bound by the caller), one row per session: ``turns``,
    its matching turns in their latest versions in speaking order, each a tuple of ``turn_id``
    and ``fields`` (``turn_field`` names them), and ``response_latencies``, theirs in the same
    order: an assistant turn's start minus the stop of the user turn before it, when that stop
    came first (a barge-in is not a latency).

    Each session's versions are gathered into one array, where each turn's latest is kept
    and each latency taken from the user stops carried forward along it: a fold by turn and
    a window over the sessions cost three times as much, and a bot's day still reads the
    projection ordered by bot and time."""
    at = _positions(fields)
    started, role, stopped = (turn_field(fields, n) for n in ("started_at", "role", "stopped_at"))
    version = len(at) + 1
    return f"""
SELECT
    session_id,
    arraySort(t -> (t.1, t.{version}), groupArray(({", ".join(at)}, version))) AS versions,
    arraySort(t -> (t.{started}, t.1), arrayMap(i -> versions[i], arrayFilter(
        i -> i = length(versions) OR versions[i + 1].1 != versions[i].1,
        arrayEnumerate(versions)))) AS turns,
    arrayPushFront(arrayPopBack(arrayFill(x -> x IS NOT NULL, arrayMap(
        t -> if(t.{role} = 'user', coalesce(t.{stopped}, {_OPEN}), NULL), turns))), NULL)
        AS previous_user_stops,
    arrayMap((t, before) -> if(t.{role} = 'assistant' AND before > {_OPEN}
        AND before <= t.{started}, dateDiff('millisecond', before, t.{started}), NULL),
        turns, previous_user_stops) AS response_latencies
FROM transcripts_generations
WHERE generation = {{generation:UInt32}} AND {where}
GROUP BY session_id"""


def latest_turns(fields: Sequence[str], where: str) -> str:
    """SQL of the turns of ``session_turns``, one row per turn: ``session_id``, ``turn_id``,
    ``fields`` and ``response_latency_ms``."""
    unpacked = ", ".join(f"turn.{index} AS {name}" for name, index in _positions(fields).items())
    return f"""
SELECT session_id, {unpacked}, response_latency_ms
FROM ({session_turns(fields, where)})
ARRAY JOIN turns AS turn, response_latencies AS response_latency_ms"""


def turn_field(fields: Sequence[str], name: str) -> int:
    """The position of the field ``name`` in a turn of ``session_turns(fields, ...)``."""
    return _positions(fields)[name]


def _positions(fields: Sequence[str]) -> dict[str, int]:
    return {name: index for index, name in enumerate(("turn_id", *fields), 1)}


def stored_turns(
    reader: Reader, session_ids: Sequence[str], fields: Sequence[str] = TURN_FIELDS
) -> dict[str, list[dict[str, Any]]]:
    """Per session, its turns in speaking order, each in its latest version, with its
    ``response_latency_ms``; sessions without turns are left out.

    A session's versions are few, so they are read as stored, with the simplest query there
    is (most of a query's time here is the engine planning it), and folded here by the same
    rules as ``latest_turns``: a test holds the two to the same answers."""
    names = ("session_id", "turn_id", "version", *fields)
    rows = reader.rows(
        f"SELECT {', '.join(names)} FROM transcripts_generations "
        "WHERE generation = {generation:UInt32} AND session_id IN {ids:Array(String)} "
        + BY_SESSION_SETTINGS,
        generation=reader.generation("transcripts"),
        ids=list(session_ids),
    )
    by_session: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        by_session.setdefault(row[0], []).append(dict(zip(names, row, strict=True)))
    return {session_id: in_speaking_order(found) for session_id, found in by_session.items()}


def in_speaking_order(versions: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """One session's turns from their stored versions: each in its latest version, with its
    ``response_latency_ms``, in speaking order."""
    latest: dict[str, dict[str, Any]] = {}
    for turn in versions:
        held = latest.get(turn["turn_id"])
        if held is None or turn["version"] > held["version"]:
            latest[turn["turn_id"]] = turn
    latencies = response_latencies(latest.values())
    return [
        t | {"response_latency_ms": latencies[t["turn_id"]]}
        for t in sorted(latest.values(), key=lambda t: (t["started_at"], t["seq"]))
    ]


def response_latencies(turns: Iterable[Mapping[str, Any]]) -> dict[str, int | None]:
    """Per turn id, as ``latest_turns`` computes it in SQL: for an assistant turn, its start
    minus the stop of the last user turn that started before it, in whole milliseconds as
    ClickHouse's ``dateDiff`` counts them, when that user turn has stopped by then."""
    latencies: dict[str, int | None] = {}
    previous_user_stop: datetime | None = None
    for turn in sorted(turns, key=lambda t: (t["started_at"], t["turn_id"])):
        started, before = turn["started_at"], previous_user_stop
        measurable = turn["role"] == "assistant" and before is not None and before <= started
        latencies[turn["turn_id"]] = (
            milliseconds(started) - milliseconds(before) if measurable and before else None
        )
        if turn["role"] == "user":
            previous_user_stop = turn["stopped_at"]  # None while that turn is open
    return latencies


def milliseconds(at: datetime) -> int:
    """Whole milliseconds since the epoch, as the engine's ``toUnixTimestamp64Milli`` and
    ``dateDiff('millisecond', ...)`` count them."""
    naive = at if at.tzinfo is None else at.astimezone(UTC).replace(tzinfo=None)
    return (naive - _EPOCH) // _MILLISECOND  # floor division of whole microseconds


_EPOCH = datetime(1970, 1, 1)  # naive, as the engine hands back UTC times
_MILLISECOND = timedelta(milliseconds=1)


def as_turn(row: dict[str, Any]) -> Turn:
    stopped = row["stopped_at"]
    return Turn.model_validate(
        row
        | {
            "started_at": as_utc(row["started_at"]),
            "stopped_at": as_utc(stopped) if stopped is not None else None,
            "words": [Word(**w) for w in row["words"]],
        }
    )
