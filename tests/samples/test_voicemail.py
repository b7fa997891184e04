"""samples/voicemail.py under ``voip serve``: baresip's speech ends up in the WAV, with its
metadata beside it; a SIPp caller's RFC 4733 digits are in the metadata and # ends the
message."""

from __future__ import annotations

import asyncio
import json
import wave
from collections.abc import Callable
from pathlib import Path

from support.peers import Baresip, Sipp
from support.quality import PLAYOUT_DRIFT, finished_recording, read_recording, score
from support.samples import TIMEOUT, serving

from voip.cli.exits import ExitCode

MESSAGE = 5.0  # seconds baresip talks after the greeting


def saved(folder: Path) -> tuple[Path, dict[str, object]]:
    (metadata,) = folder.glob("*.json")
    entry = json.loads(metadata.read_text())
    return folder / str(entry["wav"]), entry


async def test_a_baresip_callers_speech_is_saved_as_wav_with_its_metadata(
    baresip_factory: Callable[..., Baresip], home: Path, tmp_path: Path
) -> None:
    folder = tmp_path / "voicemail"
    bob = baresip_factory("bob")
    async with serving("voicemail:handle", home, VOICEMAIL_DIR=str(folder)) as (uri, server):
        await bob.dial(uri)
        await bob.wait_established()
        # the greeting (about 4 s), then the message
        while not list(folder.glob("*.wav")):
            await asyncio.sleep(0.1)
        await asyncio.sleep(MESSAGE)
        await bob.hangup()
        run = await asyncio.wait_for(server, TIMEOUT)
    assert run.returncode == ExitCode.OK, run
    wav, entry = saved(folder)
    assert "sip:bob@" in str(entry["caller"]) and entry["digits"] == ""
    with wave.open(str(wav), "rb") as recording:
        seconds = recording.getnframes() / recording.getframerate()
    assert abs(float(str(entry["duration"])) - seconds) < 0.05
    assert MESSAGE - 0.5 < seconds < MESSAGE + 1.5, seconds
    # what baresip sent over the whole call, found again in the message
    sent = await finished_recording(bob.sent_recordings()[-1])
    result = score(sent, read_recording(wav), drift=PLAYOUT_DRIFT)
    assert result.windowed_correlation > 0.9, result
    assert result.seconds >= MESSAGE - 0.5, result


async def test_digits_from_sipp_go_into_the_metadata_and_pound_ends_the_message(
    sipp: Sipp, home: Path, tmp_path: Path
) -> None:
    folder = tmp_path / "voicemail"
    async with serving("voicemail:handle", home, VOICEMAIL_DIR=str(folder)) as (uri, server):
        port = int(uri.rsplit(":", 1)[1])
        result = await sipp.run("uac_call_dtmf", ("127.0.0.1", port), service="bot")
        run = await asyncio.wait_for(server, TIMEOUT)
    assert result.ok, result.report()
    assert run.returncode == ExitCode.OK, run
    _, entry = saved(folder)
    assert entry["digits"] == "159#"
    assert float(str(entry["duration"])) < 1.0  # # came during the greeting: no message
