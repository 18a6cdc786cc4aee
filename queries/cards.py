"""The listing's cache: each session's summary, as ``queries.summaries`` makes it, stored as
its JSON in the listing's order (``session_cards``: bot, first event, session). The analytics'
refresh (``queries.facts``) writes the cards of the sessions it folds; ``queries.sessions``
reads them for everything up to the mark and summarizes live what was projected after it.

A page of one bot's day summarized its 51 sessions at every request, from their sets of turns
and events: at 1M sessions, 19 ms to read those sets and 7 ms of Python; a page of cards is
51 neighbouring rows. A summary depends on when it is read in one way only, whether an open
session has been silent long enough to be called abandoned, which is settled as it is read.

A session's card lies where its first turn does (its first event, for a session without
turns), which moves when a turn before it arrives late; ``session_card_keys`` holds where
each session's card lies, by session, so that a refresh writes the card a session moved from
deleted.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import Any

from queries.completeness import as_read
from queries.marks import MAYBE_TOUCHED, SILENT, Generations, Touched, mark, touched_since
from queries.models import SessionSummary
from queries.paging import as_utc, window_batches
from queries.reader import Reader
from queries.rollups import CACHED_GENERATIONS
from queries.summaries import silent_sessions, silent_summaries, summaries

WRITE_BATCH = 5_000
"""Sessions summarized and written at a time by each of a refresh's connections, to bound its
memory."""
_GENERATIONS = ("generation", "events_generation", "chunks_generation")
_CARD = (
    *_GENERATIONS,
    "bot_id",
    "first_event_at",
    "session_id",
    "computed_at",
    "deleted",
    "summary",
)
_KEY = (*_GENERATIONS, "session_id", "bot_id", "first_event_at", "computed_at")

_SPOKEN = """
SELECT DISTINCT session_id FROM transcripts_generations
WHERE generation = {generation:UInt32} AND {folded}"""
_HELD = f"""
SELECT session_id, bot_id, first_event_at FROM session_card_keys FINAL
WHERE {CACHED_GENERATIONS} AND session_id IN {{ids:Array(String)}}"""


Summarize = Callable[[Reader, Sequence[str]], list[SessionSummary]]
"""How a batch of sessions is summarized: ``summaries`` for those with turns, ``silent_summaries``
for those without."""
Batch = tuple[Summarize, list[str]]


def card_batches(
    reader: Reader, parameters: dict[str, Any], folded: str, silent: list[str]
) -> list[Batch]:
    """The sessions ``folded`` picks (a fragment over ``session_id``, ``parameters`` binding
    the generations and whatever it names) in batches of at most ``WRITE_BATCH``, each with
    how to summarize it from the live tables; those without turns (``silent``: calls nobody
    spoke in) get cards made from their events. A first refresh summarizes a part of 250k
    sessions in about a minute, which a service shutting down need not wait for: the caller
    may stop between two batches."""
    spoken = [str(s) for (s,) in reader.rows(_SPOKEN.replace("{folded}", folded), **parameters)]
    in_bulk = partial(summaries, in_bulk=True)
    return [
        (summarize, ids[start : start + WRITE_BATCH])
        for summarize, ids in ((in_bulk, spoken), (silent_summaries, silent))
        for start in range(0, len(ids), WRITE_BATCH)
    ]


def write_cards(reader: Reader, parameters: dict[str, Any], batch: Batch) -> None:
    """Summarize a batch (``card_batches``) and write its cards; ``parameters`` bind the
    generations and ``computed_at``."""
    summarize, ids = batch
    found = summarize(reader, ids)
    if not found:
        return
    held = {
        str(s): (str(bot), as_utc(at))
        for s, bot, at in reader.rows(
            _HELD, **parameters, ids=[summary.session_id for summary in found]
        )
    }
    generations = [parameters[name] for name in _GENERATIONS]
    computed_at = parameters["computed_at"]
    moved = [
        (s.session_id, held[s.session_id])
        for s in found
        if held.get(s.session_id, (s.bot_id, s.first_event_at)) != (s.bot_id, s.first_event_at)
    ]
    cards = [(s.bot_id, s.first_event_at, s.session_id, 0, s.model_dump_json()) for s in found]
    cards += [(bot, at, s, 1, "") for s, (bot, at) in moved]
    reader.insert(
        "session_cards",
        [
            [*generations, bot, at, s, computed_at, deleted, json]
            for bot, at, s, deleted, json in cards
        ],
        _CARD,
    )
    reader.insert(
        "session_card_keys",
        [[*generations, s.session_id, s.bot_id, s.first_event_at, computed_at] for s in found],
        _KEY,
    )


@dataclass(frozen=True)
class Among:
    """Which sessions a listing summarizes live: SQL over ``session_id`` of those with turns
    for a statement that finds them by bot and time (``spoken``: ``MAYBE_TOUCHED``, a few
    more), and of those without turns (``silent``; None: there are none), what binds the
    two, and of what they pick, which to take (all, if None)."""

    spoken: str
    silent: str | None
    parameters: dict[str, Any]
    taken: set[str] | None


EVERY_SESSION = Among("1", silent_sessions("1"), {}, None)
"""All of them: the store has no cache yet."""


@dataclass(frozen=True)
class Cards:
    """The cache as one listing finds it: its generations, and the sessions projected after
    its mark (``touched``), whose cards the listing passes over and which it summarizes live
    instead. They are asked for once, so that both reads pass over and take the same ones."""

    parameters: dict[str, Any]
    touched: Touched

    @classmethod
    def of(cls, reader: Reader) -> Cards | None:
        """The cache of the store's current generations, if it holds them yet."""
        generations = Generations.of(reader)
        through = mark(reader, generations)
        if through is None:
            return None
        return cls(generations.parameters(), touched_since(reader, generations, through))

    def touched_among(self) -> Among:
        """The sessions projected after the mark, which the listing summarizes live."""
        bound = self.parameters | self.touched.parameters()
        silent = silent_sessions(SILENT) if self.touched.silent else None
        return Among(MAYBE_TOUCHED, silent, bound, set(self.touched.ids))

    def read(
        self,
        reader: Reader,
        bot_id: str | None,
        window: tuple[datetime, datetime],
        after: tuple[datetime, str],
        sizes: Iterator[int],
    ) -> Iterator[SessionSummary]:
        """The cards of sessions whose first event lies in ``window`` and before ``after``
        (of ``bot_id``, if one), newest first, read in batches of ``sizes``; those of the
        sessions projected after the mark are passed over."""
        clock = reader.clock()
        touched = set(self.touched.ids)  # passed over here: as a parameter, thousands under ingest
        for rows in window_batches(reader, _PAGE, self.parameters, bot_id, window, after, sizes):
            for _, session_id, summary in rows:
                if session_id in touched:
                    continue
                card = SessionSummary.model_validate_json(summary)
                yield card.model_copy(update={"completeness": as_read(card.completeness, clock)})


_PAGE = f"""
SELECT first_event_at, session_id, summary FROM session_cards FINAL
WHERE {CACHED_GENERATIONS} AND {{bot}}
    AND first_event_at >= {{window_lo:DateTime64(6, 'UTC')}}
    AND first_event_at < {{window_hi:DateTime64(6, 'UTC')}}
    AND (first_event_at, session_id) < ({{after_at:DateTime64(6, 'UTC')}}, {{after_id:String}})
ORDER BY first_event_at DESC, session_id DESC
LIMIT {{batch:UInt32}}"""
