"""RFC 4028 session timers, sans-I/O, in virtual time: no test waits for an interval."""

from __future__ import annotations

import pytest

from voip.sip import Request, Response, SipError, make_response, parse_message
from voip.sip.sessiontimer import (
    MIN_SE,
    RefreshDue,
    SessionExpired,
    SessionTimer,
    SessionTimerPolicy,
    TimerState,
    bye_lead,
)


def invite(*headers: tuple[str, str], method: str = "INVITE") -> Request:
    text = (
        f"{method} sip:bob@192.0.2.9 SIP/2.0\r\n"
        "Via: SIP/2.0/UDP 192.0.2.7:5060;branch=z9hG4bKst1\r\n"
        "Max-Forwards: 70\r\n"
        "To: <sip:bob@192.0.2.9>\r\n"
        "From: <sip:alice@192.0.2.7>;tag=a1\r\n"
        "Call-ID: st-1@192.0.2.7\r\n"
        f"CSeq: 1 {method}\r\n"
        "Contact: <sip:alice@192.0.2.7>\r\n"
        + "".join(f"{name}: {value}\r\n" for name, value in headers)
        + "Content-Length: 0\r\n\r\n"
    )
    message = parse_message(text.encode())
    assert isinstance(message, Request)
    return message


def reply(status: int, *headers: tuple[str, str]) -> Response:
    response = make_response(invite(), status, to_tag="b1", headers=headers)
    parsed = parse_message(bytes(response))
    assert isinstance(parsed, Response)
    return parsed


def field(headers: list[tuple[str, str]], name: str) -> str | None:
    return next((value for key, value in headers if key == name), None)


def timer(**policy: object) -> SessionTimer:
    return SessionTimer(SessionTimerPolicy(**policy))  # type: ignore[arg-type]


def run(st: SessionTimer, until: float) -> list[tuple[float, RefreshDue | SessionExpired]]:
    """Fire the timer's deadlines in virtual time up to ``until``."""
    seen: list[tuple[float, RefreshDue | SessionExpired]] = []
    while (deadline := st.next_deadline()) is not None and deadline <= until:
        event = st.handle_timer(deadline)
        assert event is not None, f"a deadline at {deadline} with nothing due"
        seen.append((deadline, event))
    return seen


# --- §7.1, §7.4: what the UAC's requests carry --------------------------------------------


def test_an_initial_invite_carries_supported_timer_session_expires_and_min_se() -> None:
    headers = timer().request_headers()
    assert ("Supported", "timer") in headers
    assert field(headers, "Session-Expires") == "1800"  # §7.1: refresher left to the UAS
    assert field(headers, "Min-SE") == str(MIN_SE)


def test_a_uac_that_wants_to_refresh_names_itself_refresher() -> None:
    headers = timer(refresher="uac").request_headers()
    assert field(headers, "Session-Expires") == "1800;refresher=uac"


def test_a_uac_asking_for_no_interval_still_says_it_supports_timers() -> None:
    headers = timer(session_expires=None).request_headers()
    assert headers == [("Supported", "timer")]


def test_a_refresh_names_the_refresher_from_the_senders_side() -> None:
    # §7.4: "uac" in a request we send is us; the peer refreshing is "uas"
    ours = timer()
    ours.receive_response(reply(200, ("Session-Expires", "600;refresher=uac")), now=0.0)
    assert field(ours.request_headers(), "Session-Expires") == "600;refresher=uac"
    theirs = timer()
    theirs.receive_response(reply(200, ("Session-Expires", "600;refresher=uas")), now=0.0)
    assert field(theirs.request_headers(), "Session-Expires") == "600;refresher=uas"


# --- §7.2: the 2xx the UAC receives ----------------------------------------------------------


def test_a_2xx_naming_the_uac_makes_it_refresh_at_half_the_interval() -> None:
    st = timer()
    st.receive_response(reply(200, ("Session-Expires", "600;refresher=uac")), now=100.0)
    assert st.state is TimerState.ACTIVE and st.we_refresh and st.interval == 600
    assert run(st, 400.0) == [(400.0, RefreshDue(600))]
    assert st.state is TimerState.REFRESHING


def test_a_2xx_naming_the_uas_makes_the_uac_end_the_session_a_third_before_expiry() -> None:
    st = timer()
    st.receive_response(reply(200, ("Session-Expires", "90;refresher=uas")), now=0.0)
    assert not st.we_refresh
    # §10: min(32, 90/3) = 30 s before the session expires
    assert run(st, 1000.0) == [(60.0, SessionExpired(90, we_refresh=False))]
    assert st.state is TimerState.EXPIRED and st.next_deadline() is None


def test_the_bye_goes_at_most_32_seconds_before_the_session_expires() -> None:
    assert bye_lead(1800) == 32.0
    assert bye_lead(90) == 30.0
    assert bye_lead(6) == 2.0


def test_a_2xx_without_session_expires_means_no_session_expiration() -> None:
    st = timer()
    st.receive_response(reply(200), now=0.0)
    assert st.state is TimerState.INACTIVE and st.next_deadline() is None


def test_a_2xx_without_session_expires_turns_a_running_timer_off() -> None:
    st = timer()
    st.receive_response(reply(200, ("Session-Expires", "600;refresher=uas")), now=0.0)
    st.receive_response(reply(200), now=10.0)  # the 2xx to a later re-INVITE
    assert st.state is TimerState.INACTIVE and st.next_deadline() is None


def test_a_2xx_without_the_refresher_parameter_leaves_the_refresh_to_the_uac() -> None:
    st = timer()
    st.receive_response(reply(200, ("Session-Expires", "300")), now=0.0)
    assert st.we_refresh


# --- §7.3: 422 ---------------------------------------------------------------------------------


def test_a_422_is_retried_with_its_min_se_as_the_interval_and_the_min_se() -> None:
    st = timer(session_expires=120)
    assert st.receive_422(reply(422, ("Min-SE", "300")))
    headers = st.request_headers()
    assert field(headers, "Session-Expires") == "300"
    assert field(headers, "Min-SE") == "300"


def test_a_422_without_a_larger_min_se_is_not_retried() -> None:
    assert not timer(session_expires=600).receive_422(reply(422, ("Min-SE", "300")))
    assert not timer(session_expires=600).receive_422(reply(422))


def test_422s_are_followed_at_most_twice_for_one_request() -> None:
    st = timer(session_expires=100)
    assert st.receive_422(reply(422, ("Min-SE", "200")))
    assert st.receive_422(reply(422, ("Min-SE", "400")))
    assert not st.receive_422(reply(422, ("Min-SE", "800")))


def test_a_422_to_a_refresh_raises_the_running_interval() -> None:
    st = timer(session_expires=100)
    st.receive_response(reply(200, ("Session-Expires", "100;refresher=uac")), now=0.0)
    assert st.receive_422(reply(422, ("Min-SE", "150")))
    assert field(st.request_headers(), "Session-Expires") == "150;refresher=uac"


# --- §9: the UAS ---------------------------------------------------------------------------------


def test_a_uas_answers_422_with_its_min_se_to_too_small_an_interval() -> None:
    st = timer(min_se=300, session_expires=1800)
    with pytest.raises(SipError) as error:
        st.check_request(invite(("Supported", "timer"), ("Session-Expires", "120")))
    assert error.value.status == 422
    assert ("Min-SE", "300") in error.value.headers


def test_a_uas_does_not_answer_422_to_a_uac_that_cannot_retry() -> None:
    # no Supported: timer (a proxy inserted the interval): the 422 would only end the call
    timer(min_se=300).check_request(invite(("Session-Expires", "120")))


@pytest.mark.parametrize(
    ("supported", "asked", "answered"),
    [
        (False, "", "uas"),  # §9 Table 2: a UAC without timers cannot refresh
        (True, "", "uac"),  # the UAS chooses: the UAC, by default
        (True, ";refresher=uac", "uac"),
        (True, ";refresher=uas", "uas"),
    ],
)
def test_the_uas_sets_the_refresher_as_table_2_says(
    supported: bool, asked: str, answered: str
) -> None:
    request = invite(
        *([("Supported", "timer")] if supported else []), ("Session-Expires", f"600{asked}")
    )
    st = timer()
    headers = st.answer(request, now=0.0)
    assert field(headers, "Session-Expires") == f"600;refresher={answered}"
    assert st.we_refresh is (answered == "uas")
    # §9: Require: timer when the UAC supports timers (it must read the refresher)
    assert (("Require", "timer") in headers) is supported


def test_the_uas_policy_chooses_the_refresher_when_the_uac_leaves_it_open() -> None:
    st = timer(refresher="uas")
    headers = st.answer(invite(("Supported", "timer"), ("Session-Expires", "600")), now=0.0)
    assert field(headers, "Session-Expires") == "600;refresher=uas" and st.we_refresh


def test_the_uas_may_lower_the_interval_but_not_below_the_requests_min_se() -> None:
    request = invite(("Supported", "timer"), ("Session-Expires", "1800"), ("Min-SE", "600"))
    headers = timer(session_expires=300).answer(request, now=0.0)
    assert field(headers, "Session-Expires") == "600;refresher=uac"


def test_the_uas_never_raises_the_interval() -> None:
    request = invite(("Supported", "timer"), ("Session-Expires", "120"), ("Min-SE", "90"))
    headers = timer(session_expires=1800, min_se=90).answer(request, now=0.0)
    assert field(headers, "Session-Expires") == "120;refresher=uac"


def test_the_uas_asks_for_a_timer_when_the_uac_supports_one_but_asked_for_none() -> None:
    request = invite(("Supported", "timer"), ("Min-SE", "900"))
    st = timer(session_expires=600)
    headers = st.answer(request, now=0.0)
    assert field(headers, "Session-Expires") == "900;refresher=uac"  # not below Min-SE
    assert st.state is TimerState.ACTIVE and not st.we_refresh


def test_no_timer_with_a_uac_that_neither_supports_nor_asks_for_one() -> None:
    st = timer()
    assert st.answer(invite(), now=0.0) == []
    assert st.state is TimerState.INACTIVE and st.next_deadline() is None


def test_a_mid_dialog_request_without_an_interval_keeps_the_running_one() -> None:
    st = timer(session_expires=1800)
    st.answer(invite(("Supported", "timer"), ("Session-Expires", "600;refresher=uas")), 0.0)
    headers = st.answer(invite(("Supported", "timer"), method="UPDATE"), now=100.0)
    assert field(headers, "Session-Expires") == "600;refresher=uas"  # we keep refreshing
    assert st.we_refresh and st.refresh_at == 400.0


# --- §10: refreshing ------------------------------------------------------------------------------


def test_each_refresh_restarts_the_interval_so_the_session_lives_on() -> None:
    st = timer()
    st.receive_response(reply(200, ("Session-Expires", "600;refresher=uac")), now=0.0)
    refreshes = []
    for _ in range(5):
        [(at, event)] = run(st, st.next_deadline() or 0.0)
        assert isinstance(event, RefreshDue)
        refreshes.append(at)
        st.receive_response(reply(200, ("Session-Expires", "600;refresher=uac")), now=at + 0.1)
    assert refreshes == pytest.approx([300.0, 600.1, 900.2, 1200.3, 1500.4])
    assert st.state is TimerState.ACTIVE


def test_the_peers_refresh_moves_the_non_refreshers_deadline() -> None:
    st = timer()
    st.receive_response(reply(200, ("Session-Expires", "90;refresher=uas")), now=0.0)
    refresh = invite(("Supported", "timer"), ("Session-Expires", "90;refresher=uac"))
    st.answer(refresh, now=45.0)  # the peer (uac of this re-INVITE) refreshes
    assert not st.we_refresh
    assert run(st, 104.0) == []
    assert run(st, 105.0) == [(105.0, SessionExpired(90, we_refresh=False))]


def test_a_failed_refresh_ends_the_session_at_the_expiry_deadline() -> None:
    st = timer()
    st.receive_response(reply(200, ("Session-Expires", "90;refresher=uac")), now=0.0)
    assert run(st, 45.0) == [(45.0, RefreshDue(90))]
    st.refresh_failed()
    assert st.state is TimerState.FAILED
    [(at, expired)] = run(st, 1000.0)
    assert at == 60.0 and expired == SessionExpired(90, we_refresh=True)
    assert "our refresh failed" in expired.text


def test_a_refresh_that_got_no_answer_before_the_deadline_ends_the_session() -> None:
    st = timer()
    st.receive_response(reply(200, ("Session-Expires", "90;refresher=uac")), now=0.0)
    events = run(st, 1000.0)  # the refresh is sent at 45 s and never answered
    assert events == [(45.0, RefreshDue(90)), (60.0, SessionExpired(90, we_refresh=True))]


def test_the_peers_refresh_while_ours_is_pending_counts_as_a_refresh() -> None:
    st = timer()
    st.receive_response(reply(200, ("Session-Expires", "90;refresher=uac")), now=0.0)
    run(st, 45.0)
    st.answer(invite(("Supported", "timer"), ("Session-Expires", "90;refresher=uas")), 46.0)
    st.refresh_failed()  # ours lost the glare: the session was refreshed all the same
    assert st.state is TimerState.ACTIVE and st.refresh_at == 91.0


def test_a_stopped_timer_has_no_deadline_left() -> None:
    st = timer()
    st.receive_response(reply(200, ("Session-Expires", "90;refresher=uac")), now=0.0)
    st.stop()
    assert st.next_deadline() is None and st.handle_timer(1e9) is None


def test_the_session_expired_text_says_what_happened() -> None:
    text = SessionExpired(1800, we_refresh=False).text
    assert text.startswith("session timer expired") and "1800 s" in text


@pytest.mark.parametrize(
    "policy",
    [
        {"min_se": 0},
        {"session_expires": 60, "min_se": 90},
        {"refresher": "both"},
        {"refresh_with": "OPTIONS"},
    ],
)
def test_a_policy_out_of_the_rfcs_bounds_is_refused(policy: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        SessionTimerPolicy(**policy)  # type: ignore[arg-type]
