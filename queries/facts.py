"""The store's caches (the tables of ``consumers.storage.session_facts``): for the analytics,
sessions in slices (``queries.slices``) and their hourly rollups (``queries.rollups``), read by
``queries.metrics``; for the listing, sessions' summaries (``queries.cards``).

``FactsKeeper.refresh`` keeps them: it folds again every session that anything was projected
for since its last mark (but for inserts it already folded) and writes the session's slices and
card, sums the hours and bots of the slices it wrote into their rollup rows, and marks how far
it got. A read takes whole hours from the rollups, but the hours of the sessions projected
after the mark (``touched_hours``); it sums the others from their slices (``slices_in``): the
cached ones, but for the sessions projected after the mark, which it folds from the live tables
as the cache would. So a call projected a second ago is counted, and each turn once, in its
latest version, whichever way it was read. Without a mark for the store's generations (a new
store) every session is folded live until a refresh has cached them; a rebuild fills the
caches of its generation before it cuts over (``warm``).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from datetime import datetime, timedelta
from typing import Any

from clickhouse_connect.driver.client import Client

from consumers.projections import PROJECTIONS
from queries.analytics import matching
from queries.cards import Batch, card_batches, write_cards
from queries.folded import Fold, FoldedInserts, Listed, Seconds, engine_now
from queries.marks import (
    MAYBE_TOUCHED,
    SILENT,
    TOUCHED,
    Generations,
    Touched,
    mark,
)
from queries.paging import as_utc, of_bot
from queries.reader import Reader, bindable
from queries.rollups import CACHED_GENERATIONS, roll_up
from queries.sealing import first_events
from queries.slices import SLICE_COLUMNS, SLICE_VALUES, live_slices, live_turns
from queries.summaries import silent_ids, silent_sessions

SAFETY = timedelta(seconds=1)
"""A mark lags the start of the oldest insert under way in the store's database (or the
engine's clock, when none is) by this much, for the millisecond stamps: every insert stamped
before the mark has landed. It lagged the clock by a fixed 10 s, and readers under ingest
folded live the sessions of those 10 s on top of those projected since the refresh began
(3 600 sessions in all at 5k events/s). An insert is seen under way in ``system.processes``: with a
ClickHouse server, the service's user must see the projectors' inserts there."""
_CLOCK = """
SELECT now64(6), max(elapsed) FROM system.processes
WHERE query_kind = 'Insert' AND current_database = currentDatabase()"""
"""The engine's clock, and how long the oldest insert under way has run (0 without one)."""
PART_SESSIONS = 250_000
"""The first refresh of a set of generations folds the store in parts of about this many
sessions, to bound its memory."""

_CACHED = f"""
SELECT {{columns}}
FROM session_slices FINAL
WHERE {CACHED_GENERATIONS}
    AND hour >= {{fold_from:DateTime('UTC')}} AND hour < {{fold_until:DateTime('UTC')}}
    AND {{bot}} AND {{fresh}}"""


def slices_in(bot_id: str | None, through: datetime | None, touched: Touched, turns: bool) -> str:
    """SQL of the slices of the hours ``[{fold_from}, {fold_until})`` (of the bot
    ``{bot_id}``, if one): from the cache up to the mark ``through``, and the sessions
    ``touched`` says were projected after it (bound by ``Touched.parameters``) from the live
    tables; or all from the live tables without a mark. Only sessions with turns in
    ``[{since}, {until})``, and those without turns, are folded live: the others have no slice
    there. With ``turns``, only their ``turns``, which is all the turn figures read: folded
    live, a session's turns come whole, not sliced (``live_turns``)."""
    in_range = matching("", bot_id)

    def live(where: str, silent: str | None) -> str:
        return live_turns(where) if turns else live_slices(where, silent)

    if through is None:
        return live(in_range, silent_sessions("1"))
    cached = (
        _CACHED.replace("{columns}", "turns" if turns else SLICE_COLUMNS)
        .replace("{bot}", of_bot(bot_id))
        .replace("{fresh}", f"NOT {TOUCHED}" if touched.ids else "1")
    )
    if not touched.ids:
        return cached
    fresh = live(f"{TOUCHED} AND {in_range}", silent_sessions(SILENT) if touched.silent else None)
    return f"{cached} UNION ALL {fresh}"


_IN_HOURS = (
    "hour >= toStartOfHour({since:DateTime64(6, 'UTC')}) AND hour < {until:DateTime64(6, 'UTC')}"
)
_TOUCHED_HOURS = f"""
SELECT DISTINCT toStartOfHour(started_at) FROM transcripts_generations
WHERE generation = {{generation:UInt32}} AND {{where}} AND {{touched}}
UNION DISTINCT
SELECT DISTINCT hour FROM session_slices
WHERE {CACHED_GENERATIONS} AND {_IN_HOURS} AND {{bot}} AND {{touched}}"""
_SILENT_HOURS = f"""
UNION DISTINCT
SELECT DISTINCT hour FROM (
    SELECT toStartOfHour(first_event_at) AS hour, first_bot_id AS bot_id
    FROM ({first_events(SILENT)}))
WHERE {_IN_HOURS} AND {{bot}}"""
"""The hours of the first events of the sessions without turns projected after the mark."""


def touched_hours(
    reader: Reader, touched: Touched, parameters: dict[str, Any], bot_id: str | None
) -> list[datetime]:
    """The hours of ``[{since}, {until})`` that a session projected after the mark
    (``touched``, bound in ``parameters``) has turns in, in the live tables or in the cache,
    or its first event in (where a session without turns counts): their rollups are not
    read. One bot's turns are few enough to pass over by hash (``MAYBE_TOUCHED``: a few hours
    more may be read from their slices); all bots' are found by session key, as first events
    are. With 3 600 sessions touched, in process (timing scripts): one bot's day of analytics
    took 27 ms by hash, 44 by key (before ids were bound as ``ArrayParameter``); a week of all
    bots 95 ms by hash, 33 by key."""
    sql = (
        (_TOUCHED_HOURS + (_SILENT_HOURS if touched.silent else ""))
        .replace("{where}", matching("", bot_id))
        .replace("{bot}", of_bot(bot_id))
        .replace("{touched}", MAYBE_TOUCHED if bot_id else TOUCHED)
    )
    return [as_utc(hour) for (hour,) in reader.rows(sql, **parameters)]


_SLICES = f"""
INSERT INTO session_slices
SELECT
    {{generation:UInt32}},
    {{events_generation:UInt32}},
    {{chunks_generation:UInt32}},
    hour,
    bot_id,
    session_id,
    {{computed_at:DateTime64(6, 'UTC')}},
    {", ".join(SLICE_VALUES)}
FROM ({{slices}})"""
_EMPTIED = f"""
INSERT INTO session_slices (
    generation, events_generation, chunks_generation, hour, bot_id, session_id, computed_at)
SELECT generation, events_generation, chunks_generation, hour, bot_id, session_id,
    {{computed_at:DateTime64(6, 'UTC')}}
FROM session_slices
WHERE {CACHED_GENERATIONS} AND {{folded}}
GROUP BY generation, events_generation, chunks_generation, hour, bot_id, session_id
HAVING max(computed_at) < {{computed_at:DateTime64(6, 'UTC')}}
    AND argMax(notEmpty(turns) OR opens, computed_at)"""
"""The slices a refolded session no longer has (a turn's later version started in another
hour, or turns arrived for a session that had none), written empty. A session projected anew
between the two statements has its older slices emptied too; readers fold it live (it was
projected after the mark) until the next refresh folds it. Each slice's latest is found by
key, not with ``FINAL``: the table is ordered by hour, so ``FINAL`` merged all of it to find
a few sessions' slices (on 1M sessions, 220 ms a refresh instead of 13)."""


class FactsKeeper:
    """Keeps the cache of the store's current generations. Several may run at once (service
    replicas): each writes what the live tables say, and the newest of a slice wins."""

    def __init__(
        self, client: Client, *more: Client, pinned: Mapping[str, int] | None = None
    ) -> None:
        """``more``: other connections, on which a fold does its work beside the first's
        (``_fold``). ``pinned``: the generations whose cache to keep, instead of those
        readers are shown (``warm``)."""
        self._reader = Reader(client, *more, pointer_ttl_s=0.0, pinned=pinned)
        self._inserts = FoldedInserts(self._reader)

    def refresh(self, stopping: Callable[[], bool] = lambda: False) -> int:
        """Fold the sessions projected since the last mark into the cache, and mark; returns
        how many parts of the store it folded: each of ``PART_SESSIONS`` sessions or fewer
        the first time, of ``FOLD_BATCH`` after; none when nothing was projected. When
        ``stopping`` says so between two parts, it stops without marking."""
        generations = Generations.of(self._reader)
        parameters = generations.parameters()
        now, through = self._clock()
        since = mark(self._reader, generations)
        listed: set[Listed] = set()
        whole: Seconds = {}
        if since is None:
            whole = self._inserts.last_overlap(generations, through)
            folds = self._whole_store(parameters)
        else:
            listed = self._inserts.listed(generations, since, through)
            folds = self._inserts.folds(generations, listed)
        for folded, picks in folds:
            if stopping():
                return 0
            silent = self._silent(folded, parameters | picks)
            bound = bindable(parameters | picks | {"computed_at": self._now(), "silent": silent})
            self._fold(folded, silent, bound, stopping)
        if stopping():
            return 0
        if folds:
            roll_up(self._reader, parameters | {"refreshed_from": now}, self._now)
        if since is None:
            self._inserts.note(generations, whole)
        else:
            self._inserts.remember(generations, listed, since, through)
        self._reader.insert(
            "session_facts_marks",
            [[*generations.parameters().values(), through, now]],
            [*generations.parameters(), "through", "marked_at"],
        )
        return len(folds)

    def _fold(
        self, folded: str, silent: list[str], bound: dict[str, Any], stopping: Callable[[], bool]
    ) -> None:
        """Write the slices and the cards of the sessions ``folded`` picks, as many pieces of
        work at once as the keeper has connections: the slices are the engine's
        work, and a batch of cards the engine's read and Python's summaries (one core), so
        that with two connections one's engine work runs beside the other's Python. A first
        refresh of ``bench.query``'s 1M sessions took 202 s, against 225 with only the slices
        beside the cards (chunks counted in the engine either way; timing scripts, the same
        day). When ``stopping`` says so, the cards not begun are left out. Of several
        failures, the first is raised with a note of each other."""
        reader = self._reader

        def write_slices() -> None:
            slices = live_slices(folded, SILENT if silent else None)
            reader.command(_SLICES.replace("{slices}", slices), **bound)
            reader.command(_EMPTIED.replace("{folded}", folded), **bound)

        def cards(batch: Batch) -> Callable[[], None]:
            def write() -> None:
                if not stopping():
                    write_cards(reader, bound, batch)

            return write

        batches = card_batches(reader, bound, folded, silent)
        with ThreadPoolExecutor(reader.connections) as pool:
            begun = [pool.submit(work) for work in (write_slices, *map(cards, batches))]
            for work in wait(begun, return_when=FIRST_EXCEPTION).not_done:
                work.cancel()
        failed = [e for w in begun if not w.cancelled() and (e := w.exception()) is not None]
        if failed:
            first, *others = failed
            for other in others:
                first.add_note(f"and beside it: {other!r}")
            raise first

    def _whole_store(self, parameters: dict[str, Any]) -> list[Fold]:
        """The store in parts of about ``PART_SESSIONS`` sessions, by hash."""
        ((sessions,),) = self._reader.rows(
            "SELECT uniq(session_id) FROM transcripts_generations "
            "WHERE generation = {generation:UInt32}",
            **parameters,
        )
        parts = max(1, -(-int(sessions) // PART_SESSIONS))
        return [(f"cityHash64(session_id) % {parts} = {part}", {}) for part in range(parts)]

    def _silent(self, folded: str, parameters: dict[str, Any]) -> list[str]:
        """The sessions ``folded`` picks that have no turns, asked apart: nearly always
        none, and naming them in the fold's statement as a subquery (``silent_sessions``)
        made it half as costly again (3 000 sessions: 260 ms against 170, a timing script).
        A turn that lands between the two leaves the session with a slice of its first event
        beside its turns' for a moment: it was projected after the mark, so readers take it
        live, and the next refresh writes that slice empty."""
        return sorted(str(s) for (s,) in self._reader.rows(silent_ids(folded), **parameters))

    def _clock(self) -> tuple[datetime, datetime]:
        """The engine's clock, and the mark a refresh that starts now makes (``SAFETY``)."""
        ((now, running_s),) = self._reader.rows(_CLOCK)
        return now, now - timedelta(seconds=running_s) - SAFETY

    def _now(self) -> datetime:
        return engine_now(self._reader)


def warm(
    client: Client,
    *more: Client,
    generation: int,
    projections: Collection[str],
    stopping: Callable[[], bool] = lambda: False,
) -> None:
    """Fill the caches of the generations readers will be shown once ``generation`` is cut
    over for ``projections``, the others staying as they are, on the connections given
    (``FactsKeeper``). Without a cache, every analytics read and page of sessions folds the
    store live until the first refresh has cached it, which takes minutes at 1M sessions: a
    rebuild does this before it cuts over."""
    shown = Reader(client, pointer_ttl_s=0.0)
    pinned = {p: generation if p in projections else shown.generation(p) for p in PROJECTIONS}
    FactsKeeper(client, *more, pinned=pinned).refresh(stopping)
