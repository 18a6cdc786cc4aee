from __future__ import annotations

import pytest

from tstore.demo import SCRIPT, format_transcript, run_demo
from tstore.settings import Settings

pytestmark = pytest.mark.integration


async def test_the_demo_reads_back_the_whole_scripted_call(
    kafka_bootstrap: str, clickhouse_dsn: str, database: str
) -> None:
    settings = Settings(
        clickhouse_dsn=clickhouse_dsn, clickhouse_database=database, topic_prefix=f"{database}."
    )
    rows = await run_demo(settings, kafka_bootstrap)
    assert [(r.role, r.text, r.interrupted) for r in rows] == [
        (t.role, t.text, t.interrupted) for t in SCRIPT
    ]
    assert all(r.complete for r in rows)
    assert [r.duration_ms for r in rows] == [round(t.duration_s * 1000) for t in SCRIPT]
    printed = format_transcript(rows)
    assert "[interrupted]" in printed
    assert printed.count("\n") == len(SCRIPT) - 1
