"""samples/ivr.py under ``voip serve``: a SIPp UAC presses 2 (RFC 4733 events from SIPp's
pcap) during the menu; the bot transfers it by REFER to the sales target, SIPp accepts and
reports the new call by NOTIFY, the bot hangs up."""

from __future__ import annotations

import asyncio
from pathlib import Path

from support.peers import Sipp
from support.samples import TIMEOUT, serving

from voip.cli.exits import ExitCode

SALES = "sip:sales@127.0.0.1:5999"


async def test_digit_2_from_sipp_transfers_the_caller_to_sales_by_refer(
    sipp: Sipp, home: Path
) -> None:
    async with serving("ivr:handle", home, IVR_SALES=SALES, IVR_SUPPORT="sip:x@127.0.0.1") as (
        uri,
        server,
    ):
        port = int(uri.rsplit(":", 1)[1])
        result = await sipp.run("uac_ivr_transferee", ("127.0.0.1", port), service="bot")
        run = await asyncio.wait_for(server, TIMEOUT)
    assert result.ok, result.report()  # REFER received, 202, NOTIFYs, then the bot's BYE
    messages = result.messages()
    assert f"Refer-To: <{SALES}>" in messages, messages
    assert run.returncode == ExitCode.OK, run
    assert f"digit 2: transferred to {SALES} (200 OK)" in run.stdout, run
