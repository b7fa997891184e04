"""``voip parse``: a SIP message or an SDP, read and judged as a user agent would.

``voip parse`` reads a SIP message (or, with ``--sdp``, a session description) and
prints it parsed. Its exit status is 0 when the input is acceptable and 1 when not, in
which case the last line is ``status: <code> <reason>``: what a user agent answers.
"""

from __future__ import annotations

import dataclasses
import json
import sys
from collections.abc import Iterator, Sequence
from typing import Any, BinaryIO

import click

import sdp
from voip.sip import Message, NameAddress, Request, SipError, check_message, parse_message
from voip.sip.message import Response

# Typed fields shown by `voip parse`, in this order, when present.
_SHOWN_FIELDS = (
    ("via", "Via"),
    ("from_", "From"),
    ("to", "To"),
    ("call_id", "Call-ID"),
    ("cseq", "CSeq"),
    ("max_forwards", "Max-Forwards"),
    ("contact", "Contact"),
    ("route", "Route"),
    ("record_route", "Record-Route"),
    ("content_type", "Content-Type"),
    ("content_length", "Content-Length"),
    ("expires", "Expires"),
    ("allow", "Allow"),
    ("supported", "Supported"),
    ("require", "Require"),
    ("www_authenticate", "WWW-Authenticate"),
    ("proxy_authenticate", "Proxy-Authenticate"),
    ("authorization", "Authorization"),
    ("proxy_authorization", "Proxy-Authorization"),
    ("reason", "Reason"),
    ("session_expires", "Session-Expires"),
    ("min_se", "Min-SE"),
    ("rseq", "RSeq"),
    ("rack", "RAck"),
    ("event", "Event"),
    ("refer_to", "Refer-To"),
    ("replaces", "Replaces"),
)

# The answer to an offer that cannot be read (RFC 3261 §13.3.1.1, RFC 3264 §6).
SDP_REJECT_STATUS = 488


def to_jsonable(value: Any) -> Any:
    """Dataclasses, tuples and dicts as JSON values; URIs and other objects as text."""
    if isinstance(value, NameAddress):
        return {
            "uri": to_jsonable(value.uri),
            "display_name": value.display_name,
            "params": to_jsonable(value.params),
            "text": str(value),
        }
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        out = {f.name: to_jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
        if hasattr(value, "__str__") and type(value).__str__ is not object.__str__:
            out["text"] = str(value)
        return out
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, list | tuple | frozenset | set | Sequence):
        return [to_jsonable(v) for v in value]
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)


def _read(source: BinaryIO) -> bytes:
    return source.read()


def _typed_fields(message: Message) -> Iterator[tuple[str, Any]]:
    for attribute, name in _SHOWN_FIELDS:
        key = name.lower()
        if key not in message.headers:
            continue
        yield name, getattr(message, attribute)


def _body_sdp(message: Message) -> tuple[Any, str | None]:
    content_type = message.content_type
    if not message.body or content_type is None or content_type.mime != "application/sdp":
        return None, None
    try:
        return sdp.parse(message.body), None
    except sdp.SdpError as error:
        return None, str(error)


def _message_json(message: Message, verdict: SipError | None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if isinstance(message, Request):
        out.update(kind="request", method=message.method)
        out["uri"] = (
            to_jsonable(message.uri) if verdict is None else message.start_line().split(" ")[1]
        )
    elif isinstance(message, Response):
        out.update(kind="response", status=message.status, reason=message.reason_phrase)
    out["headers"] = [[name, value] for name, value in message.headers]
    typed: dict[str, Any] = {}
    if verdict is None:
        for name, value in _typed_fields(message):
            typed[name] = to_jsonable(value)
    out["fields"] = typed
    out["body"] = message.body.decode("utf-8", "replace")
    if verdict is None:
        description, sdp_error = _body_sdp(message)
        if description is not None:
            out["sdp"] = to_jsonable(description)
        if sdp_error is not None:
            out["sdp_error"] = sdp_error
    return out


def _print_message(message: Message, verdict: SipError | None) -> None:
    kind = "request" if isinstance(message, Request) else "response"
    click.echo(f"{kind}: {message.start_line()}")
    if isinstance(message, Request):
        click.echo(f"  method: {message.method}")
        if verdict is None:
            click.echo(f"  request-uri: {message.uri!r}")
    if verdict is None:
        for name, value in _typed_fields(message):
            values = (
                value if isinstance(value, Sequence) and not isinstance(value, str) else (value,)
            )
            for item in values:
                click.echo(
                    f"  {name}: {item!r}"
                    if not isinstance(item, str | int)
                    else f"  {name}: {item}"
                )
        shown = {name.lower() for _, name in _SHOWN_FIELDS}
        for name, value in message.headers:
            if _key(name) not in shown:
                click.echo(f"  {name}: {value}  (not interpreted)")
    else:
        for name, value in message.headers:
            click.echo(f"  {name}: {value}")
    click.echo(f"  body: {len(message.body)} bytes")
    if verdict is None:
        description, sdp_error = _body_sdp(message)
        if description is not None:
            click.echo("  sdp:")
            for line in str(description).splitlines():
                click.echo(f"    {line}")
        if sdp_error is not None:
            click.echo(f"  sdp: not readable ({sdp_error})")


def _key(name: str) -> str:
    from voip.sip.headers import header_key

    return header_key(name)


def _status_line(error: SipError) -> str:
    if error.is_response:
        return f"status: discard {error.reason}"
    return f"status: {error.status} {error.reason}"


@click.command("parse")
@click.argument("source", type=click.File("rb"), default="-")
@click.option("--sdp", "is_sdp", is_flag=True, help="Read an SDP (RFC 8866) instead of SIP.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
def parse_command(source: BinaryIO, is_sdp: bool, as_json: bool) -> None:
    """Parse a SIP message or an SDP from SOURCE (a file, or - for stdin).

    Exits 0 when the input is acceptable to a user agent. Otherwise exits 1 and the
    last line reads "status: <code> <reason>", the response a UA answers with (or
    "status: discard <reason>" for a malformed response, which is dropped).
    """
    data = _read(source)
    if is_sdp:
        _parse_sdp(data, as_json)
        return
    try:
        message = parse_message(data)
    except SipError as error:
        if as_json:
            click.echo(
                json.dumps({"valid": False, "status": _status(error), "reason": error.reason})
            )
        click.echo(_status_line(error))
        sys.exit(1)
    verdict: SipError | None = None
    try:
        check_message(message)
    except SipError as error:
        verdict = error
    if as_json:
        out = _message_json(message, verdict)
        out["valid"] = verdict is None
        if verdict is not None:
            out["status"] = _status(verdict)
            out["reason"] = verdict.reason
        click.echo(json.dumps(out, indent=2, ensure_ascii=False))
    else:
        _print_message(message, verdict)
    if verdict is not None:
        click.echo(_status_line(verdict))
        sys.exit(1)
    click.echo("status: valid")


def _status(error: SipError) -> int | str:
    return "discard" if error.is_response else error.status


def _parse_sdp(data: bytes, as_json: bool) -> None:
    try:
        description = sdp.parse(data)
    except sdp.SdpError as error:
        if as_json:
            click.echo(
                json.dumps(
                    {"valid": False, "status": SDP_REJECT_STATUS, "reason": str(error)},
                    ensure_ascii=False,
                )
            )
        click.echo(f"status: {SDP_REJECT_STATUS} {error}")
        sys.exit(1)
    if as_json:
        out = to_jsonable(description)
        out["valid"] = True
        click.echo(json.dumps(out, indent=2, ensure_ascii=False))
    else:
        click.echo(str(description).rstrip("\r\n").replace("\r\n", "\n"))
    click.echo("status: valid")
