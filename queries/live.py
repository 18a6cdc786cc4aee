"""A call in progress as a stream of changes: each turn and chunk once per visible change.

Rows reach a follower two ways, as the store's tables show them (``session_rows``) or as the
projector that wrote them hands them over (``consumers.live_feed``), often both, and a
replayed or duplicated event writes the same version again. So a follower does not forward
rows: it folds them into each turn's and chunk's latest version, as every read does, and
sends what differs from what it sent before. Any order and repetition of the same rows gives
the same answers, and a duplicate gives nothing.

Where the follower got to is a ``Cursor``: per kind of row, the newest log position (partition
and offset) it has folded. A session's events are keyed by its id, so they lie in one
partition of each topic, and the projector writes each partition in offset order: the rows at
or before a cursor are what was folded. A follower that reconnects with its cursor folds
those first, as what its client holds, and sends only what differs from them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from queries.chunks import FIELDS as CHUNK_FIELDS
from queries.chunks import as_chunk
from queries.completeness import completeness
from queries.errors import BadQueryError
from queries.models import Answer, Chunk, Completeness, Turn
from queries.paging import as_utc
from queries.reader import Reader
from queries.summaries import ledgers, summaries
from queries.turns import BY_SESSION_SETTINGS, TURN_FIELDS, as_turn, in_speaking_order
from schemas import Track

SessionRows = Mapping[str, Sequence[Mapping[str, Any]]]
"""A session's rows by projection (``transcripts``, ``audio_chunks``, ``session_events``),
as the tables or the projector's frames hold them, with their source partition and offset."""

ENDED = "SessionEnded"
_POSITION = ("source_partition", "source_offset")
_TURN_COLUMNS = ("turn_id", "version", *TURN_FIELDS, *_POSITION)
_CHUNK_COLUMNS = ("track", "chunk_seq", "seq", *CHUNK_FIELDS, *_POSITION)
_LEDGER_COLUMNS = ("seq", "event_type", *_POSITION)
_READS = {
    "transcripts": _TURN_COLUMNS,
    "audio_chunks": _CHUNK_COLUMNS,
    "session_events": _LEDGER_COLUMNS,
}


class TrackChunk(Chunk):
    """A chunk's entry of the session's chunk index, with the track it belongs to."""

    track: Track


class Position(NamedTuple):
    partition: int
    offset: int


def _position(row: Mapping[str, Any]) -> Position:
    return Position(int(row["source_partition"]), int(row["source_offset"]))


_PARTS = ("turns", "chunks", "ledger")
"""A cursor's parts: the rows of ``transcripts``, ``audio_chunks`` and ``session_events``."""
_PART_OF = dict(zip(_READS, _PARTS, strict=True))


@dataclass(frozen=True)
class Cursor:
    """Per kind of row, the newest position folded (None: none yet). As text (an SSE event's
    ``id``): ``partition:offset`` or ``-`` for each part, joined by ``.``."""

    turns: Position | None = None
    chunks: Position | None = None
    ledger: Position | None = None

    def text(self) -> str:
        return ".".join("-" if p is None else f"{p.partition}:{p.offset}" for p in self._parts())

    @classmethod
    def parse(cls, text: str, parameter: str = "Last-Event-ID") -> Cursor:
        parts = text.split(".")
        try:
            if len(parts) != len(_PARTS):
                raise ValueError
            return cls(
                *(None if p == "-" else Position(*map(_natural, p.split(":"))) for p in parts)
            )
        except (TypeError, ValueError):
            raise BadQueryError(
                parameter, f"{text!r} is not an event id this stream sent"
            ) from None

    def covers(self, table: str, row: Mapping[str, Any]) -> bool:
        """Whether ``row`` of ``table`` lies at or before this cursor."""
        at = getattr(self, _PART_OF[table])
        found = _position(row)
        return at is not None and found.partition == at.partition and found.offset <= at.offset

    def after(self, table: str, row: Mapping[str, Any]) -> Cursor:
        """This cursor moved to ``row`` of ``table``, if that is newer."""
        part = _PART_OF[table]
        at, found = getattr(self, part), _position(row)
        return self if at is not None and at >= found else _replace(self, part, found)

    def _parts(self) -> tuple[Position | None, ...]:
        return self.turns, self.chunks, self.ledger


def _replace(cursor: Cursor, part: str, position: Position) -> Cursor:
    return Cursor(**{name: getattr(cursor, name) for name in _PARTS} | {part: position})


def _natural(text: str) -> int:
    if not text.isdigit():
        raise ValueError(text)
    return int(text)


@dataclass
class LiveSession:
    """What is known of one session: each turn's and chunk's latest version, the seqs of its
    events, whether it has ended, and the cursor of what was folded."""

    turns: dict[str, dict[str, Any]] = field(default_factory=dict)
    chunks: dict[tuple[str, int], Mapping[str, Any]] = field(default_factory=dict)
    seqs: set[int] = field(default_factory=set)
    ended: bool = False
    cursor: Cursor = Cursor()

    def add(self, rows: SessionRows, within: Cursor | None = None) -> bool:
        """Fold ``rows`` (only those ``within`` covers, if given); whether anything a reader
        sees changed."""
        changed = False
        for table, found in rows.items():
            for row in found:
                if table not in _READS or (within is not None and not within.covers(table, row)):
                    continue
                self.cursor = self.cursor.after(table, row)
                changed |= self._fold(table, row)
        return changed

    def _fold(self, table: str, row: Mapping[str, Any]) -> bool:
        if table == "transcripts":
            held = self.turns.get(row["turn_id"])
            if held is None or row["version"] > held["version"]:
                self.turns[row["turn_id"]] = _in_utc(row)
                return True
        elif table == "audio_chunks":
            key = (str(row["track"]), int(row["chunk_seq"]))
            chunk = self.chunks.get(key)
            if chunk is None or row["seq"] > chunk["seq"]:
                self.chunks[key] = row
                return True
        elif row["seq"] not in self.seqs or (row["event_type"] == ENDED and not self.ended):
            self.seqs.add(row["seq"])
            self.ended |= row["event_type"] == ENDED
            return True
        return False

    def turn_answers(self) -> list[Turn]:
        """The turns in speaking order, each with its response latency."""
        return [as_turn(t) for t in in_speaking_order(self.turns.values())]

    def chunk_answers(self) -> list[TrackChunk]:
        return [
            TrackChunk(track=track, **dict(as_chunk(**row)))
            for (track, _), row in sorted(self.chunks.items())
        ]


def _in_utc(turn: Mapping[str, Any]) -> dict[str, Any]:
    """A turn's times aware and in UTC: the engine's are naive, a projected frame's aware."""
    stopped = turn["stopped_at"]
    return dict(turn) | {
        "started_at": as_utc(turn["started_at"]),
        "stopped_at": None if stopped is None else as_utc(stopped),
    }


Change = tuple[str, Answer]
"""An event to send: its name (``turn``, ``chunk``, ``end``) and what it carries."""


@dataclass
class Follower:
    """One client's view of a session: what is known, and what the client was sent."""

    session: LiveSession = field(default_factory=LiveSession)
    turns: dict[str, Turn] = field(default_factory=dict)
    chunks: dict[tuple[str, int], TrackChunk] = field(default_factory=dict)
    end: Completeness | None = None
    end_sent: bool = False
    stale_end: bool = True
    """Whether the session's completeness may have changed since ``end`` was computed."""

    @classmethod
    def resumed(cls, rows: SessionRows, cursor: Cursor | None) -> Follower:
        """A follower of ``rows`` whose client was sent, before it reconnected, what the rows
        ``cursor`` covers (nothing without one)."""
        follower = cls()
        if cursor is not None:
            follower.session.add(rows, within=cursor)
            follower.turns = {t.turn_id: t for t in follower.session.turn_answers()}
            follower.chunks = {(c.track, c.chunk_seq): c for c in follower.session.chunk_answers()}
            follower.end_sent = follower.session.ended
        follower.add(rows)
        return follower

    def add(self, rows: SessionRows) -> None:
        self.stale_end |= self.session.add(rows)

    def changes(self) -> list[Change]:
        """The turns and chunks that differ from what was sent, now counted as sent."""
        found: list[Change] = []
        for turn in self.session.turn_answers():
            if self.turns.get(turn.turn_id) != turn:
                self.turns[turn.turn_id] = turn
                found.append(("turn", turn))
        for chunk in self.session.chunk_answers():
            if self.chunks.get(key := (chunk.track, chunk.chunk_seq)) != chunk:
                self.chunks[key] = chunk
                found.append(("chunk", chunk))
        return found

    @property
    def wants_completeness(self) -> bool:
        """Whether the session has ended and its completeness may differ from the last sent."""
        return self.session.ended and self.stale_end

    def ended(self, completeness: Completeness) -> list[Change]:
        """The end to send, given the session's completeness now: the first time, and again
        whenever it changes (late chunks). A client that reconnected after its end is sent it
        again only when it changes.

        Until the session is sealed its completeness is asked again at every step: the rows a
        summary is read from are filled from the ledger's and the chunks' inserts, and may show
        less than the rows folded here (no end yet, fewer chunks)."""
        self.stale_end = completeness.state != "sealed"
        if completeness.ended_at is None:
            return []
        if self.end_sent and (self.end is None or self.end == completeness):
            self.end = completeness
            return []
        self.end, self.end_sent = completeness, True
        return [("end", completeness)]


def session_rows(reader: Reader, session_id: str) -> dict[str, list[dict[str, Any]]]:
    """Every stored version of the session's turns and chunks, and its ledger's seqs, with
    their positions."""
    return {
        table: [
            dict(zip(columns, row, strict=True))
            for row in reader.rows(
                f"SELECT {', '.join(columns)} FROM {table}_generations "
                "WHERE generation = {generation:UInt32} AND session_id = {sid:String} "
                + BY_SESSION_SETTINGS,
                generation=reader.generation(table),
                sid=session_id,
            )
        ]
        for table, columns in _READS.items()
    }


def completeness_of(reader: Reader, session_id: str) -> Completeness | None:
    """The session's completeness, as its summary gives it, or its ledger alone for a session
    without turns (a call nobody spoke in, whose end and chunks are stored); None for a
    session with nothing stored."""
    found = summaries(reader, [session_id])
    if found:
        return found[0].completeness
    held = ledgers(reader, [session_id]).get(session_id)
    return None if held is None else completeness(held, reader.clock())
