"""``TranscriptProducer``: what a bot calls. Every call validates, numbers and returns at once.

The calls run on the bot's event loop, so they do only what must happen there: build the
pydantic model (a bad value raises at the call site, and nothing is published), give it the
session's next ``seq``, and hand it to the delivery thread. They never wait for the network,
and Kafka being down never reaches the caller: events wait in memory, then on disk.
"""

from __future__ import annotations

import asyncio
import atexit
import os
import weakref
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

import structlog

from producers.call_checks import fits_kafka, whole_numbers
from producers.delivery import Delivery, DeliveryConfig
from producers.frames import SpoolRecord
from producers.kafka import PLAINTEXT, KafkaSecurity, checked_bootstrap
from producers.spool import Spool
from schemas import (
    ChunkReady,
    Event,
    EventCodec,
    ProducerInfo,
    Role,
    SessionEnded,
    Topics,
    Track,
    TurnStarted,
    TurnStopped,
    WordTiming,
)

log = structlog.get_logger(__name__)

E = TypeVar("E", TurnStarted, TurnStopped, ChunkReady, SessionEnded)

LIBRARY_VERSION = version("transcript-store")
ENDED_KEPT = 100_000
"""How many ended sessions a producer remembers, to refuse their events (about 10 MB)."""
EXIT_CLOSE_S = 2.0
"""How long a producer still running when the interpreter exits may deliver before what is
left is spooled (``close`` at exit)."""


@dataclass(frozen=True)
class ProducerStats:
    published: int
    """Acknowledged by Kafka."""
    spooled: int
    """Written to the on-disk spool (each is published later)."""
    dropped: int
    """Refused (the spool full, the producer closed, the session ended): lost, and logged."""
    errors: int
    """Failed attempts to reach Kafka (each retried)."""
    backlog: int
    """Accepted, in memory, not yet acknowledged."""
    spool_bytes: int


class TranscriptProducer:
    def __init__(
        self,
        bootstrap: str,
        *,
        bot_id: str,
        framework: str = "custom",
        framework_version: str = "",
        topics: Topics | None = None,
        spool_dir: Path | str = "tstore-spool",
        spool_max_bytes: int = 512 * 1024 * 1024,
        delivery: DeliveryConfig | None = None,
        close_timeout_s: float = 10.0,
        kafka_security: KafkaSecurity | None = None,
    ) -> None:
        self.bot_id = bot_id
        self.topics = topics or Topics()
        self.close_timeout_s = close_timeout_s
        self._info = ProducerInfo(
            framework=framework,
            framework_version=framework_version,
            library_version=LIBRARY_VERSION,
        )
        self._codec = EventCodec()
        checked_bootstrap(bootstrap)
        self._spool = Spool.claim(Path(spool_dir), max_bytes=spool_max_bytes)
        self._delivery = Delivery(
            bootstrap, self._spool, self._encode, delivery, kafka_security or PLAINTEXT
        )
        self._next_seq: dict[str, int] = {}
        self._ended: OrderedDict[str, None] = OrderedDict()
        """The sessions this producer ended, newest last: an event of one would be numbered
        from 0 again, and the store, which keeps one event per session and seq, would take it
        for the one it replaced."""
        self._tracks: dict[str, dict[Track, list[int]]] = {}
        """Per session and track, the chunks published and their samples."""
        self._holds = 0
        self._started_by_hold = False
        self._closed = False
        self._forked = False
        _MADE.add(self)

    def _encode(self, event: Event) -> SpoolRecord:
        return SpoolRecord(
            self.topics.for_event(event), event.session_id.encode(), self._codec.encode(event)
        )

    @property
    def stats(self) -> ProducerStats:
        d = self._delivery.stats
        return ProducerStats(
            published=d.published,
            spooled=d.spooled,
            dropped=d.dropped,
            errors=d.errors,
            backlog=self._delivery.backlog,
            spool_bytes=self._spool.pending_bytes,
        )

    @property
    def running(self) -> bool:
        """Started and not closed: calls are delivered."""
        return self._delivery.alive

    def start(self) -> None:
        """Start the delivery thread; returns without waiting for Kafka. A producer starts
        once: started again, or after ``close``, it says so (its spool slot may be another
        process's by then)."""
        if self._forked:
            raise RuntimeError(
                "this producer was made in another process, before os.fork(): make one in the "
                "process that uses it (its spool slot is the other process's)"
            )
        if self._closed or self._delivery.started:
            raise RuntimeError(
                "this producer was closed: make a new one"
                if self._closed
                else "this producer is already started: start it once"
            )
        self._delivery.start()
        _RUNNING.add(self)

    def hold(self) -> None:
        """One more user (a job, say) whose life the producer's follows: the first hold starts
        a producer that is not running and the last ``release`` closes it, so jobs sharing a
        producer never close it under each other. A producer its owner started stays the
        owner's to close. A closed producer cannot start again; holding one only says so, and
        its events are dropped and logged rather than raising into the bot."""
        if self._holds == 0 and not self.running:
            if self._forked:
                log.error("producer_made_in_another_process", detail="made before os.fork()")
            elif self._delivery.started or self._closed:
                log.error("producer_closed", detail="closed producers do not start again")
            else:
                self.start()
                self._started_by_hold = True
        self._holds += 1

    async def release(self) -> None:
        """The end of a ``hold``."""
        self._holds = max(0, self._holds - 1)
        if self._holds == 0 and self._started_by_hold:
            self._started_by_hold = False
            await self.close()

    async def close(self, timeout_s: float | None = None) -> None:
        """Deliver what is pending within the deadline; what is left waits in the spool."""
        await asyncio.to_thread(
            self._close, self.close_timeout_s if timeout_s is None else timeout_s
        )

    def _close(self, timeout_s: float) -> None:
        """``close``, blocking its caller. Closing twice does nothing more."""
        if self._closed:
            return
        self._closed = True
        _RUNNING.discard(self)
        self._delivery.close(timeout_s)
        self._spool.release()
        log.info("producer_closed", **vars(self.stats))

    async def __aenter__(self) -> TranscriptProducer:
        self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    def end_session(self, session_id: str) -> SessionEnded | None:
        """Publish the session's ``SessionEnded``, its last event, and forget its counters
        (kept in memory until then). It declares the session's event count and, per track, the
        chunks published through this producer and their samples, against which the store
        tells a sealed session from one with holes. Call it once, after the session's last
        chunk; a session id the contract refuses is logged and nothing is published, since
        this runs as a call ends, where an exception would only break the bot's cleanup. A
        second end (a bot ending a call on hang-up and again as its pipeline stops) is logged
        and publishes nothing."""
        if session_id in self._ended:
            log.warning("session_end_repeated", session_id=session_id)
            return None
        totals: dict[str, int] = {}
        for track, (chunks, samples) in self._tracks.pop(session_id, {}).items():
            totals |= {f"{track}_chunks": chunks, f"{track}_samples": samples}
        try:
            return self._emit(
                SessionEnded,
                session_id,
                event_count=self._next_seq.get(session_id, 0) + 1,
                **totals,
            )
        except ValueError as exc:
            log.error("session_end_refused", session_id=session_id, error=str(exc))
            return None
        finally:
            self._next_seq.pop(session_id, None)
            self._ended[session_id] = None
            if len(self._ended) > ENDED_KEPT:
                self._ended.popitem(last=False)

    def has_ended(self, session_id: str) -> bool:
        """Whether this producer ended the session (and it was not resumed since): its events
        are refused, so a chunk of it need not be written."""
        return session_id in self._ended

    def resume_session(
        self,
        session_id: str,
        next_seq: int,
        tracks: Mapping[Track, tuple[int, int]] | None = None,
    ) -> None:
        """Continue numbering a session started by an earlier process; ``tracks``: per track,
        the chunks it published and their samples, which the session's end adds up. A session
        this producer ended takes events again once resumed. Checked here: a ``next_seq`` of
        the wrong type was refused at each of the session's later calls, naming ``seq``."""
        whole_numbers("next_seq", next_seq)
        for track, totals in (tracks or {}).items():
            if len(totals) != 2:
                raise ValueError(f"tracks[{track!r}]: {totals!r} is not (chunks, samples)")
            whole_numbers(f"tracks[{track!r}]", *totals)
        self._ended.pop(session_id, None)
        self._next_seq[session_id] = next_seq
        self._tracks[session_id] = {t: list(totals) for t, totals in (tracks or {}).items()}

    def turn_started(
        self,
        session_id: str,
        turn_id: str,
        role: Role,
        *,
        started_at: datetime | None = None,
        detection_strategy: str | None = None,
    ) -> TurnStarted:
        return self._emit(
            TurnStarted,
            session_id,
            turn_id=turn_id,
            role=role,
            started_at=started_at or datetime.now(UTC),
            detection_strategy=detection_strategy,
        )

    def turn_stopped(
        self,
        session_id: str,
        turn_id: str,
        role: Role,
        *,
        text: str,
        started_at: datetime,
        stopped_at: datetime | None = None,
        interrupted: bool = False,
        timed_out: bool = False,
        user_id: str | None = None,
        language: str | None = None,
        words: tuple[WordTiming, ...] | None = None,
    ) -> TurnStopped:
        return self._emit(
            TurnStopped,
            session_id,
            turn_id=turn_id,
            role=role,
            text=text,
            started_at=started_at,
            stopped_at=stopped_at or datetime.now(UTC),
            interrupted=interrupted,
            timed_out=timed_out,
            user_id=user_id,
            language=language,
            words=words,
        )

    def chunk_ready(
        self,
        session_id: str,
        *,
        chunk_id: str,
        track: Track,
        chunk_seq: int,
        uri: str,
        format: str,
        sample_rate: int,
        channels: int,
        start_sample: int,
        num_samples: int,
        recording_started_at: datetime,
        byte_size: int,
        sha256: str,
    ) -> ChunkReady:
        event = self._emit(
            ChunkReady,
            session_id,
            chunk_id=chunk_id,
            track=track,
            chunk_seq=chunk_seq,
            uri=uri,
            format=format,
            sample_rate=sample_rate,
            channels=channels,
            start_sample=start_sample,
            num_samples=num_samples,
            recording_started_at=recording_started_at,
            byte_size=byte_size,
            sha256=sha256,
        )
        totals = self._tracks.setdefault(session_id, {}).setdefault(track, [0, 0])
        totals[0] += 1
        totals[1] += num_samples
        return event

    def _emit(self, model: type[E], session_id: str, **fields: Any) -> E:
        seq = self._next_seq.get(session_id, 0)
        event = model(
            session_id=session_id, bot_id=self.bot_id, seq=seq, producer=self._info, **fields
        )
        if isinstance(event, TurnStopped):
            fits_kafka(event, self._encode)
        if session_id in self._ended:
            refused = "the session was ended: call resume_session to continue it"
        else:
            self._next_seq[session_id] = seq + 1  # a lost event is a hole the store sees
            if self._delivery.alive:
                self._delivery.submit(event)
                return event
            refused = "producer not running"
        self._delivery.stats.dropped += 1
        log.error(
            "event_dropped",
            reason=refused,
            session_id=session_id,
            event_type=model.__name__,
            seq=seq,
        )
        return event


_RUNNING: weakref.WeakSet[TranscriptProducer] = weakref.WeakSet()
"""The producers started and not closed, which ``_close_at_exit`` closes."""
_MADE: weakref.WeakSet[TranscriptProducer] = weakref.WeakSet()
"""Every producer of this process, which a child process it forks may not use."""


def _made_elsewhere() -> None:
    """In a forked child, the parent's producers: their delivery thread did not come along,
    and their spool's lock is the parent's. The child lets its copy of the lock go (the lock
    stays the parent's while the parent holds it), or the slot would stay taken, with what it
    spooled, as long as the child lives, after the parent closed its producer."""
    for producer in _MADE:
        producer._forked = True
        producer._spool.release_in_child()
    _RUNNING.clear()


os.register_at_fork(after_in_child=_made_elsewhere)


@atexit.register
def _close_at_exit() -> None:
    """A producer still running when the interpreter exits (``close`` never called) delivers
    what it can for ``EXIT_CLOSE_S`` and spools the rest; its delivery thread would otherwise
    die with the interpreter and take every event it held in memory along."""
    for producer in list(_RUNNING):
        log.warning("producer_closed_at_exit", detail="call close() or use `async with`")
        producer._close(min(EXIT_CLOSE_S, producer.close_timeout_s))
