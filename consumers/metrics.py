"""The projector's Prometheus metrics, in a registry of their own (one per projector).

Rates (events/s, rejects/s) come from the counters with ``rate()``. Lag is given two ways: in
offsets per partition (high watermark minus the next offset to project) and in seconds, the
age of the oldest event not yet projected, read from the first record of each fetched batch
and counted until that batch is written (a fetch's own records are not the oldest while the
batches before it are still being written); zero when a fetch comes back empty with nothing
left to write, i.e. the projector is caught up. An empty fetch says so
only while the broker answers: a projector that has heard nothing from it for
``BLIND_AFTER_S`` (the broker is down, say) reports the time since it last did, so an outage
shows as a lag that grows with it, as the events bots produce meanwhile wait; so do projectors
that failed and wait to start again (``stopped``), even if they never reached the broker, and
projectors whose step has not come back from what followed its fetch for as long
(``unfetched_s``): a batch's commit waits for a broker that went away while it was in flight,
and no fetch comes to tell the silence.
"""

from __future__ import annotations

import collections
import time
from collections.abc import Mapping

from aiokafka import TopicPartition
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

BLIND_AFTER_S = 5.0
"""A projector that the broker answers hears from it at least every half second (a fetch
waits 500 ms for records at most); one that heard nothing for this long cannot know what it
is missing."""


def blind_for(since_s: float | None) -> float | None:
    """Seconds since ``since_s`` (wall clock), once that is ``BLIND_AFTER_S`` or more; None
    before then or without a time: how long the store has been cut off from what is produced,
    told only once that is longer than a fetch ever waits."""
    if since_s is None or time.time() - since_s < BLIND_AFTER_S:
        return None
    return time.time() - since_s


class _Lag:
    """What one projector's fetches tell of its lag (see ``ProjectorMetrics``)."""

    def __init__(self) -> None:
        self.pending: collections.Counter[int] = collections.Counter()
        """The oldest record's timestamp (ms) of each batch fetched and not yet written: its
        events are not in the store until then, whatever the fetches after it bring. Replaced,
        never changed in place: the lag is read on other threads (``/metrics``, the routes)."""
        self.silent_since: float | None = None
        """When the broker last answered, if the last fetch came back empty after a silence of
        ``BLIND_AFTER_S`` or more."""
        self.heard_s: float | None = None
        self.fetched_s: float | None = None

    def fetched(self, oldest_timestamp_ms: int | None, heard_s: float | None) -> None:
        now = time.time()
        self.fetched_s = now
        self.silent_since = None
        if oldest_timestamp_ms is not None:
            self.pending = self.pending + collections.Counter({oldest_timestamp_ms: 1})
        elif heard_s is not None and now - heard_s >= BLIND_AFTER_S:
            self.silent_since = heard_s
        self.heard_s = heard_s if heard_s is not None else self.heard_s

    def written(self, oldest_timestamp_ms: int) -> None:
        self.pending = self.pending - collections.Counter({oldest_timestamp_ms: 1})

    @property
    def since_s(self) -> float | None:
        """Since when events wait to be projected, as far as the fetches tell; None: none wait."""
        waiting = [ms / 1000 for ms in self.pending]
        silent_since = self.silent_since  # read once: the loop's thread may change it
        if silent_since is not None:
            waiting.append(silent_since)
        return min(waiting, default=None)

    @property
    def lag_s(self) -> float:
        now = time.time()
        since = self.since_s
        lag = 0.0 if since is None else max(0.0, now - since)
        if blind_for(self.fetched_s) is None or self.heard_s is None:
            return lag
        return max(lag, now - self.heard_s)


class ProjectorMetrics:
    """Shared by the live projectors of a process: usually one, two while some projections
    show a rebuilt generation and others do not. Each reports its lag under its generation;
    the store's lag is the larger (two projectors reporting into one figure made it flip
    between theirs with every fetch), and offsets are labelled by generation, as both read
    the same partitions."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.events = Counter("tstore_projector_events", "Events projected", registry=r)
        self.rejected = Counter(
            "tstore_projector_dead_letters", "Records sent to the dead-letter topic", registry=r
        )
        self.batch_size = Histogram(
            "tstore_projector_batch_size",
            "Records per batch",
            buckets=(1, 10, 100, 1_000, 5_000, 10_000, 25_000, 50_000, 100_000),
            registry=r,
        )
        self.insert_seconds = Histogram(
            "tstore_projector_insert_seconds", "Insert latency", ["table"], registry=r
        )
        self.lag_offsets = Gauge(
            "tstore_projector_lag_offsets",
            "Records not yet projected",
            ["generation", "topic", "partition"],
            registry=r,
        )
        self.lag_seconds = Gauge(
            "tstore_projector_lag_seconds", "Age of the oldest event not yet projected", registry=r
        )

        self.lag_seconds.set_function(lambda: self.lag_s or 0.0)
        self._lags: dict[int, _Lag] = {}
        """Per generation projected, what its projector's fetches tell."""
        self._left_since: float | None = None
        """Since when events wait, as far as the projectors that stopped since one last fetched
        could tell (one round of them handing over to the next, after a cut-over): the oldest
        record they had not written, else when the broker last answered them. Nobody fetches
        until the next round does, so the lag grows from it; a figure taken at the stop stayed
        as it was until then."""
        self._heard_s: float | None = None
        self._stopped_since: float | None = None
        self._labelled: set[tuple[int, TopicPartition]] = set()

    @property
    def lag_s(self) -> float | None:
        """What the query API reports: the larger lag the projectors last measured; while they
        are stopped, or a step of one has not come back for ``BLIND_AFTER_S`` since its fetch,
        the time since the broker last answered them (or since they first tried, if it never
        did); None before either. Read on other threads than the projectors' loop (the routes,
        ``/metrics``), so each field is read once."""
        stopped_since, left_since, lags = self._stopped_since, self._left_since, self._running()
        if stopped_since is not None:
            return max(0.0, time.time() - stopped_since)
        if not lags and left_since is not None:
            return max(0.0, time.time() - left_since)
        return max((lag.lag_s for lag in lags), default=None)

    def _running(self) -> list[_Lag]:
        """The projectors' lags, copied in one step (a projector may start or stop meanwhile)."""
        return list(self._lags.values())

    def lag_of(self, generation: int) -> float:
        """The lag the projector of ``generation`` last measured (0 before it fetched)."""
        lag = self._lags.get(generation)
        return 0.0 if lag is None else lag.lag_s

    @property
    def unheard_s(self) -> float | None:
        """How long the broker has not answered a projector, when its last fetch found it
        silent for ``BLIND_AFTER_S`` or more (down, or out of reach); None when it had
        answered. Decided by the fetch, as the lag is: records in hand are an answer, however
        long a projector takes to write them."""
        since = [at for at in (lag.silent_since for lag in self._running()) if at is not None]
        return time.time() - min(since) if since else None

    @property
    def unfetched_s(self) -> float | None:
        """How long a step of a projector has not come back since its fetch, once that is
        ``BLIND_AFTER_S`` or more: it waits for a write or a commit (one in flight when the
        broker went away waits for it to come back), and no fetch follows; None between steps
        (another statement of the projectors' may be slow then, with nothing waiting) and
        while they are stopped."""
        if self._stopped_since is not None:
            return None
        fetched = [at for at in (lag.fetched_s for lag in self._running()) if at is not None]
        return blind_for(min(fetched)) if fetched else None

    def written(self, generation: int, oldest_timestamp_ms: int) -> None:
        """The batch of the projector of ``generation`` whose oldest record is from
        ``oldest_timestamp_ms`` is in the store."""
        if generation in self._lags:
            self._lags[generation].written(oldest_timestamp_ms)

    def stepped(self, generation: int) -> None:
        """A step of the projector of ``generation`` came back (``unfetched_s``)."""
        if generation in self._lags:
            self._lags[generation].fetched_s = None

    @property
    def stopped_s(self) -> float | None:
        """How long the projectors have not fetched, while they are stopped (starting, or
        failed and waiting to start again) and once that is ``BLIND_AFTER_S`` or more."""
        return blind_for(self._stopped_since)

    def fetched(
        self, generation: int, oldest_timestamp_ms: int | None, heard_s: float | None = None
    ) -> None:
        """The projector of ``generation`` gathered a batch, its oldest record from
        ``oldest_timestamp_ms`` (None: empty); ``heard_s`` is when the broker last answered a
        fetch (wall clock), if known."""
        self._lags.setdefault(generation, _Lag()).fetched(oldest_timestamp_ms, heard_s)
        self._heard_s = heard_s if heard_s is not None else self._heard_s
        self._stopped_since = self._left_since = None
        for labelled in [held for held in self._labelled if held[0] not in self._lags]:
            self._unlabel(*labelled)  # of a generation a cut-over replaced

    def forget(self, generation: int) -> None:
        """The projector of ``generation`` stopped: its lag is no longer the store's. Its
        offsets stay until another generation's projector fetches (one started again after a
        failure takes them over)."""
        lag = self._lags.pop(generation, None)
        since = None if lag is None else lag.since_s or lag.heard_s
        if since is not None:
            self._left_since = min(since, self._left_since or since)

    def stopped(self, tried_since_s: float) -> None:
        """The projectors, first started at ``tried_since_s`` (wall clock), do not fetch: they
        are starting, or failed and wait to start again (the broker out of reach, say). No
        fetch measures the lag meanwhile, and it grows from when the broker last answered
        them, or from the oldest record they left unwritten if that is older (a batch the
        store refused), or from ``tried_since_s``. A store whose broker was never reached
        reported no lag at all, and looked current."""
        if self._stopped_since is None:
            known = [at for at in (self._heard_s, self._left_since) if at is not None]
            self._stopped_since = min(known, default=tried_since_s)

    def partition_lag(
        self, generation: int, tp: TopicPartition, highwater: int | None, next_offset: int
    ) -> None:
        if highwater is not None:
            self.lag_offsets.labels(str(generation), tp.topic, str(tp.partition)).set(
                max(0, highwater - next_offset)
            )
            self._labelled.add((generation, tp))

    def held_partitions(
        self, generation: int, next_offsets: Mapping[TopicPartition, tuple[int, int]]
    ) -> None:
        """Lag of every partition the projector of ``generation`` holds, by (high watermark,
        next offset), when a fetch came back empty; the gauge forgets the others. Batches set
        the lag only of partitions that have records: a partition with none was missing from
        the gauge, and one a rebalance took away kept its last figure, so a dashboard summing
        the gauge saw neither."""
        for tp, (highwater, next_offset) in next_offsets.items():
            self.partition_lag(generation, tp, highwater, next_offset)
        for held_generation, tp in list(self._labelled):
            if held_generation == generation and tp not in next_offsets:
                self._unlabel(generation, tp)

    def _unlabel(self, generation: int, tp: TopicPartition) -> None:
        self.lag_offsets.remove(str(generation), tp.topic, str(tp.partition))
        self._labelled.discard((generation, tp))
