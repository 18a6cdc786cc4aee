"""How the command line shows what the store answers: plain lines and rich tables."""

from __future__ import annotations

import sys
from collections.abc import Sequence

from rich.console import Console
from rich.table import Table
from rich.text import Text

from queries import IncompleteSession, SearchHit, SessionSummary, Turn
from queries.models import TrackCompleteness


def console() -> Console:
    """A terminal's own width; piped or captured output gets wide lines rather than cells
    cut at 80 columns."""
    return Console() if sys.stdout.isatty() else Console(width=240)


def transcript(turns: Sequence[Turn]) -> str:
    if not turns:
        return "(no turns)"
    origin = turns[0].started_at
    lines = []
    for turn in turns:
        offset = (turn.started_at - origin).total_seconds()
        duration = "open" if turn.duration_ms is None else f"{turn.duration_ms / 1000:.1f}s"
        flag = " [interrupted]" if turn.interrupted else ""
        lines.append(f"  +{offset:6.1f}s {turn.role:>9} ({duration:>5}): {turn.text}{flag}")
    return "\n".join(lines)


def sessions(items: Sequence[SessionSummary]) -> Table:
    table = Table(
        "session",
        "bot",
        "first event (UTC)",
        "turns u/a",
        "talk u/a",
        "barge-ins",
        "timeouts",
        "latency p50",
        "complete",
        "state",
    )
    for s in items:
        latency = s.median_response_latency_ms
        table.add_row(
            s.session_id,
            s.bot_id,
            f"{s.first_event_at:%Y-%m-%d %H:%M:%S}",
            f"{s.turns.user}/{s.turns.assistant}",
            f"{s.talk_ms.user / 1000:.0f}s/{s.talk_ms.assistant / 1000:.0f}s",
            str(s.interruptions),
            str(s.timeouts),
            "-" if latency is None else f"{latency:.0f} ms",
            "yes" if s.completeness.complete else "no",
            s.completeness.state.replace("_", " "),
        )
    return table


def hit(found: SearchHit) -> Text:
    line = Text(f"{found.started_at:%Y-%m-%d %H:%M:%S} {found.session_id} {found.role}: ")
    at = 0
    for span in found.matches:
        line.append(found.text[at : span.start])
        line.append(found.text[span.start : span.end], style="bold reverse")
        at = span.end
    line.append(found.text[at:])
    return line


def incomplete(item: IncompleteSession) -> str:
    c = item.completeness
    state = c.state.replace("_", " ")
    parts = [f"{item.session_id}: {state}, {c.events} of {c.expected} events"]
    if item.missing_seqs:
        parts.append(f"missing seq {', '.join(map(str, item.missing_seqs))}")
    if item.open_turn_ids:
        parts.append(f"open turns {', '.join(item.open_turn_ids)}")
    parts += [_track_holes(t) for t in c.tracks if _has_holes(t)]
    if c.state == "abandoned" and c.last_seen_at is not None:
        parts.append(f"silent since {c.last_seen_at:%Y-%m-%d %H:%M:%S} UTC")
    return "; ".join(parts)


def _has_holes(t: TrackCompleteness) -> bool:
    declared = (t.expected_chunks, t.expected_samples)
    return bool(t.gaps or t.overlaps) or (
        t.expected_chunks is not None and (t.chunks, t.samples) != declared
    )


def _track_holes(t: TrackCompleteness) -> str:
    counts = f"{t.track} track: {t.chunks} chunks, {t.samples} samples"
    if t.expected_chunks is not None:
        counts += f" of {t.expected_chunks} and {t.expected_samples} declared"
    return ", ".join(
        [counts]
        + ([f"gaps {t.gaps}"] if t.gaps else [])
        + ([f"overlaps {t.overlaps}"] if t.overlaps else [])
    )
