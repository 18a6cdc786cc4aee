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

import queue
from collections import Counter
from collections.abc import Callable, Collection, Iterable, Mapping
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from datetime import datetime, timedelta
from typing import Any

from clickhouse_connect.driver.client import Client

from consumers.projections import PROJECTIONS
from queries.analytics import matching
from queries.cards import Batch, card_batches, write_cards
from queries.marks import (
    MAYBE_TOUCHED,
    SILENT,
    TOUCHED,
    Generations,
    Touched,
    mark,
    projected,
    projected_after,
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
OVERLAP = timedelta(minutes=5)
"""Each refresh also folds again the sessions projected in its own span, this long earlier,
so that an insert that landed after the refresh that should have listed it (one under way
that ``system.processes`` did not show) is cached too. The spans follow each other, so a
session is folded again once, not five minutes of a busy store every minute (whose
summaries, for the listing's cards, held the GIL for seconds)."""
PART_SESSIONS = 250_000
"""The first refresh of a set of generations folds the store in parts of about this many
sessions, to bound its memory."""

REMEMBERED = 200_000
"""At most about this many inserts a keeper holds as folded (some 50 MB; five minutes of 5k
events/s are about 75k): past it, it notes the seconds of those it lets go as a fold of the
whole store does (``FactsKeeper._note``), and the late spans pass over each unless an insert
landed in it since. Before, a store catching up folded what it caught up with twice."""

FOLD_BATCH = 20_000
"""Sessions named in one fold after the first refresh (a store catching up after its
projectors were down has many), to bound the size of a statement's parameters."""

_INSERTS = "source, session_id, projected_at"
_LISTED = f"""
SELECT DISTINCT {_INSERTS} FROM (
    {projected("after", what=_INSERTS)}
    UNION ALL
    SELECT * FROM ({projected("late_after", "late_upto", what=_INSERTS)})
    WHERE toStartOfSecond(projected_at) NOT IN {{folded_seconds:Array(DateTime64(3, 'UTC'))}})"""
"""The inserts after the mark, and in the span of the refresh ``OVERLAP`` before (but for the
seconds of it a fold took in whole, ``FactsKeeper._late_span``): of each, the projection, the
session and when."""

Listed = tuple[str, str, datetime]
"""An insert of a session a refresh lists: the projection, the session and when."""

_SECONDS = f"""
SELECT toStartOfSecond(projected_at) AS second, count(), sum(cityHash64({_INSERTS}))
FROM ({projected("after", "upto", what=_INSERTS)})
GROUP BY second"""
"""The inserts in a span, second by second: how many, and a sum of their hashes."""
_WHOLE_FOLDED = f"""
SELECT second, inserts, hashes FROM session_facts_whole_folds FINAL
WHERE {CACHED_GENERATIONS}
    AND second > {{after:DateTime64(3, 'UTC')}} AND second <= {{upto:DateTime64(3, 'UTC')}}"""
_SECOND = timedelta(seconds=1)
_MILLISECOND = timedelta(milliseconds=1)
Seconds = dict[datetime, tuple[int, int]]
"""``_SECONDS``'s answer: an insert that lands in a second changes that second's figures."""

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


Work = Callable[[Client, Reader], None]
"""A piece of a fold's work, on the connection given, with a reader over it."""
Fold = tuple[str, dict[str, Any]]
"""A part of the store a refresh folds at once: a fragment over ``session_id`` that picks its
sessions, and what binds it."""


def remembered(
    folded: set[Listed], listed: set[Listed], since: datetime
) -> tuple[set[Listed], set[Listed]]:
    """The inserts a keeper holds as folded after a refresh from the mark ``since`` that
    listed and folded ``listed``, and those it lets go that a later refresh may list again.
    Those stamped before its late span go, as no later refresh lists them; past
    ``REMEMBERED``, also those stamped before ``since``, which only a late span lists."""
    kept = {i for i in folded | listed if i[2] > since - OVERLAP}
    if len(kept) <= REMEMBERED:
        return kept, set()
    after_mark = {i for i in kept if i[2] > since}
    return after_mark, kept - after_mark


def relisted(since: datetime, through: datetime) -> tuple[datetime, datetime]:
    """The span ``(after, upto]`` of the inserts a refresh from the mark ``since`` to the mark
    ``through`` lets go (``remembered``) that a later late span lists again: from ``OVERLAP``
    before ``through``, where the next refresh's late span begins, to the end of the second
    of ``since``, whose inserts after ``since`` the refresh folded too, so that the second's
    note counts them all (a note of part of it would never match)."""
    return through - OVERLAP, since.replace(microsecond=0) + _SECOND - _MILLISECOND


def all_folded(folded: Iterable[Listed], seconds: Seconds) -> Seconds:
    """The seconds of ``seconds`` (the engine's figures of a span) whose every insert is among
    ``folded``: these were listed from the engine, so a second with as many of them as the
    engine holds has no other."""
    counts = Counter(at.replace(microsecond=0) for _, _, at in folded)
    return {second: figures for second, figures in seconds.items() if counts[second] == figures[0]}


class FactsKeeper:
    """Keeps the cache of the store's current generations. Several may run at once (service
    replicas): each writes what the live tables say, and the newest of a slice wins."""

    def __init__(
        self, client: Client, *more: Client, pinned: Mapping[str, int] | None = None
    ) -> None:
        """``more``: other connections, on which a fold does its work beside the first's
        (``_fold``). ``pinned``: the generations whose cache to keep, instead of those
        readers are shown (``warm``)."""
        self._client = client
        self._reader = Reader(client, pointer_ttl_s=0.0, pinned=pinned)
        self._idle: queue.SimpleQueue[tuple[Client, Reader]] = queue.SimpleQueue()
        self._idle.put((client, self._reader))
        for other in more:
            self._idle.put((other, Reader(other, pointer_ttl_s=0.0, pinned=pinned)))
        self._connections = 1 + len(more)
        self._folded: tuple[Generations | None, set[Listed]] = (None, set())
        """The inserts this keeper listed and folded the sessions of, of which generations:
        they were visible when listed, so the fold read them. The spans of two refreshes
        overlap by the first one's lag behind the clock, and the late one covers again what
        the spans of five minutes before did: sessions are folded again only for inserts not
        listed before (which landed after the list that should have seen them). Under 5k
        events/s, each session was folded about five times."""

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
            whole = self._seconds(generations, through - OVERLAP, through)
            folds = self._whole_store(parameters)
        else:
            listed = self._listed(generations, since, through)
            folds = self._folds(generations, listed)
        for folded, picks in folds:
            if stopping():
                return 0
            silent = self._silent(folded, parameters | picks)
            bound = bindable(parameters | picks | {"computed_at": self._now(), "silent": silent})
            self._fold(folded, silent, bound, stopping)
        if stopping():
            return 0
        if folds:
            roll_up(self._client, parameters | {"refreshed_from": now}, self._now)
        if since is None:
            self._note(generations, whole)
        else:
            self._remember(generations, listed, since, through)
        self._client.insert(
            "session_facts_marks",
            [[*generations.parameters().values(), through, now]],
            column_names=[*generations.parameters(), "through", "marked_at"],
        )
        return len(folds)

    def _fold(
        self, folded: str, silent: list[str], bound: dict[str, Any], stopping: Callable[[], bool]
    ) -> None:
        """Write the slices and the cards of the sessions ``folded`` picks, each connection
        taking the next piece of work when it is done with one: the slices are the engine's
        work, and a batch of cards the engine's read and Python's summaries (one core), so
        that with two connections one's engine work runs beside the other's Python. A first
        refresh of ``bench.query``'s 1M sessions took 202 s, against 225 with only the slices
        beside the cards (chunks counted in the engine either way; timing scripts, the same
        day). When ``stopping`` says so, the cards not begun are left out."""

        def write_slices(client: Client, _: Reader) -> None:
            slices = live_slices(folded, SILENT if silent else None)
            client.command(_SLICES.replace("{slices}", slices), parameters=bound)
            client.command(_EMPTIED.replace("{folded}", folded), parameters=bound)

        def cards(batch: Batch) -> Work:
            def write(client: Client, reader: Reader) -> None:
                if not stopping():
                    write_cards(client, reader, bound, batch)

            return write

        batches = card_batches(self._reader, bound, folded, silent)
        with ThreadPoolExecutor(self._connections) as pool:
            begun = [
                pool.submit(self._on_idle, work) for work in (write_slices, *map(cards, batches))
            ]
            done, left = wait(begun, return_when=FIRST_EXCEPTION)
            for work in left:
                work.cancel()
            for work in done:
                work.result()

    def _on_idle(self, work: Work) -> None:
        connection = self._idle.get()
        try:
            work(*connection)
        finally:
            self._idle.put(connection)

    def _whole_store(self, parameters: dict[str, Any]) -> list[Fold]:
        """The store in parts of about ``PART_SESSIONS`` sessions, by hash."""
        ((sessions,),) = self._reader.rows(
            "SELECT uniq(session_id) FROM transcripts_generations "
            "WHERE generation = {generation:UInt32}",
            **parameters,
        )
        parts = max(1, -(-int(sessions) // PART_SESSIONS))
        return [(f"cityHash64(session_id) % {parts} = {part}", {}) for part in range(parts)]

    def _listed(self, generations: Generations, since: datetime, through: datetime) -> set[Listed]:
        """The inserts after the mark ``since``, or in the span of the refresh ``OVERLAP``
        before; none when nothing was projected. An idle store took 180 ms of a core every
        refresh, the rollups included, to find nothing when its statements each looked."""
        late_after = since - OVERLAP
        if not projected_after(self._reader, generations, late_after):
            return set()
        late_upto, folded = self._late_span(generations, late_after, through - OVERLAP)
        rows = self._reader.rows(
            _LISTED,
            **generations.parameters(),
            after=since,
            late_after=late_after,
            late_upto=late_upto,
            folded_seconds=folded,
        )
        return {(str(source), str(session), at) for source, session, at in rows}

    def _late_span(
        self, generations: Generations, after: datetime, upto: datetime
    ) -> tuple[datetime, list[Any]]:
        """The end of the late span ``(after, upto]`` to list, and the seconds of it to pass
        over: those whose every insert a fold took in (``_note``) and that no insert landed
        in since. When that is every second with an insert, the span is empty: listing it
        would read again every insert ``_SECONDS`` just read (a whole load's or a catch-up's,
        after it was folded) to find none."""
        noted = {
            second: (int(n), int(hashes))
            for second, n, hashes in self._reader.rows(
                _WHOLE_FOLDED, **generations.parameters(), after=after - _SECOND, upto=upto
            )
        }
        if not noted:
            return upto, []
        now = self._seconds(generations, after, upto)
        folded = sorted(second for second, figures in now.items() if noted.get(second) == figures)
        return (after, []) if len(folded) == len(now) else (upto, folded)

    def _note(self, generations: Generations, folded: Seconds) -> None:
        """Store the seconds whose every insert a fold took in: a fold of the whole store's
        last ``OVERLAP`` before its mark, or the seconds of the inserts a keeper past
        ``REMEMBERED`` lets go. The late spans of the refreshes after it, in this keeper or
        another, fold again only the seconds that changed. Folding them all, the second
        refresh after a store was loaded or rebuilt within ``OVERLAP`` of the first folded it
        all again (1M sessions: 443 s, with every session projected meanwhile read live)."""
        if folded:
            folded_at = self._now()
            self._client.insert(
                "session_facts_whole_folds",
                [
                    [*generations.parameters().values(), second, n, hashes, folded_at]
                    for second, (n, hashes) in folded.items()
                ],
                column_names=[
                    *generations.parameters(),
                    "second",
                    "inserts",
                    "hashes",
                    "folded_at",
                ],
            )

    def _seconds(self, generations: Generations, after: datetime, upto: datetime) -> Seconds:
        rows = self._reader.rows(_SECONDS, **generations.parameters(), after=after, upto=upto)
        return {second: (int(n), int(hashes)) for second, n, hashes in rows}

    def _folds(self, generations: Generations, listed: set[Listed]) -> list[Fold]:
        """The sessions of the inserts ``listed`` that were not listed and folded before,
        named once, in batches of ``FOLD_BATCH``: each statement of a fold would otherwise
        find them again in every table they were projected to."""
        held, folded = self._folded
        new = listed - folded if held == generations else listed
        ids = sorted({session for _, session, _ in new})
        return [
            ("session_id IN {folded_ids:Array(String)}", {"folded_ids": ids[n : n + FOLD_BATCH]})
            for n in range(0, len(ids), FOLD_BATCH)
        ]

    def _remember(
        self, generations: Generations, listed: set[Listed], since: datetime, through: datetime
    ) -> None:
        """Hold what ``remembered`` keeps; note the seconds of what it lets go whose every
        insert was folded (``relisted``)."""
        held, folded = self._folded
        kept, let_go = remembered(folded if held == generations else set(), listed, since)
        self._folded = (generations, kept)
        if let_go:
            span = self._seconds(generations, *relisted(since, through))
            self._note(generations, all_folded(kept | let_go, span))

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
        ((now,),) = self._reader.rows("SELECT now64(6)")
        return now  # type: ignore[no-any-return]


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
