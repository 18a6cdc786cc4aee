"""The ``tstore`` command. Settings come from ``TSTORE_*`` variables (see ``tstore.settings``).

Commands live in ``tstore.commands``, one module per area; this puts them under one app.
"""

from __future__ import annotations

import typer
from typer._click import Context, Parameter
from typer.core import TyperCommand, TyperGroup, TyperOption

from tstore.commands import kafka, objects, reads, rebuild, schemas, store


def _valueless_flags(params: list[Parameter]) -> list[Parameter]:
    """typer 0.29's help labels every option with its type, a flag too (``--dry-run <bool>``),
    as if it took a value (``--dry-run true`` then fails on the extra argument). An empty
    metavar is shown as nothing, and a flag takes no value to name."""
    for param in params:
        if isinstance(param, TyperOption) and param.is_flag:
            param.metavar = ""
    return params


class _Command(TyperCommand):
    def get_params(self, ctx: Context) -> list[Parameter]:
        return _valueless_flags(super().get_params(ctx))


class _Group(TyperGroup):
    def get_params(self, ctx: Context) -> list[Parameter]:
        return _valueless_flags(super().get_params(ctx))


def _with_valueless_flags(commands: typer.Typer) -> typer.Typer:
    for command in commands.registered_commands:
        command.cls = _Command
    return commands


app = typer.Typer(
    cls=_Group,
    help="transcript-store: voice-bot conversations as events on Kafka, projected into ClickHouse.",
    no_args_is_help=True,
    rich_markup_mode="markdown",
    add_completion=False,
)
for commands in (store.app, kafka.app, objects.app, reads.app, rebuild.app):
    app.registered_commands += commands.registered_commands
_with_valueless_flags(app)
app.add_typer(_with_valueless_flags(rebuild.generations_app), name="generations", cls=_Group)
app.add_typer(_with_valueless_flags(schemas.schemas_app), name="schemas", cls=_Group)
