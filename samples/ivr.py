"""IVR menu bot: a spoken menu, a DTMF choice, then a blind transfer (REFER) or a goodbye.

    IVR_SALES=sip:sales@pbx.example.com IVR_SUPPORT=sip:support@pbx.example.com \\
        voip serve --bot samples.ivr:handle

Digits come as S-EXPEDITED-DATA indications (RFC 4733 events, or SIP INFO); a digit
stops the menu at once (barge-in). The transfer is REFER (RFC 3515): the caller is asked
to call the target, its NOTIFYs report how that went, and the bot hangs up after.
"""

from __future__ import annotations

import asyncio
import contextlib
import os

from samples.tts import speak
from voip.session import Session
from voip.session.primitives import ExpeditedDataIndication
from voip.transfer import TransferFailed

MENU = "Welcome. For sales, press 2. For support, press 3. To leave, press the pound key."
TARGETS = {"2": "IVR_SALES", "3": "IVR_SUPPORT"}  # digit: the variable naming the target


async def handle(session: Session) -> None:
    assert session.call.media is not None
    menu = asyncio.ensure_future(session.send_data(await asyncio.to_thread(speak, MENU)))
    try:
        choice = await session.wait_for(ExpeditedDataIndication, timeout=20)
    except TimeoutError:
        choice = ExpeditedDataIndication("#")
    menu.cancel()  # barge-in: the rest of the menu is not played ...
    session.call.media.flush()  # ... nor what was already queued
    with contextlib.suppress(asyncio.CancelledError):
        await menu
    target = os.environ.get(TARGETS.get(choice.data, ""), "")
    if not target:
        await session.send_data(await asyncio.to_thread(speak, "Goodbye."))
        return  # released on return
    await session.send_data(await asyncio.to_thread(speak, "Transferring you now."))
    await session.call.media.drain()
    try:
        report = await session.call.transfer(target)  # REFER; BYE after the target answers
        print(f"digit {choice.data}: transferred to {target} ({report.status} {report.reason})")
    except TransferFailed as error:
        print(f"digit {choice.data}: the transfer to {target} failed: {error}")
