"""The projector's pause of the cycle collector: what it freezes, what it still frees."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest

from consumers.gc_pause import collect_if_due, cyclic_gc_paused


class Node:
    def __init__(self) -> None:
        self.me = self


@pytest.fixture(autouse=True)
def collector_restored() -> Iterator[None]:
    enabled = gc.isenabled()
    yield
    gc.unfreeze()
    if enabled:
        gc.enable()


def test_what_lived_before_is_left_out_of_collections_until_the_pause_ends() -> None:
    before = Node()
    dead = weakref.ref(before)
    with cyclic_gc_paused():
        assert not gc.isenabled()
        assert gc.get_freeze_count() > 0
        del before
        collect_if_due(every_s=0)
        assert dead() is not None
    assert gc.get_freeze_count() == 0
    gc.collect()
    assert dead() is None


def test_cycles_made_during_the_pause_are_freed_by_its_collections() -> None:
    with cyclic_gc_paused():
        made = Node()
        dead = weakref.ref(made)
        del made
        collect_if_due(every_s=0)
        assert dead() is None


def test_holders_in_turn_keep_the_pause_until_the_last_leaves() -> None:
    first, second = cyclic_gc_paused(), cyclic_gc_paused()
    first.__enter__()
    second.__enter__()
    first.__exit__(None, None, None)
    assert not gc.isenabled()
    assert gc.get_freeze_count() > 0
    second.__exit__(None, None, None)
    assert gc.isenabled()
    assert gc.get_freeze_count() == 0


def test_a_collector_switched_off_before_stays_off() -> None:
    gc.disable()
    with cyclic_gc_paused():
        pass
    assert not gc.isenabled()
