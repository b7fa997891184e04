"""baresip 1.0 as a headless softphone: auto-answer, audio from a WAV, recordings of each call.

``start_baresip`` writes a config directory (``config``, ``accounts``, ``contacts``) and runs
``baresip -f DIR`` with stdin from /dev/null (no ``stdio`` UI module). It listens for SIP on a
free port of 127.0.0.1 (TLS on that port + 1), sends ``audio_file`` into every call (the
``aufile`` source does not loop: give it minutes), plays nothing (``aubridge,nil``) and, with
the ``sndfile`` module, writes what it sends (``*-enc.wav``) and what it decodes (``*-dec.wav``)
per call into ``recordings_dir``. It is controlled through ``ctrl_tcp`` (netstring JSON
commands such as ``dial``, ``hangup``, ``hold``, ``resume``, ``accept``, ``sndcode`` to send
DTMF); ``events()`` reads what ctrl_tcp tells its connected clients, such as
CALL_DTMF_START for each digit received as RFC 4733 events or SIP INFO
``application/dtmf-relay``; ``-s`` traces every SIP message into its log. SIGTERM
un-registers it before it exits.

Pitfalls of baresip 1.0.0: after a hold and resume, ``*-dec.wav`` gets nothing more (check the
received audio on what came before a hold); stdout is block-buffered into a file, so it runs
under ``stdbuf -oL`` for the log waits; a call it hangs up logs "Call with <peer> terminated",
one the far end ends logs "<peer>: session closed: <reason>".
Opus needs ``codecs=("opus/48000/2",)`` (a bare "opus" logs "audio codec not found:
opus/8000/1" and the account has no codec) and an ``audio_file`` of 48 kHz stereo: aufile
plays a file only at the codec's rate and channel count, and otherwise fails the audio
source ("must have channels = 2"), after which baresip never answers the call (it sends
180 and nothing more). G.722 takes a 16 kHz mono file.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import socket
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ._process import (
    LOOPBACK,
    PeerProcess,
    Phone,
    free_port,
    free_port_range,
    log_has,
    on_free_ports,
    start_peer,
    wait_until,
)
from .kamailio import Kamailio

_RTP_PORTS = 20


class BaresipCommandError(RuntimeError):
    pass


@dataclass(eq=False)
class Baresip(Phone):
    """A running baresip with one account. SIGTERM stops it (it un-registers first)."""

    established = r"Call established: (?P<peer>\S+)"
    # "<peer>: session closed: <reason>" when the far end ends the call (BYE, CANCEL, error),
    # "Call with <peer> terminated" when baresip hangs up
    closed = r": session closed: (?P<reason>.*)|: Call with (?P<peer>\S+) terminated"

    user: str
    aor: str
    transport: str
    process: PeerProcess
    config_dir: Path
    sip_port: int
    ctrl_port: int
    rtp_ports: tuple[int, int]
    recordings_dir: Path
    registrar: Kamailio | None

    def uri(self, transport: str | None = None) -> str:
        """A URI that reaches this baresip directly, not through a registrar."""
        transport = transport or self.transport
        port = self.sip_port + 1 if transport == "tls" else self.sip_port
        return f"sip:{self.user}@{LOOPBACK}:{port};transport={transport}"

    # --- control (ctrl_tcp) -------------------------------------------------------------------

    async def command(self, name: str, params: str | None = None, timeout: float = 5.0) -> str:
        """Run a baresip command (``/name params``) and return its text; fail if not ok."""
        reader, writer = await asyncio.open_connection(LOOPBACK, self.ctrl_port)
        try:
            async with asyncio.timeout(timeout):
                message = await _request(reader, writer, name, params)
        finally:
            writer.close()
        if not message.get("ok"):
            raise BaresipCommandError(f"baresip /{name} {params or ''}: {message.get('data')}")
        return str(message.get("data", ""))

    async def dial(self, uri: str) -> None:
        await self.command("dial", uri)

    async def accept(self) -> None:
        """Answer the incoming call (with ``answermode="manual"``)."""
        await self.command("accept")

    async def hangup(self) -> None:
        await self.command("hangup")

    async def hold(self) -> None:
        """Put the current call on hold (re-INVITE with a=sendonly)."""
        await self.command("hold")

    async def resume(self) -> None:
        """Take the current call off hold (re-INVITE with a=sendrecv)."""
        await self.command("resume")

    async def send_digits(self, digits: str) -> None:
        """Send DTMF into the current call (menu's ``/sndcode``): RFC 4733 events when
        telephone-event was agreed, one after the other."""
        await self.command("sndcode", digits)

    @contextlib.asynccontextmanager
    async def events(self) -> AsyncIterator[BaresipEvents]:
        """The events ctrl_tcp sends its connected clients (CALL_DTMF_START, ...), from
        now until the block ends."""
        reader, writer = await asyncio.open_connection(LOOPBACK, self.ctrl_port)
        try:
            # a command answered: the connection is among those that events go to
            await _request(reader, writer, "reginfo")
            yield BaresipEvents(reader)
        finally:
            writer.close()

    # --- the log (``wait_for`` and ``log_mark`` come from PeerHandle) -----------------------

    def _registered_pattern(self) -> str:
        # e.g. "bob@127.0.0.1: {0/UDP/v4} 200 OK (kamailio) [1 binding]"
        return rf"{re.escape(self.user)}@\S+: \{{\d+/{self.transport.upper()}/v4\}} 200 OK"

    async def wait_registered(self, *, since: int = 0, timeout: float = 10.0) -> None:
        await self.wait_for(self._registered_pattern(), since=since, timeout=timeout)

    # --- recordings -----------------------------------------------------------------------------

    def recordings(self) -> list[Path]:
        """Every WAV written by ``sndfile``, oldest first (``*-enc.wav`` sent, ``*-dec.wav``
        received)."""
        return sorted(self.recordings_dir.glob("*.wav"), key=lambda p: p.stat().st_mtime_ns)

    def received_recordings(self) -> list[Path]:
        return [p for p in self.recordings() if p.name.endswith("-dec.wav")]

    def sent_recordings(self) -> list[Path]:
        return [p for p in self.recordings() if p.name.endswith("-enc.wav")]


class BaresipEvents:
    """ctrl_tcp's events on one connection (netstrings of JSON with ``"event": true``)."""

    def __init__(self, reader: asyncio.StreamReader) -> None:
        self._reader = reader

    async def next(self, kind: str) -> dict[str, Any]:
        """The next event of type ``kind`` (e.g. "CALL_DTMF_START"); others are skipped."""
        while True:
            message = await _read_netstring(self._reader)
            if message.get("event") and message.get("type") == kind:
                return message

    async def dtmf(self, count: int, timeout: float = 10.0) -> str:
        """The keys of the next ``count`` DTMF digits baresip received (from RTP events or
        SIP INFO), in order: its CALL_DTMF_START events."""
        keys = ""
        async with asyncio.timeout(timeout):
            while len(keys) < count:
                keys += str((await self.next("CALL_DTMF_START")).get("param"))
        return keys


async def _read_netstring(reader: asyncio.StreamReader) -> dict[str, Any]:
    """One ctrl_tcp message: the netstring "<length>:<json>,"."""
    length = int((await reader.readuntil(b":"))[:-1])
    message: dict[str, Any] = json.loads((await reader.readexactly(length + 1))[:-1])
    return message


async def _request(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    name: str,
    params: str | None = None,
) -> dict[str, Any]:
    """Send the command ``/name params`` and return its response (events interleaved with
    it are skipped)."""
    token = f"{name}-{time.monotonic_ns()}"
    request: dict[str, Any] = {"command": name, "token": token}
    if params is not None:
        request["params"] = params
    body = json.dumps(request).encode()
    writer.write(b"%d:%s," % (len(body), body))
    await writer.drain()
    while True:
        message = await _read_netstring(reader)
        if message.get("response") and message.get("token") == token:
            return message


def _account_line(
    user: str,
    *,
    password: str | None,
    registrar: Kamailio | None,
    transport: str,
    answermode: str,
    codecs: tuple[str, ...],
    extra: str,
) -> str:
    params = [f"answermode={answermode}", f"audio_codecs={','.join(codecs)}", "ptime=20"]
    if registrar is None:
        domain = LOOPBACK
        params.append("regint=0")
    else:
        domain = registrar.domain
        password = registrar.users[user] if password is None else password
        params.append(f'outbound="{registrar.outbound_proxy(transport)}"')
        params.append("regint=600")
    if password is not None:
        params.append(f"auth_pass={password}")
    if extra:
        params.append(extra)
    return f"<sip:{user}@{domain};transport={transport}>;" + ";".join(params)


#: what baresip prints when a port it was given is taken: "ua: SIP Transport failed:
#: Address already in use" (and exits with 98) for sip_listen, "ctrl_tcp: failed to listen
#: on TCP 127.0.0.1:PORT (Address already in use)" for ctrl_tcp (and runs on without it)
BARESIP_BIND_FAILURE = re.compile(
    r"SIP Transport failed: Address already in use|failed to listen on .*Address already in use"
)


def start_baresip(
    workdir: Path,
    *,
    user: str,
    audio_file: Path,
    registrar: Kamailio | None = None,
    password: str | None = None,
    transport: str = "udp",
    answermode: str = "auto",
    codecs: tuple[str, ...] = ("PCMA", "PCMU"),
    account_params: str = "",
    modules: tuple[str, ...] = (),
    rtcp_mux: bool = False,
    certificate: Path | None = None,
    cafile: Path | None = None,
    sip_trace: bool = True,
    wait_registered: bool = True,
    timeout: float = 10.0,
) -> Baresip:
    """Start baresip for ``user`` in ``workdir``.

    registrar     a kamailio to register at (password from its users unless given); its
                  ``outbound_proxy`` carries every request. None: a direct account, no REGISTER.
    transport     "udp", "tcp" or "tls" towards the registrar (TLS trusts ``registrar.cafile``)
    answermode    "auto", "manual" or "early"
    modules       more modules to load, e.g. ("srtp.so",) for SDES-SRTP with
                  ``account_params="mediaenc=srtp-mand"`` (RTP/SAVP) or ``mediaenc=srtp``
                  (best effort: a=crypto in RTP/AVP), ("plc.so",) for concealment; they
                  load before sndfile, so its recording is what a filter such as plc made;
                  ("dtls_srtp.so",) with ``mediaenc=dtls_srtp`` for DTLS-SRTP
    rtcp_mux      offer and accept rtcp-mux (RFC 5761)
    certificate   a PEM with certificate and key, for calls to this baresip over TLS
    wait_registered  return only once the registrar answered 200 (when there is one)
    """
    config_dir = workdir / "config"
    recordings_dir = workdir / "recordings"
    config_dir.mkdir(parents=True, exist_ok=True)
    recordings_dir.mkdir(parents=True, exist_ok=True)
    cafile = cafile or (registrar.cafile if registrar is not None else None)

    def start() -> Baresip:
        sip_port = free_port("both", count=2)
        ctrl_port = free_port("tcp")
        rtp_low = free_port_range(_RTP_PORTS)

        config = {
            "poll_method": "epoll",
            "sip_listen": f"{LOOPBACK}:{sip_port}",
            "call_local_timeout": "120",
            "call_max_calls": "4",
            "audio_player": "aubridge,nil",
            "audio_source": f"aufile,{audio_file}",
            "audio_alert": "aubridge,nil",
            "rtp_ports": f"{rtp_low}-{rtp_low + _RTP_PORTS - 1}",
            "rtcp_mux": "yes" if rtcp_mux else "no",
            # "lo" fails in this sandbox ("could not get network address"); the address works
            "net_interface": LOOPBACK,
            "dns_server": f"{LOOPBACK}:53",
            "module_path": "/usr/lib/baresip/modules",
            "ctrl_tcp_listen": f"{LOOPBACK}:{ctrl_port}",
            "snd_path": str(recordings_dir),
        }
        if cafile is not None:
            config["sip_cafile"] = str(cafile)
        if certificate is not None:
            config["sip_certificate"] = str(certificate)
        loaded = [
            ("module", "g711.so"),
            ("module", "aufile.so"),
            ("module", "aubridge.so"),
            *[("module", name) for name in modules],  # codecs, and filters that run before
            ("module", "sndfile.so"),
            ("module_tmp", "uuid.so"),
            ("module_tmp", "account.so"),
            ("module_app", "contact.so"),
            ("module_app", "menu.so"),
            ("module_app", "ctrl_tcp.so"),
        ]
        lines = [f"{key}\t\t{value}" for key, value in config.items()]
        lines += [f"{key}\t\t{value}" for key, value in loaded]
        (config_dir / "config").write_text("\n".join(lines) + "\n", encoding="utf-8")
        account = _account_line(
            user,
            password=password,
            registrar=registrar,
            transport=transport,
            answermode=answermode,
            codecs=codecs,
            extra=account_params,
        )
        (config_dir / "accounts").write_text(account + "\n", encoding="utf-8")
        (config_dir / "contacts").write_text("", encoding="utf-8")

        argv = ["baresip", "-f", str(config_dir)] + (["-s"] if sip_trace else [])
        log_path = workdir / "baresip.log"
        since = log_path.stat().st_size if log_path.exists() else 0  # an earlier attempt's log
        process = start_peer(
            f"baresip {user}", argv, log_path=log_path, cwd=workdir, line_buffered=True
        )
        phone = Baresip(
            user=user,
            aor=f"sip:{user}@{registrar.domain if registrar else LOOPBACK}",
            transport=transport,
            process=process,
            config_dir=config_dir,
            sip_port=sip_port,
            ctrl_port=ctrl_port,
            rtp_ports=(rtp_low, rtp_low + _RTP_PORTS - 1),
            recordings_dir=recordings_dir,
            registrar=registrar,
        )
        try:
            wait_until(
                process,
                lambda: _ready(phone, since),
                what="'baresip is ready' and its ctrl_tcp port",
                timeout=timeout,
            )
            if registrar is not None and wait_registered:
                wait_until(
                    process,
                    lambda: log_has(phone.log_path, phone._registered_pattern()) is not None,
                    what=f"registration of {user} at kamailio (200 OK)",
                    timeout=timeout,
                )
        except BaseException:
            phone.stop()
            raise
        return phone

    return on_free_ports(start, BARESIP_BIND_FAILURE)


_READY_OR_NOT = re.compile(rf"(?P<failure>{BARESIP_BIND_FAILURE.pattern})|baresip is ready")


def _ready(phone: Baresip, since: int) -> bool:
    """baresip said it is ready, with no port taken before (its log from ``since``, one
    search: a bind failure is printed before "baresip is ready"), and its ctrl_tcp port
    accepts; a port taken raises PeerStartError (baresip runs on without ctrl_tcp)."""
    match = log_has(phone.log_path, _READY_OR_NOT, since)
    if match is None:
        return False
    if match["failure"]:
        raise phone.process.start_failure("a port it was given was taken")
    return _accepts(phone.ctrl_port)


def _accepts(port: int) -> bool:
    try:
        with socket.create_connection((LOOPBACK, port), timeout=0.5):
            return True
    except OSError:
        return False
