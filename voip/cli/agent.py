"""What every networked ``voip`` command shares: the account and transport options, the
user agent they describe, its SIP trace (``-v``, ``--trace``, ``--ladder``, ``--svg``),
and the words for a failed request (the SIP status, what it means, what to do)."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import ssl
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, TypeVar

import click

from voip.call import Call, EndReason
from voip.cli.account import SRTP_MODES, Account, load_account
from voip.cli.exits import CommandFailed, ExitCode, exit_code_for_status
from voip.ladder import Ladder
from voip.pcap import Capture
from voip.sip import Credentials, SipUri, parse_uri
from voip.sip.errors import SipError
from voip.trace import SipTrace, TraceRecord
from voip.transport import Endpoint, client_context, server_context
from voip.useragent import UserAgent

__all__ = ["Softphone", "account_options", "open_capture", "softphone", "trace_options"]

F = TypeVar("F", bound=Callable[..., Any])

#: what each refusal means and what to do about it
HINTS = {
    400: "The server could not read our request: run with -v and look at it.",
    403: "The server forbids it: check the account (user, domain) and the target.",
    404: "No such user there: check the URI.",
    405: "The server does not take this method.",
    408: "Nobody answered in time: try again later.",
    410: "The user has gone: check the URI.",
    480: "The callee is not reachable now (not registered, or away): try again later.",
    484: "The address is incomplete: check the URI.",
    486: "The callee is busy: try again later.",
    487: "The call was cancelled before it was answered.",
    488: "No common codec or media: try another --codec.",
    500: "The server failed: try again later.",
    503: "The service is unavailable: check that the server runs, then try again later.",
    600: "The callee is busy everywhere: try again later.",
    603: "The callee declined the call.",
    604: "The callee does not exist anywhere: check the URI.",
}


def account_options(function: F) -> F:
    """Options naming the account and how to reach the server."""
    options = [
        click.option("--config", type=click.Path(dir_okay=False), help="TOML account file."),
        click.option("--account", "account_name", help="Account of the TOML file to use."),
        click.option("--user", help="Our user name (the user part of our address)."),
        click.option("--domain", help="Our domain (the host part of our address)."),
        click.option("--proxy", help="Outbound proxy URI: every request goes there first."),
        click.option("--auth-user", help="Digest user name, if not --user."),
        click.option(
            "--password-file",
            type=click.Path(dir_okay=False),
            help="File holding the password (or set VOIP_PASSWORD).",
        ),
        click.option("--ask-password", is_flag=True, help="Prompt for the password."),
        click.option(
            "--transport",
            type=click.Choice(["udp", "tcp", "tls", "ws", "wss"]),
            default=None,
            help="Transport to listen on and send with (default udp). TLS without --cert "
            "listens on nothing: requests go out over the connection this agent opens, and "
            "requests to it come back on that connection. So do WS and WSS (SIP over "
            "WebSocket, RFC 7118: a client of a WebSocket server) unless given --listen "
            "(ws) or --cert (wss).",
        ),
        click.option(
            "--listen",
            default="0.0.0.0:0",
            show_default=True,
            metavar="HOST:PORT|none",
            help="Local address for SIP (port 0: any free one); 'none' for TCP or TLS: no "
            "listener, only the connections this agent opens (to its proxy or registrar).",
        ),
        click.option(
            "--ca-file",
            "--ca",
            "ca_file",
            type=click.Path(exists=True, dir_okay=False),
            help="CA certificates to trust for TLS servers (default: the system's).",
        ),
        click.option(
            "--srtp",
            type=click.Choice(SRTP_MODES),
            default=None,
            help="Media protection (default off): 'optional' offers SRTP keyed by SDES "
            "(RFC 4568) and takes plain RTP; 'required' refuses plain RTP; 'dtls' keys SRTP "
            "by DTLS only (RFC 5763/5764); 'dtls-preferred' offers DTLS and answers DTLS or "
            "SDES.",
        ),
        click.option("--cert", type=click.Path(dir_okay=False), help="TLS certificate to serve."),
        click.option("--key", type=click.Path(dir_okay=False), help="Its private key."),
        click.option(
            "--timeout",
            type=float,
            default=10.0,
            show_default=True,
            help="Seconds to wait for a first response before calling the server unreachable.",
        ),
    ]
    for option in reversed(options):
        function = option(function)
    return function


def trace_options(function: F) -> F:
    """Options showing the SIP messages: live (-v), as JSON lines, as a ladder."""
    options = [
        click.option("-v", "--verbose", is_flag=True, help="Print every SIP message (stderr)."),
        click.option(
            "--trace",
            "trace_path",
            type=click.Path(dir_okay=False, path_type=Path),
            help="Write every SIP message to this file as JSON lines.",
        ),
        click.option(
            "--pcap",
            "pcap_path",
            type=click.Path(dir_okay=False, path_type=Path),
            help="Write the SIP messages and the calls' RTP/RTCP to this pcap file "
            "(Wireshark, tshark, sngrep).",
        ),
        click.option("--ladder", is_flag=True, help="Print the ladder diagram at the end."),
        click.option(
            "--svg",
            type=click.Path(dir_okay=False, path_type=Path),
            help="Write the ladder diagram as SVG to this file.",
        ),
    ]
    for option in reversed(options):
        function = option(function)
    return function


def split_listen(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit():
        raise click.BadParameter(f"{text!r}: expected HOST:PORT", param_hint="--listen")
    return host.strip("[]") or "0.0.0.0", int(port)


@dataclass
class Softphone:
    """A running agent for one command, with its trace."""

    account: Account
    ua: UserAgent
    trace: SipTrace
    transport: str
    timeout: float
    #: where it listens; None when it only opens connections (``--listen none``)
    local: Endpoint | None
    ladder: bool = False
    svg: Path | None = None
    _jsonl: IO[str] | None = field(default=None, repr=False)

    def uri(self, text: str) -> SipUri:
        """A target as typed: ``bob``, ``bob@host``, ``sip:bob@host`` or ``host:port``; a
        user alone is at our domain."""
        if not text.startswith(("sip:", "sips:", "tel:")):
            if "@" not in text and self.account.domain and ":" not in text and "." not in text:
                text = f"{text}@{self.account.domain}"
            text = f"sip:{text}"
        try:
            uri = parse_uri(text)
        except SipError as error:
            raise CommandFailed(ExitCode.USAGE, f"not a SIP URI: {text} ({error.reason})") from None
        if not isinstance(uri, SipUri):
            raise CommandFailed(ExitCode.USAGE, f"cannot call {text}: only sip: URIs")
        if self.transport != "udp" and "transport" not in uri.params and uri.scheme == "sip":
            uri.params["transport"] = self.transport
        return uri

    @property
    def where(self) -> str:
        """Where it takes SIP: its listener, or its own connections."""
        if self.local is None:
            return f"its own {self.transport.upper()} connections"
        return str(self.local)

    def heard_from_peer(self, call_id: str) -> bool:
        """Whether anything at all came back for ``call_id`` (a response, a request)."""
        return any(not r.sent and r.message.call_id == call_id for r in self.trace)

    def show_ladder(
        self, call_id: str | None = None, *, names: dict[str, str] | None = None
    ) -> None:
        records = list(self.trace) if call_id is None else list(self.trace.of(call_id))
        if not records or not (self.ladder or self.svg):
            return
        ladder = Ladder(records, agent=self.account.user, names=names)
        if self.ladder:
            click.echo(ladder.text(), nl=False)
        if self.svg is not None:
            self.svg.write_text(ladder.svg(), encoding="utf-8")
            click.echo(f"ladder written to {self.svg}", err=True)


@contextlib.asynccontextmanager
async def softphone(
    params: dict[str, Any], *, registrar: str | None = None
) -> AsyncIterator[Softphone]:
    """The agent that the options in ``params`` describe, listening, traced; closed (its
    calls hung up, its registrations removed) at the end."""
    account = load_account(
        {
            "user": params.get("user"),
            "domain": params.get("domain"),
            "proxy": params.get("proxy"),
            "auth_user": params.get("auth_user"),
            "password_file": params.get("password_file"),
            "transport": params.get("transport"),
            "ca_file": params.get("ca_file"),
            "srtp": params.get("srtp"),
            "registrar": registrar,
        },
        config=params.get("config"),
        account=params.get("account_name"),
        ask_password=bool(params.get("ask_password")),
    )
    transport = account.transport
    listen = str(params.get("listen") or "0.0.0.0:0")
    credentials = []
    if account.password is not None:
        credentials.append(Credentials(account.auth_user or account.user, account.password))
    tls_server = None
    if params.get("cert"):
        tls_server = server_context(params["cert"], params.get("key"))
    elif transport in ("tls", "wss") or (transport == "ws" and listen == "0.0.0.0:0"):
        listen = "none"  # a client: its own connections only
    if listen == "none" and transport == "udp":
        raise CommandFailed(
            ExitCode.USAGE,
            "--listen none needs --transport tcp or tls",
            "Over UDP, responses and requests come to a socket this agent listens on.",
        )
    address = None if listen == "none" else split_listen(listen)
    verbose = bool(params.get("verbose"))
    trace_path: Path | None = params.get("trace_path")
    jsonl = trace_path.open("w", encoding="utf-8") if trace_path is not None else None
    ua = UserAgent(
        account.user,
        domain=account.domain,
        display_name=account.display_name,
        credentials=credentials,
        outbound_proxy=account.proxy,
        tls_client=_tls_client(account.ca_file) if transport in ("tls", "wss") else None,
        tls_server=tls_server,
        transports=(transport,),
        srtp=account.srtp,
    )
    trace = SipTrace.attach(ua, jsonl=jsonl, on_record=_print_record if verbose else None)
    pcap_path: Path | None = params.get("pcap_path")
    capture = None
    try:
        if pcap_path is not None:
            capture = open_capture(ua, pcap_path)
        local = None
        if address is not None:
            host, port = address
            try:
                local = await ua.listen(transport, host, port)
            except OSError as error:
                raise CommandFailed(
                    ExitCode.FAILED,
                    f"cannot listen on {transport} {host}:{port}: {error.strerror or error}",
                    "Choose another --listen address or port.",
                ) from error
        phone = Softphone(
            account,
            ua,
            trace,
            transport,
            float(params.get("timeout") or 10.0),
            local,
            ladder=bool(params.get("ladder")),
            svg=params.get("svg"),
            _jsonl=jsonl,
        )
        yield phone
    finally:
        with contextlib.suppress(Exception):
            await ua.close(timeout=3.0)
        if capture is not None:
            capture.close()
        if jsonl is not None:
            jsonl.close()


def open_capture(ua: UserAgent, path: Path) -> Capture:
    """``--pcap``: a capture of ``ua`` written to ``path``, or the error that says why not."""
    try:
        return Capture.attach(ua, path)
    except OSError as error:
        raise CommandFailed(
            ExitCode.USAGE,
            f"cannot write the capture {path}: {error.strerror or error}",
            "Give a writable --pcap path.",
        ) from error


def _tls_client(ca_file: str | None) -> ssl.SSLContext:
    try:
        return client_context(ca_file)
    except (OSError, ssl.SSLError) as error:
        raise CommandFailed(
            ExitCode.USAGE,
            f"cannot use the CA file {ca_file}: {error}",
            "Give a PEM file of CA certificates (--ca FILE, or ca_file in the account).",
        ) from error


def _print_record(record: TraceRecord) -> None:
    click.echo(record.text(), err=True)


def refusal(
    phone: Softphone, what: str, status: int, reason: str, call_id: str, *, register: bool = False
) -> CommandFailed:
    """The error for a request that got no 2xx: unreachable when nothing came back."""
    account = phone.account
    if not phone.heard_from_peer(call_id) and status in (408, 503):
        hint = (
            "Check the address and port, that the server runs, and the transport "
            f"({phone.transport})."
        )
        if "CERTIFICATE_VERIFY_FAILED" in reason:
            hint = (
                "The server's TLS certificate is not trusted: give the CA that signed it "
                "with --ca FILE (or ca_file in the account), and reach the server by the "
                "name or address its certificate holds."
            )
        return CommandFailed(ExitCode.UNREACHABLE, f"{what}: no response ({status} {reason})", hint)
    if status in (401, 407) or (register and status == 403):
        user = account.auth_user or account.user
        if account.password is None:
            return CommandFailed(
                ExitCode.AUTH_FAILED,
                f"{what}: {status} {reason}: the server asks for a password and none was given",
                "Set VOIP_PASSWORD, or use --password-file FILE or --ask-password.",
            )
        return CommandFailed(
            ExitCode.AUTH_FAILED,
            f"{what}: {status} {reason}: the server refused the password of {user!r}",
            "Check the password (VOIP_PASSWORD or the password file) and the user name "
            "(--auth-user).",
        )
    code = exit_code_for_status(status)
    if register and code is ExitCode.BUSY:
        code = ExitCode.REJECTED
    return CommandFailed(code, f"{what}: {status} {reason}", HINTS.get(status))


def end_of_unanswered(phone: Softphone, call: Call, target: str) -> CommandFailed:
    reason = call.end_reason or EndReason("provider", 500, "the call ended")
    failed = refusal(phone, f"call to {target} failed", reason.status, reason.text, call.call_id)
    moved = call.refusal
    if moved is not None and 300 <= moved.status < 400:
        # a 3xx not followed (--max-redirects 0, the limit reached, or a loop): where to
        with contextlib.suppress(SipError):
            contacts = ", ".join(str(contact.uri) for contact in moved.contact)
            if contacts:
                failed.hint = f"It points to: {contacts}."
    return failed


def stop_on_signals(stop: asyncio.Event) -> None:
    """SIGINT and SIGTERM end the command in order (calls hung up, registrations removed)."""
    loop = asyncio.get_running_loop()
    for number in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(number, stop.set)


def status(text: str) -> None:
    """A line of progress, on stderr (stdout holds results)."""
    click.echo(text, err=True)
