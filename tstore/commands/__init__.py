"""The ``tstore`` subcommands, one module per area; ``tstore.cli`` puts them together."""
