"""The RTP media engine (RFC 3550): sans-I/O packet, report, jitter and DTMF logic."""

from voip.rtp.codecs import AudioCodec, ComfortNoise, Pcma, Pcmu, UnsupportedCodec, codec_for
from voip.rtp.dtmf import DtmfDigit, DtmfReceiver, DtmfSender, TelephoneEvent
from voip.rtp.jitterbuffer import JitterBuffer, JitterBufferCounters
from voip.rtp.rtcp import RtcpBye, RtcpReport, RtcpSession, ntp_timestamp
from voip.rtp.sender import RtpSender
from voip.rtp.source import ReceivedSource

__all__ = [
    "AudioCodec",
    "ComfortNoise",
    "DtmfDigit",
    "DtmfReceiver",
    "DtmfSender",
    "JitterBuffer",
    "JitterBufferCounters",
    "Pcma",
    "Pcmu",
    "ReceivedSource",
    "RtcpBye",
    "RtcpReport",
    "RtcpSession",
    "RtpSender",
    "TelephoneEvent",
    "UnsupportedCodec",
    "codec_for",
    "ntp_timestamp",
]
