"""The ``tstore`` command. Settings come from ``TSTORE_*`` variables (see ``tstore.settings``).

Commands live in ``tstore.commands``, one module per area; this puts them under one app.
"""

from __future__ import annotations

import typer

from tstore.commands import kafka, objects, reads, rebuild, schemas, store

app = typer.Typer(
    help="transcript-store: voice-bot conversations as events on Kafka, projected into ClickHouse.",
    no_args_is_help=True,
    rich_markup_mode="markdown",
    add_completion=False,
)
for commands in (store.app, kafka.app, objects.app, reads.app, rebuild.app):
    app.registered_commands += commands.registered_commands
app.add_typer(rebuild.generations_app, name="generations")
app.add_typer(schemas.schemas_app, name="schemas")
