"""SPDU encoding after ISO 8327-1 / X.225 §8: lengths, units, groups and concatenation."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from voip.session import spdu
from voip.session.spdu import PGI, PI, Kind, Parameter, ResyncType, Spdu, SpduError, Tokens


def test_li_up_to_254_is_one_octet_and_255_on_takes_the_escape_and_two_octets() -> None:
    short = spdu.plain(Kind.TD, b"x" * 250).encode()
    assert short[:2] == bytes([33, 252]) and short[2:4] == bytes([193, 250])
    long = spdu.plain(Kind.TD, b"x" * 300).encode()
    # SI, LI escape + 304 (the User Data unit: PGI, escape and two octets, 300 of value)
    assert long[:4] == bytes([33, 255, 304 >> 8, 304 & 0xFF])
    assert long[4:8] == bytes([193, 255, 300 >> 8, 300 & 0xFF])
    assert spdu.decode(long) == [spdu.plain(Kind.TD, b"x" * 300)]


def test_a_two_octet_li_below_255_is_refused() -> None:
    with pytest.raises(SpduError, match="needs one octet"):
        spdu.decode(bytes([33, 255, 0, 3, 193, 1, 0x41]))


def test_serial_numbers_are_one_to_six_ia5_digits() -> None:
    assert spdu.encode_serial(0) == b"0" and spdu.encode_serial(999_999) == b"999999"
    with pytest.raises(SpduError):
        spdu.encode_serial(1_000_000)
    for bad in (b"", b"1234567", b"12a", b"-1"):
        with pytest.raises(SpduError):
            spdu.decode_serial(bad)


def test_a_category_2_spdu_travels_after_an_empty_give_tokens() -> None:
    # X.225 §6.3.7 basic concatenation: category 0 first, then one category 2
    data = spdu.encode(spdu.minor_sync_point(7))
    assert data == bytes([1, 0, 49, 3, 42, 1, ord("7")])
    gt, mip = spdu.decode(data)
    assert gt.kind is Kind.GT and mip.kind is Kind.MIP and mip.serial_number == 7


@pytest.mark.parametrize(
    ("data", "kinds"),
    [
        (bytes([1, 0]), [Kind.GT]),  # SI 1 first: GIVE TOKENS
        (bytes([1, 0, 1, 0]), [Kind.GT, Kind.DT]),  # SI 1 after category 0: DATA TRANSFER
        (bytes([25, 0]), [Kind.AB]),  # SI 25 alone: ABORT
        (bytes([1, 0, 25, 3, 50, 1, 0]), [Kind.GT, Kind.AI]),  # after GT: ACTIVITY INTERRUPT
        (bytes([26, 0]), [Kind.AA]),
        (bytes([2, 3, 16, 1, 1, 26, 0]), [Kind.PT, Kind.AIA]),
        (bytes([1, 0, 41, 6, 15, 1, 1, 42, 1, 0x33]), [Kind.GT, Kind.MAP]),  # Sync Type Item
        (bytes([1, 0, 41, 3, 42, 1, 0x33]), [Kind.GT, Kind.AE]),  # none: ACTIVITY END
    ],
)
def test_shared_si_values_are_told_apart_by_position_and_parameters(
    data: bytes, kinds: list[Kind]
) -> None:
    assert [unit.kind for unit in spdu.decode(data)] == kinds


@pytest.mark.parametrize(
    ("data", "complaint"),
    [
        (b"", "empty"),
        (bytes([13, 0, 1, 0]), "category 1"),  # CONNECT may not be concatenated
        (bytes([49, 3, 42, 1, 0x31]), "first in a TSDU"),  # category 2 alone
        (bytes([1, 0, 13, 0]), "after a category 0"),  # category 1 after GT
        (bytes([99, 0]), "SI 99"),
        (bytes([33, 5, 193, 1]), "runs past"),
        (bytes([33, 3, 193, 9, 0]), "runs past its field"),
        (bytes([1, 0, 49, 0]), "mandatory"),  # MIP without its Serial Number
        (bytes([1, 0, 49, 3, 42, 1, ord("x")]), "IA5 digits"),
        (bytes([1, 0, 53, 6, 27, 1, 9, 42, 1, 0x31]), "Resync Type"),
        (bytes([2, 4, 16, 2, 1, 1]), "one octet"),
        (bytes([33]), "LI missing"),
    ],
)
def test_malformed_tsdus_raise_spdu_error_saying_what_was_wrong(
    data: bytes, complaint: str
) -> None:
    with pytest.raises(SpduError, match=complaint):
        spdu.decode(data)


def test_basic_concatenation_takes_one_category_2_spdu_and_extended_several() -> None:
    data = spdu.encode([spdu.give_tokens(), spdu.minor_sync_point(1), spdu.minor_sync_point(2)])
    assert len(spdu.decode(data)) == 3
    with pytest.raises(SpduError, match="extended"):
        spdu.decode(data, extended=False)


def test_encode_refuses_what_may_not_be_concatenated() -> None:
    with pytest.raises(SpduError):
        spdu.encode([spdu.plain(Kind.TD), spdu.plain(Kind.CD)])
    with pytest.raises(SpduError):
        spdu.encode([spdu.give_tokens(), spdu.plain(Kind.TD)])


def test_activity_resume_carries_the_old_activity_and_serial_in_linking_information() -> None:
    unit = spdu.activity_resume(b"B", b"A", 12)
    (_, decoded) = spdu.decode(spdu.encode(unit))
    assert decoded == unit
    linking = decoded.linking
    assert linking is not None and linking.code == PGI.LINKING_INFORMATION
    assert {p.code: p.value for p in linking.parameters} == {
        PI.ACTIVITY_IDENTIFIER: b"A",
        PI.SERIAL_NUMBER: b"12",
    }


# --- hypothesis: decode(encode(x)) == x --------------------------------------------------

_values = st.binary(max_size=300)
_user_data = st.binary(min_size=1, max_size=400)
_serials = st.integers(0, spdu.MAX_SERIAL)
_tokens = st.sampled_from([Tokens.DATA, Tokens.MINOR_SYNC, Tokens.MAJOR_ACTIVITY, Tokens.RELEASE])
_category_2 = st.one_of(
    st.builds(
        lambda s, c, d: spdu.minor_sync_point(s, confirm=c, data=d),
        _serials,
        st.booleans(),
        st.binary(max_size=300),
    ),
    st.builds(spdu.major_sync_point, _serials, st.binary(max_size=300)),
    st.builds(spdu.activity_end, _serials, st.binary(max_size=300)),
    st.builds(lambda s, d: spdu.sync_ack(Kind.MIA, s, d), _serials, _values),
    st.builds(lambda s, d: spdu.sync_ack(Kind.RA, s, d), _serials, _values),
    st.builds(spdu.resynchronize, st.sampled_from(list(ResyncType)), _serials, _values),
    st.builds(spdu.activity_start, st.binary(min_size=1, max_size=6), _values),
    st.builds(
        spdu.activity_resume,
        st.binary(min_size=1, max_size=6),
        st.binary(min_size=1, max_size=6),
        _serials,
    ),
    st.builds(lambda r: spdu.with_reason(Kind.AI, r), st.integers(0, 255)),
    st.builds(lambda r, d: spdu.with_reason(Kind.ED, r, d), st.integers(0, 255), _values),
    st.builds(lambda d: spdu.plain(Kind.CD, d), _values),
    st.builds(spdu.exception_report, _values),
)
_category_1 = st.one_of(
    st.builds(lambda d: spdu.plain(Kind.TD, d), _user_data),
    st.builds(lambda d: spdu.plain(Kind.EX, d), _user_data),
    st.just(spdu.plain(Kind.GTC)),
    st.just(spdu.plain(Kind.GTA)),
)


@given(
    st.one_of(
        st.builds(spdu.please_tokens, _tokens, _values), st.builds(spdu.give_tokens, _tokens)
    ),
    st.lists(_category_2, max_size=3),
)
def test_concatenated_spdus_round_trip(first: Spdu, rest: list[Spdu]) -> None:
    assert spdu.decode(spdu.encode([first, *rest])) == [first, *rest]


@given(_category_1)
def test_category_1_spdus_round_trip_alone(unit: Spdu) -> None:
    assert spdu.decode(spdu.encode(unit)) == [unit]


@given(st.binary(max_size=64))
def test_random_octets_decode_or_raise_spdu_error_only(data: bytes) -> None:
    try:
        units = spdu.decode(data)
    except SpduError:
        return
    assert units and spdu.encode(units) == data


@given(st.lists(_category_2, min_size=1, max_size=2), st.data())
def test_cut_or_corrupted_tsdus_raise_spdu_error_only(
    units: list[Spdu], data: st.DataObject
) -> None:
    raw = bytearray(spdu.encode(units))
    where = data.draw(st.integers(0, len(raw) - 1))
    if data.draw(st.booleans()):
        raw = raw[:where]
    else:
        raw[where] = data.draw(st.integers(0, 255))
    try:
        decoded = spdu.decode(bytes(raw))
    except SpduError:
        return
    assert spdu.encode(decoded) == bytes(raw)  # what decodes is exactly what was sent


def test_parameter_groups_nest_pi_units() -> None:
    group = Parameter(PGI.LINKING_INFORMATION, parameters=(Parameter(PI.SERIAL_NUMBER, b"3"),))
    assert group.encode() == bytes([33, 3, 42, 1, 0x33])
