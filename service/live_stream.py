"""Following one session as it happens, as server-sent events (``/v1/sessions/{id}/stream``).

Where the rows come from depends on who projects. A process that projects hears its own
projector (``consumers.live_feed``): each batch as soon as it is written, with the tables read
again when it fell behind, and every ``RESYNC_S`` without news (a ClickHouse server may have
other processes projecting some partitions). A process that does not (``--no-project``) reads
the session's rows every ``POLL_S``. Either way ``queries.live.Follower`` folds them and sends
each change once.

Every event carries an ``id``: the cursor of what the client holds once it has the event. The
events of one step are all sent together, so all but the step's last carry the cursor from
before the step, and a client cut off in the middle of a step is sent the rest of it again.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from fastapi.sse import ServerSentEvent

from consumers.live_feed import LiveFeed, Subscription
from queries import Reader
from queries.live import Cursor, Follower, SessionRows, completeness_of, session_rows

POLL_S = 0.25
"""How often a process that does not project reads a followed session's rows."""
RESYNC_S = 2.0
"""How long a process that projects waits for its projector's news before reading the
tables anyway."""


async def follow(
    reader: Reader,
    feed: LiveFeed | None,
    session_id: str,
    resume: Cursor | None,
    closing: asyncio.Event,
) -> AsyncIterator[ServerSentEvent]:
    """The session's turns, chunks and end as events until the client leaves or ``closing``
    is set; ``feed``: this process's projector's, when it projects."""
    with feed.subscribe(session_id) if feed else contextlib.nullcontext() as subscription:
        follower = Follower.resumed(await _read(reader, session_id), resume)
        held = resume or Cursor()
        while not closing.is_set():
            changes = follower.changes()
            if follower.wants_completeness:
                found = await asyncio.to_thread(completeness_of, reader, session_id)
                changes += follower.ended(found) if found is not None else []
            for n, (name, answer) in enumerate(changes, 1):
                at = follower.session.cursor if n == len(changes) else held
                yield ServerSentEvent(event=name, data=answer, id=at.text())
            if changes:
                held = follower.session.cursor
            news = asyncio.ensure_future(_news(subscription, reader, session_id))
            ending = asyncio.ensure_future(closing.wait())
            await asyncio.wait([news, ending], return_when=asyncio.FIRST_COMPLETED)
            ending.cancel()
            if not news.done():
                news.cancel()
                return
            for rows in news.result():
                follower.add(rows)


async def _news(
    subscription: Subscription | None, reader: Reader, session_id: str
) -> list[SessionRows]:
    if subscription is None:
        await asyncio.sleep(POLL_S)
        return [await _read(reader, session_id)]
    delivery = await subscription.next(RESYNC_S)
    if delivery.resync or not delivery.batches:
        return [*delivery.batches, await _read(reader, session_id)]
    return list(delivery.batches)


async def _read(reader: Reader, session_id: str) -> SessionRows:
    return await asyncio.to_thread(session_rows, reader, session_id)
