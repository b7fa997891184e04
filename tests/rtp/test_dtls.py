"""The sans-I/O DTLS-SRTP association (RFC 5764, RFC 5763 §5): two instances handshaking
in memory, on a virtual clock."""

from __future__ import annotations

import pylibsrtp
import pytest

from sdp import Fingerprint, Setup
from voip.rtp.dtls import (
    INITIAL_TIMEOUT,
    PROFILES,
    DtlsCertificate,
    DtlsSession,
    DtlsState,
    DtlsTimeout,
    FingerprintMismatch,
    SrtpKeys,
    is_dtls,
    well_formed,
)
from voip.rtp.srtp import SrtpTransform, dtls_crypto


@pytest.fixture(scope="module")
def certificates() -> tuple[DtlsCertificate, DtlsCertificate]:
    return DtlsCertificate.generate(), DtlsCertificate.generate()


def pair(
    certificates: tuple[DtlsCertificate, DtlsCertificate],
    *,
    client_sees: Fingerprint | None = None,
    server_sees: Fingerprint | None = None,
    profiles: tuple[str, ...] = tuple(PROFILES),
) -> tuple[DtlsSession, DtlsSession]:
    """An active end (the DTLS client) and a passive one, each told the other's
    fingerprint as its SDP would (or the one given)."""
    ours, theirs = certificates
    client = DtlsSession(ours, Setup.ACTIVE, [client_sees or theirs.fingerprint()])
    server = DtlsSession(
        theirs, Setup.PASSIVE, [server_sees or ours.fingerprint()], profiles=profiles
    )
    return client, server


def transform(keys: SrtpKeys) -> SrtpTransform:
    """SRTP with the keys a handshake exported (as voip.rtp.dtls_srtp makes it)."""
    return SrtpTransform(dtls_crypto(keys.suite, keys.local), dtls_crypto(keys.suite, keys.remote))


def exchange(client: DtlsSession, server: DtlsSession, now: float = 0.0, *, drop: int = -1) -> int:
    """Run the handshake to its end, delivering every datagram except flight number
    ``drop`` (counted from 0); the number of flights delivered."""
    flights = 0
    to_server = client.start(now)
    to_client: list[bytes] = []
    for _ in range(10):
        if to_server:
            if flights != drop:
                to_client = [out for data in to_server for out in server.receive(data, now)]
            flights += 1
            to_server = []
        elif to_client:
            if flights != drop:
                to_server = [out for data in to_client for out in client.receive(data, now)]
            flights += 1
            to_client = []
        else:
            break
    return flights


def test_the_active_end_is_the_client_and_both_ends_export_the_same_srtp_keys(
    certificates: tuple[DtlsCertificate, DtlsCertificate],
) -> None:
    client, server = pair(certificates)
    exchange(client, server)
    assert client.state is server.state is DtlsState.CONNECTED
    assert client.keys is not None and server.keys is not None
    # RFC 5764 §4.2: what one end sends with, the other receives with
    assert client.keys.local == server.keys.remote
    assert client.keys.remote == server.keys.local
    assert client.keys.local != client.keys.remote
    assert len(client.keys.local) == 30  # 128-bit master key || 112-bit master salt
    assert client.keys.suite == "AES_CM_128_HMAC_SHA1_80"  # the first profile offered
    assert client.deadline is None and server.deadline is None


def test_the_profile_is_one_both_ends_offer(
    certificates: tuple[DtlsCertificate, DtlsCertificate],
) -> None:
    client, server = pair(certificates, profiles=("SRTP_AES128_CM_SHA1_32",))
    exchange(client, server)
    assert client.keys is not None and client.keys.suite == "AES_CM_128_HMAC_SHA1_32"


def test_keys_from_the_handshake_protect_srtp_that_the_peer_can_check(
    certificates: tuple[DtlsCertificate, DtlsCertificate],
) -> None:
    client, server = pair(certificates)
    exchange(client, server)
    assert client.keys is not None and server.keys is not None
    rtp = bytes([0x80, 0, 0, 1, 0, 0, 0, 160, 0, 0, 0, 7]) + b"\xff" * 160
    assert transform(server.keys).unprotect(transform(client.keys).protect(rtp)) == rtp


def test_a_certificate_that_is_not_the_sdp_fingerprint_fails_with_no_keys(
    certificates: tuple[DtlsCertificate, DtlsCertificate],
) -> None:
    stranger = DtlsCertificate.generate().fingerprint()
    client, server = pair(certificates, client_sees=stranger)
    exchange(client, server)
    assert client.state is DtlsState.FAILED
    assert isinstance(client.error, FingerprintMismatch)
    assert client.keys is None
    assert server.keys is None  # the client's alert ends the server's side too
    assert server.state is DtlsState.FAILED


def test_the_server_refuses_a_client_certificate_that_is_not_the_sdp_fingerprint(
    certificates: tuple[DtlsCertificate, DtlsCertificate],
) -> None:
    stranger = DtlsCertificate.generate().fingerprint()
    client, server = pair(certificates, server_sees=stranger)
    exchange(client, server)
    assert isinstance(server.error, FingerprintMismatch)
    assert client.keys is None and server.keys is None


def test_a_sha_512_fingerprint_of_the_peer_is_checked_as_well(
    certificates: tuple[DtlsCertificate, DtlsCertificate],
) -> None:
    _ours, theirs = certificates
    client, server = pair(certificates, client_sees=theirs.fingerprint("sha-512"))
    exchange(client, server)
    assert client.connected and server.connected


def test_a_lost_client_hello_is_sent_again_when_the_timer_expires_in_virtual_time(
    certificates: tuple[DtlsCertificate, DtlsCertificate],
) -> None:
    client, server = pair(certificates)
    hello = client.start(0.0)  # lost on the way
    assert hello and client.deadline == INITIAL_TIMEOUT  # RFC 6347 §4.2.4.1: 1 s
    assert client.handle_timeout(0.5) == []  # not yet
    again = client.handle_timeout(INITIAL_TIMEOUT)
    assert again and client.retransmissions == 1
    assert client.deadline == INITIAL_TIMEOUT + 2 * INITIAL_TIMEOUT  # doubled
    to_client = [out for data in again for out in server.receive(data, 1.0)]
    to_server = [out for data in to_client for out in client.receive(data, 1.0)]
    for data in to_server:
        for out in server.receive(data, 1.0):
            client.receive(out, 1.0)
    assert client.connected and server.connected


def test_a_lost_last_flight_is_sent_again_when_the_client_retransmits_its_own(
    certificates: tuple[DtlsCertificate, DtlsCertificate],
) -> None:
    client, server = pair(certificates)
    assert exchange(client, server, drop=3) == 4  # the server's CCS+Finished is lost
    assert server.connected and not client.connected
    assert client.deadline is not None
    again = client.handle_timeout(client.deadline)
    for data in again:
        for out in server.receive(data, 2.0):
            client.receive(out, 2.0)
    assert client.connected
    assert client.keys is not None and server.keys is not None
    assert client.keys.local == server.keys.remote


def test_a_handshake_nobody_answers_is_given_up(
    certificates: tuple[DtlsCertificate, DtlsCertificate],
) -> None:
    client, _ = pair(certificates)
    client.start(0.0)
    sent = 0
    while client.deadline is not None:
        sent += bool(client.handle_timeout(client.deadline))
    assert client.state is DtlsState.FAILED
    assert isinstance(client.error, DtlsTimeout)
    assert sent == 7  # RFC 6347 §4.2.4.1 timer: 1, 2, 4, ... 60 s


@pytest.mark.parametrize(
    "garbage",
    [
        b"\x16",  # a first octet of DTLS and nothing else
        b"\x16\xfe\xfd\x00\x00" + bytes(6) + b"\x00\x40" + b"short",  # length past the end
        b"\x17\x03\x03" + bytes(20),  # TLS, not DTLS, version
        b"\x16\xfe\xfd" + bytes(8) + b"\x00\x04" + b"\x01\x00\x00\x00" + b"\x99",  # trailing
    ],
)
def test_malformed_records_are_counted_and_dropped_and_the_handshake_goes_on(
    certificates: tuple[DtlsCertificate, DtlsCertificate], garbage: bytes
) -> None:
    client, server = pair(certificates)
    assert server.receive(garbage, 0.0) == []
    assert client.receive(garbage, 0.0) == []
    assert server.malformed == client.malformed == 1
    exchange(client, server)
    assert client.connected and server.connected


def test_an_alert_after_the_handshake_is_counted_and_the_keys_stay(
    certificates: tuple[DtlsCertificate, DtlsCertificate],
) -> None:
    client, server = pair(certificates)
    exchange(client, server)
    keys = server.keys
    client._connection.shutdown()  # close_notify, an alert record
    alert = client._output()
    assert alert and alert[0][0] == 21
    assert server.receive(alert[0], 5.0) == []
    assert server.alerts == 1
    assert server.state is DtlsState.CLOSED
    assert server.keys == keys


def test_rfc_7983_tells_dtls_from_rtp_and_stun() -> None:
    assert is_dtls(b"\x16\xfe\xfd")
    assert not is_dtls(b"\x80\x00")  # RTP
    assert not is_dtls(b"\x00\x01")  # STUN
    assert not is_dtls(b"")
    assert well_formed(b"\x15\xfe\xfd" + bytes(8) + b"\x00\x02" + b"\x01\x00")


def test_an_srtp_packet_with_keys_of_another_handshake_fails_authentication(
    certificates: tuple[DtlsCertificate, DtlsCertificate],
) -> None:
    first, second = pair(certificates), pair(certificates)
    for client, server in (first, second):
        exchange(client, server)
    keys_a, keys_b = first[0].keys, second[1].keys
    assert keys_a is not None and keys_b is not None
    rtp = bytes([0x80, 0, 0, 1, 0, 0, 0, 160, 0, 0, 0, 7]) + b"\xff" * 160
    sender, receiver = transform(keys_a), transform(keys_b)
    with pytest.raises(pylibsrtp.Error):
        receiver.unprotect(sender.protect(rtp))
