"""What an ended call leaves to the garbage collector: nothing.

A UAS at a thousand calls a second must free each call by reference counting as soon as
it ends. Objects caught in a reference cycle wait for the cyclic collector, are promoted
while the call lasts, and pile up until a full collection, which walks every object of
the process (tens of thousands of transactions waiting out their timers) and stops the
agent meanwhile.
"""

from __future__ import annotations

import asyncio
import gc
import weakref
from collections.abc import Iterator

import pytest
from support.ua import TIMEOUT, connected

from voip.rtp import MediaStream
from voip.useragent import UserAgent


@pytest.fixture
def no_cyclic_gc() -> Iterator[None]:
    gc.collect()
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


@pytest.mark.usefixtures("no_cyclic_gc")
async def test_callee_call_freed_by_reference_counting_after_bye(
    alice: UserAgent, bob: UserAgent
) -> None:
    caller, callee = await connected(alice, bob)
    assert callee.media is not None
    call = weakref.ref(callee)
    # a compiled MediaStream takes no weak reference: it is looked for among the objects
    # the collector tracks (it never ran since: what is there is what lives)
    stream = id(callee.media.stream)
    ended = asyncio.ensure_future(callee.ended())
    await caller.hangup()
    await asyncio.wait_for(ended, TIMEOUT)
    del callee, ended
    await asyncio.sleep(0.05)  # the media clock drops the stream at its next tick
    alive = ["call"] if call() is not None else []
    alive += ["stream" for o in gc.get_objects() if isinstance(o, MediaStream) and id(o) == stream]
    assert alive == []


@pytest.mark.usefixtures("no_cyclic_gc")
async def test_media_handlers_dropped_when_the_stream_closes(
    alice: UserAgent, bob: UserAgent
) -> None:
    _, callee = await connected(alice, bob)
    assert callee.media is not None
    stream = callee.media.stream
    assert stream.listener is not None  # the call hears the stream's DTMF and inactivity
    events = stream.events
    events.on("rtcp", lambda report: None)
    callee.media.close()
    assert stream.listener is None
    assert events.event_names() == set()
