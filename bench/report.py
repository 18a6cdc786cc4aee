"""The command line every benchmark shares: ``--events N`` and ``--json``."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable, Mapping


def run(
    description: str, default_events: int, measure: Callable[[int], Mapping[str, float]]
) -> None:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--events", type=int, default=default_events, help="events to process")
    parser.add_argument("--json", action="store_true", help="end with one JSON line of figures")
    args = parser.parse_args()
    if args.events <= 0:
        parser.error("--events must be positive")
    figures = measure(args.events)
    if args.json:
        print(json.dumps(figures))
    else:
        for key, value in figures.items():
            print(f"{key:>24}: {value:,.1f}")
