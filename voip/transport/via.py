"""The top Via on the way in and the way back (RFC 3261 §18.2.1, §18.2.2, RFC 3581 §4).

A server notes on the top Via where a request really came from (``received``, and
``rport`` when the client asked for it), so that the response finds its way back
through NATs; the response then goes where those parameters say.
"""

from __future__ import annotations

import ipaddress

from voip.sip.errors import SipError
from voip.sip.fields import Via
from voip.sip.message import Request
from voip.transport.endpoint import DEFAULT_PORTS, UDP, Endpoint, unbracket


def same_address(sent_by: str, source: str) -> bool:
    """Whether a Via sent-by host names the source IP (a domain name never does)."""
    if sent_by == source:
        return True
    host = unbracket(sent_by)
    if host == source:
        return True
    try:
        return ipaddress.ip_address(host) == ipaddress.ip_address(source)
    except ValueError:
        return False


def stamp_received(request: Request, source: Endpoint) -> None:
    """Add ``received`` and fill a bare ``rport`` in the top Via of ``request``.

    RFC 3261 §18.2.1: ``received`` when sent-by is a domain name or another address
    than the packet's source. RFC 3581 §4: a bare ``rport`` gets the source port, and
    then ``received`` is added even if it equals sent-by. A request without a readable
    top Via raises SipError (400): no response could be routed back.
    """
    vias = request.via
    if not vias:
        raise SipError(400, "missing Via header")
    top = vias[0]
    params = top.params
    wants_rport = "rport" in params and params["rport"] is None
    if not wants_rport and same_address(top.host, source.host):
        return
    params = dict(params)
    params["received"] = source.host
    if wants_rport:
        params["rport"] = str(source.port)
    stamped = Via(top.transport, top.host, top.port, params, top.protocol)
    # Only the top value changes; the others are written back as they came.
    values = request.headers.values("via")
    values[0] = str(stamped)
    request.headers.set_all("Via", values)


def response_destination(via: Via, source: Endpoint) -> Endpoint:
    """Where a response goes when not back on the request's own connection.

    ``via`` is the top Via of the request as stamped by :func:`stamp_received`;
    ``source`` where the request came from. The host is a domain name only when the
    Via was not stamped and its sent-by is one (then RFC 3263 §5 resolves it).
    """
    transport = source.transport
    port = via.port or DEFAULT_PORTS[transport]
    received = via.received
    host = unbracket(received) if received else unbracket(via.host)
    if transport != UDP:
        # §18.2.2: the connection is gone; open one to received (or sent-by) at the
        # sent-by port, the port the client listens on.
        return Endpoint(transport, host, port)
    maddr = via.maddr
    if maddr is not None:
        # §18.2.2: to maddr, at the sent-by port (RFC 3581 §4 yields to maddr too).
        return Endpoint(transport, unbracket(maddr), port)
    rport = via.rport
    if rport is not None and rport is not True:
        # RFC 3581 §4: to the source address and port the request came from.
        return Endpoint(transport, host, rport)
    return Endpoint(transport, host, port)


def reflexive_endpoint(via: Via, transport: str) -> Endpoint | None:
    """Where the server saw our request come from, as written in the top Via of its
    response (RFC 3581 §4 ``received``/``rport``): behind a NAT, the public side of the
    binding, which a UA may then put in its Contact. None when the server wrote neither.
    """
    received = via.received
    rport = via.rport
    if received is None and (rport is None or rport is True):
        return None
    host = unbracket(received) if received else unbracket(via.host)
    port = rport if rport is not None and rport is not True else via.port
    return Endpoint(transport, host, port or DEFAULT_PORTS[transport])
