"""The reads ``bench.query`` times, and how each is asked: over HTTP, in process through
``queries``, and as the bare engine query on the physical tables (the SQL a hand-written query
would be; the analytics have none). Targets are drawn with a seed, so runs ask the same."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import urlencode

from clickhouse_connect.driver.client import Client

from bench.store_data import EPOCH, RARE_WORDS, Shape, bot_name
from queries import Reader, SessionFilters
from queries.analytics import turn_figures
from queries.metrics import metrics
from queries.search import search
from queries.sessions import list_sessions, session_detail, transcript

WEEK = timedelta(days=7)
READS = (
    "transcript",
    "session",
    "sessions_page",
    "search",
    "day_all_bots",
    "day_one_bot",
    "analytics_week",
    "analytics_day_one_bot",
)
COMMON_WORDS = ("refund", "order", "parcel")
PHRASES = ('"order number"', '"broken blender"', '"delivery address"')


@dataclass(frozen=True)
class Target:
    """What one request of each read asks for."""

    session_id: str
    bot_id: str
    since: datetime
    until: datetime
    week: datetime
    """The start of a week that lies in the store's days."""
    q: str


def targets(shape: Shape, count: int, seed: int) -> list[Target]:
    """Random sessions, bots, days and searches (a common word, a rare one, a phrase in turn)."""
    rng = random.Random(seed)
    chosen = []
    for n in range(count):
        day = EPOCH + timedelta(days=rng.randrange(shape.days))
        kinds = (rng.choice(COMMON_WORDS), f"w{rng.randrange(RARE_WORDS)}", rng.choice(PHRASES))
        chosen.append(
            Target(
                session_id=f"s{rng.randrange(shape.sessions):09d}",
                bot_id=bot_name(rng.randrange(shape.bots)),
                since=day,
                until=day + timedelta(days=1),
                week=EPOCH + timedelta(days=rng.randrange(shape.days - 6)),
                q=kinds[n % 3],
            )
        )
    return chosen


def http_path(read: str, t: Target) -> str:
    day = {"since": t.since.isoformat(), "until": t.until.isoformat()}
    week = {"since": t.week.isoformat(), "until": (t.week + WEEK).isoformat()}
    return {
        "transcript": f"/v1/sessions/{t.session_id}/turns",
        "session": f"/v1/sessions/{t.session_id}",
        "sessions_page": f"/v1/sessions?{urlencode({'bot_id': t.bot_id, **day, 'limit': 50})}",
        "search": f"/v1/search?{urlencode({'q': t.q, 'limit': 20})}",
        "day_all_bots": f"/v1/analytics/turns?{urlencode(day)}",
        "day_one_bot": f"/v1/analytics/turns?{urlencode({**day, 'bot_id': t.bot_id})}",
        "analytics_week": f"/v1/analytics?{urlencode(week)}",
        "analytics_day_one_bot": f"/v1/analytics?{urlencode({**day, 'bot_id': t.bot_id})}",
    }[read]


def inproc_call(reader: Reader, read: str, t: Target) -> Callable[[], object]:
    calls: dict[str, Callable[[], object]] = {
        "transcript": lambda: transcript(reader, t.session_id),
        "session": lambda: session_detail(reader, t.session_id),
        "sessions_page": lambda: list_sessions(
            reader, SessionFilters(bot_id=t.bot_id, since=t.since, until=t.until), limit=50
        ),
        "search": lambda: search(reader, t.q, limit=20),
        "day_all_bots": lambda: turn_figures(reader, since=t.since, until=t.until),
        "day_one_bot": lambda: turn_figures(reader, since=t.since, until=t.until, bot_id=t.bot_id),
        "analytics_week": lambda: metrics(reader, since=t.week, until=t.week + WEEK),
        "analytics_day_one_bot": lambda: metrics(
            reader, since=t.since, until=t.until, bot_id=t.bot_id
        ),
    }
    return calls[read]


_DAY = "started_at >= {since:DateTime64(6, 'UTC')} AND started_at < {until:DateTime64(6, 'UTC')}"
BARE = {
    "transcript": [
        "SELECT * FROM transcripts_generations FINAL WHERE generation = 1 "
        "AND session_id = {sid:String}"
    ],
    "session": [
        "SELECT * FROM transcripts_generations FINAL WHERE generation = 1 "
        "AND session_id = {sid:String}",
        "SELECT * FROM audio_chunks_generations FINAL WHERE generation = 1 "
        "AND session_id = {sid:String}",
        "SELECT uniqExact(seq), max(seq) + 1 FROM session_events_generations "
        "WHERE generation = 1 AND session_id = {sid:String}",
    ],
    "sessions_page": [
        "SELECT session_id, min(started_at) AS first_at, max(started_at), uniqExact(turn_id), "
        "countIf(interrupted) FROM transcripts_generations "
        f"WHERE generation = 1 AND bot_id = {{bot:String}} AND {_DAY} "
        "GROUP BY session_id ORDER BY first_at DESC LIMIT 50"
    ],
    "search": [
        "SELECT session_id, turn_id, bot_id, role, started_at, text FROM transcripts_generations "
        "WHERE generation = 1 AND hasAllTokens(text, {tokens:Array(String)}) "
        "ORDER BY started_at DESC LIMIT 20"
    ],
    "day_all_bots": [
        "SELECT latest.1 AS r, count(), quantiles(0.5, 0.9, 0.95, 0.99)(latest.2) FROM ("
        "SELECT argMax((role, duration_ms), version) AS latest FROM transcripts_generations "
        f"WHERE generation = 1 AND {_DAY} GROUP BY session_id, turn_id) GROUP BY r"
    ],
}
BARE["day_one_bot"] = [BARE["day_all_bots"][0].replace(_DAY, f"bot_id = {{bot:String}} AND {_DAY}")]


def bare_call(client: Client, read: str, t: Target) -> Callable[[], object]:
    parameters = {
        "sid": t.session_id,
        "bot": t.bot_id,
        "since": t.since,
        "until": t.until,
        "tokens": [w.strip('"') for w in t.q.lower().split()],
    }
    return lambda: [client.query(sql, parameters=parameters).result_rows for sql in BARE[read]]
