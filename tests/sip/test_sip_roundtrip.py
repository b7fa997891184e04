"""serialize∘parse is the identity on generated URIs, header fields and messages."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from voip.sip import (
    CSeq,
    NameAddress,
    Request,
    Response,
    SipUri,
    TelUri,
    Via,
    make_response,
    new_branch,
    new_call_id,
    new_tag,
    parse_message,
    parse_name_addr,
    parse_uri,
    parse_via,
)

TOKEN_CHARS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-.!%*_+`'~"
tokens = st.text(TOKEN_CHARS, min_size=1, max_size=12)
lower_tokens = st.text("abcdefghijklmnopqrstuvwxyz0123456789-.", min_size=1, max_size=10)
label = st.from_regex(r"[a-z0-9]([a-z0-9-]{0,8}[a-z0-9])?", fullmatch=True)
hostnames = st.lists(label, min_size=1, max_size=4).map(".".join)
ipv4 = st.tuples(*[st.integers(0, 255)] * 4).map(lambda t: ".".join(map(str, t)))
ipv6 = st.ip_addresses(v=6).map(lambda a: f"[{a}]")
hosts = st.one_of(hostnames, ipv4, ipv6)
ports = st.none() | st.integers(1, 65535)
# Any text at all in the escaped parts: user, password, parameter values, header values.
free_text = st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=12)
uri_params = st.dictionaries(lower_tokens, st.none() | free_text, max_size=3)

sip_uris = st.builds(
    SipUri,
    host=hosts,
    user=st.none() | free_text,
    password=st.none(),
    port=ports,
    params=uri_params,
    headers=st.lists(st.tuples(tokens, free_text), max_size=2).map(tuple),
    scheme=st.sampled_from(["sip", "sips"]),
)
tel_uris = st.builds(
    TelUri,
    number=st.from_regex(r"\+?[0-9]{1,15}", fullmatch=True),
    params=st.dictionaries(lower_tokens, st.none() | lower_tokens, max_size=2),
)
header_params = st.dictionaries(lower_tokens, st.none() | tokens | free_text, max_size=3)


@given(sip_uris)
def test_sip_uri_round_trips(uri: SipUri) -> None:
    text = str(uri)
    assert parse_uri(text) == uri
    assert str(parse_uri(text)) == text


@given(tel_uris)
def test_tel_uri_round_trips(uri: TelUri) -> None:
    assert parse_uri(str(uri)) == uri


@given(
    sip_uris, st.none() | free_text.filter(lambda t: "\r" not in t and "\n" not in t), header_params
)
def test_name_addr_round_trips(
    uri: SipUri, display: str | None, params: dict[str, str | None]
) -> None:
    value = NameAddress(uri, display, params)
    assert parse_name_addr(str(value)) == value


@given(
    st.sampled_from(["UDP", "TCP", "TLS", "SCTP", "WS"]),
    hosts,
    ports,
    st.dictionaries(
        lower_tokens.filter(lambda n: n not in ("rport", "ttl")), st.none() | tokens, max_size=3
    ),
)
def test_via_round_trips(
    transport: str, host: str, port: int | None, params: dict[str, str | None]
) -> None:
    params = {k: v for k, v in params.items() if not (k in ("branch", "received") and v is None)}
    via = Via(transport, host, port, {"branch": new_branch(), **params})
    assert parse_via(str(via)) == via


methods = st.sampled_from(["INVITE", "ACK", "BYE", "CANCEL", "OPTIONS", "REGISTER", "INFO"])
bodies = st.binary(max_size=200)
extra_headers = st.lists(
    st.tuples(
        st.from_regex(r"X-[A-Za-z0-9-]{1,10}", fullmatch=True),
        st.text("abcdefghijklmnopqrstuvwxyz0123456789 ;=,<>:@./", min_size=1, max_size=30)
        .map(str.strip)
        .filter(bool),
    ),
    max_size=4,
)


def _request(method: str, uri: SipUri, extra: list[tuple[str, str]], body: bytes) -> Request:
    request = Request(method, uri)
    request.via = [Via("UDP", "192.0.2.1", 5060, {"branch": new_branch(), "rport": None})]
    request.max_forwards = 70
    request.from_ = NameAddress(SipUri("example.com", "alice"), "Alice", {"tag": new_tag()})
    request.to = NameAddress(uri)
    request.call_id = new_call_id("192.0.2.1")
    request.cseq = CSeq(1, method)
    for name, value in extra:
        request.headers.add(name, value)
    request.body = body
    return request


@given(methods, sip_uris, extra_headers, bodies)
def test_request_bytes_round_trip(
    method: str, uri: SipUri, extra: list[tuple[str, str]], body: bytes
) -> None:
    data = bytes(_request(method, uri, extra, body))
    parsed = parse_message(data)
    assert bytes(parsed) == data
    assert isinstance(parsed, Request)
    assert parsed.uri == uri
    assert parsed.body == body
    assert [n for n, _ in parsed.headers][-len(extra) - 1 :] == [n for n, _ in extra] + [
        "Content-Length"
    ] or not extra


@given(
    st.integers(100, 699), st.text(st.characters(blacklist_categories=("Cs", "Cc")), max_size=20)
)
def test_response_bytes_round_trip(status: int, phrase: str) -> None:
    request = _request("INVITE", SipUri("example.com", "bob"), [], b"")
    response = make_response(request, status, phrase.strip())
    data = bytes(response)
    parsed = parse_message(data)
    assert isinstance(parsed, Response)
    assert bytes(parsed) == data
    assert (parsed.status, parsed.reason_phrase) == (status, phrase.strip())


def test_response_copies_transaction_identity_and_adds_to_tag() -> None:
    request = _request("INVITE", SipUri("example.com", "bob"), [], b"")
    request.headers.add("Record-Route", "<sip:p1.example.com;lr>")
    response = make_response(request, 180)
    assert response.headers.get_all("Via") == request.headers.get_all("Via")
    assert response.from_ == request.from_
    assert response.call_id == request.call_id
    assert response.cseq == request.cseq
    assert response.to.tag is not None and response.to.uri == request.to.uri
    assert response.headers.get("Record-Route") == "<sip:p1.example.com;lr>"
    assert response.content_length == 0


def test_100_trying_gets_no_to_tag_and_copies_timestamp() -> None:
    request = _request("INVITE", SipUri("example.com", "bob"), [], b"")
    request.headers.add("Timestamp", "54")
    response = make_response(request, 100)
    assert response.to.tag is None
    assert response.headers.get("Timestamp") == "54"


def test_identifiers_are_random_and_well_formed() -> None:
    branches = {new_branch() for _ in range(100)}
    assert len(branches) == 100 and all(b.startswith("z9hG4bK") for b in branches)
    assert len({new_tag() for _ in range(100)}) == 100
    assert new_call_id("host.example").endswith("@host.example")


def test_error_response_to_a_malformed_request_copies_its_fields() -> None:
    data = (
        b"OPTIONS sip:b@example.com SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\n"
        b'To: "unterminated <sip:b@example.com>\r\nFrom: <sip:a@example.com>;tag=1\r\n'
        b"Call-ID: x\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
    )
    request = parse_message(data)
    assert isinstance(request, Request)
    response = make_response(request, 400, "To: unterminated quoted string")
    assert response.headers.get("To") == '"unterminated <sip:b@example.com>'
    assert response.status == 400 and response.call_id == "x"
