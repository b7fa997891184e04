"""samples/walkie.py through Kamailio: two toolkit agents (Bob registered, Alice calling
through the proxy) take turns by S-TOKEN-PLEASE and S-TOKEN-GIVE; only the holder of the
data token sends RTP, and everything one sends the other receives."""

from __future__ import annotations

import asyncio
import os
import re
import sys

from support.peers import Kamailio
from support.samples import ROOT, TIMEOUT

TURNS = 3


async def test_two_agents_through_kamailio_talk_in_turns_passing_the_data_token(
    kamailio: Kamailio,
) -> None:
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "WALKIE_ALICE_PASSWORD": kamailio.users["alice"],
        "WALKIE_BOB_PASSWORD": kamailio.users["bob"],
    }
    proc = await asyncio.create_subprocess_exec(
        sys.executable, str(ROOT / "samples" / "walkie.py"), "--turns", str(TURNS),
        "--domain", kamailio.domain, "--proxy", kamailio.outbound_proxy(),
        "--registrar", kamailio.uri(),
        cwd=ROOT, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(proc.communicate(), TIMEOUT)
    text = out.decode()
    assert proc.returncode == 0, text + err.decode()
    turns = re.findall(r"^(\w+) said .*: (\d+) packets sent, (\d+) received meanwhile$", text, re.M)
    assert [name for name, _, _ in turns] == ["alice", "bob"] * TURNS + ["alice"], text
    assert all(int(sent) >= 25 for _, sent, _ in turns), text  # each line went out whole
    assert all(received == "0" for _, _, received in turns), text  # the other was silent
    totals = re.findall(r"^(\w+): (\d+) packets sent, (\d+) received in all$", text, re.M)
    assert sorted(name for name, _, _ in totals) == ["alice", "bob"], text
    sent = {name: int(count) for name, count, _ in totals}
    received = {name: int(count) for name, _, count in totals}
    assert received["bob"] >= 0.95 * sent["alice"] - 50, text  # Alice's last line may be cut
    assert received["alice"] >= 0.95 * sent["bob"], text
