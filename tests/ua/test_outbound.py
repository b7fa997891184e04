"""RFC 5626 (SIP Outbound) on the agent's side, the parts that need no registrar: the
instance-id (§4.1), what a 2xx must show for outbound to be in use (§4.2.1), the
Flow-Timer (§4.4.1), the back-off of flow recovery (§4.5), and which agents use it."""

from __future__ import annotations

import uuid

import pytest

from voip.outbound import FlowRecovery, flow_timer, instance_urn, outbound_in_use
from voip.sip import Response, parse_message
from voip.transport.dns import Target
from voip.useragent import UserAgent


def ok_to_register(*fields: str) -> Response:
    text = (
        "SIP/2.0 200 OK\r\n"
        "Via: SIP/2.0/TCP 127.0.0.1:5070;branch=z9hG4bK1\r\n"
        "From: <sip:alice@127.0.0.1>;tag=1\r\nTo: <sip:alice@127.0.0.1>;tag=2\r\n"
        "Call-ID: c\r\nCSeq: 2 REGISTER\r\n" + "".join(f + "\r\n" for f in fields) + "\r\n"
    )
    response = parse_message(text.encode())
    assert isinstance(response, Response)
    return response


def test_the_instance_id_is_a_urn_uuid_from_what_the_user_gives() -> None:
    given = uuid.UUID("6ba7b810-9dad-11d1-80b4-00c04fd430c8")
    urn = f"urn:uuid:{given}"
    assert instance_urn(given) == urn
    assert instance_urn(str(given).upper()) == urn
    assert instance_urn(f"URN:UUID:{given}") == urn
    with pytest.raises(ValueError, match="hexadecimal"):
        instance_urn("not-a-uuid")


async def test_every_agent_has_an_instance_id_of_its_own() -> None:
    first, second = UserAgent("a"), UserAgent("b")
    assert first.instance_id.startswith("urn:uuid:")
    uuid.UUID(first.instance_id.removeprefix("urn:uuid:"))
    assert first.instance_id != second.instance_id


def test_outbound_is_in_use_only_when_the_2xx_requires_it() -> None:
    assert outbound_in_use(ok_to_register("Require: outbound", "Supported: outbound"))
    assert outbound_in_use(ok_to_register("Require: path, Outbound"))
    assert not outbound_in_use(ok_to_register("Supported: outbound"))
    assert not outbound_in_use(ok_to_register())


def test_the_flow_timer_is_a_positive_number_of_seconds_or_nothing() -> None:
    assert flow_timer(ok_to_register("Flow-Timer: 25")) == 25.0
    for field in ("Flow-Timer: 0", "Flow-Timer: soon", "Flow-Timer: -3"):
        assert flow_timer(ok_to_register(field)) is None
    assert flow_timer(ok_to_register()) is None


def test_the_recovery_wait_doubles_with_each_failure_up_to_max_time() -> None:
    recovery = FlowRecovery()  # 30 s base when every flow failed, 1800 s at most
    assert [recovery.wait_time(n) for n in range(7)] == [30, 60, 120, 240, 480, 960, 1800]
    assert recovery.wait_time(10_000) == 1800


def test_the_recovery_waits_half_to_all_of_the_wait_time() -> None:
    recovery = FlowRecovery(base_time=4.0)
    delays = [recovery.delay(1) for _ in range(1000)]
    assert all(4.0 <= delay <= 8.0 for delay in delays)
    assert min(delays) < 4.8 and max(delays) > 7.2  # spread over the range, not one value


@pytest.mark.parametrize(
    ("transport", "listens_on", "outbound", "expected"),
    [
        ("tcp", None, None, True),  # client-only over TCP
        ("tls", None, None, True),
        ("ws", None, None, True),
        ("ws", "ws", None, True),  # a WebSocket client is reached over its connection only
        ("tcp", "tcp", None, False),  # a TCP listener the registrar can reach
        ("udp", "udp", None, False),
        ("udp", "udp", True, True),
        ("tcp", None, False, False),
    ],
)
async def test_which_registrations_use_outbound(
    transport: str, listens_on: str | None, outbound: bool | None, expected: bool
) -> None:
    async with UserAgent("alice", outbound=outbound) as ua:
        if listens_on is not None:
            await ua.listen(listens_on, "127.0.0.1", 0)
        assert ua.uses_outbound(Target(transport, "127.0.0.1", 5060, "127.0.0.1")) is expected
