"""The event schemas: check that a change strands no stored event."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from schemas.compatibility import PUBLISHED_FILE, problems, unpublished
from schemas.registry import SCHEMA_DIR, SchemaFolderError, SchemaRegistry
from tstore.commands.common import fail

schemas_app = typer.Typer(help="The event schemas.", no_args_is_help=True)


@schemas_app.command("check")
def check_schemas(
    folder: Annotated[Path, typer.Option(help="The schema folder.")] = SCHEMA_DIR,
) -> None:
    """Fail if the schema folder would strand stored events (edited published versions,
    versions that cannot read each other)."""
    try:
        found = problems(folder)
        new = unpublished(folder)
    except SchemaFolderError as exc:
        raise fail(str(exc)) from exc
    if found:
        raise fail("\n".join(["schemas would strand stored events:", *found]))
    registry = SchemaRegistry.from_folder(folder)
    for name in registry.names():
        labels = ", ".join(f"v{v.version}" for v in registry.history(name))
        typer.echo(f"{name}: versions {labels} compatible")
    if new:
        typer.echo(f"not yet pinned in {PUBLISHED_FILE}: {', '.join(new)}")
