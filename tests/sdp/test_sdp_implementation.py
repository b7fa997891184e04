"""SDP's values behave alike compiled (mypyc) and as pure Python.

Which implementation runs, and the SDP suite run once more in pure Python:
``tests/test_implementation.py``.
"""

from __future__ import annotations

import copy
import pickle
from dataclasses import replace

import sdp

OFFER = (
    b"v=0\r\no=alice 1 1 IN IP4 192.0.2.10\r\ns=-\r\nc=IN IP4 192.0.2.10\r\nt=0 0\r\n"
    b"m=audio 49170 RTP/AVP 0 101\r\na=rtpmap:101 telephone-event/8000\r\n"
    b"a=fmtp:101 0-15\r\na=sendrecv\r\n"
)


def test_descriptions_and_results_copy_pickle_and_replace_like_python_objects() -> None:
    offer = sdp.parse(OFFER)
    assert bytes(pickle.loads(pickle.dumps(offer))) == OFFER
    assert bytes(copy.deepcopy(offer)) == OFFER
    [stream] = sdp.negotiate(offer, offer)
    assert pickle.loads(pickle.dumps(stream)) == stream
    assert copy.copy(stream) == stream
    held = replace(stream, on_hold=True)
    assert held.on_hold and held.codecs == stream.codecs


def test_programs_may_subclass_the_sdp_classes() -> None:
    class Refused(sdp.OfferAnswerError):
        pass

    class Named(sdp.Codec):
        pass

    assert isinstance(Refused("no"), sdp.SdpError)
    assert Named("PCMU", 8000).same_codec(sdp.Codec("pcmu", 8000))


def test_a_description_reads_from_a_buffer_a_socket_filled_as_from_bytes() -> None:
    # A program reading with recv_into holds a bytearray (or a memoryview of one): the
    # compiled parser checks its declared argument type, so it must be declared that wide.
    expected = sdp.parse(OFFER)
    for buffer in (bytearray(OFFER), memoryview(bytearray(OFFER))):
        assert sdp.parse(buffer) == expected
        assert sdp.SessionDescription.parse(buffer) == expected
