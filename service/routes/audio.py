"""The recording against the transcript: a turn's clip and alignment, any window of the
session, what was being said at a moment.

Ids are one path segment each (``service.paths``): a ``/`` in one is sent as ``%2F``.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Response

from queries.clips import MAX_HOLES, Clip
from queries.recording import (
    MAX_PAD_MS,
    MAX_SESSION_MS,
    Moment,
    Tracks,
    TurnAlignment,
    moment,
    turn_alignment,
    turn_clip,
    window_clip,
)
from service.answers import Freshness, respond
from service.auth import bearer, state_of
from service.parameters import KNOWN_PARAMETERS
from service.paths import PathId
from service.problems import problem_responses
from service.state import StoreState

router = APIRouter(prefix="/v1", tags=["audio"], dependencies=[Depends(bearer), KNOWN_PARAMETERS])
State = Annotated[StoreState, Depends(state_of)]
Padding = Annotated[int, Query(ge=0, le=MAX_PAD_MS, description="Audio kept before and after, ms.")]

SessionTime = Query(
    ge=0, le=MAX_SESSION_MS, description="Session time: ms from its first turn or chunk."
)
_PROBLEMS = problem_responses(400, 401, 404, 422, 502, 503)
_WAV: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "16-bit PCM WAV; stereo for both tracks (user left, assistant right).",
        "content": {"audio/wav": {"schema": {"type": "string", "format": "binary"}}},
        "headers": {
            "X-Audio-Start": {
                "description": "Wall clock of the clip's first sample (ISO 8601, UTC)."
            },
            "X-Audio-Holes": {
                "description": "JSON: per track, [first sample, samples] of each stretch no "
                f"chunk covered, filled with silence (the first {MAX_HOLES})."
            },
            "X-Audio-Hole-Samples": {"description": "JSON: per track, the silent samples."},
        },
    },
    **_PROBLEMS,
}


class AlignmentAnswer(TurnAlignment, Freshness):
    pass


class MomentAnswer(Moment, Freshness):
    pass


@router.get(
    "/sessions/{session_id:segment}/turns/{turn_id:segment}/audio",
    response_class=Response,
    responses=_WAV,
)
def turn_audio(
    state: State,
    session_id: PathId,
    turn_id: PathId,
    track: Annotated[Tracks | None, Query(description="Default: the turn's speaker.")] = None,
    pad_ms: Padding = 0,
) -> Response:
    """The turn's audio, cut sample-exactly from the chunks that cover it."""
    clip = turn_clip(
        state.ready_reader(), state.clips, session_id, turn_id, track=track, pad_ms=pad_ms
    )
    return _wav(clip)


@router.get(
    "/sessions/{session_id:segment}/turns/{turn_id:segment}/alignment",
    response_model=AlignmentAnswer,
    responses=_PROBLEMS,
)
def alignment(state: State, session_id: PathId, turn_id: PathId, pad_ms: Padding = 0) -> Response:
    """Per track, which samples of which chunks hold the turn; its words in samples too."""
    found = turn_alignment(state.ready_reader(), session_id, turn_id, pad_ms)
    return respond(AlignmentAnswer, state.freshness(), found)


@router.get("/sessions/{session_id:segment}/audio", response_class=Response, responses=_WAV)
def session_audio(
    state: State,
    session_id: PathId,
    from_ms: Annotated[int, SessionTime],
    to_ms: Annotated[
        int,
        Query(ge=0, le=MAX_SESSION_MS, description="Excluded; at most 10 minutes after from_ms."),
    ],
    track: Tracks = "both",
) -> Response:
    """Any window of the session's recording (at most 10 minutes)."""
    clip = window_clip(state.ready_reader(), state.clips, session_id, from_ms, to_ms, track)
    return _wav(clip)


@router.get("/sessions/{session_id:segment}/at", response_model=MomentAnswer, responses=_PROBLEMS)
def at(
    state: State,
    session_id: PathId,
    t_ms: Annotated[int, SessionTime],
) -> Response:
    """What was being said at that moment: the turns under way, and per track the chunk and
    sample playing."""
    return respond(MomentAnswer, state.freshness(), moment(state.ready_reader(), session_id, t_ms))


def _wav(clip: Clip) -> Response:
    holes = {
        t: [[h.offset, h.length] for h in found[:MAX_HOLES]] for t, found in clip.holes.items()
    }
    silent = {t: sum(h.length for h in found) for t, found in clip.holes.items()}
    return Response(
        clip.wav,
        media_type="audio/wav",
        headers={
            "X-Audio-Start": clip.since.isoformat(),
            "X-Audio-Holes": json.dumps(holes, separators=(",", ":")),
            "X-Audio-Hole-Samples": json.dumps(silent, separators=(",", ":")),
        },
    )
