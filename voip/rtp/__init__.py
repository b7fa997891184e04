"""The RTP media engine (RFC 3550): sans-I/O packet, report, jitter and DTMF logic, and
the asyncio driver (:class:`MediaStream` on one :class:`MediaClock`, ports from a
:class:`PortAllocator`). The sans-I/O modules every packet goes through run compiled by
mypyc when the build made them, else as pure Python; ``IMPLEMENTATION`` says which (see
``voip.rtp._implementation``)."""

from voip.rtp._implementation import CORE  # isort: skip

from voip.rtp.audio import Resampler, WavRecorder, read_wav, silence, tone
from voip.rtp.clock import MediaClock
from voip.rtp.codecs import AudioCodec, ComfortNoise, Pcma, Pcmu, UnsupportedCodec, codec_for
from voip.rtp.dtls import DtlsCertificate, DtlsError, FingerprintMismatch
from voip.rtp.dtls_srtp import DtlsSrtp
from voip.rtp.dtmf import DtmfDigit, DtmfReceiver, DtmfSender, TelephoneEvent
from voip.rtp.emodel import EModel, mos_from_r
from voip.rtp.engine import CallMedia, MediaEngine
from voip.rtp.jitterbuffer import JitterBuffer, JitterBufferCounters
from voip.rtp.ports import PortAllocator, PortsExhausted, RtpPorts
from voip.rtp.rtcp import RtcpBye, RtcpReport, RtcpSession, ntp_timestamp
from voip.rtp.sender import RtpSender
from voip.rtp.source import ReceivedSource
from voip.rtp.srtp import SrtpError, SrtpMode, SrtpRequired, SrtpTransform
from voip.rtp.stats import DirectionQuality, MediaQuality, StreamStatistics
from voip.rtp.stream import MediaStream

IMPLEMENTATION = CORE.running()

__all__ = [
    "IMPLEMENTATION",
    "AudioCodec",
    "CallMedia",
    "ComfortNoise",
    "DirectionQuality",
    "DtlsCertificate",
    "DtlsError",
    "DtlsSrtp",
    "DtmfDigit",
    "DtmfReceiver",
    "DtmfSender",
    "EModel",
    "FingerprintMismatch",
    "JitterBuffer",
    "JitterBufferCounters",
    "MediaClock",
    "MediaEngine",
    "MediaQuality",
    "MediaStream",
    "Pcma",
    "Pcmu",
    "PortAllocator",
    "PortsExhausted",
    "ReceivedSource",
    "Resampler",
    "RtcpBye",
    "RtcpReport",
    "RtcpSession",
    "RtpPorts",
    "RtpSender",
    "SrtpError",
    "SrtpMode",
    "SrtpRequired",
    "SrtpTransform",
    "StreamStatistics",
    "TelephoneEvent",
    "UnsupportedCodec",
    "WavRecorder",
    "codec_for",
    "mos_from_r",
    "ntp_timestamp",
    "read_wav",
    "silence",
    "tone",
]
