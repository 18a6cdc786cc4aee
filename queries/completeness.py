"""Whether the store holds a session whole, and if not what is missing: pure, so every rule
can be read and tested without an engine.

Until a session ends, the store can only tell holes in its event numbering; a turn not stopped
yet is under way while the call may go on, and a hole (``open_turns``) once the session has
ended or been abandoned with it open. Its ``SessionEnded`` declares what the producer sent (the
event count, and per track the chunks and their samples), against which the store's chunks are
held: fewer or more chunks, a sample total unlike the declared, and within each recording
segment a chunk that starts after (a gap) or before (an overlap) the end of the one before it
are holes. A session with no end that has been silent for longer than ``abandoned_after`` is
called abandoned: its producer died, or lost the end on its way.

Chunks may be projected after the end (they travel on another topic): a session can show as
sealed with holes until they arrive, as any session shows its lag.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from queries.models import Completeness, Hole, SessionState, TrackCompleteness
from queries.paging import as_utc
from schemas import Track

TRACK_ORDER: tuple[Track, ...] = ("user", "assistant", "mixed")


@dataclass(frozen=True)
class TrackSeen:
    """What the store holds of a track's chunks (``queries.sealing`` counts it)."""

    track: Track
    chunks: int
    samples: int
    gaps: int = 0
    overlaps: int = 0


@dataclass(frozen=True)
class Declaration:
    """A stored ``SessionEnded``: what the producer said it had sent."""

    seq: int
    events: int
    tracks: Mapping[Track, tuple[int, int]]
    """Per track with chunks: chunks, samples."""
    ended_at: datetime


@dataclass(frozen=True)
class Ledger:
    """What the store holds of a session's events, beside its turns."""

    events: int = 0
    """Distinct seqs stored."""
    last_seq: int = -1
    last_event_at: datetime | None = None
    ends: tuple[Declaration, ...] = ()
    tracks: tuple[TrackSeen, ...] = ()


@dataclass(frozen=True)
class Clock:
    """When a question is asked, and how long a session may be silent before it is called
    abandoned."""

    now: datetime
    abandoned_after: timedelta


def completeness(
    ledger: Ledger,
    clock: Clock,
    *,
    last_turn_seq: int = -1,
    open_turns: int = 0,
    last_turn_at: datetime | None = None,
) -> Completeness:
    """The session's completeness from its ledger and what its turns add: the highest seq of
    a turn (the ledger may lag behind the turns), its turns still open and its latest turn
    time."""
    end = max(ledger.ends, key=lambda e: e.seq, default=None)
    expected = max(ledger.last_seq, last_turn_seq) + 1
    if end is not None:
        expected = max(expected, end.events)
    missing = max(expected - ledger.events, 0)
    tracks = _tracks(ledger.tracks, end)
    holes: list[Hole] = ["missing_events"] if missing else []
    if end is not None:
        holes += _chunk_holes(tracks)
    seen = [t for t in (ledger.last_event_at, last_turn_at) if t is not None]
    found = Completeness(
        complete=not holes,
        events=ledger.events,
        expected=max(expected, ledger.events),
        missing=missing,
        open_turns=open_turns,
        holes=holes,
        ended_at=as_utc(end.ended_at) if end is not None else None,
        last_seen_at=as_utc(max(seen)) if seen else None,
        tracks=tracks,
    )
    return as_read(found, clock)


def as_read(found: Completeness, clock: Clock) -> Completeness:
    """``found`` with its state, its ``open_turns`` hole and ``complete`` as of ``clock``:
    worked out earlier (a cached summary's), an open session may have been silent too long
    since, and readers may allow another time."""
    ended = found.ended_at is not None
    abandoned = (
        not ended
        and found.last_seen_at is not None
        and clock.now - found.last_seen_at > clock.abandoned_after
    )
    holes: list[Hole] = [h for h in found.holes if h != "open_turns"]
    if found.open_turns and (ended or abandoned):
        holes.insert(1 if holes[:1] == ["missing_events"] else 0, "open_turns")
    state: SessionState = (
        ("sealed_with_holes" if holes else "sealed")
        if ended
        else ("abandoned" if abandoned else "open")
    )
    return found.model_copy(update={"state": state, "holes": holes, "complete": not holes})


def _tracks(seen: Iterable[TrackSeen], end: Declaration | None) -> list[TrackCompleteness]:
    """Every track stored or declared, in track order."""
    stored = {t.track: t for t in seen}
    declared = end.tracks if end is not None else {}
    found = []
    for track in TRACK_ORDER:
        if track not in stored and track not in declared:
            continue
        chunks = stored.get(track, TrackSeen(track, 0, 0))
        expected = (None, None) if end is None else declared.get(track, (0, 0))
        found.append(
            TrackCompleteness(
                track=track,
                chunks=chunks.chunks,
                samples=chunks.samples,
                gaps=chunks.gaps,
                overlaps=chunks.overlaps,
                expected_chunks=expected[0],
                expected_samples=expected[1],
            )
        )
    return found


def _chunk_holes(tracks: Iterable[TrackCompleteness]) -> list[Hole]:
    """The kinds of chunk holes of an ended session's tracks, each once, in a fixed order."""
    found: set[Hole] = set()
    for t in tracks:
        expected_chunks, expected_samples = t.expected_chunks or 0, t.expected_samples or 0
        if t.chunks < expected_chunks:
            found.add("missing_chunks")
        if t.chunks > expected_chunks:
            found.add("extra_chunks")
        if t.gaps:
            found.add("sample_gaps")
        if t.overlaps:
            found.add("sample_overlaps")
        if t.chunks == expected_chunks and t.samples != expected_samples:
            found.add("sample_count")
    order: tuple[Hole, ...] = (
        "missing_chunks",
        "extra_chunks",
        "sample_gaps",
        "sample_overlaps",
        "sample_count",
    )
    return [h for h in order if h in found]
