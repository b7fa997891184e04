"""SDP (RFC 8866) model, parser and serializer, and the RFC 3264 offer/answer engine.

Sans-I/O: text in, objects out; no sockets, no clock, no randomness.

The modules run compiled by mypyc when the package was built with it, else as pure
Python; ``IMPLEMENTATION`` says which (see ``sdp._implementation``).
"""

# First: it decides where the compiled modules are loaded from.
from sdp._implementation import CORE  # isort: skip
from sdp.attributes import Attribute, Direction, Rtcp, RtpMap, fmtp_parameters
from sdp.capabilities import Capabilities, Codec, MediaCapabilities, TelephoneEvent
from sdp.crypto import KEY_SALT_LENGTHS, Crypto, KeyParam
from sdp.dtls import DTLS_PROTOS, Fingerprint, Setup
from sdp.errors import OfferAnswerError, SdpError
from sdp.fields import (
    Bandwidth,
    Connection,
    Origin,
    RepeatTime,
    TimeZoneAdjustment,
    Timing,
    typed_time_seconds,
)
from sdp.media import MediaDescription
from sdp.offer_answer import (
    NegotiatedMedia,
    create_answer,
    create_offer,
    negotiate,
    process_answer,
)
from sdp.parser import parse
from sdp.payload_types import STATIC_PAYLOAD_TYPES, static_payload_type
from sdp.session import SessionDescription

#: ``"mypyc"`` when the modules run compiled, ``"pure Python"`` otherwise.
IMPLEMENTATION = CORE.running()

__all__ = [
    "DTLS_PROTOS",
    "IMPLEMENTATION",
    "KEY_SALT_LENGTHS",
    "STATIC_PAYLOAD_TYPES",
    "Attribute",
    "Bandwidth",
    "Capabilities",
    "Codec",
    "Connection",
    "Crypto",
    "Direction",
    "Fingerprint",
    "KeyParam",
    "MediaCapabilities",
    "MediaDescription",
    "NegotiatedMedia",
    "OfferAnswerError",
    "Origin",
    "RepeatTime",
    "Rtcp",
    "RtpMap",
    "SdpError",
    "SessionDescription",
    "Setup",
    "TelephoneEvent",
    "TimeZoneAdjustment",
    "Timing",
    "create_answer",
    "create_offer",
    "fmtp_parameters",
    "negotiate",
    "parse",
    "process_answer",
    "static_payload_type",
    "typed_time_seconds",
]
