"""Hostile input: PROTOS c07-sip, pjproject's fuzz seeds and random mutations.

The rule (PROTOS' own criterion, RFC 4475 §1): nothing crashes or raises anything but
the typed SipError, and a valid message after a bad one is still processed.
PROTOS cases are GPLv2 and are read from the shared corpus, never copied here.
"""

from __future__ import annotations

import contextlib
import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import sdp
from tests.conftest import DATA, SHARED, load_manifest
from voip.sip import (
    Message,
    Request,
    SipError,
    SipFramingError,
    StreamParser,
    check_message,
    parse_message,
    parse_uri,
)

PROTOS = SHARED / "fuzz" / "protos-c07-sip"
SEEDS = SHARED / "fuzz" / "pjproject-oss-fuzz-seeds"
needs_protos = pytest.mark.skipif(
    not (PROTOS / "manifest.json").exists(), reason="PROTOS corpus (GPLv2) not present"
)
PROTOS_CASES = (
    load_manifest(PROTOS / "manifest.json")["cases"] if (PROTOS / "manifest.json").exists() else []
)


def verdict(data: bytes) -> int | None:
    """None when a UA accepts ``data``, else the status of the typed error."""
    try:
        check_message(parse_message(data))
    except SipError as error:
        assert error.reason, "every rejection says why"
        return error.status
    return None


def teardown(case: int) -> bytes:
    """A valid teardown (the reference case's CANCEL template) filled in for ``case``,
    with the placeholder values the derived INVITEs use."""
    raw = (PROTOS / "raw" / "0000000").read_bytes()
    length, _, rest = raw.partition(b" ")
    rest = rest[int(length) :]
    length, _, rest = rest.partition(b" ")
    template = rest[: int(length)]
    values = {
        b"<To>": b"bob@192.0.2.2",
        b"<From>": b"alice@192.0.2.1",
        b"<From-Address>": b"192.0.2.1",
        b"<From-IP>": b"192.0.2.1",
        b"<Local-Port>": b"5060",
        b"<Branch-ID>": f"{case:x}".encode(),
        b"<Call-ID>": f"protos-{case}".encode(),
        b"<CSeq>": b"1",
        b"<Content-Length>": b"0",
        b"<Teardown-Method>": b"CANCEL",
    }
    for placeholder, value in values.items():
        template = template.replace(placeholder, value)
    return template


@needs_protos
def test_protos_selection_is_complete() -> None:
    assert len(PROTOS_CASES) == 503


@needs_protos
def test_protos_valid_reference_invite_is_accepted() -> None:
    assert verdict((PROTOS / "invite" / "0000000.sip").read_bytes()) is None


@needs_protos
@pytest.mark.parametrize("case", PROTOS_CASES, ids=lambda c: f"{c['case']:07d}-{c['group']}")
def test_protos_case_gives_typed_error_or_acceptance_then_teardown_works(
    case: dict[str, object],
) -> None:
    number = int(str(case["case"]))
    invite = (SHARED / "fuzz" / str(case["invite_file"])).read_bytes()
    status = verdict(invite)
    assert status is None or 400 <= status <= 699
    cancel = teardown(number)
    assert verdict(cancel) is None, "the teardown after a bad case must still be processed"


@needs_protos
@pytest.mark.parametrize("case", PROTOS_CASES[::7], ids=lambda c: f"{c['case']:07d}")
def test_protos_case_on_a_stream_leaves_the_teardown_framed(case: dict[str, object]) -> None:
    number = int(str(case["case"]))
    invite = (SHARED / "fuzz" / str(case["invite_file"])).read_bytes()
    parser = StreamParser()
    try:
        events = parser.feed(invite + teardown(number))
    except SipFramingError as error:
        assert error.reason  # the connection is closed: acceptable for a framing error
        return
    last = events[-1]
    assert isinstance(last, Request) and last.method == "CANCEL"


SIP_SEEDS = sorted(SEEDS.glob("fuzz-sip*/*.sip"))
SDP_SEEDS = sorted(SEEDS.glob("fuzz-sdp/*"))
URI_SEEDS = sorted(SEEDS.glob("fuzz-uri/*")) + sorted(SEEDS.glob("fuzz-sip-dialog/*.txt"))


@pytest.mark.skipif(not SIP_SEEDS, reason="pjproject seeds not present")
@pytest.mark.parametrize("path", SIP_SEEDS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_pjproject_sip_seed(path: object) -> None:
    data = path.read_bytes()  # type: ignore[attr-defined]
    verdict(data)
    with contextlib.suppress(SipFramingError):
        StreamParser().feed(data)


@pytest.mark.skipif(not SDP_SEEDS, reason="pjproject seeds not present")
@pytest.mark.parametrize("path", SDP_SEEDS, ids=lambda p: p.name)
def test_pjproject_sdp_seed(path: object) -> None:
    try:
        sdp.parse(path.read_bytes())  # type: ignore[attr-defined]
    except sdp.SdpError as error:
        assert error.line_number >= 1


@pytest.mark.skipif(not URI_SEEDS, reason="pjproject seeds not present")
@pytest.mark.parametrize("path", URI_SEEDS, ids=lambda p: p.name)
def test_pjproject_uri_seed(path: object) -> None:
    for line in path.read_bytes().decode("utf-8", "replace").splitlines():  # type: ignore[attr-defined]
        with contextlib.suppress(SipError):
            parse_uri(line.strip())


TORTURE_FILES = sorted((DATA / "torture").glob("*.dat"))


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    index=st.integers(0, len(TORTURE_FILES) - 1),
    edits=st.lists(
        st.tuples(st.integers(0, 10_000), st.integers(0, 255), st.booleans()), max_size=8
    ),
)
def test_mutated_torture_messages_raise_only_sip_error(
    index: int, edits: list[tuple[int, int, bool]]
) -> None:
    data = bytearray(TORTURE_FILES[index].read_bytes())
    for position, byte, insert in edits:
        position %= len(data) + 1
        if insert:
            data.insert(position, byte)
        elif position < len(data):
            data[position] = byte
    verdict(bytes(data))


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=600))
def test_random_bytes_raise_only_sip_error(data: bytes) -> None:
    verdict(data)
    with contextlib.suppress(SipFramingError):
        StreamParser().feed(data)


def describe(event: object) -> bytes | str:
    return bytes(event) if isinstance(event, Message) else type(event).__name__


def test_random_chunking_of_a_stream_gives_the_same_messages() -> None:
    files = ["wsinv", "esc01", "mpart01", "zeromf", "unreason", "regescrt"]
    stream = b"".join((DATA / "torture" / f"{name}.dat").read_bytes() for name in files)
    whole = [describe(e) for e in StreamParser().feed(stream)]
    assert len([e for e in whole if isinstance(e, bytes)]) == len(files)
    rng = random.Random(4475)
    for _ in range(20):
        parser = StreamParser()
        events = []
        i = 0
        while i < len(stream):
            step = rng.randint(1, 97)
            events.extend(parser.feed(stream[i : i + step]))
            i += step
        assert [describe(e) for e in events] == whole
        assert parser.buffered == 0
