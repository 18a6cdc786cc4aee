"""The command line every benchmark shares: a size (``--events N``, or the option the benchmark
names) and ``--json``."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable, Mapping

from tstore.logging import configure_logging


def run(
    description: str,
    default_size: int,
    measure: Callable[[int], Mapping[str, float]],
    *,
    option: str = "events",
) -> None:
    """Parse ``--<option> N`` and ``--json``, measure at size N, print the figures. What the
    store and the projectors log while they are measured goes to stderr, as ``tstore``'s
    does: structlog's default printed it to stdout, before the JSON line."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument(
        f"--{option}",
        type=int,
        default=default_size,
        dest="size",
        metavar="N",
        help=f"{option} to process",
    )
    parser.add_argument("--json", action="store_true", help="end with one JSON line of figures")
    args = parser.parse_args()
    if args.size <= 0:
        parser.error(f"--{option} must be positive")
    configure_logging()
    figures = measure(args.size)
    if args.json:
        print(json.dumps(figures))
    else:
        for key, value in figures.items():
            print(f"{key:>24}: {value:,.1f}")
