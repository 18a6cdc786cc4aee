"""One module per resource; each holds routes only, no SQL and no logic of its own."""
