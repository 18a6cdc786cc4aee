"""How the command line shows what the store answers: plain lines and rich tables."""

from __future__ import annotations

import sys
from collections.abc import Sequence

from rich.console import Console
from rich.table import Table
from rich.text import Text

from queries import IncompleteSession, SearchHit, SessionSummary, Turn
from queries.models import MetricDefinition, MetricsRow, Percentiles, TrackCompleteness


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


def metrics(rows: Sequence[MetricsRow]) -> Table:
    """The figures a person scans first; the API has them all."""
    table = Table(
        "bucket (UTC)",
        "group",
        "sessions",
        "turns u/a",
        "latency p50/p90/p99",
        "interruptions (/100)",
        "timeouts",
        "talk ratio",
        "overlap",
        "silence",
        "sealed/holes/abandoned/open",
    )
    for r in rows:
        c = r.completeness
        table.add_row(
            f"{r.bucket_start:%Y-%m-%d %H:%M}",
            "" if r.group is None else r.group or "(none)",
            _figure(r.sessions),
            f"{r.turns.user}/{r.turns.assistant}",
            _spread(r.response_latency_ms),
            f"{r.interruptions} ({_figure(r.interruptions_per_100_assistant_turns)})",
            str(r.user_stop_timeouts),
            _figure(r.talk_ratio, "{:.2f}"),
            "-" if r.overlap_ms is None else f"{r.overlap_ms.total / 1000:.1f}s",
            "-" if r.silence_ms is None else f"{r.silence_ms.total / 1000:.1f}s",
            "-" if c is None else f"{c.sealed}/{c.sealed_with_holes}/{c.abandoned}/{c.open}",
        )
    return table


def definitions(found: Sequence[MetricDefinition]) -> Table:
    table = Table("metric", "v", "definition", box=None)
    for d in found:
        table.add_row(d.name, str(d.version), d.definition)
    return table


def _figure(value: float | None, shape: str = "{:.1f}") -> str:
    if value is None:
        return "-"
    return str(value) if isinstance(value, int) else shape.format(value)


def _spread(p: Percentiles | None) -> str:
    return "-" if p is None else f"{p.p50:.0f}/{p.p90:.0f}/{p.p99:.0f} ms"


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
