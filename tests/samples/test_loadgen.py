"""samples/loadgen.py against a SIPp UAS that echoes RTP: 20 concurrent calls, all answered,
each with a setup time and a MOS in the table."""

from __future__ import annotations

import asyncio
import re
import sys

from support.peers import Sipp
from support.samples import ROOT, TIMEOUT

CALLS = 20


async def test_twenty_concurrent_calls_to_a_sipp_uas_are_all_answered_with_a_mos(
    sipp: Sipp,
) -> None:
    uas = sipp.start("uas_call", calls=CALLS, rtp_echo=True)
    proc = await asyncio.create_subprocess_exec(
        sys.executable, str(ROOT / "samples" / "loadgen.py"), uas.uri("sipp"),
        "--calls", str(CALLS), "--duration", "2",
        cwd=ROOT, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(proc.communicate(), TIMEOUT)
    table = out.decode()
    assert proc.returncode == 0, table + err.decode()
    result = await uas.wait(TIMEOUT)
    assert result.successful == CALLS, result.report()  # SIPp saw each call through to BYE
    assert f"{CALLS} answered, 0 failed" in table, table
    rows = re.findall(r"^│\s*(\d+) │ answered\s*│\s*(\d+) │\s*([\d.]+) │$", table, re.M)
    assert sorted(int(n) for n, _, _ in rows) == list(range(1, CALLS + 1)), table
    assert all(float(mos) > 4.0 for _, _, mos in rows), table  # the echo came back whole
