"""Freshness in domain terms: per bot, the newest turn the store shows.

Beside the lag (the age of the oldest event not yet projected), this tells a dashboard a quiet
bot (the store is caught up, and the bot's newest turn is old) from a store that is behind
(the lag is large). Each bot's newest turn start is kept on insert in
``transcripts_newest_by_bot``, one row per generation and bot, so the answer costs the same at
any size (4 ms at 10M turns; the maximum over the turns took 100-120 ms).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from pydantic import AwareDatetime, Field

from queries.models import Answer
from queries.paging import as_utc
from queries.reader import Reader

MILLISECOND = timedelta(milliseconds=1)
"""Ages divide by it: microseconds over a thousand, without the float noise of seconds times a
thousand (230777.49399999998)."""


class BotFreshness(Answer):
    bot_id: str
    newest_turn_at: AwareDatetime = Field(
        description="Start of the bot's newest turn the store shows (the bot's clock)."
    )
    age_ms: float = Field(
        description="`as_of` minus `newest_turn_at`: how long the bot has been quiet, as far "
        "as the store knows (negative when the bot's clock runs ahead)."
    )


def newest_turns(reader: Reader) -> dict[str, datetime]:
    """Per bot with turns, the start of its newest turn."""
    rows = reader.rows(
        "SELECT bot_id, max(started_at) FROM transcripts_newest_by_bot "
        "WHERE generation = {generation:UInt32} GROUP BY bot_id ORDER BY bot_id",
        generation=reader.generation("transcripts"),
    )
    return {str(bot): as_utc(at) for bot, at in rows}


def bot_freshness(reader: Reader, as_of: datetime) -> list[BotFreshness]:
    """Every bot's newest turn, and its age at ``as_of``."""
    return [
        BotFreshness(bot_id=bot, newest_turn_at=at, age_ms=(as_of - at) / MILLISECOND)
        for bot, at in newest_turns(reader).items()
    ]
