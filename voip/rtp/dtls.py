"""DTLS-SRTP (RFC 5764, RFC 5763): the DTLS handshake that keys SRTP, sans-I/O.

:class:`DtlsSession` is one DTLS association on one media component (the RTP port, and
the RTCP port when RTCP is not multiplexed): datagrams and the current time in, datagrams
to send, a deadline and, once the handshake is done, :class:`SrtpKeys` out. It runs
pyOpenSSL on memory BIOs, so no socket and no sleep is inside; the owner feeds it what
arrives on the port (RFC 7983: a first octet of 20 to 63 is DTLS) and calls
:meth:`DtlsSession.handle_timeout` at :attr:`DtlsSession.deadline` on its own clock.

Authentication (RFC 5763 §5): each end presents a self-signed certificate
(:class:`DtlsCertificate`, one per agent) whose fingerprint its SDP carried; the peer's
certificate must hash to one of the fingerprints of the peer's SDP, or the handshake fails
(a ``bad_certificate`` alert, :class:`FingerprintMismatch`) and no key is given out.

Retransmission (RFC 6347 §4.2.4): a flight unanswered for the timer's interval (1 s,
doubled each time up to 60 s) is sent again. The timer runs on the owner's clock: at each
expiry OpenSSL is asked to retransmit (``DTLSv1_handle_timeout``, which goes by its own
wall-clock timer); when its timer has not run out yet (a clock of the owner's that runs
faster, as in tests in virtual time), the flight is sent again as it was. A copy the peer
already had is dropped by its replay check (RFC 6347 §4.1.2.6), and the peer's own timer
resends a flight of its that was lost; the last flight, which no timer guards, is sent
again when the peer retransmits the flight before it (§4.2.4: the peer's retransmission
tells it was lost).
"""

from __future__ import annotations

import contextlib
import datetime
import enum
import struct
from collections.abc import Sequence
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from OpenSSL import SSL

from sdp import Fingerprint, Setup

__all__ = [
    "PROFILES",
    "DtlsCertificate",
    "DtlsError",
    "DtlsSession",
    "DtlsState",
    "DtlsTimeout",
    "FingerprintMismatch",
    "SrtpKeys",
    "is_client_hello",
    "is_dtls",
]

#: DTLS-SRTP protection profiles (RFC 5764 §4.1.2) and the SDES suite of the same
#: transforms (RFC 4568 §6.2) that voip.rtp.srtp keys libsrtp with
PROFILES: dict[str, str] = {
    "SRTP_AES128_CM_SHA1_80": "AES_CM_128_HMAC_SHA1_80",
    "SRTP_AES128_CM_SHA1_32": "AES_CM_128_HMAC_SHA1_32",
}
#: RFC 5764 §4.2: the exporter label, and the key material: two 128-bit master keys and
#: two 112-bit master salts
EXPORTER_LABEL = b"EXTRACTOR-dtls_srtp"
KEY_LENGTH = 16
SALT_LENGTH = 14
#: RFC 6347 §4.2.4.1: the timer starts at 1 s and doubles up to 60 s; after the last
#: interval the handshake is given up (1 + 2 + 4 + ... + 32 + 60 s: about two minutes)
INITIAL_TIMEOUT = 1.0
MAX_TIMEOUT = 60.0
MAX_RETRANSMISSIONS = 7
#: what a datagram of DTLS may hold on a media path without fragmenting (RFC 6347 §4.1.1.1)
MTU = 1200
_RECORD_HEADER = struct.Struct("!BHHIHH")  # type, version, epoch, sequence (48 bits), length
_HANDSHAKE = 22
_ALERT = 21
_CLIENT_HELLO = 1
_HASHES: dict[str, hashes.HashAlgorithm] = {
    "sha-1": hashes.SHA1(),
    "sha-224": hashes.SHA224(),
    "sha-256": hashes.SHA256(),
    "sha-384": hashes.SHA384(),
    "sha-512": hashes.SHA512(),
}


def is_dtls(data: bytes) -> bool:
    """RFC 7983 §7: a first octet of 20 to 63 is DTLS (where RTP and RTCP have 128 to
    191, STUN 0 to 3)."""
    return bool(data) and 19 < data[0] < 64


class DtlsError(Exception):
    """The DTLS-SRTP association failed: no SRTP keys from it."""


class FingerprintMismatch(DtlsError):
    """The peer's certificate is not the one its SDP's ``a=fingerprint`` names
    (RFC 5763 §5: the handshake fails, with a ``bad_certificate`` alert)."""


class DtlsTimeout(DtlsError):
    """The peer did not answer the handshake's flights (RFC 6347 §4.2.4)."""


class DtlsState(enum.Enum):
    NEW = "new"
    CONNECTING = "connecting"
    CONNECTED = "connected"
    FAILED = "failed"
    CLOSED = "closed"  # the peer's close_notify: the keys agreed stay in use


@dataclass(frozen=True, slots=True)
class SrtpKeys:
    """What the handshake agreed (RFC 5764 §4.2): the SDES name of the profile's suite,
    the master key||salt this end sends with and the one it receives with."""

    suite: str
    local: bytes
    remote: bytes


class DtlsCertificate:
    """The agent's self-signed certificate (RFC 5763 §5: no CA; the SDP's fingerprint is
    what authenticates it), on an ECDSA P-256 key (cheap to make, small in handshakes)."""

    __slots__ = ("_fingerprints", "certificate", "key")

    def __init__(self, certificate: x509.Certificate, key: ec.EllipticCurvePrivateKey) -> None:
        self.certificate = certificate
        self.key = key
        self._fingerprints: dict[str, Fingerprint] = {}  # worked out once: one per call

    @classmethod
    def generate(cls, common_name: str = "voip", days: int = 30) -> DtlsCertificate:
        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
        now = datetime.datetime.now(datetime.UTC)
        certificate = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=days))
            .sign(key, hashes.SHA256())
        )
        return cls(certificate, key)

    def fingerprint(self, hash_function: str = "sha-256") -> Fingerprint:
        """``a=fingerprint`` of this certificate (RFC 8122 §5: the hash of its DER form;
        SHA-256, which RFC 8122 §5 asks every end to support)."""
        fingerprint = self._fingerprints.get(hash_function)
        if fingerprint is None:
            fingerprint = certificate_fingerprint(self.certificate, hash_function)
            self._fingerprints[hash_function] = fingerprint
        return fingerprint


def certificate_fingerprint(certificate: x509.Certificate, hash_function: str) -> Fingerprint:
    return Fingerprint.of_digest(hash_function, certificate.fingerprint(_HASHES[hash_function]))


def matches(certificate: x509.Certificate, fingerprints: Sequence[Fingerprint]) -> bool:
    """Whether ``certificate`` hashes to one of ``fingerprints`` (those with a hash
    function this end has: RFC 8122 §5 leaves out the others, MD5 and MD2 included)."""
    for fingerprint in fingerprints:
        if fingerprint.hash_function not in _HASHES:
            continue
        if certificate_fingerprint(certificate, fingerprint.hash_function) == fingerprint:
            return True
    return False


def is_client_hello(data: bytes) -> bool:
    """Whether ``data`` starts with a ClientHello (a handshake record of epoch 0 whose
    message is of type 1, RFC 6347 §4.1, §4.2.2): a new association's first flight."""
    if len(data) <= _RECORD_HEADER.size or data[0] != _HANDSHAKE:
        return False
    epoch = _RECORD_HEADER.unpack_from(data)[2]
    return epoch == 0 and data[_RECORD_HEADER.size] == _CLIENT_HELLO


def well_formed(data: bytes) -> bool:
    """Whether ``data`` is a sequence of whole DTLS records (RFC 6347 §4.1): what is
    not is dropped before OpenSSL sees it."""
    offset = 0
    while offset < len(data):
        if len(data) - offset < _RECORD_HEADER.size:
            return False
        content_type, version, _, _, _, length = _RECORD_HEADER.unpack_from(data, offset)
        if not 19 < content_type < 64 or version >> 8 != 0xFE:  # DTLS 1.x is 254.x
            return False
        offset += _RECORD_HEADER.size + length
    return offset == len(data)


class DtlsSession:
    """One DTLS-SRTP association: ``role`` ``active`` is the DTLS client (RFC 5763 §5),
    ``passive`` the server; ``remote_fingerprints`` are those of the peer's SDP.

    Counters: ``retransmissions`` (flights sent again), ``malformed`` (datagrams that are
    no DTLS records, dropped), ``alerts`` (alerts received)."""

    def __init__(
        self,
        certificate: DtlsCertificate,
        role: Setup,
        remote_fingerprints: Sequence[Fingerprint],
        *,
        profiles: Sequence[str] = tuple(PROFILES),
    ) -> None:
        if role not in (Setup.ACTIVE, Setup.PASSIVE):
            raise ValueError(f"a DTLS association needs an active or passive end, not {role}")
        self.role = role
        self.remote_fingerprints = tuple(remote_fingerprints)
        self.state = DtlsState.NEW
        self.keys: SrtpKeys | None = None
        self.error: DtlsError | None = None
        self.deadline: float | None = None
        self.retransmissions = 0
        self.malformed = 0
        self.alerts = 0
        self._interval = INITIAL_TIMEOUT
        self._timeouts = 0
        self._flight: list[bytes] = []  # the last flight sent, for retransmission
        self._mismatch = False
        context = SSL.Context(SSL.DTLS_METHOD)
        context.use_certificate(certificate.certificate)
        context.use_privatekey(certificate.key)
        # RFC 5763 §5: both ends present certificates; the client's is requested too
        context.set_verify(SSL.VERIFY_PEER | SSL.VERIFY_FAIL_IF_NO_PEER_CERT, self._verify)
        context.set_tlsext_use_srtp(":".join(profiles).encode("ascii"))
        context.set_options(SSL.OP_NO_QUERY_MTU)
        connection = SSL.Connection(context, None)  # memory BIOs
        connection.set_ciphertext_mtu(MTU)
        if role is Setup.ACTIVE:
            connection.set_connect_state()
        else:
            connection.set_accept_state()
        self._connection = connection

    def __repr__(self) -> str:
        return f"<DtlsSession {self.role.value} {self.state.value}>"

    @property
    def connected(self) -> bool:
        return self.keys is not None

    def _verify(
        self, connection: SSL.Connection, certificate: object, errno: int, depth: int, ok: int
    ) -> bool:
        """OpenSSL's verification of the peer's chain: a self-signed certificate is
        expected; only the fingerprint of the SDP decides (RFC 5763 §5)."""
        if depth != 0:
            return True
        peer = certificate.to_cryptography()  # type: ignore[attr-defined]
        if matches(peer, self.remote_fingerprints):
            return True
        self._mismatch = True
        return False

    # --- input --------------------------------------------------------------------------

    def start(self, now: float) -> list[bytes]:
        """Begin: the client sends its ClientHello, the server waits for one."""
        if self.state is not DtlsState.NEW:
            return []
        self.state = DtlsState.CONNECTING
        if self.role is Setup.PASSIVE:
            return []
        return self._handshake(now)

    def receive(self, data: bytes, now: float) -> list[bytes]:
        """A datagram of DTLS from the peer: what to send in return. Malformed records are
        counted and dropped; a fatal alert during the handshake fails it."""
        if self.state in (DtlsState.FAILED, DtlsState.CLOSED):
            return []
        if not well_formed(data):
            self.malformed += 1
            return []
        if self.state is DtlsState.NEW:
            if self.role is Setup.ACTIVE:
                return []  # a client speaks first: nothing to take before that
            self.state = DtlsState.CONNECTING
        if data[0] == _ALERT:
            self.alerts += 1
        self._connection.bio_write(data)
        if self.state is DtlsState.CONNECTING:
            return self._handshake(now)
        return self._established(data)

    def handle_timeout(self, now: float) -> list[bytes]:
        """At :attr:`deadline`: the flight again (RFC 6347 §4.2.4.1), or the end."""
        if self.deadline is None or now < self.deadline or self.state is not DtlsState.CONNECTING:
            return []
        self._timeouts += 1
        if self._timeouts > MAX_RETRANSMISSIONS:
            self._fail(DtlsTimeout(f"no answer to the DTLS handshake after {self._timeouts} tries"))
            return []
        self.retransmissions += 1
        self._interval = min(2 * self._interval, MAX_TIMEOUT)
        self.deadline = now + self._interval
        with contextlib.suppress(SSL.Error):
            self._connection.DTLSv1_handle_timeout()
        datagrams = self._output()
        if datagrams:
            self._flight = datagrams
            return datagrams
        return list(self._flight)  # OpenSSL's wall-clock timer had not run out yet

    # --- the handshake --------------------------------------------------------------------

    def _handshake(self, now: float) -> list[bytes]:
        try:
            self._connection.do_handshake()
        except SSL.WantReadError:
            datagrams = self._output()
            if datagrams:
                # a new flight: the timer starts again from its initial interval
                self._flight = datagrams
                self._interval = INITIAL_TIMEOUT
                self._timeouts = 0
                self.deadline = now + self._interval
            return datagrams
        except SSL.Error as error:
            datagrams = self._output()  # the alert that tells the peer
            if self._mismatch:
                self._fail(
                    FingerprintMismatch(
                        "the peer's DTLS certificate does not match the a=fingerprint of "
                        "its SDP (RFC 5763 §5)"
                    )
                )
            else:
                self._fail(DtlsError(f"DTLS handshake failed: {_describe(error)}"))
            return datagrams
        datagrams = self._output()
        if datagrams:
            self._flight = datagrams  # the last flight, sent again if the peer asks
        self._connected()
        return datagrams

    def _connected(self) -> None:
        connection = self._connection
        self.deadline = None
        peer = connection.get_peer_certificate()
        if peer is None or not matches(peer.to_cryptography(), self.remote_fingerprints):
            self._fail(FingerprintMismatch("the peer's DTLS certificate is not its SDP's"))
            return
        profile = connection.get_selected_srtp_profile().decode("ascii")
        suite = PROFILES.get(profile)
        if suite is None:
            self._fail(DtlsError(f"no SRTP protection profile agreed ({profile or 'none'})"))
            return
        material = connection.export_keying_material(EXPORTER_LABEL, 2 * (KEY_LENGTH + SALT_LENGTH))
        # RFC 5764 §4.2: client key, server key, client salt, server salt
        client_key = material[:KEY_LENGTH]
        server_key = material[KEY_LENGTH : 2 * KEY_LENGTH]
        client_salt = material[2 * KEY_LENGTH : 2 * KEY_LENGTH + SALT_LENGTH]
        server_salt = material[2 * KEY_LENGTH + SALT_LENGTH :]
        client, server = client_key + client_salt, server_key + server_salt
        if self.role is Setup.ACTIVE:
            self.keys = SrtpKeys(suite, client, server)
        else:
            self.keys = SrtpKeys(suite, server, client)
        self.state = DtlsState.CONNECTED

    def _established(self, data: bytes) -> list[bytes]:
        """After the handshake: alerts, and the peer's retransmitted last flight, which
        says that ours was lost (RFC 6347 §4.2.4)."""
        try:
            self._connection.recv(MTU)
        except SSL.WantReadError:
            pass
        except SSL.ZeroReturnError:
            self.state = DtlsState.CLOSED  # close_notify: SRTP goes on with its keys
            return []
        except SSL.Error:
            # a fatal alert after the handshake: the association is over, its keys stay
            self.state = DtlsState.CLOSED
            return []
        datagrams = self._output()
        if datagrams:
            return datagrams
        if data[0] == _HANDSHAKE and self.role is Setup.PASSIVE and not is_client_hello(data):
            self.retransmissions += 1
            return list(self._flight)
        return []

    def _output(self) -> list[bytes]:
        datagrams = []
        while True:
            try:
                datagrams.append(self._connection.bio_read(65536))
            except SSL.WantReadError:
                return datagrams

    def _fail(self, error: DtlsError) -> None:
        self.state = DtlsState.FAILED
        self.error = error
        self.deadline = None


def _describe(error: SSL.Error) -> str:
    """OpenSSL's reasons (pyOpenSSL gives a list of (library, function, reason))."""
    queue = error.args[0] if error.args else None
    if isinstance(queue, list) and queue:
        return "; ".join(str(entry[-1]) for entry in queue)
    return str(error) or type(error).__name__
