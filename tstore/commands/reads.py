"""Reading the store: a transcript, sessions, search, incomplete sessions, analytics. Each asks the
running store over HTTP when one answers, and opens the store itself otherwise."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, cast, get_args

import typer

from analytics.definitions import Bucket, GroupBy
from queries import SessionFilters
from queries.incomplete import incomplete_sessions
from queries.metrics import metrics
from queries.models import SessionState
from queries.paging import MAX_PAGE
from queries.search import search as search_store
from queries.sessions import list_sessions
from queries.sessions import transcript as read_transcript
from schemas import Role
from tstore import render
from tstore.commands.common import one_line_errors, read, settings, time_option

app = typer.Typer()


def _page_size(help_text: str) -> Any:
    return typer.Option(min=1, max=MAX_PAGE, help=help_text)


Limit = Annotated[int, _page_size("Items per page.")]
Cursor = Annotated[str | None, typer.Option(help="Continue after a page (its next cursor).")]
Since = Annotated[datetime | None, time_option("From this time.")]
Until = Annotated[datetime | None, time_option("Before this time.")]


def _one_of(value: str | None, kinds: Any, option: str) -> None:
    """Refuse a value of ``option`` that is not one of the literal type ``kinds``."""
    known = get_args(kinds)
    if value is not None and value not in known:
        raise typer.BadParameter(f"{', '.join(known[:-1])} or {known[-1]}", param_hint=option)


def _more(cursor: str | None) -> None:
    if cursor:
        typer.echo(f"more: --cursor {cursor}")


@app.command()
@one_line_errors
def transcript(
    session_id: Annotated[
        str, typer.Argument(help="The session's id, as `tstore sessions` lists it.")
    ],
) -> None:
    """Print a session's transcript."""
    if not session_id.strip():
        raise typer.BadParameter(
            "the session id is empty; give one that `tstore sessions` lists",
            param_hint="SESSION_ID",
        )
    turns = read(
        settings(),
        lambda service: service.turns(session_id).turns,
        lambda reader: read_transcript(reader, session_id),
    )
    typer.echo(render.transcript(turns))


@app.command()
@one_line_errors
def sessions(
    bot: Annotated[str | None, typer.Option(help="Only this bot's sessions.")] = None,
    since: Since = None,
    until: Until = None,
    language: Annotated[str | None, typer.Option(help="Only sessions with this language.")] = None,
    incomplete: Annotated[
        bool | None,
        typer.Option(
            "--incomplete/--complete",
            help="Only sessions with (without) holes: missing events, turns never stopped, "
            "missing audio. An abandoned call without holes is complete here; "
            "`tstore incomplete` lists it.",
        ),
    ] = None,
    state: Annotated[
        str | None,
        typer.Option(
            help="Only sessions in this state: open, sealed, sealed_with_holes, abandoned."
        ),
    ] = None,
    limit: Limit = 20,
    cursor: Cursor = None,
) -> None:
    """List sessions, newest first."""
    _one_of(state, SessionState, "--state")
    filters = SessionFilters(
        bot_id=bot,
        since=since,
        until=until,
        language=language,
        complete=None if incomplete is None else not incomplete,
        state=cast(SessionState | None, state),
    )
    page = read(
        settings(),
        lambda service: service.sessions(
            **filters.model_dump(exclude_none=True), cursor=cursor, limit=limit
        ),
        lambda reader: list_sessions(reader, filters, cursor=cursor, limit=limit),
    )
    if page.items:
        render.console().print(render.sessions(page.items))
    else:
        typer.echo("no session matches")
    _more(page.next_cursor)


@app.command()
@one_line_errors
def search(
    query: Annotated[str, typer.Argument(help='Words, and "quoted phrases".')],
    bot: Annotated[str | None, typer.Option(help="Only this bot's turns.")] = None,
    role: Annotated[str | None, typer.Option(help="user or assistant.")] = None,
    since: Since = None,
    until: Until = None,
    limit: Limit = 20,
    cursor: Cursor = None,
) -> None:
    """Search transcripts, newest first."""
    if not query.strip():
        raise typer.BadParameter(
            'the search is empty; give words or a "quoted phrase"', param_hint="QUERY"
        )
    _one_of(role, Role, "--role")
    who: Role | None = "user" if role == "user" else "assistant" if role else None
    page = read(
        settings(),
        lambda service: service.search(
            query, bot_id=bot, role=who, since=since, until=until, cursor=cursor, limit=limit
        ),
        lambda reader: search_store(
            reader,
            query,
            bot_id=bot,
            role=who,
            since=since,
            until=until,
            cursor=cursor,
            limit=limit,
        ),
    )
    console = render.console()
    for hit in page.items:
        console.print(render.hit(hit))
    if not page.items:
        typer.echo("no turn matches")
    _more(page.next_cursor)


@app.command()
@one_line_errors
def incomplete(
    limit: Annotated[
        int,
        _page_size(
            "Sessions per page, at most: a page stops after about a second of searching, so "
            "it may hold fewer, or none, and still give a cursor to go on."
        ),
    ] = 100,
    cursor: Cursor = None,
    bot: Annotated[str | None, typer.Option(help="Only sessions this bot began.")] = None,
) -> None:
    """List incomplete sessions, in session-id order, each with its state and what is missing.

    A session is incomplete when events are missing (holes in its seq), a turn never
    stopped, it ended with chunks other than its end declared (missing or extra chunks,
    sample gaps, overlaps, totals), or it is abandoned: no end, and silent for longer than
    TSTORE_ABANDONED_AFTER_S.
    """
    page = read(
        settings(),
        lambda service: service.incomplete(cursor=cursor, limit=limit, bot_id=bot),
        lambda reader: incomplete_sessions(reader, cursor=cursor, limit=limit, bot_id=bot),
    )
    for item in page.items:
        typer.echo(render.incomplete(item))
    if not page.items:
        none = f"no incomplete session of bot {bot}" if bot else "no incomplete session"
        typer.echo(f"{none} among those examined" if page.next_cursor else none)
    _more(page.next_cursor)


@app.command()
@one_line_errors
def stats(
    since: Since = None,
    until: Until = None,
    bucket: Annotated[str, typer.Option(help="minute, hour or day.")] = "hour",
    bot: Annotated[str | None, typer.Option(help="Only this bot's calls.")] = None,
    by: Annotated[
        str | None, typer.Option(help="Split each bucket by bot, role, language or framework.")
    ] = None,
) -> None:
    """Print the analytics per bucket (the last day unless told), and what each metric means."""
    _one_of(bucket, Bucket, "--bucket")
    _one_of(by, GroupBy, "--by")
    before = until or datetime.now(UTC)
    # a day before, or as far as a time goes: --until 0001-01-01 has no day before it
    after = since or before - min(timedelta(days=1), before - datetime.min.replace(tzinfo=UTC))
    step, split = cast(Bucket, bucket), cast(GroupBy | None, by)
    found = read(
        settings(),
        lambda service: service.metrics(
            since=after, until=before, bucket=step, bot_id=bot, group_by=split
        ),
        lambda reader: metrics(
            reader, since=after, until=before, bucket=step, bot_id=bot, group_by=split
        ),
    )
    console = render.console()
    if found.rows:
        console.print(render.metrics(found.rows))
    else:
        typer.echo(
            f"no turn started between {after:%Y-%m-%d %H:%M} and {before:%Y-%m-%d %H:%M} UTC"
        )
    console.print(render.definitions(found.definitions))
