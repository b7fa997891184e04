"""Asking a registrar for the bindings of an address-of-record (RFC 3261 §10.2.3), against
Kamailio: a REGISTER without Contact lists the bindings and changes none."""

from __future__ import annotations

import asyncio

from support.peers import Kamailio
from support.sip_trace import traced_agent

from voip.sip import Credentials

TIMEOUT = 15.0


async def test_query_without_a_registration_of_its_own_is_challenged_then_lists_bindings(
    kamailio: Kamailio,
) -> None:
    """An agent that never registered asks in a Call-ID of its own: the 401 is answered
    (the REGISTER again with Authorization, CSeq one more) and the 200 lists the other
    device's binding, which is not this agent's."""
    bob_options = {
        "domain": kamailio.domain,
        "credentials": [Credentials("bob", kamailio.users["bob"])],
    }
    async with traced_agent("bob", **bob_options) as (phone, _):
        await asyncio.wait_for(phone.register(kamailio.uri(), expires=300), TIMEOUT)
        async with traced_agent("bob", **bob_options) as (desk, trace):
            bindings = await asyncio.wait_for(desk.registered_bindings(kamailio.uri()), TIMEOUT)
            assert trace.ladder() == ["> REGISTER", "< 401", "> REGISTER", "< 200"]
            sent = [t.message for t in trace if t.direction == "out"]
            assert all("contact" not in m.headers for m in sent)
            assert sent[1].cseq.number == sent[0].cseq.number + 1
            assert "authorization" in sent[1].headers
            assert desk.registrations == []  # asking registers nothing
        [binding] = bindings
        assert not binding.ours
        assert binding.contact == phone.registrations[0].bindings[0].contact
        assert len(await kamailio.contacts("bob")) == 1


async def test_query_of_an_address_of_record_without_bindings_is_an_empty_list(
    kamailio: Kamailio,
) -> None:
    async with traced_agent(
        "carol",
        domain=kamailio.domain,
        credentials=[Credentials("carol", kamailio.users["carol"])],
    ) as (carol, _):
        assert await asyncio.wait_for(carol.registered_bindings(kamailio.uri()), TIMEOUT) == []
        assert await kamailio.contacts("carol") == []
