"""Bounding a batch: a replay up to a point in time keeps only the records before its limits."""

from __future__ import annotations

from aiokafka import TopicPartition

from consumers.steps import Records


def bound(records: Records, limits: dict[TopicPartition, int]) -> Records:
    """The records below each partition's limit (exclusive); partitions without one are kept."""
    kept: Records = {}
    for tp, batch in records.items():
        limit = limits.get(tp)
        inside = batch if limit is None else [r for r in batch if r.offset < limit]
        if inside:
            kept[tp] = inside
    return kept
