"""A session's recording read against its transcript: a turn's clip and alignment, any window
of the session, and what was being said at a moment.

Session time (``from_ms``, ``to_ms``, ``t_ms``) counts from the session's origin: the earliest
of its first turn's start and its first chunk's start, so a recording begun before anyone
spoke is reachable too. Every answer also gives absolute times, which is what lines anything
else up with the audio.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from pydantic import AwareDatetime, Field

from queries.alignment import TrackAlignment, Voice, align, sample_offset, sounding_at
from queries.chunks import chunk_index
from queries.clips import Clip, ClipCutter
from queries.errors import BadQueryError, NotFoundError
from queries.models import Answer, Chunk, Turn
from queries.paging import as_utc
from queries.reader import Reader
from queries.summaries import require_known
from queries.turns import SHOWN_FIELDS, as_turn, stored_turns
from schemas import Track

Tracks = Literal["user", "assistant", "both"]
VOICES: dict[Tracks, tuple[Voice, ...]] = {
    "user": ("user",),
    "assistant": ("assistant",),
    "both": ("user", "assistant"),
}
"""A clip's channels per ``track``: both is stereo, user left and assistant right."""
MAX_PAD_MS = 60_000
MAX_WINDOW = timedelta(minutes=10)
"""The longest clip or alignment: a clip is built in memory."""
MAX_SESSION_MS = 366 * 24 * 3600 * 1000
"""Session times beyond a year are refused: no call lasts that long."""
_MINUTES = MAX_WINDOW // timedelta(minutes=1)


class AlignedWord(Answer):
    text: str
    started_at: AwareDatetime
    stopped_at: AwareDatetime
    start_sample: int | None = Field(
        description="From the window's first sample; null without audio."
    )
    end_sample: int | None


class TurnAlignment(Answer):
    turn: Turn
    since: AwareDatetime = Field(
        description="The window's first sample: the turn's start less the padding."
    )
    until: AwareDatetime
    tracks: list[TrackAlignment]
    words: list[AlignedWord]


class Position(Answer):
    """Where one track's recording is at an instant."""

    chunk_id: str
    uri: str
    sample: int = Field(description="In the chunk, from its first sample.")
    segment_sample: int = Field(description="From the recording segment's sample 0.")
    sample_rate: int
    recording_started_at: AwareDatetime


class Moment(Answer):
    at: AwareDatetime
    origin: AwareDatetime = Field(description="Session time 0: its first turn's or chunk's start.")
    turns: list[Turn] = Field(
        description="The turns under way at that instant; a turn never stopped, up to the "
        "last moment the store knows of the call (a turn's start or stop, a chunk's end)."
    )
    tracks: dict[Voice, Position | None]


TIMING_FIELDS = ("role", "started_at", "stopped_at", "seq")
"""What a clip needs of the turns: when each was said, not what."""


@dataclass(frozen=True)
class Recording:
    """A session's turns (in speaking order, as ``stored_turns`` gives them, with times in
    UTC) and its chunk index, read together."""

    turns: list[dict[str, Any]]
    chunks: dict[Track, list[Chunk]]

    @property
    def origin(self) -> datetime:
        starts: list[datetime] = [t["started_at"] for t in self.turns[:1]]
        return min(starts + [c.starts_at for found in self.chunks.values() for c in found])

    @property
    def known_until(self) -> datetime:
        """The last moment the store knows of the call: after it, a turn never stopped may
        or may not still be under way (an abandoned call's last turn never is)."""
        times: list[datetime] = [t["stopped_at"] or t["started_at"] for t in self.turns]
        return max(times + [c.ends_at for found in self.chunks.values() for c in found])

    def turn(self, turn_id: str) -> dict[str, Any]:
        for turn in self.turns:
            if turn["turn_id"] == turn_id:
                return turn
        raise NotFoundError(f"no turn {turn_id!r} in this session")

    def window_of(self, turn: dict[str, Any], pad_ms: int) -> tuple[datetime, datetime]:
        """The turn's time, padded; a turn still open runs to the end of the audio (at most
        ``MAX_WINDOW``)."""
        if not 0 <= pad_ms <= MAX_PAD_MS:
            raise BadQueryError("pad_ms", f"must be from 0 to {MAX_PAD_MS}, got {pad_ms}")
        pad = timedelta(milliseconds=pad_ms)
        started: datetime = turn["started_at"]
        ends = [c.ends_at for found in self.chunks.values() for c in found]
        stop: datetime = turn["stopped_at"] or min(max([started, *ends]), started + MAX_WINDOW)
        if stop - started + 2 * pad > MAX_WINDOW:
            raise BadQueryError(
                "turn_id", f"the turn with its padding outlasts {_MINUTES} minutes: ask /audio"
            )
        return started - pad, stop + pad

    def aligned(
        self, voices: Sequence[Voice], since: datetime, until: datetime
    ) -> list[TrackAlignment]:
        return [align(self.chunks, voice, since, until) for voice in voices]


def recording(reader: Reader, session_id: str, fields: Sequence[str] = TIMING_FIELDS) -> Recording:
    """The session's chunk index and its turns with ``fields``: a clip reads only their
    times, the cheapest read of a session's turns."""
    turns = stored_turns(reader, [session_id], fields).get(session_id, [])
    for turn in turns:
        turn["started_at"] = as_utc(turn["started_at"])
        turn["stopped_at"] = turn["stopped_at"] and as_utc(turn["stopped_at"])
    found = Recording(turns, chunk_index(reader, session_id))
    if not found.turns and not found.chunks:
        require_known(reader, session_id)
        raise NotFoundError(f"session {session_id!r} has neither turns nor audio stored")
    return found


def turn_clip(
    reader: Reader,
    cutter: ClipCutter,
    session_id: str,
    turn_id: str,
    *,
    track: Tracks | None = None,
    pad_ms: int = 0,
) -> Clip:
    """The turn's audio; by default its speaker's track alone."""
    session = recording(reader, session_id)
    turn = session.turn(turn_id)
    since, until = session.window_of(turn, pad_ms)
    return cutter.cut(session.aligned(VOICES[track or turn["role"]], since, until), since)


def window_clip(
    reader: Reader, cutter: ClipCutter, session_id: str, from_ms: int, to_ms: int, track: Tracks
) -> Clip:
    """Any window of the session, in session time."""
    if not 0 <= from_ms < to_ms <= MAX_SESSION_MS:
        raise BadQueryError(
            "to_ms",
            f"must be after from_ms, and both from 0 to {MAX_SESSION_MS} "
            f"(from {from_ms} to {to_ms})",
        )
    if timedelta(milliseconds=to_ms - from_ms) > MAX_WINDOW:
        raise BadQueryError("to_ms", f"a window is at most {_MINUTES} minutes")
    session = recording(reader, session_id)
    since = session.origin + timedelta(milliseconds=from_ms)
    until = session.origin + timedelta(milliseconds=to_ms)
    return cutter.cut(session.aligned(VOICES[track], since, until), since)


def turn_alignment(reader: Reader, session_id: str, turn_id: str, pad_ms: int = 0) -> TurnAlignment:
    """Which samples of which chunks hold the turn, per track, and where its words fall."""
    session = recording(reader, session_id, SHOWN_FIELDS)
    stored = session.turn(turn_id)
    turn = as_turn(stored)
    since, until = session.window_of(stored, pad_ms)
    tracks = session.aligned(VOICES["both"], since, until)
    own = next(t for t in tracks if t.track == turn.role)
    rate = own.sample_rate or next((t.sample_rate for t in tracks if t.sample_rate), None)
    words = []
    for word in turn.words:
        try:
            start = turn.started_at + timedelta(seconds=word.start)
            stop = turn.started_at + timedelta(seconds=word.end)
        except OverflowError:
            continue  # a timing past the calendar (the contract bounds it below only)
        words.append(
            AlignedWord(
                text=word.text,
                started_at=start,
                stopped_at=stop,
                start_sample=sample_offset(start, since, rate) if rate else None,
                end_sample=sample_offset(stop, since, rate) if rate else None,
            )
        )
    return TurnAlignment(turn=turn, since=since, until=until, tracks=tracks, words=words)


def moment(reader: Reader, session_id: str, t_ms: int) -> Moment:
    """What was being said ``t_ms`` into the session, and where each track's audio is."""
    if not 0 <= t_ms <= MAX_SESSION_MS:
        raise BadQueryError("t_ms", f"must be from 0 to {MAX_SESSION_MS}, got {t_ms}")
    session = recording(reader, session_id, SHOWN_FIELDS)
    at = session.origin + timedelta(milliseconds=t_ms)
    under_way = [
        as_turn(t)
        for t in session.turns
        if t["started_at"] <= at
        and (at < t["stopped_at"] if t["stopped_at"] else at <= session.known_until)
    ]
    return Moment(
        at=at,
        origin=session.origin,
        turns=under_way,
        tracks={voice: _position(session, voice, at) for voice in VOICES["both"]},
    )


def _position(session: Recording, voice: Voice, at: datetime) -> Position | None:
    """The sample of ``voice`` sounding at ``at``, in the chunk that plays it."""
    found = sounding_at(session.chunks, voice, at)
    if found is None:
        return None
    chunk, sample = found
    return Position(
        chunk_id=chunk.chunk_id,
        uri=chunk.uri,
        sample=sample - chunk.start_sample,
        segment_sample=sample,
        sample_rate=chunk.sample_rate,
        recording_started_at=chunk.recording_started_at,
    )
