"""Digest authentication (RFC 3261 §22, RFC 7616, RFC 8760): vectors, client, server.

The response values below are printed in the RFCs: RFC 2069 §2.4 (no qop), RFC 2617
§3.5 (qop=auth, MD5) and RFC 7616 §3.9.1 (qop=auth, MD5 and SHA-256; password
"Circle of Life" with a lower-case "of", errata 4495). Those examples are HTTP, so the
method is GET and the digest-uri "/dir/index.html". The RFC 7616 §3.9.2 SHA-512-256
example is not used: its printed values do not compute (errata 4897 reports it), so
SHA-512-256 is checked against the FIPS 180-4 example for "abc" instead.
"""

from __future__ import annotations

import hashlib
from typing import NamedTuple

import pytest
from hypothesis import given
from hypothesis import strategies as st

from voip.sip import AuthField, Request, Response, make_response, parse_message
from voip.sip.auth import (
    ALGORITHMS,
    AuthenticationFailed,
    Credentials,
    DigestClient,
    DigestServer,
    Outcome,
    Verdict,
    request_digest,
)
from voip.sip.fields import parse_auth

MUFASA = "Mufasa"
RFC2617_REALM = "testrealm@host.com"
RFC2617_NONCE = "dcd98b7102dd2f0e8b11d0f600bfb0c093"
RFC2617_OPAQUE = "5ccc069c403ebaf9f0171e9517f40e41"
RFC7616_REALM = "http-auth@example.org"
RFC7616_NONCE = "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v"
RFC7616_CNONCE = "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ"
HTTP_URI = "/dir/index.html"
RFC2069_MD5 = "1949323746fe6a43ef61f9606e7febea"
RFC2617_MD5 = "6629fae49393a05397450978507c4ef1"
RFC2617_AUTHORIZATION = (
    f'Authorization: Digest username="{MUFASA}", realm="{RFC2617_REALM}", '
    f'nonce="{RFC2617_NONCE}", uri="{HTTP_URI}", qop=auth, nc=00000001, '
    f'cnonce="0a4f113b", response="{RFC2617_MD5}", opaque="{RFC2617_OPAQUE}"\r\n'
)

REALM = "127.0.0.1"
BOB = "sip:bob@127.0.0.1"
ALICE = Credentials("alice", "wonderland")
USERS = {"alice": "wonderland", "Jäsøn Doe": "Secret"}
SDP = b"v=0\r\no=alice 1 1 IN IP4 192.0.2.7\r\ns=-\r\nc=IN IP4 192.0.2.7\r\nt=0 0\r\n"
ALL_ALGORITHMS = [algorithm.name for algorithm in ALGORITHMS.values()]
LIFETIME = 300.0


def request(
    method: str = "REGISTER",
    *,
    body: bytes = b"",
    cseq: int = 1,
    call_id: str = "call-1@192.0.2.7",
    extra: str = "",
) -> Request:
    content = "Content-Type: application/sdp\r\n" if body else ""
    text = (
        f"{method} {BOB} SIP/2.0\r\n"
        "Via: SIP/2.0/UDP 192.0.2.7:5060;branch=z9hG4bKfirst;rport\r\n"
        "Max-Forwards: 70\r\n"
        f"To: <{BOB}>\r\n"
        "From: <sip:alice@127.0.0.1>;tag=a1\r\n"
        f"Call-ID: {call_id}\r\n"
        f"CSeq: {cseq} {method}\r\n"
        f"{extra}{content}"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    message = parse_message(text.encode() + body)
    assert isinstance(message, Request)
    return message


def challenge(*values: str) -> Response:
    """A 401 to ``request()`` carrying the given WWW-Authenticate values."""
    return make_response(request(), 401, headers=[("WWW-Authenticate", v) for v in values])


def server(
    *,
    proxy: bool = False,
    algorithms: tuple[str, ...] = ("SHA-256", "MD5"),
    qop: tuple[str, ...] = ("auth",),
    max_nonces: int = 4096,
) -> DigestServer:
    return DigestServer(
        REALM,
        USERS.get,
        proxy=proxy,
        algorithms=algorithms,
        qop=qop,
        nonce_lifetime=LIFETIME,
        max_nonces=max_nonces,
    )


def fixed_cnonce() -> str:
    return "0a4f113b"


def credentials_of(message: Request, name: str = "Authorization") -> list[AuthField]:
    return [parse_auth(value) for value in message.headers.get_all(name)]


def answer(*values: str) -> AuthField:
    """The one credentials value a client sends in answer to these WWW-Authenticate values."""
    retry = DigestClient(ALICE, cnonce=fixed_cnonce).authorize(request(), challenge(*values))
    (field,) = credentials_of(retry)
    return field


def authorized_request(
    srv: DigestServer, client: DigestClient, first: Request, now: float = 0.0
) -> Request:
    """``first`` after one challenge from ``srv`` and the client's answer."""
    return client.authorize(first, srv.reject(first, srv.verify(first, now), now))


def sip_digest(
    algorithm: str = "md5",
    *,
    method: str = "REGISTER",
    nonce: str = "n",
    qop: str = "auth",
    body: bytes = b"",
    username: str = "alice",
    password: str = "wonderland",
) -> str:
    """The response for a request to BOB in REALM, nc 1 and cnonce ``fixed_cnonce()``."""
    return request_digest(
        ALGORITHMS[algorithm],
        username=username,
        realm=REALM,
        password=password,
        method=method,
        uri=BOB,
        nonce=nonce,
        qop=qop,
        nc="00000001",
        cnonce=fixed_cnonce(),
        body=body,
    )


# --- the digest computation: RFC vectors ------------------------------------------------


class Example(NamedTuple):
    """An RFC's printed example: user Mufasa, method GET, digest-uri /dir/index.html."""

    algorithm: str
    password: str
    realm: str
    nonce: str
    qop: str | None
    cnonce: str
    printed: str


RFC_EXAMPLES = {
    "rfc2069-2.4": Example(
        "md5", "CircleOfLife", RFC2617_REALM, RFC2617_NONCE, None, "", RFC2069_MD5
    ),
    "rfc2617-3.5": Example(
        "md5", "Circle Of Life", RFC2617_REALM, RFC2617_NONCE, "auth", "0a4f113b", RFC2617_MD5
    ),
    "rfc7616-3.9.1-md5": Example(
        "md5", "Circle of Life", RFC7616_REALM, RFC7616_NONCE, "auth", RFC7616_CNONCE,
        "8ca523f5e9506fed4657c9700eebdbec",
    ),
    "rfc7616-3.9.1-sha256": Example(
        "sha-256", "Circle of Life", RFC7616_REALM, RFC7616_NONCE, "auth", RFC7616_CNONCE,
        "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1",
    ),
}  # fmt: skip


@pytest.mark.parametrize("example", RFC_EXAMPLES.values(), ids=RFC_EXAMPLES.keys())
def test_rfc_example_response_computes(example: Example) -> None:
    response = request_digest(
        ALGORITHMS[example.algorithm],
        username=MUFASA,
        realm=example.realm,
        password=example.password,
        method="GET",
        uri=HTTP_URI,
        nonce=example.nonce,
        qop=example.qop,
        nc="00000001",
        cnonce=example.cnonce,
    )
    assert response == example.printed


def test_sha512_256_is_the_fips_180_4_hash_not_truncated_sha512() -> None:
    # FIPS 180-4 example (NIST CSRC "SHA512_256.pdf"): SHA-512/256("abc").
    digest = ALGORITHMS["sha-512-256"].digest(b"abc")
    assert digest == "53048e2681941ef99b2e29b76b4c7dabe4c2d0c634fc6d46e0e2f13107e7af23"
    assert digest != hashlib.sha512(b"abc").hexdigest()[:64]


def test_sess_ha1_binds_the_nonce_and_cnonce() -> None:
    # RFC 7616 §3.4.2: A1 = H(user:realm:password):nonce:cnonce for the -sess variants.
    md5 = ALGORITHMS["md5-sess"]
    ha1 = md5.h(md5.h("alice", REALM, "wonderland"), "n", fixed_cnonce())
    ha2 = md5.h("INVITE", BOB)
    expected = md5.h(ha1, "n", "00000001", fixed_cnonce(), "auth", ha2)
    assert sip_digest("md5-sess", method="INVITE") == expected


def test_auth_int_ha2_hashes_the_body() -> None:
    # RFC 7616 §3.4.3: A2 = Method:request-uri:H(entity-body).
    sha = ALGORITHMS["sha-256"]
    ha2 = sha.h("INVITE", BOB, sha.digest(SDP))
    ha1 = sha.h("alice", REALM, "wonderland")
    expected = sha.h(ha1, "n", "00000001", fixed_cnonce(), "auth-int", ha2)
    assert sip_digest("sha-256", method="INVITE", qop="auth-int", body=SDP) == expected


def test_server_takes_the_rfc2617_credentials_as_right_but_stale() -> None:
    # The digest computes (right password) but the nonce is not one this server issued:
    # RFC 7616 §3.3 asks for stale=true then, so the client retries without re-prompting.
    srv = DigestServer(RFC2617_REALM, {MUFASA: "Circle Of Life"}.get, algorithms=["MD5"])
    assert srv.verify(request("GET", extra=RFC2617_AUTHORIZATION), 0.0).outcome is Outcome.STALE


def test_server_rejects_the_rfc2617_credentials_with_another_password() -> None:
    srv = DigestServer(RFC2617_REALM, {MUFASA: "Circle of Life"}.get, algorithms=["MD5"])
    verdict = srv.verify(request("GET", extra=RFC2617_AUTHORIZATION), 0.0)
    assert (verdict.outcome, verdict.status) == (Outcome.REJECTED, 401)


# --- client and server agree -------------------------------------------------------------


# Every algorithm with every qop, but -sess without qop, which cannot be answered
# (RFC 2617 §3.2.2) and which the server refuses to offer (tested below).
COMBINATIONS = [
    pytest.param(algorithm, qop, id=f"{algorithm}-{'+'.join(qop) or 'no-qop'}")
    for algorithm in ALL_ALGORITHMS
    for qop in [("auth",), ("auth-int",), ()]
    if qop or not algorithm.endswith("-sess")
]


@pytest.mark.parametrize("proxy", [False, True], ids=["401", "407"])
@pytest.mark.parametrize(("algorithm", "qop"), COMBINATIONS)
def test_client_answer_verifies(algorithm: str, qop: tuple[str, ...], proxy: bool) -> None:
    srv = server(algorithms=(algorithm,), qop=qop, proxy=proxy)
    retry = authorized_request(srv, DigestClient(ALICE), request("INVITE", body=SDP))
    assert srv.verify(retry, 1.0) == Verdict(Outcome.AUTHORIZED, None, "authorized", "alice")


def test_server_refuses_to_offer_sess_without_qop() -> None:
    with pytest.raises(ValueError, match="-sess"):
        server(algorithms=("MD5-sess",), qop=())


def test_server_refuses_an_unknown_algorithm() -> None:
    with pytest.raises(ValueError, match="SHA3"):
        server(algorithms=("SHA3-256",))


# --- the client: building the retry (RFC 3261 §22.2, §8.1.3.5) -------------------------


def test_retry_increments_cseq() -> None:
    retry = DigestClient(ALICE).authorize(request(cseq=7), server().challenge(request(), 0.0))
    assert retry.cseq.number == 8
    assert retry.cseq.method == "REGISTER"


def test_retry_takes_the_cseq_a_dialog_gives() -> None:
    retry = DigestClient(ALICE).authorize(
        request("BYE", cseq=3), server().challenge(request(), 0.0), cseq=12
    )
    assert retry.cseq.number == 12


def test_retry_is_a_new_transaction_with_a_new_branch() -> None:
    retry = DigestClient(ALICE).authorize(request(), server().challenge(request(), 0.0))
    top = retry.via[0]
    assert top.branch is not None and top.branch.startswith("z9hG4bK")
    assert top.branch != "z9hG4bKfirst"
    assert "rport" in top.params


def test_retry_keeps_call_id_tags_and_body() -> None:
    first = request("INVITE", body=SDP)
    retry = DigestClient(ALICE).authorize(first, server().challenge(first, 0.0))
    assert (retry.call_id, retry.from_.tag, retry.body) == (first.call_id, "a1", SDP)


def test_retry_leaves_the_original_request_unchanged() -> None:
    first = request()
    DigestClient(ALICE).authorize(first, server().challenge(first, 0.0))
    assert "Authorization" not in first.headers
    assert first.cseq.number == 1


def test_401_is_answered_in_authorization() -> None:
    retry = DigestClient(ALICE).authorize(request(), server().challenge(request(), 0.0))
    assert len(credentials_of(retry, "Authorization")) == 1
    assert "Proxy-Authorization" not in retry.headers


def test_407_is_answered_in_proxy_authorization() -> None:
    first = request("INVITE")
    retry = DigestClient(ALICE).authorize(first, server(proxy=True).challenge(first, 0.0))
    assert len(credentials_of(retry, "Proxy-Authorization")) == 1
    assert "Authorization" not in retry.headers


def test_credentials_quote_what_rfc7616_quotes() -> None:
    value = f'Digest realm="{REALM}", nonce="abc", algorithm=MD5, qop="auth", opaque="op"'
    retry = DigestClient(ALICE, cnonce=fixed_cnonce).authorize(request(), challenge(value))
    text = retry.headers.get("Authorization") or ""
    for quoted in ('username="alice"', f'realm="{REALM}"', 'nonce="abc"', 'opaque="op"'):
        assert quoted in text
    for bare in ("algorithm=MD5", "qop=auth", "nc=00000001", 'cnonce="0a4f113b"'):
        assert bare in text
    assert f'uri="{BOB}"' in text


def test_response_is_the_request_digest_of_the_request() -> None:
    field = answer(f'Digest realm="{REALM}", nonce="abc", qop="auth"')
    assert field.params["response"] == sip_digest(nonce="abc")


def test_opaque_is_returned_unchanged() -> None:
    assert (
        answer(f'Digest realm="{REALM}", nonce="abc", qop="auth", opaque="x/y+z=="').params[
            "opaque"
        ]
        == "x/y+z=="
    )


def test_algorithm_is_echoed_as_written() -> None:
    value = f'Digest realm="{REALM}", nonce="abc", qop="auth", algorithm=sha-256'
    field = answer(value)
    assert field.params["algorithm"] == "sha-256"
    assert len(field.params["response"]) == 64


def test_absent_algorithm_means_md5_and_stays_absent() -> None:
    value = f'Digest realm="{REALM}", nonce="abc", qop="auth"'
    field = answer(value)
    assert "algorithm" not in field.params
    assert len(field.params["response"]) == 32


# --- the client: choosing among challenges (RFC 8760 §2.4, RFC 7616 §3.7) ----------------


def test_strongest_supported_algorithm_is_chosen() -> None:
    values = [
        f'Digest realm="{REALM}", nonce="n", algorithm={name}, qop="auth"'
        for name in ("MD5", "SHA-512-256", "SHA-256")
    ]
    assert answer(*values).params["algorithm"] == "SHA-512-256"


def test_topmost_challenge_wins_among_equally_strong_ones() -> None:
    values = [
        f'Digest realm="{REALM}", nonce="n", algorithm=SHA-256-sess, qop="auth"',
        f'Digest realm="{REALM}", nonce="n", algorithm=SHA-256, qop="auth"',
    ]
    assert answer(*values).params["algorithm"] == "SHA-256-sess"


def test_unsupported_schemes_and_algorithms_are_ignored() -> None:
    values = [
        f'Basic realm="{REALM}"',
        f'Digest realm="{REALM}", nonce="n", algorithm=SHA3-256, qop="auth"',
        f'Digest realm="{REALM}", nonce="n", algorithm=AKAv1-MD5, qop="auth"',
        f'Digest realm="{REALM}", nonce="n", algorithm=MD5, qop="auth"',
    ]
    assert answer(*values).params["algorithm"] == "MD5"


def test_a_malformed_challenge_does_not_hide_a_good_one() -> None:
    values = ['Digest realm="unterminated', f'Digest realm="{REALM}", nonce="n", qop="auth"']
    assert answer(*values).params["realm"] == REALM


def test_no_answerable_challenge_fails_with_the_offer_named() -> None:
    value = f'Digest realm="{REALM}", nonce="n", algorithm=SHA3-256'
    with pytest.raises(AuthenticationFailed, match="SHA3-256"):
        DigestClient(ALICE).authorize(request(), challenge(value))


def test_qop_auth_is_preferred_over_auth_int() -> None:
    assert answer(f'Digest realm="{REALM}", nonce="n", qop="auth-int,auth"').params["qop"] == "auth"


def test_qop_auth_int_alone_is_answered() -> None:
    assert answer(f'Digest realm="{REALM}", nonce="n", qop="auth-int"').params["qop"] == "auth-int"


def test_unknown_qop_alone_is_not_answerable() -> None:
    with pytest.raises(AuthenticationFailed):
        DigestClient(ALICE).authorize(
            request(), challenge(f'Digest realm="{REALM}", nonce="n", qop="auth-conf"')
        )


def test_challenge_without_qop_is_answered_rfc2069_style() -> None:
    value = f'Digest realm="{REALM}", nonce="n"'
    field = answer(value)
    assert not {"qop", "nc", "cnonce"} & field.params.keys()


def test_sess_without_qop_is_not_answerable() -> None:
    # The -sess HA1 needs a cnonce, which travels only with qop (RFC 2617 §3.2.2).
    value = f'Digest realm="{REALM}", nonce="n", algorithm=MD5-sess'
    with pytest.raises(AuthenticationFailed):
        DigestClient(ALICE).authorize(request(), challenge(value))


def test_each_challenged_realm_is_answered() -> None:
    # A forking proxy gathers every branch's challenges into one response (RFC 3261 §16.7).
    response = make_response(
        request(),
        407,
        headers=[
            ("Proxy-Authenticate", 'Digest realm="proxy.example", nonce="p", qop="auth"'),
            ("WWW-Authenticate", 'Digest realm="bob.example", nonce="b", qop="auth"'),
        ],
    )
    retry = DigestClient(Credentials("alice", "pw")).authorize(request(), response)
    assert [f.params["realm"] for f in credentials_of(retry, "Proxy-Authorization")] == [
        "proxy.example"
    ]
    assert [f.params["realm"] for f in credentials_of(retry)] == ["bob.example"]


def test_two_proxy_challenges_of_different_realms_in_one_response_are_both_answered() -> None:
    # RFC 3261 §22.3: a 407 may carry a Proxy-Authenticate per proxy (forked branches
    # through different proxies); the retry carries a Proxy-Authorization for each realm.
    response = make_response(
        request("INVITE"),
        407,
        headers=[
            ("Proxy-Authenticate", 'Digest realm="atlanta.example", nonce="a", qop="auth"'),
            ("Proxy-Authenticate", 'Digest realm="biloxi.example", nonce="b", qop="auth"'),
        ],
    )
    retry = DigestClient(Credentials("alice", "pw")).authorize(request("INVITE"), response)
    answered = {
        f.params["realm"]: f.params["nonce"] for f in credentials_of(retry, "Proxy-Authorization")
    }
    assert answered == {"atlanta.example": "a", "biloxi.example": "b"}
    assert credentials_of(retry) == []


def test_credentials_for_the_realm_win_over_any_realm() -> None:
    client = DigestClient([Credentials("any", "pw"), Credentials("alice", "pw", REALM)])
    (field,) = credentials_of(client.authorize(request(), server().challenge(request(), 0.0)))
    assert field.params["username"] == "alice"


def test_no_credentials_for_the_realm_fails() -> None:
    client = DigestClient(Credentials("alice", "pw", "elsewhere.example"))
    with pytest.raises(AuthenticationFailed, match=REALM):
        client.authorize(request(), server().challenge(request(), 0.0))


def test_ack_and_cancel_are_not_resubmitted() -> None:
    with pytest.raises(AuthenticationFailed, match="CANCEL"):
        DigestClient(ALICE).authorize(request("CANCEL"), server().challenge(request(), 0.0))


def test_a_response_that_is_not_a_challenge_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="403"):
        DigestClient(ALICE).authorize(request(), make_response(request(), 403))


def test_userhash_sends_the_hashed_username() -> None:
    # RFC 7616 §3.4.4: username = H(username:realm); A1 still uses the username itself.
    value = f'Digest realm="{REALM}", nonce="n", qop="auth", algorithm=SHA-256, userhash=true'
    client = DigestClient(ALICE, cnonce=fixed_cnonce)
    (field,) = credentials_of(client.authorize(request(), challenge(value)))
    sha = ALGORITHMS["sha-256"]
    assert field.params["username"] == sha.h("alice", REALM)
    assert field.params["userhash"] == "true"
    assert field.params["response"] == sip_digest("sha-256")


def test_non_ascii_username_travels_as_utf8_and_verifies() -> None:
    # SIP's quoted-string admits UTF-8 (RFC 3261 §25.1), so username* is not needed.
    srv = server()
    retry = authorized_request(srv, DigestClient(Credentials("Jäsøn Doe", "Secret")), request())
    wire = parse_message(bytes(retry))
    assert isinstance(wire, Request)
    assert srv.verify(wire, 0.0).username == "Jäsøn Doe"


# --- the client: giving up, stale, nonce counting -----------------------------------------


def test_wrong_password_gives_up_after_one_answer() -> None:
    srv = server()
    client = DigestClient(Credentials("alice", "guess"))
    retry = authorized_request(srv, client, request())
    verdict = srv.verify(retry, 0.0)
    assert verdict.outcome is Outcome.REJECTED
    with pytest.raises(AuthenticationFailed, match="wrong username or password"):
        client.authorize(retry, srv.reject(retry, verdict, 0.0))


def test_stale_nonce_is_answered_again() -> None:
    srv = server()
    client = DigestClient(ALICE)
    assert srv.verify(authorized_request(srv, client, request()), 0.0).authorized
    refresh = request(cseq=3)
    client.preauthorize(refresh)
    later = LIFETIME + 60.0
    verdict = srv.verify(refresh, later)
    assert verdict.outcome is Outcome.STALE
    retry = client.authorize(refresh, srv.reject(refresh, verdict, later))
    assert srv.verify(retry, later).authorized


def test_stale_challenge_says_stale_true() -> None:
    response = server().reject(request(), Verdict(Outcome.STALE, 401, "nonce expired"), 0.0)
    assert all(c.params["stale"] == "true" for c in response.www_authenticate)


def test_stale_twice_in_a_row_gives_up() -> None:
    stale = f'Digest realm="{REALM}", nonce="s1", qop="auth", stale=true'
    client = DigestClient(ALICE)
    retry = client.authorize(request(), challenge(f'Digest realm="{REALM}", nonce="n", qop="auth"'))
    retry = client.authorize(retry, challenge(stale))
    with pytest.raises(AuthenticationFailed, match="stale again"):
        client.authorize(retry, challenge(stale.replace("s1", "s2")))


def test_refused_preemptive_credentials_get_one_fresh_answer() -> None:
    client = DigestClient(ALICE)
    client.authorize(request(), challenge(f'Digest realm="{REALM}", nonce="n1", qop="auth"'))
    refresh = request(cseq=5)
    client.preauthorize(refresh)
    fresh = challenge(f'Digest realm="{REALM}", nonce="n2", qop="auth"')
    retry = client.authorize(refresh, fresh)
    with pytest.raises(AuthenticationFailed, match="wrong username or password"):
        client.authorize(retry, fresh)


def test_nonce_count_increments_per_request_with_the_same_nonce() -> None:
    client = DigestClient(ALICE)
    client.authorize(request(), server().challenge(request(), 0.0))
    counts = []
    for cseq in (3, 4):
        later = request(cseq=cseq)
        client.preauthorize(later)
        counts.append(credentials_of(later)[0].params["nc"])
    assert counts == ["00000002", "00000003"]


def test_a_new_nonce_restarts_the_count_with_a_new_cnonce() -> None:
    client = DigestClient(ALICE)
    first = client.authorize(
        request(), challenge(f'Digest realm="{REALM}", nonce="n1", qop="auth"')
    )
    second = client.authorize(
        first, challenge(f'Digest realm="{REALM}", nonce="n2", qop="auth", stale=true')
    )
    (old,), (new,) = credentials_of(first), credentials_of(second)
    assert new.params["nc"] == "00000001"
    assert new.params["cnonce"] != old.params["cnonce"]


def test_preauthorized_in_dialog_request_verifies() -> None:
    srv = server(proxy=True)
    client = DigestClient(ALICE)
    assert srv.verify(authorized_request(srv, client, request("INVITE")), 0.0).authorized
    bye = request("BYE", cseq=2)
    client.preauthorize(bye)
    assert srv.verify(bye, 10.0).authorized


def test_preauthorize_replaces_credentials_for_the_same_realm() -> None:
    client = DigestClient(ALICE)
    retry = client.authorize(request(), server().challenge(request(), 0.0))
    client.preauthorize(retry)
    assert [f.params["nc"] for f in credentials_of(retry)] == ["00000002"]


def test_preauthorize_can_be_kept_to_named_realms() -> None:
    client = DigestClient(ALICE)
    client.authorize(request(), server().challenge(request(), 0.0))
    later = request(cseq=3)
    client.preauthorize(later, realms={"outbound.example"})
    assert "Authorization" not in later.headers


def test_forgotten_realms_are_not_preauthorized() -> None:
    client = DigestClient(ALICE)
    client.authorize(request(), server().challenge(request(), 0.0))
    client.forget(REALM)
    later = request(cseq=3)
    client.preauthorize(later)
    assert "Authorization" not in later.headers


def test_credentials_already_carried_are_renewed_in_the_retry() -> None:
    # The proxy's realm answered first, then the registrar's: the proxy must not see its
    # nonce count again (RFC 7616 §3.4), so the retry carries a fresh one for it too.
    proxy, registrar = server(proxy=True), DigestServer("registrar.example", USERS.get)
    client = DigestClient(ALICE)
    through_proxy = authorized_request(proxy, client, request("INVITE"))
    assert proxy.verify(through_proxy, 0.0).authorized
    both = authorized_request(registrar, client, through_proxy)
    assert proxy.verify(both, 0.0).authorized
    assert registrar.verify(both, 0.0).authorized


def test_credentials_of_other_realms_are_kept() -> None:
    extra = (
        'Authorization: Digest username="x", realm="other", nonce="o", uri="u", response="r"\r\n'
    )
    retry = DigestClient(ALICE).authorize(request(extra=extra), server().challenge(request(), 0.0))
    assert sorted(f.params["realm"] for f in credentials_of(retry)) == [REALM, "other"]


# --- the server: challenges (RFC 3261 §22.1, RFC 8760 §2.3) -------------------------------


def test_challenge_lists_algorithms_in_preference_order() -> None:
    response = server(algorithms=("SHA-512-256", "SHA-256", "MD5")).challenge(request(), 0.0)
    assert response.status == 401
    assert [c.params["algorithm"] for c in response.www_authenticate] == [
        "SHA-512-256",
        "SHA-256",
        "MD5",
    ]
    assert len({c.params["nonce"] for c in response.www_authenticate}) == 1


def test_challenge_quotes_qop_options() -> None:
    response = server(qop=("auth", "auth-int")).challenge(request(), 0.0)
    assert 'qop="auth,auth-int"' in (response.headers.get("WWW-Authenticate") or "")


def test_proxy_challenges_with_407_and_proxy_authenticate() -> None:
    response = server(proxy=True).challenge(request("INVITE"), 0.0)
    assert response.status == 407
    assert "WWW-Authenticate" not in response.headers
    assert response.proxy_authenticate[0].params["realm"] == REALM


def test_each_challenge_has_a_fresh_nonce() -> None:
    srv = server()
    nonces = {srv.challenge(request(), 0.0).www_authenticate[0].params["nonce"] for _ in range(3)}
    assert len(nonces) == 3


# --- the server: verdicts ----------------------------------------------------------------


def test_request_without_credentials_is_missing() -> None:
    verdict = server().verify(request(), 0.0)
    assert (verdict.outcome, verdict.status) == (Outcome.MISSING, 401)


def test_proxy_reads_proxy_authorization_only() -> None:
    srv = server()
    retry = authorized_request(srv, DigestClient(ALICE), request())
    assert server(proxy=True).verify(retry, 0.0).outcome is Outcome.MISSING


def test_credentials_for_another_realm_are_missing() -> None:
    extra = 'Authorization: Digest username="alice", realm="other", nonce="n", uri="u"\r\n'
    assert server().verify(request(extra=extra), 0.0).outcome is Outcome.MISSING


def test_wrong_password_is_rejected_and_challenged_afresh() -> None:
    srv = server()
    retry = authorized_request(srv, DigestClient(Credentials("alice", "guess")), request())
    verdict = srv.verify(retry, 0.0)
    assert (verdict.outcome, verdict.status) == (Outcome.REJECTED, 401)
    response = srv.reject(retry, verdict, 0.0)
    assert "stale" not in response.www_authenticate[0].params


def test_unknown_user_is_rejected() -> None:
    srv = server()
    retry = authorized_request(srv, DigestClient(Credentials("mallory", "x")), request())
    assert srv.verify(retry, 0.0).outcome is Outcome.REJECTED


def test_tampered_body_under_auth_int_is_rejected() -> None:
    srv = server(qop=("auth-int",))
    retry = authorized_request(srv, DigestClient(ALICE), request("INVITE", body=SDP))
    retry.body = SDP.replace(b"192.0.2.7", b"203.0.113.9")
    assert srv.verify(retry, 0.0).outcome is Outcome.REJECTED


def test_auth_int_without_a_body_verifies() -> None:
    srv = server(qop=("auth-int",))
    retry = authorized_request(srv, DigestClient(ALICE), request("OPTIONS"))
    assert srv.verify(retry, 0.0).authorized


def test_expired_nonce_is_stale() -> None:
    srv = server()
    retry = authorized_request(srv, DigestClient(ALICE), request())
    verdict = srv.verify(retry, LIFETIME + 1.0)
    assert (verdict.outcome, verdict.reason) == (Outcome.STALE, "nonce expired")


def test_a_nonce_answered_within_the_millisecond_it_was_issued_is_fresh() -> None:
    # the nonce's stamp is in milliseconds: rounded up, it lay in the future of an answer
    # that came back within half a millisecond (two agents in one process on loopback)
    srv = server()
    retry = authorized_request(srv, DigestClient(ALICE), request(), now=10.0006)
    assert srv.verify(retry, 10.0007).authorized


def test_nonce_of_another_secret_is_stale() -> None:
    retry = authorized_request(server(), DigestClient(ALICE), request())
    assert server().verify(retry, 0.0).outcome is Outcome.STALE


def test_replayed_nonce_count_is_stale() -> None:
    srv = server()
    retry = authorized_request(srv, DigestClient(ALICE), request())
    assert srv.verify(retry, 0.0).authorized
    assert srv.verify(retry, 1.0).outcome is Outcome.STALE


def test_nonce_counts_may_arrive_out_of_order() -> None:
    srv = server()
    client = DigestClient(ALICE)
    authorized_request(srv, client, request())
    second, third = request(cseq=3), request(cseq=4)
    client.preauthorize(second)
    client.preauthorize(third)
    assert srv.verify(third, 0.0).authorized
    assert srv.verify(second, 0.0).authorized


def test_nonce_count_below_the_window_is_stale() -> None:
    srv = server()
    client = DigestClient(ALICE)
    authorized_request(srv, client, request())
    old = request(cseq=2)
    client.preauthorize(old)
    for cseq in range(3, 70):
        later = request(cseq=cseq)
        client.preauthorize(later)
    assert srv.verify(later, 0.0).authorized
    assert srv.verify(old, 0.0).outcome is Outcome.STALE


def test_nonce_table_is_bounded_and_evicted_nonces_turn_stale() -> None:
    srv = server(max_nonces=1)
    first_client, second_client = DigestClient(ALICE), DigestClient(ALICE)
    assert srv.verify(authorized_request(srv, first_client, request()), 0.0).authorized
    assert srv.verify(authorized_request(srv, second_client, request(), 1.0), 1.0).authorized
    unseen_count = request(cseq=9)
    first_client.preauthorize(unseen_count)
    assert srv.verify(unseen_count, 2.0).outcome is Outcome.STALE


def test_ack_and_cancel_pass_unchallenged() -> None:
    assert server().verify(request("ACK"), 0.0).authorized
    assert server().verify(request("CANCEL"), 0.0).authorized


def test_username_star_is_decoded() -> None:
    # RFC 7616 §3.4.4 with RFC 8187 encoding, as in the RFC 7616 §3.9.2 example.
    srv = server(algorithms=("MD5",))
    nonce = srv.challenge(request(), 0.0).www_authenticate[0].params["nonce"]
    response = sip_digest(nonce=nonce, username="Jäsøn Doe", password="Secret")
    extra = (
        "Authorization: Digest username*=UTF-8''J%C3%A4s%C3%B8n%20Doe, "
        f'realm="{REALM}", nonce="{nonce}", uri="{BOB}", qop=auth, '
        f'nc=00000001, cnonce="{fixed_cnonce()}", response="{response}"\r\n'
    )
    verdict = srv.verify(request(extra=extra), 0.0)
    assert (verdict.outcome, verdict.username) == (Outcome.AUTHORIZED, "Jäsøn Doe")


# Well-formed credentials (whose response is wrong: the faults are found before it counts).
WELL_FORMED = {
    "username": '"alice"',
    "realm": f'"{REALM}"',
    "nonce": '"{nonce}"',
    "uri": f'"{BOB}"',
    "response": '"0"',
    "qop": "auth",
    "nc": "00000001",
    "cnonce": '"c"',
}
# Each fault: the parameters changed (None removes one).
MALFORMED: dict[str, dict[str, str | None]] = {
    "no username": {"username": None},
    "username and username*": {"username*": "UTF-8''alice"},
    "username* not UTF-8": {"username": None, "username*": "ISO-8859-1''alice"},
    "username* bad UTF-8": {"username": None, "username*": "UTF-8''%C3"},
    "no nonce": {"nonce": None},
    "no uri": {"uri": None},
    "no response": {"response": None},
    "no cnonce": {"cnonce": None},
    "no nc": {"nc": None},
    "nc not hex": {"nc": "0000000g"},
    "nc too short": {"nc": "0001"},
    "nc zero": {"nc": "00000000"},
    "no qop": {"qop": None, "nc": None, "cnonce": None},
    "qop not offered": {"qop": "auth-int"},
    "unknown algorithm": {"algorithm": "SHA3-256"},
    "algorithm not offered": {"algorithm": "SHA-512-256"},
    "userhash not offered": {"userhash": "true"},
}


@pytest.mark.parametrize("fault", MALFORMED.values(), ids=MALFORMED.keys())
def test_malformed_credentials_get_400(fault: dict[str, str | None]) -> None:
    srv = server()
    nonce = srv.challenge(request(), 0.0).www_authenticate[0].params["nonce"]
    params = {**WELL_FORMED, **fault}
    text = ", ".join(f"{k}={v}" for k, v in params.items() if v is not None)
    bad = request(extra=f"Authorization: Digest {text.format(nonce=nonce)}\r\n")
    verdict = srv.verify(bad, 0.0)
    assert (verdict.outcome, verdict.status) == (Outcome.MALFORMED, 400)


def test_unparsable_authorization_gets_400_naming_the_fault() -> None:
    srv = server()
    bad = request(extra=f'Authorization: Digest username="alice, realm="{REALM}"\r\n')
    verdict = srv.verify(bad, 0.0)
    assert (verdict.outcome, verdict.status) == (Outcome.MALFORMED, 400)
    assert srv.reject(bad, verdict, 0.0).reason_phrase == verdict.reason
    assert verdict.reason.startswith("Authorization: ")


def test_an_authorized_request_is_not_rejected() -> None:
    with pytest.raises(ValueError, match="authorized"):
        server().reject(request(), Verdict(Outcome.AUTHORIZED, None, "authorized"), 0.0)


# --- robustness: bad input gives a verdict or a typed error, never a crash ----------------

_PARAM_NAMES = st.sampled_from(
    [
        "username",
        "username*",
        "realm",
        "nonce",
        "uri",
        "response",
        "qop",
        "nc",
        "cnonce",
        "algorithm",
        "opaque",
        "stale",
        "userhash",
        "x",
    ]
)
_VALUES = st.text(
    alphabet=st.characters(exclude_characters="\r\n\x00", exclude_categories=["Cs"]),
    max_size=12,
)


@st.composite
def _auth_values(draw: st.DrawFn) -> str:
    scheme = draw(st.sampled_from(["Digest", "digest", "Basic", "x"]))
    values = st.one_of(st.sampled_from([REALM, "auth", "auth-int", "MD5", "00000001"]), _VALUES)
    pairs = draw(st.lists(st.tuples(_PARAM_NAMES, values, st.booleans()), max_size=8))
    params = [f'{name}="{value}"' if quoted else f"{name}={value}" for name, value, quoted in pairs]
    return f"{scheme} {', '.join(params)}"


@given(value=st.one_of(_auth_values(), _VALUES))
def test_server_answers_any_authorization_with_a_verdict(value: str) -> None:
    srv = server()
    probe = request()
    probe.headers.add("Authorization", value)
    verdict = srv.verify(probe, 0.0)
    if not verdict.authorized:
        response = parse_message(bytes(srv.reject(probe, verdict, 0.0)))
        assert isinstance(response, Response)
        assert response.status == verdict.status


@given(value=st.one_of(_auth_values(), _VALUES))
def test_client_answers_any_challenge_or_says_why_not(value: str) -> None:
    try:
        retry = DigestClient(ALICE).authorize(request(), challenge(value))
    except AuthenticationFailed:
        return
    assert isinstance(parse_message(bytes(retry)), Request)
