"""Real SIP peers on loopback for the interop tests: kamailio, sipp, baresip, linphonec.

Each peer runs as a child process in a session of its own, on free ports of 127.0.0.1, with
its log in a file; it is stopped by pid. The pytest fixtures that use these are in
``tests/interop/conftest.py``.
"""

from ._process import (
    LOOPBACK,
    PeerHandle,
    PeerProcess,
    PeerStartError,
    Phone,
    free_port,
    free_port_range,
    require_binary,
    stop_all,
)
from .audio import WIDEBAND_VOICE, convert_wav, make_speech_wav
from .baresip import Baresip, BaresipCommandError, start_baresip
from .kamailio import Contact, Kamailio, KamailioRpcError, start_kamailio
from .linphone import Linphone, start_linphonec
from .pki import LoopbackPki, make_loopback_pki
from .sipp import (
    SCENARIOS,
    Sipp,
    SippOptions,
    SippProcess,
    SippResult,
    run_sipp,
    scenario_path,
    start_sipp,
    with_payload_type,
)

__all__ = [
    "LOOPBACK",
    "SCENARIOS",
    "WIDEBAND_VOICE",
    "Baresip",
    "BaresipCommandError",
    "Contact",
    "Kamailio",
    "KamailioRpcError",
    "Linphone",
    "LoopbackPki",
    "PeerHandle",
    "PeerProcess",
    "PeerStartError",
    "Phone",
    "Sipp",
    "SippOptions",
    "SippProcess",
    "SippResult",
    "convert_wav",
    "free_port",
    "free_port_range",
    "make_loopback_pki",
    "make_speech_wav",
    "require_binary",
    "run_sipp",
    "scenario_path",
    "start_baresip",
    "start_kamailio",
    "start_linphonec",
    "start_sipp",
    "stop_all",
    "with_payload_type",
]
