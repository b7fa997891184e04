"""SIP parse + serialize rate: voip-session against pyVoIP, sippy and aiosipua.

One *op* is what a user agent does with a datagram it receives and then sends on:
parse the bytes; read the typed fields a UA needs (top Via branch, host and port;
From tag; To URI and tag; CSeq number and method; Call-ID; Contact URI); serialize
the message back to bytes. The second row of each implementation additionally parses
the SDP body with that library's own SDP parser and reads the connection address,
the audio port and the payload formats.

Messages: ``data/invite.sip`` (a re-INVITE as a softphone sends it, after one proxy:
two Via, both tags, SDP offer with PCMU/PCMA/telephone-event) and ``data/ok200.sip``
(the 200 OK to it, with Record-Route and an SDP answer).

Every (implementation, row, message) case is timed with ``time.perf_counter`` over N
ops per repeat, N chosen so a repeat takes about ``--seconds``; repeats of all cases
are interleaved so that the machine's speed swings hit every implementation alike.
Figures are the median msg/s and the spread (min..max). Ratios compare rates measured
in the same run; absolute figures on a shared VM move by 2-3x within minutes.

    python benchmarks/parse.py            # 7 repeats of ~0.5 s per case
    python benchmarks/parse.py --quick    # 3 repeats of ~0.15 s per case
    python benchmarks/parse.py --json     # machine-readable results on stdout
    VOIP_PURE_PYTHON=1 python benchmarks/parse.py   # ours without the mypyc-compiled core

The peers come from the project's ``bench`` extra: ``pip install -e '.[bench]'``.
"""

from __future__ import annotations

import argparse
import gc
import json
import platform
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
DATA = HERE / "data"

#: message key -> (file, column title)
MESSAGES: dict[str, tuple[str, str]] = {
    "invite": ("invite.sip", "INVITE"),
    "ok200": ("ok200.sip", "200 OK"),
}

#: The fields an op returns, in order; ``wire`` is the serialized message (None when
#: the library cannot serialize), the ``sdp_*`` fields are present in the SDP row only.
FIELDS = (
    "via_branch",
    "via_host",
    "via_port",
    "from_tag",
    "to_host",
    "to_tag",
    "cseq_number",
    "cseq_method",
    "call_id",
    "contact_host",
    "wire",
    "sdp_address",
    "sdp_port",
    "sdp_formats",
)

_DIALOG = {
    "via_branch": "z9hG4bKc7a4.5f3e8d2b1a9c0e7f.0",
    "via_host": "203.0.113.5",
    "via_port": 5060,
    "from_tag": "9fxced76sl",
    "to_host": "example.com",
    "to_tag": "8321234356",
    "cseq_number": 2,
    "cseq_method": "INVITE",
    "call_id": "3848276298220188511@192.0.2.10",
}
#: What every implementation must read from the files in ``data/`` (kept in step with them).
EXPECTED: dict[str, dict[str, object]] = {
    "invite": {
        **_DIALOG,
        "contact_host": "192.0.2.10",
        "sdp_address": "192.0.2.10",
        "sdp_port": 7078,
        "sdp_formats": [0, 8, 101],
    },
    "ok200": {
        **_DIALOG,
        "contact_host": "198.51.100.20",
        "sdp_address": "198.51.100.20",
        "sdp_port": 40376,
        "sdp_formats": [0, 101],
    },
}

ROWS = ("msg", "msg+sdp")

#: op(data, with_sdp) -> the FIELDS tuple (without the sdp_* fields when with_sdp is false)
Op = Callable[[bytes, bool], tuple[Any, ...]]


@dataclass(slots=True)
class Impl:
    """One implementation under test, or the reason it cannot be tested."""

    name: str
    version: str
    ours: bool = False
    op: Op | None = None
    error: str | None = None
    sdp_error: str | None = None
    serializes: bool = True
    #: which build of ours ran: "mypyc" (compiled syntax core) or "pure Python"
    variant: str | None = None
    #: a Contact it keeps as a raw string is checked by substring, not by typed host
    contact_untyped: bool = False
    notes: list[str] = field(default_factory=list)

    @property
    def label(self) -> str:
        variant = f" ({self.variant})" if self.variant else ""
        return f"{self.name} {self.version}{variant}".strip()


@dataclass(slots=True)
class Case:
    """One timed (implementation, row, message) cell."""

    impl: Impl
    row: str
    message: str
    data: bytes
    n: int = 0
    rates: list[float] = field(default_factory=list)
    error: str | None = None
    mismatch: str | None = None
    wire_note: str | None = None

    @property
    def with_sdp(self) -> bool:
        return self.row == "msg+sdp"

    @property
    def ok(self) -> bool:
        return self.error is None and bool(self.rates)

    def summary(self) -> dict[str, Any] | None:
        if not self.ok:
            return None
        return {
            "median": statistics.median(self.rates),
            "min": min(self.rates),
            "max": max(self.rates),
            "ops_per_repeat": self.n,
            "samples": self.rates,
        }


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "?"


def _describe(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


# --- implementations ------------------------------------------------------------------


def make_ours() -> Impl:
    """voip-session from this working tree: ``voip.sip.parse_message`` and ``sdp.parse``."""
    version = _version("voip-session")
    impl = Impl("voip-session", "(working tree)" if version == "?" else version, ours=True)
    # Measure the code next to this script, whether or not the project is installed.
    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))
    try:
        from voip.sip import IMPLEMENTATION, parse_message
    except Exception as exc:
        impl.error = f"not importable ({_describe(exc)})"
        return impl
    # The syntax core compiled by mypyc when the package was built with it (setup.py),
    # pure Python otherwise or with VOIP_PURE_PYTHON=1.
    impl.variant = IMPLEMENTATION
    sdp_parse: Callable[[bytes], Any] | None = None
    try:
        import sdp

        sdp_parse = sdp.parse
    except Exception as exc:
        impl.sdp_error = f"sdp.parse not importable ({_describe(exc)})"

    def op(data: bytes, with_sdp: bool) -> tuple[Any, ...]:
        m = parse_message(data)
        via = m.via[0]
        to = m.to
        cseq = m.cseq
        fields = (
            via.branch,
            via.host,
            via.port,
            m.from_.tag,
            to.uri.host,
            to.tag,
            cseq.number,
            cseq.method,
            m.call_id,
            m.contact[0].uri.host,
        )
        if with_sdp:
            assert sdp_parse is not None
            # RFC 8866 model: session and media descriptions, c= at either level.
            desc = sdp_parse(m.body)
            media = desc.media[0]
            conn = media.connections[0] if media.connections else desc.connection
            assert conn is not None
            return (*fields, bytes(m), conn.address, media.port, media.formats)
        return (*fields, bytes(m))

    impl.op = op
    return impl


def make_pyvoip() -> Impl:
    """pyVoIP: ``SIPMessage(data)`` parses headers and the SDP body into dicts, eagerly."""
    impl = Impl("pyVoIP", _version("pyVoIP"), serializes=False, contact_untyped=True)
    try:
        # pyVoIP 1.6.8 has an import cycle: pyVoIP.SIP imported first fails with
        # "partially initialized module"; importing pyVoIP.VoIP first resolves it.
        import pyVoIP.VoIP  # noqa: F401
        from pyVoIP.SIP import SIPMessage
    except Exception as exc:
        impl.error = f"not importable ({_describe(exc)})"
        return impl

    def op(data: bytes, with_sdp: bool) -> tuple[Any, ...]:
        m = SIPMessage(data)
        headers = m.headers
        via = headers["Via"][0]
        host, port = via["address"]
        to = headers["To"]
        cseq = headers["CSeq"]
        fields = (
            via["branch"],
            host,
            port,
            headers["From"]["tag"],
            to["host"],
            to["tag"],
            cseq["check"],
            cseq["method"],
            headers["Call-ID"],
            headers["Contact"],  # pyVoIP does not parse Contact: the raw header value
            None,  # no serializer for a parsed SIPMessage
        )
        if with_sdp:
            # Already parsed in SIPMessage(): this row only reads the SDP fields.
            body = m.body
            media = body["m"][0]
            return (*fields, body["c"][0]["address"], media["port"], media["methods"])
        return fields

    impl.op = op
    impl.notes += [
        "no serializer for a parsed SIPMessage: parse + typed access only (less work per op)",
        "Contact is not parsed (kept as the raw header string)",
        "SDP is parsed eagerly in both rows; the +SDP row only reads the parsed fields",
    ]
    return impl


def make_sippy() -> Impl:
    """sippy: ``SipRequest(buf=str)`` / ``SipResponse(buf=str)``, header bodies on demand."""
    impl = Impl("sippy", _version("sippy"))
    try:
        from sippy.SdpBody import SdpBody
        from sippy.SipRequest import SipRequest
        from sippy.SipResponse import SipResponse
    except Exception as exc:
        impl.error = f"not importable ({_describe(exc)})"
        return impl

    def op(data: bytes, with_sdp: bool) -> tuple[Any, ...]:
        # As SipTransactionManager.handleIncoming: decode, pick the class by start line.
        text = data.decode()
        m = SipResponse(buf=text) if text.startswith("SIP/2.0 ") else SipRequest(buf=text)
        via = m.getHFBody("via")
        host, port = via.getAddr()
        to = m.getHFBody("to")
        number, method = m.getHFBody("cseq").getCSeq()
        fields = (
            via.getBranch(),
            host,
            port,
            m.getHFBody("from").getTag(),
            to.getUrl().host,
            to.getTag(),
            number,
            method,
            str(m.getHFBody("call-id")),
            m.getHFBody("contact").getUrl().host,
        )
        if with_sdp:
            # sippy's own SDP class on the body text; the message keeps its raw body,
            # so serialization costs the same as in the first row.
            desc = SdpBody(m.getBody().content)
            media = desc.sections[0]
            wire = m.localStr().encode()
            return (*fields, wire, media.c_header.addr, media.m_header.port, media.m_header.formats)
        return (*fields, m.localStr().encode())

    impl.op = op
    impl.notes += [
        "str-based: the op includes bytes.decode() before parsing and str.encode() after"
        " localStr(), as its transaction manager does",
    ]
    return impl


def make_aiosipua() -> Impl:
    """aiosipua: ``SipMessage.parse(bytes)``, typed properties, ``bytes(message)``."""
    impl = Impl("aiosipua", _version("aiosipua"))
    try:
        from aiosipua import SipMessage, parse_sdp
    except Exception as exc:
        impl.error = f"not importable ({_describe(exc)})"
        return impl

    def op(data: bytes, with_sdp: bool) -> tuple[Any, ...]:
        m = SipMessage.parse(data)
        via = m.via[0]  # the property parses every Via, on each access
        from_ = m.from_addr
        to = m.to_addr
        cseq = m.cseq
        assert from_ is not None and to is not None and cseq is not None
        fields = (
            via.branch,
            via.host,
            via.port,
            from_.tag,
            to.uri.host,
            to.tag,
            cseq.seq,
            cseq.method,
            m.call_id,
            m.contact[0].uri.host,
        )
        if with_sdp:
            desc = parse_sdp(m.text)  # parse_sdp takes text, not bytes
            media = desc.media[0]
            conn = media.connection or desc.connection
            assert conn is not None
            return (*fields, bytes(m), conn.address, media.port, media.formats)
        return (*fields, bytes(m))

    impl.op = op
    return impl


IMPLEMENTATIONS: tuple[Callable[[], Impl], ...] = (
    make_ours,
    make_pyvoip,
    make_sippy,
    make_aiosipua,
)


# --- checking and timing --------------------------------------------------------------


def _same(expected: object, got: object) -> bool:
    if isinstance(expected, list):
        return isinstance(got, list | tuple) and [str(x) for x in expected] == [str(x) for x in got]
    return str(expected) == str(got)


def check(case: Case) -> None:
    """Run the op once; record an error, a wrong field, and how the wire differs."""
    impl = case.impl
    assert impl.op is not None
    try:
        result = impl.op(case.data, case.with_sdp)
    except Exception as exc:
        case.error = f"cannot parse {MESSAGES[case.message][1]} ({_describe(exc)})"
        return
    got = dict(zip(FIELDS, result, strict=False))
    wrong = []
    for name, expected in EXPECTED[case.message].items():
        if name.startswith("sdp_") and not case.with_sdp:
            continue
        value = got.get(name)
        if name == "contact_host" and impl.contact_untyped:
            ok = str(expected) in str(value)
        elif name == "via_port" and value is None:
            ok = expected == 5060  # sent-by without a port: the default port (RFC 3261 §18.2.2)
        else:
            ok = _same(expected, value)
        if not ok:
            wrong.append(f"{name}={value!r} (expected {expected!r})")
    if wrong:
        case.mismatch = "; ".join(wrong)
    wire = got.get("wire")
    if isinstance(wire, bytes):
        case.wire_note = wire_note(wire, case.data)


def wire_note(wire: bytes, data: bytes) -> str:
    """How a serialized message compares with the bytes it was parsed from."""
    if wire == data:
        return "identical to the input"
    head_out, head_in = wire.split(b"\r\n\r\n")[0], data.split(b"\r\n\r\n")[0]
    lines_out, lines_in = head_out.split(b"\r\n"), head_in.split(b"\r\n")
    if sorted(lines_out) == sorted(lines_in):
        return "same header lines as the input, in another order"
    return (
        f"rewritten: {len(lines_out) - 1} header lines vs {len(lines_in) - 1},"
        f" {len(wire) - len(data):+d} bytes"
    )


def time_repeat(case: Case, n: int) -> float:
    """msg/s over n ops."""
    op = case.impl.op
    assert op is not None
    data, with_sdp = case.data, case.with_sdp
    gc.collect()
    start = time.perf_counter()
    for _ in range(n):
        op(data, with_sdp)
    return n / (time.perf_counter() - start)


def calibrate(case: Case, seconds: float) -> int:
    """Ops per repeat so that one repeat takes about ``seconds``."""
    op = case.impl.op
    assert op is not None
    n = 1
    while True:
        start = time.perf_counter()
        for _ in range(n):
            op(case.data, case.with_sdp)
        elapsed = time.perf_counter() - start
        if elapsed >= seconds / 10 or n >= 1 << 24:
            return max(1, round(n * seconds / elapsed))
        n *= 2


def build_cases(impls: list[Impl], messages: dict[str, bytes]) -> list[Case]:
    cases = []
    for impl in impls:
        for row in ROWS:
            for key, data in messages.items():
                case = Case(impl, row, key, data)
                if impl.error:
                    case.error = impl.error
                elif row == "msg+sdp" and impl.sdp_error:
                    case.error = impl.sdp_error
                else:
                    check(case)
                cases.append(case)
    return cases


def run(cases: list[Case], repeats: int, seconds: float, progress: bool) -> None:
    live = [c for c in cases if c.error is None]
    for case in live:
        case.n = calibrate(case, seconds)
    for r in range(repeats):
        if progress:
            print(f"  repeat {r + 1}/{repeats}", file=sys.stderr, flush=True)
        for case in live:
            try:
                case.rates.append(time_repeat(case, case.n))
            except Exception as exc:  # a peer that fails only under repetition
                case.error = f"failed while timing ({_describe(exc)})"
        live = [c for c in live if c.error is None]


# --- reporting ------------------------------------------------------------------------


def _find(cases: list[Case], impl: Impl, row: str, message: str) -> Case:
    return next(c for c in cases if c.impl is impl and c.row == row and c.message == message)


def _median(case: Case) -> float | None:
    summary = case.summary()
    return None if summary is None else float(summary["median"])


def ratio(ours: Case | None, peer: Case) -> float | None:
    if ours is None:
        return None
    a, b = _median(ours), _median(peer)
    return None if a is None or b is None else a / b


def fastest_peer(cases: list[Case], impls: list[Impl], serializing: bool) -> Case | None:
    peers = [
        _find(cases, i, "msg", "invite")
        for i in impls
        if not i.ours and (i.serializes or not serializing)
    ]
    timed = [c for c in peers if c.ok]
    return max(timed, key=lambda c: _median(c) or 0.0, default=None)


def _fmt_cell(case: Case) -> str:
    summary = case.summary()
    if summary is None:
        return "error"
    return f"{summary['median']:>9,.0f} ({summary['min']:,.0f}..{summary['max']:,.0f})"


def _fmt_ratio(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}\u00d7"


def report_text(cases: list[Case], impls: list[Impl], repeats: int, seconds: float) -> None:
    ours = next((i for i in impls if i.ours), None)
    sizes = ", ".join(
        f"{MESSAGES[k][1]} {len(_find(cases, impls[0], 'msg', k).data)} B" for k in MESSAGES
    )
    print(
        f"SIP parse + typed access + serialize: median msg/s (min..max), {repeats} repeats of"
        f" ~{seconds:g} s per case, interleaved; Python {platform.python_version()}"
    )
    print(f"messages: {sizes}; row msg+sdp also parses the SDP body with the library's parser")
    if ours is not None and ours.variant:
        print(
            f"voip-session's SIP syntax core ran as: {ours.variant}"
            " (mypyc-compiled when the install built it; VOIP_PURE_PYTHON=1 forces pure Python)"
        )
    print()
    headers = (
        "implementation",
        "row",
        "INVITE msg/s",
        "200 OK msg/s",
        "ours/peer INV",
        "ours/peer 200",
    )
    name_width = max([len(i.label) + 5 for i in impls if not i.error] + [len(headers[0])])
    widths = (name_width, 8, 28, 28, 13, 13)
    print("  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip())
    print("  ".join("-" * w for w in widths))
    footnotes: list[str] = []
    for impl in impls:
        if impl.error:
            print(f"{impl.name if impl.ours else impl.label}: {impl.error}")
            continue
        mark = ""
        notes = list(impl.notes)
        if impl.sdp_error:
            notes.append(f"msg+sdp: {impl.sdp_error}")
        for row in ROWS:
            for key in MESSAGES:
                case = _find(cases, impl, row, key)
                title = MESSAGES[key][1]
                if case.error and case.error != impl.sdp_error:
                    notes.append(f"{row} {title}: {case.error}")
                if case.mismatch:
                    notes.append(f"{row} {title}: WRONG FIELDS {case.mismatch}")
                if case.wire_note and row == "msg":
                    notes.append(f"serialized {title}: {case.wire_note}")
        if notes:
            footnotes.append(f"[{len(footnotes) + 1}] {impl.label}: " + "; ".join(notes))
            mark = f" [{len(footnotes)}]"
        for row in ROWS:
            inv, ok = _find(cases, impl, row, "invite"), _find(cases, impl, row, "ok200")
            if impl.ours or ours is None or ours.error:
                r_inv = r_ok = None
            else:
                r_inv = ratio(_find(cases, ours, row, "invite"), inv)
                r_ok = ratio(_find(cases, ours, row, "ok200"), ok)
            cells = (
                (impl.label + mark) if row == "msg" else "",
                row,
                _fmt_cell(inv),
                _fmt_cell(ok),
                _fmt_ratio(r_inv),
                _fmt_ratio(r_ok),
            )
            print("  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip())
    print()
    for note in footnotes:
        print(note)
    if footnotes:
        print()
    for line in ratio_lines(cases, impls):
        print(line)


def ratio_lines(cases: list[Case], impls: list[Impl]) -> list[str]:
    ours = next((i for i in impls if i.ours), None)
    best = fastest_peer(cases, impls, serializing=False)
    best_ser = fastest_peer(cases, impls, serializing=True)
    if ours is None or ours.error:
        why = ours.error if ours else "missing"
        return [f"ratio vs fastest peer on INVITE: n/a: voip-session {why}"]
    mine = _find(cases, ours, "msg", "invite")
    lines = []
    for label, peer in (("fastest peer", best), ("fastest serializing peer", best_ser)):
        value = None if peer is None else ratio(mine, peer)
        if peer is None or value is None:
            lines.append(f"ratio vs {label} on INVITE: n/a")
        else:
            lines.append(
                f"ratio vs {label} on INVITE: {value:.2f}\u00d7"
                f" ({_median(mine):,.0f} vs {peer.impl.label} {_median(peer):,.0f} msg/s)"
            )
    return lines


def report_json(cases: list[Case], impls: list[Impl], repeats: int, seconds: float) -> None:
    ours = next((i for i in impls if i.ours), None)
    results = []
    for impl in impls:
        for row in ROWS:
            entry: dict[str, Any] = {
                "implementation": impl.name,
                "version": impl.version,
                "ours": impl.ours,
                "variant": impl.variant,
                "row": row,
                "serializes": impl.serializes,
                "error": impl.error,
                "notes": impl.notes,
            }
            for key in MESSAGES:
                case = _find(cases, impl, row, key)
                mine = None if ours is None or impl.ours else _find(cases, ours, row, key)
                entry[key] = {
                    "rate": case.summary(),
                    "error": case.error,
                    "mismatch": case.mismatch,
                    "wire": case.wire_note,
                    "ratio_ours_over_this": ratio(mine, case),
                }
            results.append(entry)
    best = fastest_peer(cases, impls, serializing=False)
    mine = None if ours is None or ours.error else _find(cases, ours, "msg", "invite")
    out = {
        "benchmark": "sip-parse",
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "machine": platform.machine(),
        "repeats": repeats,
        "seconds_per_repeat": seconds,
        "messages": {k: len(_find(cases, impls[0], "msg", k).data) for k in MESSAGES},
        "results": results,
        "ratio_vs_fastest_peer_invite": None
        if best is None
        else {"peer": best.impl.name, "ratio": ratio(mine, best) if mine else None},
        "summary": ratio_lines(cases, impls),
    }
    print(json.dumps(out, indent=2))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="3 repeats of ~0.15 s per case")
    parser.add_argument("--json", action="store_true", help="print JSON results on stdout")
    parser.add_argument("--repeats", type=int, help="repeats per case (default 7, --quick 3)")
    parser.add_argument("--seconds", type=float, help="target seconds per repeat (default 0.5)")
    args = parser.parse_args(argv)
    repeats = args.repeats or (3 if args.quick else 7)
    seconds = args.seconds or (0.15 if args.quick else 0.5)

    messages = {key: (DATA / name).read_bytes() for key, (name, _) in MESSAGES.items()}
    impls = [make() for make in IMPLEMENTATIONS]
    cases = build_cases(impls, messages)
    progress = not args.json or sys.stderr.isatty()
    if progress:
        print(f"timing {sum(c.error is None for c in cases)} cases...", file=sys.stderr)
    run(cases, repeats, seconds, progress)
    if args.json:
        report_json(cases, impls, repeats, seconds)
    else:
        report_text(cases, impls, repeats, seconds)
    return 0


if __name__ == "__main__":
    sys.exit(main())
