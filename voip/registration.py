"""Registration (RFC 3261 §10): bind our Contact to an address-of-record and keep it.

One :class:`Registration` keeps one Call-ID and a growing CSeq (§10.2), refreshes the
binding before it expires, follows 423 Interval Too Brief with Min-Expires (§10.2.8),
reads every binding and its expiry from the 200 (§10.2.4), and un-registers with
``Expires: 0`` when asked or when the agent closes. :meth:`Registration.query` asks the
registrar for the bindings it holds without changing them: a REGISTER with no Contact
(§10.2.3).

A client-only agent registers with SIP Outbound (RFC 5626, :mod:`voip.outbound`): the
binding names its instance and its one flow, the flow is kept alive at the registrar's
Flow-Timer, and when it fails the registration is made again over a new connection after
the back-off of §4.5 (``"flow_failed"``, then ``"flow_recovered"`` on the agent).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

from voip.outbound import (
    DEFAULT_FLOW_TIMER,
    DEFAULT_UDP_FLOW_TIMER,
    OPTION_TAG,
    REG_ID,
    FlowFailed,
    FlowRecovered,
    FlowState,
    NatBindingChanged,
    flow_timer,
    keepalive_delay,
    outbound_in_use,
    stun_keepalive,
    stun_rto,
)
from voip.sip import NameAddress, Request, Response, SipUri, new_call_id, new_tag
from voip.sip.dialog import with_tag
from voip.transport import UDP, Endpoint
from voip.transport.dns import Target
from voip.transport.layer import canonical

if TYPE_CHECKING:
    from voip.sip.uri import Uri
    from voip.useragent import UserAgent

log = logging.getLogger(__name__)

__all__ = ["Binding", "Registration"]


@dataclass(frozen=True, slots=True)
class Binding:
    """One Contact the registrar holds for the address-of-record, and its expiry (s)."""

    contact: str
    expires: int
    ours: bool


class Registration:
    """A binding kept alive at a registrar; ``bindings`` lists what the last 200 said."""

    def __init__(
        self,
        ua: UserAgent,
        registrar: Uri,
        *,
        aor: str | None = None,
        expires: int = 3600,
        refresh: bool = True,
    ) -> None:
        self.ua = ua
        self.registrar = registrar
        self.expires = expires
        self.refresh = refresh
        if aor is not None:
            from voip.sip import parse_uri

            self.aor = NameAddress(parse_uri(aor))
        else:
            host = registrar.host if isinstance(registrar, SipUri) else ua.domain or "127.0.0.1"
            self.aor = NameAddress(SipUri(host=host, user=ua.user))
        self.call_id = new_call_id()
        self.tag = new_tag()
        self.cseq = 0
        self.bindings: list[Binding] = []
        self.granted = 0  # the expiry the registrar gave our Contact
        self.registered = False
        self.last_response: Response | None = None
        self._targets: list[Target] = []
        self._contact: str | None = None
        self._refresh_task: asyncio.Task[None] | None = None
        self._moved_from: str | None = None  # our Contact before the agent moved
        #: RFC 5626: this registration names its instance and flow (decided at the first
        #: REGISTER, by UserAgent.uses_outbound)
        self.outbound = False
        #: the registrar's last 2xx required outbound (§4.2.1)
        self.outbound_in_use = False
        #: the registrar's end of the registered flow, and the flow's state (§4.2, §4.5)
        self.flow: Endpoint | None = None
        self.flow_state = FlowState.NONE
        #: the keep-alive interval on the flow (s): the 2xx's Flow-Timer (§4.4.1)
        self.keepalive_interval: float | None = None
        #: failures in a row to form the flow again (§4.5's consecutive-failures)
        self.consecutive_failures = 0
        self._recovery: asyncio.Task[None] | None = None
        self._watching = False
        #: over UDP (§4.4.2): the address the registrar saw the flow from, in the last STUN
        #: keep-alive's response, and how many keep-alives were answered
        self.mapped: tuple[str, int] | None = None
        self.keepalives_answered = 0
        self._stun: asyncio.Task[None] | None = None

    def _request(self, expires: int | None) -> Request:
        """The next REGISTER of this Call-ID; ``expires`` None: a query (§10.2.3), with
        neither Contact nor Expires."""
        self.cseq += 1
        request = self.ua.new_request(
            "REGISTER",
            SipUri(
                host=self.registrar.host,  # type: ignore[union-attr]
                port=self.registrar.port,  # type: ignore[union-attr]
                params=dict(self.registrar.params),  # type: ignore[union-attr]
                scheme=self.registrar.scheme,  # type: ignore[union-attr]
            ),
            to=self.aor,
            from_tag=self.tag,
            call_id=self.call_id,
            cseq=self.cseq,
            headers=[] if expires is None else [("Expires", str(expires))],
        )
        request.headers.set("From", str(with_tag(self.aor, self.tag)))
        if self.outbound:
            # RFC 5626 §4.2: the registrar may add Path for an edge proxy, and outbound
            request.headers.add("Supported", f"path, {OPTION_TAG}")
        if self._contact is not None and expires is not None:
            request.headers.add("Contact", self._contact)
            if self._moved_from is not None:
                # §10.2.2: the binding of the address we left goes, in the same request
                request.headers.add("Contact", f"{self._moved_from};expires=0")
        return request

    async def _send(self, expires: int | None) -> Response:
        from voip.useragent import RequestFailed

        if not self._targets:
            self._targets = await self.ua.resolve(self.registrar)
            self.outbound = self.ua.uses_outbound(self._targets[0])
            self._contact = self._binding_contact()
        elif self.outbound and expires:
            # the flow's connection may be a new one (§4.5): its address in the Contact
            # (an un-REGISTER names the binding as it was made)
            self._contact = self._binding_contact()
        request = self._request(expires)
        try:
            response = await self.ua.request(request, targets=self._targets)
        except RequestFailed as error:
            if error.response is not None:
                self.last_response = error.response
                self.cseq = max(self.cseq, error.response.cseq.number)
            raise
        self.cseq = max(self.cseq, response.cseq.number)  # the authorized re-send took one
        self.last_response = response
        return response

    def _binding_contact(self) -> str:
        """Our Contact for the binding: with outbound, the URI's ``;ob`` and the
        ``reg-id`` and ``+sip.instance`` of RFC 5626 §4.2."""
        contact = self.ua.contact_for(self._targets[0], ob=self.outbound or None)
        if self.outbound:
            contact.params["reg-id"] = REG_ID
            contact.params["+sip.instance"] = f"<{self.ua.instance_id}>"
        return str(contact)

    async def start(self) -> None:
        """REGISTER until a 2xx; 423 raises the interval to Min-Expires (§10.2.8)."""
        from voip.useragent import RequestFailed

        expires = self.expires
        for _ in range(3):
            try:
                response = await self._send(expires)
            except RequestFailed as error:
                minimum = error.response.min_expires if error.response is not None else None
                if error.status == 423 and minimum is not None and minimum > expires:
                    expires = self.expires = minimum
                    continue
                raise
            self._read_bindings(response)
            self.registered = True
            self._flow_registered(response)
            if self.refresh and self.granted > 0:
                self._schedule()
            return
        raise RequestFailed(423, "Interval Too Brief (Min-Expires kept growing)")

    async def rebind(self) -> None:
        """Re-REGISTER after the agent moved to a new local address
        (:meth:`UserAgent.rebind <voip.useragent.UserAgent.rebind>`): one REGISTER in
        the same Call-ID binds the new Contact and removes the old one with
        ``expires=0`` (RFC 3261 §10.2.1, §10.2.2), so that requests for the
        address-of-record reach the new address at once and never the old."""
        old = self._contact
        if not self._targets:
            self._targets = await self.ua.resolve(self.registrar)
        self._contact = str(self.ua.contact_for(self._targets[0]))
        if old is not None and old != self._contact and self.registered:
            self._moved_from = old
        try:
            await self.start()
        finally:
            self._moved_from = None

    def _read_bindings(self, response: Response) -> None:
        """The bindings of a 2xx to our REGISTER, and the expiry granted to our Contact."""
        default = response.expires if response.expires is not None else self.expires
        self.bindings = self._bindings_of(response, default)
        self.granted = next((b.expires for b in self.bindings if b.ours), default)

    def _bindings_of(self, response: Response, default: int) -> list[Binding]:
        """§10.2.4: each Contact with its expires parameter, else ``default`` (the
        Expires header field's)."""
        ours = _contact_uri(self._contact)
        return [
            Binding(
                str(contact.uri),
                contact.expires if contact.expires is not None else default,
                str(contact.uri) == ours,
            )
            for contact in response.contact
        ]

    async def query(self) -> list[Binding]:
        """Ask the registrar which bindings it holds for the address-of-record, changing
        none: a REGISTER without Contact (RFC 3261 §10.2.3), in this registration's Call-ID
        with the next CSeq (§10.2). Returns the bindings of the 2xx (also kept in
        ``bindings``); an empty list when there are none. A non-2xx raises
        :class:`~voip.useragent.RequestFailed`."""
        response = await self._send(None)
        default = response.expires if response.expires is not None else 0
        self.bindings = self._bindings_of(response, default)
        return list(self.bindings)

    def refresh_delay(self) -> float:
        """Refresh well before expiry: half-way for short bindings, a minute early otherwise."""
        return max(self.granted / 2, self.granted - 60.0)

    def _schedule(self) -> None:
        if self._refresh_task is not None:
            self._refresh_task.cancel()
        self._refresh_task = self.ua.spawn(self._refresh_later(self.refresh_delay()))

    async def _refresh_later(self, delay: float) -> None:
        from voip.useragent import RequestFailed

        await asyncio.sleep(delay)
        self._refresh_task = None
        try:
            response = await self._send(self.expires)
        except RequestFailed:
            self.registered = False
            self.ua.emit("registration_failed", self)
            # try again after a while rather than give up on the binding
            self._refresh_task = self.ua.spawn(self._retry_later(30.0))
            return
        self._read_bindings(response)
        self._flow_registered(response)
        self._schedule()

    async def _retry_later(self, delay: float) -> None:
        await asyncio.sleep(delay)
        self._refresh_task = None
        with contextlib.suppress(Exception):
            await self.start()

    # --- the flow (RFC 5626) --------------------------------------------------------------

    def _flow_endpoint(self) -> Endpoint | None:
        """The registrar's end of the connection the REGISTER went over."""
        for target in self._targets:
            endpoint = canonical(Endpoint(target.transport, target.host, target.port))
            if self.ua.transport.connection_to(endpoint) is not None:
                return endpoint
        return None

    def _flow_registered(self, response: Response) -> None:
        """A 2xx over the flow: it is the registration's flow now, watched for failure;
        with outbound in use (§4.2.1) kept alive at the Flow-Timer (§4.4.1)."""
        if not self.outbound:
            return
        self.outbound_in_use = outbound_in_use(response)
        endpoint = self._flow_endpoint()
        if endpoint is None:
            self._udp_flow_registered(response)
            return
        self.flow = endpoint
        self.flow_state = FlowState.ACTIVE
        self.consecutive_failures = 0
        timer = flow_timer(response)
        interval = timer or (DEFAULT_FLOW_TIMER if self.outbound_in_use else None)
        self.keepalive_interval = interval
        connection = self.ua.transport.connection_to(endpoint)
        if connection is not None and interval is not None:
            connection.keep_alive(interval)
        if not self._watching:
            self._watching = True
            self.ua.on("transport_error", self._on_transport_error)

    def _udp_flow_registered(self, response: Response) -> None:
        """§4.4.2: a flow over UDP in use for outbound is kept alive by STUN Binding
        Requests from the SIP socket to the registrar's address, at 80-100 % of the
        Flow-Timer (29 s without one); no response, or a changed mapped address, fails it."""
        target = self._targets[0]
        if not self.outbound_in_use or target.transport != UDP:
            return
        self.flow = canonical(Endpoint(UDP, target.host, target.port))
        if self.flow_state is not FlowState.RECOVERING:
            # while recovering, the failures count until the first keep-alive is answered
            self.consecutive_failures = 0
        self.flow_state = FlowState.ACTIVE
        self.keepalive_interval = flow_timer(response) or DEFAULT_UDP_FLOW_TIMER
        if self._stun is not None:
            self._stun.cancel()
        self._stun = self.ua.spawn(self._stun_keepalives(self.keepalive_interval))

    def _udp_flow(self) -> bool:
        return self.flow is not None and self.flow.transport == UDP

    async def _stun_check(self, interval: float) -> None:
        """One STUN keep-alive on the UDP flow; raises when the flow failed (§4.4.2)."""
        assert self.flow is not None
        mapped = await stun_keepalive(self.ua.transport, self.flow, stun_rto(interval))
        self.keepalives_answered += 1
        if self.mapped is not None and mapped is not None and mapped != self.mapped:
            previous, self.mapped = self.mapped, None
            raise NatBindingChanged(f"the flow's mapped address moved from {previous} to {mapped}")
        self.mapped = mapped or self.mapped

    async def _stun_keepalives(self, interval: float) -> None:
        while self.flow_state is FlowState.ACTIVE:
            await asyncio.sleep(keepalive_delay(interval))
            if self.flow_state is not FlowState.ACTIVE:
                return
            try:
                await self._stun_check(interval)
            except (TimeoutError, ConnectionError) as error:
                self._stun = None
                self._flow_failed(error)
                return

    def _on_transport_error(self, destination: Endpoint, error: Exception) -> None:
        """§4.5: the flow failed (closed, reset, or a keep-alive pong that did not come
        back): form a new one after the back-off."""
        if self.flow_state is not FlowState.ACTIVE or canonical(destination) != self.flow:
            return
        if self.ua.transport.connection_to(self.flow) is not None:
            return  # a send failed but the connection stands
        self._flow_failed(error)

    def _flow_failed(self, error: Exception) -> None:
        assert self.flow is not None
        if self._recovery is not None and not self._recovery.done():
            return
        self.flow_state = FlowState.FAILED
        delay = self.ua.flow_recovery.delay(self.consecutive_failures)
        log.info("flow to %s failed (%s): registering again in %.1f s", self.flow, error, delay)
        self.ua.emit("flow_failed", FlowFailed(self, self.flow, error, delay))
        self._recovery = self.ua.spawn(self._recover(delay))

    async def _recover(self, delay: float) -> None:
        """Register again over a new connection, with the same instance and reg-id (§4.5),
        until it succeeds; the wait doubles with each failure up to max-time."""
        attempts = 0
        while True:
            await asyncio.sleep(delay)
            if self.flow_state is FlowState.ACTIVE:
                break  # registered again meanwhile (a call's recovery re-REGISTERs too)
            attempts += 1
            self.flow_state = FlowState.RECOVERING
            self.mapped = None  # a new flow: whatever address the NAT gives it now
            try:
                await self.start()
                if self.flow_state is FlowState.ACTIVE and self._udp_flow():
                    # §4.5: over UDP the flow counts as formed again only once the
                    # registration succeeded and the first keep-alive was answered
                    await self._stun_check(self.keepalive_interval or DEFAULT_UDP_FLOW_TIMER)
            except Exception as error:
                self.flow_state = FlowState.FAILED
                self.consecutive_failures += 1
                delay = self.ua.flow_recovery.delay(self.consecutive_failures)
                log.info("flow not formed again (%s): next try in %.1f s", error, delay)
                continue
            if self.flow_state is FlowState.ACTIVE:
                break
            self.flow_state = FlowState.FAILED
            self.consecutive_failures += 1
            delay = self.ua.flow_recovery.delay(self.consecutive_failures)
        assert self.flow is not None
        self.consecutive_failures = 0
        self.ua.emit("flow_recovered", FlowRecovered(self, self.flow, attempts))

    def _stop_flow(self) -> None:
        if self._stun is not None:
            self._stun.cancel()
            self._stun = None
        if self._recovery is not None:
            self._recovery.cancel()
            self._recovery = None
        if self._watching:
            self._watching = False
            self.ua.remove_listener("transport_error", self._on_transport_error)
        self.flow_state = FlowState.NONE

    async def unregister(self) -> None:
        """Remove our binding (``Expires: 0``) and stop refreshing it."""
        self._stop_flow()
        if self._refresh_task is not None:
            self._refresh_task.cancel()
            self._refresh_task = None
        if self in self.ua.registrations:
            self.ua.registrations.remove(self)
        if not self.registered:
            return
        self.registered = False
        response = await self._send(0)
        self._read_bindings(response)


def _contact_uri(contact: str | None) -> str:
    if contact is None:
        return ""
    from voip.sip import parse_name_addr

    return str(parse_name_addr(contact).uri)
