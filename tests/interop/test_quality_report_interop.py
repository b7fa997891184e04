"""The quality report (voip.report) of real calls with baresip, clean and through loss.

A relay between the toolkit and baresip (tests/support/relay.py) drops 5 % of the RTP
packets each way at random (seeded): the report must show the loss it measured (received)
and the loss baresip reported in its RTCP receiver reports (sent), and a lower E-model
MOS for each direction than the same call without loss.
"""

from __future__ import annotations

import asyncio
import random
import re
from collections.abc import Callable
from pathlib import Path

from support.peers import Baresip
from support.peers._process import free_port_range
from support.quality import play_speech
from support.relay import Impairment, RelayedPorts
from support.ua import media_of

from voip.report import QualityReport
from voip.rtp import PortAllocator, read_wav
from voip.useragent import UserAgent

TIMEOUT = 15.0
SECONDS = 8.0  # long enough for baresip's RTCP receiver reports (every ~5 s)
LOSS = 0.05


async def report_of_a_call(
    bob: Baresip, speech: bytes, ports: PortAllocator | None = None
) -> QualityReport:
    """Call baresip, send it SECONDS of speech while it sends its own, hang up: the
    report as ``voip call`` prints it."""
    async with UserAgent("alice", rtp_ports=ports) as ua:
        await ua.listen("udp", "127.0.0.1", 0)
        mark = bob.log_mark()
        call = await asyncio.wait_for(ua.call(bob.uri()), TIMEOUT)
        await bob.wait_established(since=mark)
        started = asyncio.get_running_loop().time()
        await play_speech(media_of(call), speech)
        while media_of(call).statistics().remote_lost is None:  # until an RTCP report
            await asyncio.sleep(0.1)
        elapsed = asyncio.get_running_loop().time() - started
        report = QualityReport.of_call(call, elapsed)
        await asyncio.wait_for(call.hangup(), TIMEOUT)
        await bob.wait_closed(since=mark)
    assert report is not None
    return report


def row(report: QualityReport, direction: str) -> tuple[int, float, float]:
    """(lost, loss %, MOS) as the report's text shows them for ``direction``."""
    text = report.text()
    match = re.search(
        rf"^  {direction}\s+\d+\s+(\d+)\s+(\d+\.\d)%\s+\S+ ms\s+(\d\.\d\d)$", text, re.MULTILINE
    )
    assert match, text
    return int(match[1]), float(match[2]), float(match[3])


async def test_the_report_of_a_call_through_5_percent_loss_shows_it_and_a_lower_mos(
    speech_wav: Path, baresip_factory: Callable[..., Baresip]
) -> None:
    bob = baresip_factory("bob", codecs=("PCMU",))
    speech = read_wav(speech_wav)[: int(2 * 8000 * SECONDS)]
    clean = await asyncio.wait_for(report_of_a_call(bob, speech), 3 * TIMEOUT)

    to_toolkit = Impairment(LOSS, 0.0, random.Random(6))
    to_peer = Impairment(LOSS, 0.0, random.Random(7))
    low = free_port_range(4)
    ports = RelayedPorts(low, low + 1, low + 2, to_toolkit=to_toolkit, to_peer=to_peer)
    lossy = await asyncio.wait_for(report_of_a_call(bob, speech, ports), 3 * TIMEOUT)
    print(clean.text(), lossy.text(), sep="\n")

    assert row(clean, "received")[:2] == (0, 0.0)
    assert row(clean, "sent")[:2] == (0, 0.0)
    # what the toolkit received: the relay's drops, counted (RFC 3550 A.3) and shown
    lost, percent, mos = row(lossy, "received")
    assert lost > 0 and 2.0 < percent < 10.0
    # no more than the relay dropped (it went on dropping until baresip stopped sending)
    assert to_toolkit.dropped / 2 <= lost <= to_toolkit.dropped
    assert mos < row(clean, "received")[2] - 0.3
    # what baresip received of ours, from its RTCP receiver reports (RFC 3550 §6.4.1)
    lost, percent, mos = row(lossy, "sent")
    assert lost > 0 and 1.0 < percent < 10.0
    assert mos < row(clean, "sent")[2] - 0.2
