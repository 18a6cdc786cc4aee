"""What a cache keeper (``queries.facts``) has folded of the store's inserts, and which to fold
next: after its first refresh, a keeper folds the sessions of the inserts since its mark and
of those in its late span (``OVERLAP`` before), but for the inserts it remembers folding and
the seconds a fold noted it took in whole. An insert is a row of ``projected_sessions``: the
projection, the session and when (``Listed``).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from queries.marks import Generations, projected, projected_after
from queries.reader import Reader
from queries.rollups import CACHED_GENERATIONS

OVERLAP = timedelta(minutes=5)
"""Each refresh also folds again the sessions projected in its own span, this long earlier,
so that an insert that landed after the refresh that should have listed it (one under way
that ``system.processes`` did not show) is cached too. The spans follow each other, so a
session is folded again once, not five minutes of a busy store every minute (whose
summaries, for the listing's cards, held the GIL for seconds)."""
REMEMBERED = 200_000
"""At most about this many inserts a keeper holds as folded (some 50 MB; five minutes of 5k
events/s are about 75k): past it, it notes the seconds of those it lets go as a fold of the
whole store does (``FoldedInserts.note``), and the late spans pass over each unless an insert
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
seconds of it a fold took in whole, ``FoldedInserts._late_span``): of each, the projection, the
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


def engine_now(reader: Reader) -> datetime:
    """The engine's clock, which stamps the inserts."""
    ((now,),) = reader.rows("SELECT now64(6)")
    return now  # type: ignore[no-any-return]


class FoldedInserts:
    """The inserts a keeper listed and folded, over the keeper's reader."""

    def __init__(self, reader: Reader) -> None:
        self._reader = reader
        self._folded: tuple[Generations | None, set[Listed]] = (None, set())
        """The inserts this keeper listed and folded the sessions of, of which generations:
        they were visible when listed, so the fold read them. The spans of two refreshes
        overlap by the first one's lag behind the clock, and the late one covers again what
        the spans of five minutes before did: sessions are folded again only for inserts not
        listed before (which landed after the list that should have seen them). Under 5k
        events/s, each session was folded about five times."""

    def last_overlap(self, generations: Generations, through: datetime) -> Seconds:
        """The inserts of the last ``OVERLAP`` before the mark ``through``, second by second:
        what a fold of the whole store begun now takes in, noted once it is done."""
        return self._seconds(generations, through - OVERLAP, through)

    def listed(self, generations: Generations, since: datetime, through: datetime) -> set[Listed]:
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

    def folds(self, generations: Generations, listed: set[Listed]) -> list[Fold]:
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

    def remember(
        self, generations: Generations, listed: set[Listed], since: datetime, through: datetime
    ) -> None:
        """Hold what ``remembered`` keeps; note the seconds of what it lets go whose every
        insert was folded (``relisted``)."""
        held, folded = self._folded
        kept, let_go = remembered(folded if held == generations else set(), listed, since)
        self._folded = (generations, kept)
        if let_go:
            span = self._seconds(generations, *relisted(since, through))
            self.note(generations, all_folded(kept | let_go, span))

    def note(self, generations: Generations, folded: Seconds) -> None:
        """Store the seconds whose every insert a fold took in: a fold of the whole store's
        last ``OVERLAP`` before its mark, or the seconds of the inserts a keeper past
        ``REMEMBERED`` lets go. The late spans of the refreshes after it, in this keeper or
        another, fold again only the seconds that changed. Folding them all, the second
        refresh after a store was loaded or rebuilt within ``OVERLAP`` of the first folded it
        all again (1M sessions: 443 s, with every session projected meanwhile read live)."""
        if folded:
            folded_at = engine_now(self._reader)
            self._reader.insert(
                "session_facts_whole_folds",
                [
                    [*generations.parameters().values(), second, n, hashes, folded_at]
                    for second, (n, hashes) in folded.items()
                ],
                [*generations.parameters(), "second", "inserts", "hashes", "folded_at"],
            )

    def _late_span(
        self, generations: Generations, after: datetime, upto: datetime
    ) -> tuple[datetime, list[Any]]:
        """The end of the late span ``(after, upto]`` to list, and the seconds of it to pass
        over: those whose every insert a fold took in (``note``) and that no insert landed
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

    def _seconds(self, generations: Generations, after: datetime, upto: datetime) -> Seconds:
        rows = self._reader.rows(_SECONDS, **generations.parameters(), after=after, upto=upto)
        return {second: (int(n), int(hashes)) for second, n, hashes in rows}
