"""Rebuilding projections and managing their generations, in the process that owns the store
when one answers (``/v1/admin``), here otherwise."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from typing import Annotated, Any

import typer
from aiokafka import TopicPartition
from rich.table import Table

from consumers.admin import excluded_by_discard
from consumers.metrics import ProjectorMetrics
from consumers.projections import PROJECTIONS
from consumers.rebuild import RebuildPlan
from consumers.storage.clickhouse import open_store
from consumers.storage.generations import GenerationError
from service.answers import GenerationInfo
from tstore import render
from tstore.commands.common import (
    client,
    existing_store,
    one_line_errors,
    refuse_no_store,
    settings,
    time_option,
    until_signalled,
    writable_store,
)
from tstore.components import project_live, rebuild_service
from tstore.progress import RebuildProgress
from tstore.settings import Settings

app = typer.Typer()


@app.command()
@one_line_errors
def rebuild(
    only: Annotated[
        list[str] | None,
        typer.Option(
            "--only",
            help=f"Rebuild only this projection (repeatable): {', '.join(PROJECTIONS)}.",
        ),
    ] = None,
    until: Annotated[
        datetime | None,
        time_option(
            "Replay only events written before this time; the generation is kept frozen for "
            "inspection instead of being cut over."
        ),
    ] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Say what would be done.")] = False,
    resume: Annotated[bool, typer.Option("--resume", help="Resume an unfinished rebuild.")] = False,
    discard: Annotated[bool, typer.Option("--discard", help="Drop an unfinished rebuild.")] = False,
    cancel: Annotated[
        bool,
        typer.Option(
            "--cancel",
            help="Stop the rebuild running in the store's process; its generation stays "
            "unfinished, to resume or discard.",
        ),
    ] = False,
    follow: Annotated[
        bool, typer.Option(help="After the cut-over, keep projecting live until signalled.")
    ] = False,
    allow_loss: Annotated[
        bool,
        typer.Option(
            "--allow-loss",
            help="Cut over even when the new generation lacks sessions readers are shown "
            "(the topics no longer hold their events).",
        ),
    ] = False,
) -> None:
    """Replay the topics into a new generation, verify it, and cut readers over in one step.

    The live generation keeps serving and projecting meanwhile. When the store's process
    (tstore serve or tstore project) answers on TSTORE_HTTP_PORT, the rebuild runs inside
    it; otherwise this process opens the store and runs it.
    """
    request = {
        "only": only,
        "until": until.isoformat() if until else None,
        "resume": resume,
        "discard": discard,
        "dry_run": dry_run,
        "allow_loss": allow_loss,
    }
    _alone("--discard", excluded_by_discard(request))
    config = settings()
    if cancel:
        _cancel(config, request | {"follow": follow})
        return
    with client(config) as service:
        if service.reachable():
            typer.echo(f"rebuilding inside the store's process ({config.service_url})")
            asyncio.run(
                _drive(
                    lambda body: asyncio.to_thread(service.start_rebuild, body),
                    lambda: asyncio.to_thread(service.rebuild_status),
                    request,
                )
            )
            return
    asyncio.run(_rebuild_here(config, request, follow=follow))


def _alone(flag: str, given: list[str]) -> None:
    """Refuse ``flag`` beside the options ``given`` (names of the request), which it takes
    none of: run all the same, ``--discard --dry-run`` discarded."""
    if given:
        flags = ", ".join("--" + name.replace("_", "-") for name in given)
        raise GenerationError(f"{flag} excludes {flags}: it takes no other option")


def _cancel(config: Settings, request: dict[str, Any]) -> None:
    """Cancel the rebuild of the store's process. Only a cancel that took stops the command
    without an error: one asked too late leaves the rebuild cutting over, which a script
    that asked for the cancel must hear."""
    _alone("--cancel", [name for name, value in request.items() if value])
    with client(config) as service:
        if not service.reachable():
            raise GenerationError(
                f"no store process answers at {config.service_url}: a rebuild runs inside "
                "one, or in a tstore rebuild of its own, which Ctrl+C stops"
            )
        ended = service.cancel_rebuild()
    typer.echo(cancelled(ended))


def cancelled(ended: dict[str, Any]) -> str:
    """What a cancel took, from the rebuild's status after it; raises for one that did not
    (asked too late, or the rebuild failed meanwhile)."""
    if ended["state"] == "cancelled":
        return str(ended["error"])
    generation = ended["plan"]["generation"]
    if ended["state"] == "running":
        raise GenerationError(
            f"too late: the rebuild of generation {generation} has replayed the topics, and "
            "goes on to verify them and cut over"
        )
    if ended["state"] == "done":
        raise GenerationError(
            f"too late: the rebuild of generation {generation} ended, "
            f"{ended['summary']['generation_state']}"
        )
    raise GenerationError(ended["error"])


async def _rebuild_here(config: Settings, request: dict[str, Any], *, follow: bool) -> None:
    """No process owns the store: this one does, for the rebuild (and after it with --follow).
    A rebuild fills a store it finds empty from the topics; a dry run, a resume or a discard
    has nothing to look at without one, and would leave an empty store behind."""
    if request["dry_run"] or request["resume"] or request["discard"]:
        refuse_no_store(config)
    writable_store(config)
    store = await asyncio.to_thread(open_store, config.dsn, config.clickhouse_database)
    service = rebuild_service(config, store)

    async def status() -> dict[str, Any]:
        return service.status()

    await _drive(service.start, status, request)
    if follow and not request["dry_run"] and not request["discard"]:
        await project_live(config, store, until_signalled(), ProjectorMetrics())


async def _drive(
    start: Callable[[dict[str, Any]], Awaitable[dict[str, Any]]],
    status: Callable[[], Awaitable[dict[str, Any]]],
    request: dict[str, Any],
) -> None:
    """Start a rebuild (here or in the store's process, the same calls) and show its progress."""
    answer = await start(request)
    if answer.get("discarded") is not None:
        typer.echo(f"discarded generation {answer['discarded']}")
        return
    plan = RebuildPlan.from_dict(answer["plan"])
    typer.echo(plan.describe())
    if request["dry_run"]:
        return
    with RebuildProgress(plan) as progress:
        while True:
            state = await status()
            progress({TopicPartition(t, p): o for t, p, o in state["positions"]})
            if state["state"] != "running":
                break
            await asyncio.sleep(0.5)
    if state["state"] in ("failed", "cancelled"):
        raise GenerationError(state["error"])
    done = state["summary"]
    typer.echo(
        f"generation {done['generation']} {done['generation_state']}: {done['events']} events "
        f"in {done['seconds']:.1f}s ({done['events'] / max(done['seconds'], 1e-9):,.0f} "
        "events/s); rows "
        + ", ".join(f"{t} {n}" for t, n in done["rows"].items())
        + "; verified against the replay"
    )


generations_app = typer.Typer(help="List or drop projection generations.", no_args_is_help=False)


@generations_app.callback(invoke_without_command=True)
@one_line_errors
def generations(ctx: typer.Context) -> None:
    """List generations: state, what readers see, rows, size, created and cut-over times."""
    if ctx.invoked_subcommand is not None:
        return
    config = settings()
    with client(config) as service:
        if service.reachable():
            _show(service.generations())
            return
    _show([GenerationInfo.of(*row) for row in existing_store(config).generations.overview()])


def _show(found: Sequence[GenerationInfo]) -> None:
    table = Table("gen", "state", "shown for", "rows", "size", "created", "cut over", "until")
    for g in found:
        table.add_row(
            str(g.generation),
            g.state,
            ", ".join(g.shown_for) or "-",
            ", ".join(f"{t} {n}" for t, n in sorted(g.rows.items())) or "-",
            f"{g.bytes_on_disk / 1e6:.1f} MB",
            f"{g.created_at:%Y-%m-%d %H:%M:%S}",
            f"{g.cut_over_at:%Y-%m-%d %H:%M:%S}" if g.cut_over_at else "-",
            g.until.isoformat() if g.until else "-",
        )
    render.console().print(table)


@generations_app.command("drop")
@one_line_errors
def drop_generation(
    number: Annotated[int, typer.Argument(help="A generation `tstore generations` lists.")],
) -> None:
    """Delete a generation's rows (refused for one that readers are shown)."""
    config = settings()
    with client(config) as service:
        if service.reachable():
            service.drop_generation(number)
        else:
            existing_store(config).generations.drop(number)
    typer.echo(f"discarded generation {number}: its rows are dropped")
