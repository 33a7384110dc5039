"""The server process raises the collector's thresholds once, after start-up."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from cqlstar.app import GC_THRESHOLDS, tune_garbage_collector


@pytest.fixture
def restore_gc() -> Iterator[None]:
    thresholds = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*thresholds)


@pytest.mark.usefixtures("restore_gc")
def test_thresholds_are_raised_and_start_up_objects_frozen() -> None:
    start_up_object = {"lives": "for the whole process"}
    tune_garbage_collector()
    assert gc.get_threshold() == GC_THRESHOLDS
    assert gc.get_threshold()[0] > 700  # CPython's default, the cost being avoided
    assert gc.get_freeze_count() > 0
    assert start_up_object["lives"]
