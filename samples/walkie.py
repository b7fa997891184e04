"""Half-duplex walkie-talkie pair: two toolkit agents, one half-duplex session, and only
the holder of the data token talks.

    python samples/walkie.py --turns 3
    WALKIE_ALICE_PASSWORD=... WALKIE_BOB_PASSWORD=... \\
        python samples/walkie.py --domain pbx.example.com --proxy "sip:pbx.example.com;lr"

Alice calls Bob with a half-duplex offer (``sendonly``): she starts with the data token.
A listener who wants to talk asks for it (S-TOKEN-PLEASE: a PLEASE TOKENS SPDU in INFO);
the talker finishes the line and hands it over (S-TOKEN-GIVE, "over": a re-INVITE that
swaps ``sendonly`` and ``recvonly``). Alice has the last word and releases the session
(S-RELEASE: the initiator holds the other tokens it needs).
"""

from __future__ import annotations

import argparse
import asyncio
import os

from voip.call import Call
from voip.rtp import tone
from voip.session import Session, Tokens
from voip.session.primitives import ReleaseIndication, TokenGiveIndication, TokenPleaseIndication
from voip.sip import Credentials
from voip.useragent import UserAgent

PITCH = {"alice": 660.0, "bob": 440.0}


def counts(session: Session) -> tuple[int, int]:
    assert session.call.media is not None
    stats = session.call.media.statistics()
    return stats.packets_sent, stats.packets_received


async def radio(session: Session, name: str, lines: list[str], *, last_word: bool) -> None:
    """Say each line when holding the data token; ask for it first when not. (A line is
    a tone here, a second per word: plug in a microphone or ``samples.tts.speak``.)"""
    assert session.call.media is not None
    for number, line in enumerate(lines, 1):
        if not session.tokens & Tokens.DATA:
            await session.please_tokens(Tokens.DATA)  # S-TOKEN-PLEASE: "may I talk?"
            await session.wait_for(TokenGiveIndication, timeout=30)  # "over"
        speech = tone(PITCH[name], 0.2 * len(line.split()))
        sent, received = counts(session)
        await session.send_data(speech)  # S-DATA: only the token holder may
        await session.call.media.drain()
        now_sent, now_received = counts(session)
        print(
            f"{name} said {line!r}: {now_sent - sent} packets sent,"
            f" {now_received - received} received meanwhile",
            flush=True,
        )
        if last_word and number == len(lines):
            summary(session, name)
            await session.release()  # S-RELEASE
            return
        await session.wait_for(TokenPleaseIndication, timeout=30)  # the other wants to talk
        await session.give_tokens(Tokens.DATA)  # S-TOKEN-GIVE: "over"
    await session.wait_for(ReleaseIndication, timeout=60)


def summary(session: Session, name: str) -> None:
    sent, received = counts(session)
    print(f"{name}: {sent} packets sent, {received} received in all", flush=True)


def agent(user: str, domain: str | None, proxy: str | None) -> UserAgent:
    password = os.environ.get(f"WALKIE_{user.upper()}_PASSWORD")
    credentials = [Credentials(user, password)] if password else []
    return UserAgent(user, domain=domain, credentials=credentials, outbound_proxy=proxy)


async def main(turns: int, domain: str | None, proxy: str | None, registrar: str | None) -> None:
    async with agent("alice", domain, proxy) as alice, agent("bob", domain, proxy) as bob:
        await alice.listen("udp", "127.0.0.1", 0)
        endpoint = await bob.listen("udp", "127.0.0.1", 0)
        if proxy:
            await bob.register(registrar or f"sip:{domain}")  # so that the proxy finds Bob
        bob_uri = f"sip:bob@{domain}" if proxy else f"sip:bob@{endpoint.host}:{endpoint.port}"
        bob_done: asyncio.Future[None] = asyncio.get_running_loop().create_future()

        async def answer(call: Call) -> None:
            session = Session.incoming(call)  # S-CONNECT indication
            await session.accept()  # ... response: recvonly, the token stays with Alice
            lines = [f"Bob here, message {n}. Over." for n in range(1, turns + 1)]
            try:
                # his first S-TOKEN-PLEASE may go right away: it waits for Alice's ACK,
                # and if it overtakes her S-CONNECT confirm, it is delivered after it
                await radio(session, "bob", lines, last_word=False)
                summary(session, "bob")
                bob_done.set_result(None)
            except Exception as error:
                bob_done.set_exception(error)

        bob.on("incoming_call", answer)
        session = await Session.connect(alice, bob_uri, half_duplex=True)
        lines = [f"Alice calling, message {n}. Over." for n in range(1, turns + 1)]
        await radio(session, "alice", [*lines, "Roger. Alice out."], last_word=True)
        await bob_done


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--turns", type=int, default=3, help="lines each side says")
    parser.add_argument("--domain", help="the SIP domain of both accounts")
    parser.add_argument("--proxy", help="outbound proxy of both; Bob registers")
    parser.add_argument("--registrar", help="where Bob registers (default: sip:DOMAIN)")
    args = parser.parse_args()
    asyncio.run(main(args.turns, args.domain, args.proxy, args.registrar))
