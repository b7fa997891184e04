"""Kamailio as registrar and record-routing proxy with digest auth, on loopback.

``start_kamailio`` runs ``kamailio.cfg`` (beside this module) in the foreground with free ports:
UDP and TCP on one port, TLS on another with a certificate from ``pki.py``, and on request SIP
over WebSocket (RFC 7118: ws, and wss with ``pki``) on ports of their own. Contacts live in
kamailio's memory only, so a restart forgets every registration. The fixture reads the location
table and the users through kamailio's JSON-RPC datagram socket (``ul.dump``, ``htable.dump``);
``kamcmd -s <ctl_socket> ul.dump`` shows the same to a person.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import shutil
import socket
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ._process import (
    LOOPBACK,
    PeerHandle,
    PeerProcess,
    free_port,
    on_free_ports,
    port_in_use,
    start_peer,
    wait_until,
)
from .pki import LoopbackPki

CONFIG = Path(__file__).with_name("kamailio.cfg")

_TRANSPORTS = ("udp", "tcp", "tls", "ws", "wss")
_rpc_ids = itertools.count(1)


class KamailioRpcError(RuntimeError):
    pass


@dataclass(frozen=True, slots=True)
class Contact:
    """One binding of an address-of-record in kamailio's location table (``ul.dump``)."""

    address: str
    expires: int
    call_id: str
    cseq: int
    user_agent: str
    received: str | None
    socket: str

    @classmethod
    def from_rpc(cls, item: dict[str, Any]) -> Contact:
        received = item.get("Received", "[not set]")
        return cls(
            address=item["Address"],
            expires=int(item["Expires"]) if str(item["Expires"]).isdigit() else -1,
            call_id=item.get("Call-ID", ""),
            cseq=int(item.get("CSeq", 0)),
            user_agent=item.get("User-Agent", ""),
            received=None if received == "[not set]" else received,
            socket=item.get("Socket", ""),
        )


def _rpc_request(method: str, params: Sequence[str | int]) -> bytes:
    request = {"jsonrpc": "2.0", "method": method, "params": list(params), "id": next(_rpc_ids)}
    return json.dumps(request).encode()


def _rpc_result(method: str, reply: bytes) -> Any:
    answer = json.loads(reply)
    if "error" in answer:
        error = answer["error"]
        raise KamailioRpcError(f"{method}: {error.get('code')} {error.get('message')}")
    return answer.get("result")


@dataclass(eq=False)
class Kamailio(PeerHandle):
    """A running kamailio: where it listens, who may register, how to look at its state."""

    process: PeerProcess
    udp_port: int
    tls_port: int | None
    cafile: Path | None
    users: dict[str, str]
    defines: tuple[str, ...]
    socket_dir: Path
    #: SIP over WebSocket (``start_kamailio(websocket=True)``): ws, and wss with TLS
    ws_port: int | None = None
    wss_port: int | None = None
    host: str = LOOPBACK
    domain: str = LOOPBACK
    #: the digest realm of its challenges (the From domain unless started with ``realm``)
    realm: str = LOOPBACK
    _client_sockets: itertools.count[int] = field(default_factory=itertools.count, repr=False)

    @property
    def pid(self) -> int:
        """The pid of kamailio's main process (``process.pid`` is the shell that guards its
        process group and that ``stop`` signals)."""
        for entry in self.rpc_sync("core.psx"):
            if entry["IDX"] == 0:
                return int(entry["PID"])
        raise KamailioRpcError("core.psx: no main process")

    @property
    def tcp_port(self) -> int:
        # UDP and TCP share one port, as on a real SIP server.
        return self.udp_port

    @property
    def rpc_socket(self) -> Path:
        return self.socket_dir / "rpc.sock"

    @property
    def ctl_socket(self) -> str:
        """For a person: ``kamcmd -s <ctl_socket> ul.dump``."""
        return f"unixs:{self.socket_dir / 'ctl.sock'}"

    def port(self, transport: str = "udp") -> int:
        if transport == "tls":
            if self.tls_port is None:
                raise ValueError("this kamailio was started without TLS")
            return self.tls_port
        if transport in ("ws", "wss"):
            port = self.ws_port if transport == "ws" else self.wss_port
            if port is None:
                raise ValueError(f"this kamailio was started without {transport}")
            return port
        if transport not in _TRANSPORTS:
            raise ValueError(f"unknown transport {transport!r}")
        return self.udp_port

    def aor(self, user: str) -> str:
        """The address-of-record of ``user``: ``sip:alice@127.0.0.1``."""
        return f"sip:{user}@{self.domain}"

    def uri(self, user: str | None = None, transport: str = "udp") -> str:
        """A URI that reaches kamailio itself: ``sip:[user@]127.0.0.1:port;transport=...``."""
        userinfo = f"{user}@" if user else ""
        return f"sip:{userinfo}{self.host}:{self.port(transport)};transport={transport}"

    def outbound_proxy(self, transport: str = "udp") -> str:
        return f"sip:{self.host}:{self.port(transport)};transport={transport};lr"

    # --- JSON-RPC over the datagram socket --------------------------------------------------

    def _client_socket(self) -> tuple[socket.socket, Path]:
        path = self.socket_dir / f"client-{os.getpid()}-{next(self._client_sockets)}.sock"
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        sock.bind(str(path))
        return sock, path

    def rpc_sync(self, method: str, *params: str | int, timeout: float = 5.0) -> Any:
        """Call a kamailio RPC command (``kamcmd`` syntax) and return its JSON result."""
        sock, path = self._client_socket()
        try:
            sock.settimeout(timeout)
            sock.sendto(_rpc_request(method, params), str(self.rpc_socket))
            return _rpc_result(method, sock.recv(1 << 20))
        finally:
            sock.close()
            path.unlink(missing_ok=True)

    async def rpc(self, method: str, *params: str | int, timeout: float = 5.0) -> Any:
        """``rpc_sync`` without blocking the event loop (the UA under test keeps running)."""
        loop = asyncio.get_running_loop()
        sock, path = self._client_socket()
        try:
            sock.setblocking(False)
            await loop.sock_sendto(sock, _rpc_request(method, params), str(self.rpc_socket))
            reply = await asyncio.wait_for(loop.sock_recv(sock, 1 << 20), timeout)
            return _rpc_result(method, reply)
        finally:
            sock.close()
            path.unlink(missing_ok=True)

    # --- location table -----------------------------------------------------------------------

    @staticmethod
    def _bindings(dump: Any) -> dict[str, list[Contact]]:
        table: dict[str, list[Contact]] = {}
        for domain in dump.get("Domains", []):
            for record in domain["Domain"].get("AoRs", []):
                info = record["Info"]
                contacts = [Contact.from_rpc(c["Contact"]) for c in info.get("Contacts", [])]
                table[info["AoR"]] = contacts
        return table

    def bindings_sync(self) -> dict[str, list[Contact]]:
        """Every AoR (user part, e.g. "alice") with its contacts."""
        return self._bindings(self.rpc_sync("ul.dump"))

    async def bindings(self) -> dict[str, list[Contact]]:
        return self._bindings(await self.rpc("ul.dump"))

    async def contacts(self, user: str) -> list[Contact]:
        """The contacts registered for ``user`` (empty if none)."""
        return (await self.bindings()).get(user, [])

    async def wait_registered(
        self, user: str, *, count: int = 1, timeout: float = 10.0
    ) -> list[Contact]:
        """Wait until ``user`` has at least ``count`` contacts; return them."""
        return await self._wait_contacts(user, lambda n: n >= count, f">= {count}", timeout)

    async def wait_unregistered(self, user: str, *, timeout: float = 10.0) -> None:
        await self._wait_contacts(user, lambda n: n == 0, "no", timeout)

    async def _wait_contacts(
        self, user: str, done: Any, what: str, timeout: float
    ) -> list[Contact]:
        deadline = time.monotonic() + timeout
        while True:
            contacts = await self.contacts(user)
            if done(len(contacts)):
                return contacts
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"kamailio: {what} contacts for {user!r} within {timeout:g} s; "
                    f"location table: {await self.bindings()}"
                )
            await asyncio.sleep(0.05)

    async def remove_contacts(self, user: str) -> None:
        """Forget every contact of ``user`` (``ul.rm location user``)."""
        await self.rpc("ul.rm", "location", user)

    def clear_location_sync(self) -> None:
        """Forget every contact of every user: a clean registrar for the next test."""
        for user in self.bindings_sync():
            self.rpc_sync("ul.rm", "location", user)

    async def add_user(self, name: str, password: str) -> None:
        """Another user for this kamailio's lifetime (``htable.sets users name password``)."""
        await self.rpc("htable.sets", "users", name, password)
        self.users[name] = password

    def read_users_sync(self) -> dict[str, str]:
        return {
            slot["name"]: slot["value"]
            for entry in self.rpc_sync("htable.dump", "users")
            for slot in entry["slot"]
        }

    def stop(self) -> int | None:
        code = self.process.stop()
        shutil.rmtree(self.socket_dir, ignore_errors=True)
        return code

    def halt(self) -> int | None:
        """Stop kamailio by pid, as a crash or an operator would, keeping what ``resume``
        needs: every TCP/TLS connection through it is cut, its memory (the location
        table, dialogs) lost. Blocks for up to 10 s (``asyncio.to_thread`` from a test)."""
        code = self.process.stop()
        for name in ("rpc.sock", "ctl.sock"):
            (self.socket_dir / name).unlink(missing_ok=True)
        return code

    def resume(self, timeout: float = 15.0) -> None:
        """Start kamailio again after ``halt``, on the same ports with the same
        configuration (its log goes on in the same file); returns once it serves."""
        process = self.process
        self.process = start_peer(
            "kamailio",
            process.argv,
            log_path=process.log_path,
            cwd=process.log_path.parent,
            group_guard=True,
        )
        wait_until(self.process, lambda: _ready(self), what="restarted", timeout=timeout)


def _tls_profile(path: Path, pki: LoopbackPki) -> None:
    # The tls module's own file: without it kamailio reads /etc/kamailio/tls.cfg.
    path.write_text(
        "[server:default]\n"
        "method = TLSv1.2+\n"
        "verify_certificate = no\n"
        "require_certificate = no\n"
        f"certificate = {pki.certfile}\n"
        f"private_key = {pki.keyfile}\n"
        "\n"
        "[client:default]\n"
        "method = TLSv1.2+\n"
        "verify_certificate = no\n"
        "require_certificate = no\n",
        encoding="utf-8",
    )


def start_kamailio(
    run_dir: Path,
    *,
    pki: LoopbackPki | None = None,
    websocket: bool = False,
    auth_fail_403: bool = False,
    noauth: bool = False,
    debug: bool = False,
    realm: str | None = None,
    next_hop: str | None = None,
    redirect: bool = False,
    relay_net: str | None = None,
    outbound: bool = False,
    flow_timer: int | None = None,
    stun: bool = False,
    children: int = 4,
    shared_memory_mb: int = 512,
    timeout: float = 15.0,
) -> Kamailio:
    """Start kamailio on free loopback ports; TLS too when ``pki`` is given.

    ``websocket``: SIP over WebSocket too (RFC 7118, the websocket module): ws on a port of
    its own, and wss on another when ``pki`` is given (``Kamailio.port("ws")``).

    ``auth_fail_403``: a wrong password or an unknown user gets 403 instead of a new challenge.
    ``noauth``: nobody is challenged.
    ``realm``: the digest realm of the challenges (default: the From domain, 127.0.0.1).
    ``next_hop``: a SIP URI (another kamailio's ``outbound_proxy()``) to which initial
    requests for our users go instead of the location table: two proxies in a row.
    ``redirect``: a redirect server: an INVITE to one of our users is answered 302 with
    the user's contacts instead of being relayed.
    ``relay_net``: a regular expression of next-hop addresses relayed to besides
    loopback, for a kamailio started inside a network namespace the test created (from a
    thread that entered it: ``support.netns.run_in``), whose addresses exist only there.
    ``outbound``: the registrar supports SIP Outbound (RFC 5626, the outbound module): a
    REGISTER that supports it gets ``Require: outbound`` and ``Flow-Timer: flow_timer``
    (120 s unless given) in its 200.
    ``stun``: STUN Binding Requests on the SIP UDP port are answered (the stun module; the
    keep-alives of RFC 5626 §4.4.2 on outbound flows over UDP).
    """
    run_dir.mkdir(parents=True, exist_ok=True)
    options: list[str] = []
    if pki is not None:
        tls_cfg = run_dir / "tls.cfg"
        _tls_profile(tls_cfg, pki)
        options += ["WITH_TLS", f'TLS_CFG="{tls_cfg}"']
    if websocket:
        options.append("WITH_WEBSOCKET")
    if auth_fail_403:
        options.append("WITH_AUTH_FAIL_403")
    if noauth:
        options.append("WITH_NOAUTH")
    if debug:
        options.append("WITH_DEBUG")
    if realm is not None:
        options.append(f'REALM="{realm}"')
    if redirect:
        options.append("WITH_REDIRECT")
    if next_hop is not None:
        options.append(f'NEXT_HOP="{next_hop}"')
    if relay_net is not None:
        options.append(f'RELAY_NET="{relay_net}"')
    if outbound:
        options.append("WITH_OUTBOUND")
        if flow_timer is not None:
            options.append(f"FLOW_TIMER={flow_timer}")
    if stun:
        options.append("WITH_STUN")
    return on_free_ports(
        lambda: _start_on_free_ports(
            run_dir, options, pki, children, shared_memory_mb, realm, timeout
        )
    )


def _start_on_free_ports(  # noqa: PLR0917
    run_dir: Path,
    options: list[str],
    pki: LoopbackPki | None,
    children: int,
    shared_memory_mb: int,
    realm: str | None,
    timeout: float,
) -> Kamailio:
    # Unix socket paths are limited to 107 bytes: a short directory of their own.
    socket_dir = Path(tempfile.mkdtemp(prefix="voip-kam-"))
    udp_port = free_port("both")
    defines = [
        f"SIP_PORT={udp_port}",
        f"KAM_CHILDREN={children}",
        f'CTL_SOCK="unixs:{socket_dir / "ctl.sock"}"',
        f'RPC_SOCK="{socket_dir / "rpc.sock"}"',
    ]
    tls_port = ws_port = wss_port = None
    if pki is not None:
        tls_port = free_port("tcp")
        defines.append(f"TLS_PORT={tls_port}")
    if "WITH_WEBSOCKET" in options:
        ws_port = free_port("tcp")
        defines.append(f"WS_PORT={ws_port}")
        if pki is not None:
            wss_port = free_port("tcp")
            defines.append(f"WSS_PORT={wss_port}")
    defines += options
    argv = ["kamailio", "-f", str(CONFIG), "-DD", "-E", "-m", str(shared_memory_mb)]
    for define in defines:
        argv += ["-A", define]
    process = start_peer(
        "kamailio", argv, log_path=run_dir / "kamailio.log", cwd=run_dir, group_guard=True
    )
    kam = Kamailio(
        process=process,
        udp_port=udp_port,
        tls_port=tls_port,
        cafile=None if pki is None else pki.cafile,
        users={},
        defines=tuple(defines),
        socket_dir=socket_dir,
        ws_port=ws_port,
        wss_port=wss_port,
        realm=realm or LOOPBACK,
    )
    try:
        wait_until(process, lambda: _ready(kam), what="listening sockets and RPC", timeout=timeout)
        kam.users.update(kam.read_users_sync())
    except BaseException:
        kam.stop()
        raise
    return kam


def _ready(kam: Kamailio) -> bool:
    if not kam.rpc_socket.exists() or not port_in_use(kam.udp_port, "udp"):
        return False
    for port in (kam.tcp_port, kam.tls_port, kam.ws_port, kam.wss_port):
        if port is not None and not port_in_use(port, "tcp"):
            return False
    try:
        kam.rpc_sync("core.version", timeout=0.5)
    except (OSError, KamailioRpcError):
        return False
    return True
