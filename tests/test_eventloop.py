"""voip.eventloop: which loop a program runs on, and the collector of a long-running agent."""

from __future__ import annotations

import asyncio
import gc

import pytest
import uvloop

from voip.eventloop import YOUNG_THRESHOLD, loop_factory, settle_collector


def test_auto_takes_uvloop_where_it_is_installed_and_asyncio_names_the_stock_loop() -> None:
    assert loop_factory("auto") is uvloop.new_event_loop
    assert loop_factory("asyncio") is asyncio.new_event_loop


def test_an_unknown_event_loop_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown event loop"):
        loop_factory("tokio")


def test_settling_the_collector_freezes_what_exists_and_collects_the_young_less_often() -> None:
    before = gc.get_threshold()
    existing = [[] for _ in range(100)]  # containers: objects the collector tracks
    try:
        settle_collector()
        assert gc.get_threshold() == (YOUNG_THRESHOLD, before[1], before[2])
        frozen = gc.get_freeze_count()
        assert frozen >= len(existing)
        later = [[] for _ in range(100)]
        gc.collect()
        assert gc.get_freeze_count() == frozen  # what came after is collected as before
        assert len(later) == len(existing)
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)
