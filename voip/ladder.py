"""Ladder diagrams of SIP traces: a text rendering for the terminal and an SVG file.

A ladder (the flow pictures of RFC 3665) has one vertical line per party and one arrow
per message, in the order the traced agent saw them. The traced agent is the first
column; each address it talked to is another. Retransmissions are drawn too, marked as
such, because they are often what a trace is read for.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from xml.sax.saxutils import escape

from voip.trace import TraceRecord, cseq_method
from voip.transport import Endpoint

__all__ = ["Arrow", "Ladder"]

# Text layout: columns this far apart, lifelines drawn with "|".
_GAP = 30
_TIME_WIDTH = 10
# SVG layout, in pixels.
_SVG_GAP = 260
_SVG_LEFT = 120
_SVG_TOP = 70
_SVG_ROW = 34
_FONT = "DejaVu Sans, Arial, Helvetica, sans-serif"


@dataclass(frozen=True, slots=True)
class Arrow:
    """One message: from column ``source`` to column ``target``, with its label, the
    seconds since the first message, and whether it repeats an earlier one."""

    source: int
    target: int
    label: str
    elapsed: float
    retransmission: bool = False
    record: TraceRecord | None = None


class Ladder:
    """The parties and arrows of a trace; ``names`` gives parties readable names (by
    ``str(endpoint)`` or ``host:port``), ``agent`` the traced agent's."""

    def __init__(
        self,
        records: Iterable[TraceRecord],
        *,
        agent: str = "voip",
        names: Mapping[str, str] | None = None,
    ) -> None:
        names = dict(names or {})
        self.parties: list[str] = [agent]
        self.addresses: list[str] = [""]
        self.arrows: list[Arrow] = []
        columns: dict[str, int] = {}
        seen: set[tuple[str, bytes]] = set()
        start: float | None = None
        local_addresses: list[str] = []
        for record in records:
            if start is None:
                start = record.time
            if record.local is not None:
                local = _address(record.local)
                if local not in local_addresses:
                    local_addresses.append(local)
            address = _address(record.peer)
            column = columns.get(address)
            if column is None:
                column = columns[address] = len(self.parties)
                self.parties.append(
                    names.get(str(record.peer)) or names.get(address) or _host_port(record.peer)
                )
                self.addresses.append(address)
            key = (record.direction, bytes(record.message))
            repeated = key in seen
            seen.add(key)
            source, target = (0, column) if record.sent else (column, 0)
            self.arrows.append(
                Arrow(source, target, _label(record), record.time - start, repeated, record)
            )
        self.addresses[0] = ", ".join(local_addresses[:2])

    # --- text ----------------------------------------------------------------------------

    def text(self) -> str:
        """The ladder for a terminal: party names on top, one line per message."""
        width = _TIME_WIDTH + _GAP * (len(self.parties) - 1) + 20
        lines = [
            _centred_row(self.parties, width),
            _centred_row(self.addresses, width),
        ]
        lines.append(_lifelines(len(self.parties), width))
        for arrow in self.arrows:
            lines.append(_arrow_row(arrow, len(self.parties), width))
        lines.append(_lifelines(len(self.parties), width))
        return "\n".join(line.rstrip() for line in lines) + "\n"

    # --- SVG ------------------------------------------------------------------------------

    def svg(self) -> str:
        """The ladder as an SVG document (a standalone file)."""
        count = len(self.parties)
        width = _SVG_LEFT + _SVG_GAP * max(count - 1, 1) + 120
        bottom = _SVG_TOP + _SVG_ROW * (len(self.arrows) + 1)
        height = bottom + 30
        out = [
            '<?xml version="1.0" encoding="UTF-8"?>',
            f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
            f'viewBox="0 0 {width} {height}" font-family="{_FONT}" font-size="13">',
            "<title>SIP ladder diagram</title>",
            "<defs>",
            '<marker id="head" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="8" '
            'markerHeight="8" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" '
            'fill="#1f3b73"/></marker>',
            '<marker id="head-again" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="8" '
            'markerHeight="8" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" '
            'fill="#b5651d"/></marker>',
            "</defs>",
            f'<rect x="0" y="0" width="{width}" height="{height}" fill="white"/>',
        ]
        for index, (party, address) in enumerate(zip(self.parties, self.addresses, strict=True)):
            x = _svg_x(index)
            out.append(
                f'<rect x="{x - 100}" y="8" width="200" height="42" rx="6" fill="#e8eef9" '
                'stroke="#1f3b73"/>'
            )
            out.append(
                f'<text x="{x}" y="26" text-anchor="middle" font-weight="bold">'
                f"{escape(party)}</text>"
            )
            out.append(
                f'<text x="{x}" y="43" text-anchor="middle" font-size="11" fill="#444">'
                f"{escape(address)}</text>"
            )
            out.append(
                f'<line x1="{x}" y1="50" x2="{x}" y2="{bottom}" stroke="#888" '
                'stroke-dasharray="4 3"/>'
            )
        for row, arrow in enumerate(self.arrows, start=1):
            y = _SVG_TOP + _SVG_ROW * row
            x1, x2 = _svg_x(arrow.source), _svg_x(arrow.target)
            colour, marker = (
                ("#b5651d", "head-again") if arrow.retransmission else ("#1f3b73", "head")
            )
            dash = ' stroke-dasharray="6 3"' if arrow.retransmission else ""
            out.append(
                f'<text x="8" y="{y + 4}" font-size="11" fill="#444">{arrow.elapsed:.3f} s</text>'
            )
            out.append(
                f'<line x1="{x1}" y1="{y}" x2="{x2}" y2="{y}" stroke="{colour}" '
                f'stroke-width="1.6" marker-end="url(#{marker})"{dash}/>'
            )
            label = arrow.label + (" (again)" if arrow.retransmission else "")
            out.append(
                f'<text class="message" x="{(x1 + x2) / 2:.0f}" y="{y - 6}" '
                f'text-anchor="middle" fill="{colour}">{escape(label)}</text>'
            )
        out.append("</svg>")
        return "\n".join(out) + "\n"


def _address(endpoint: Endpoint) -> str:
    return str(endpoint)


def _host_port(endpoint: Endpoint) -> str:
    host = f"[{endpoint.host}]" if ":" in endpoint.host else endpoint.host
    return f"{host}:{endpoint.port}"


def _label(record: TraceRecord) -> str:
    message = record.message
    text = record.summary
    content_type = message.content_type
    if message.body and content_type is not None:
        mime = content_type.mime
        text += " (SDP)" if mime == "application/sdp" else f" ({mime})"
    if cseq_method(message) in ("INVITE", "UPDATE") and message.body:
        for line in message.body.decode("utf-8", "replace").splitlines():
            if line in ("a=sendonly", "a=recvonly", "a=inactive"):
                text += f" {line[2:]}"
    return text


def _column_x(index: int) -> int:
    return _TIME_WIDTH + 10 + _GAP * index


def _svg_x(index: int) -> int:
    return _SVG_LEFT + _SVG_GAP * index


def _centred_row(texts: list[str], width: int) -> str:
    row = [" "] * width
    for index, text in enumerate(texts):
        start = max(0, _column_x(index) - len(text) // 2)
        for offset, char in enumerate(text):
            if start + offset < width:
                row[start + offset] = char
    return "".join(row)


def _lifelines(count: int, width: int) -> str:
    row = [" "] * width
    for index in range(count):
        row[_column_x(index)] = "|"
    return "".join(row)


def _arrow_row(arrow: Arrow, count: int, width: int) -> str:
    row = list(_lifelines(count, width))
    stamp = f"{arrow.elapsed:8.3f}s"
    row[: len(stamp)] = stamp
    left, right = sorted((_column_x(arrow.source), _column_x(arrow.target)))
    line = "." if arrow.retransmission else "-"
    for x in range(left + 1, right):
        row[x] = line
    if arrow.target > arrow.source:
        row[right - 1] = ">"
    else:
        row[left + 1] = "<"
    label = f" {arrow.label}{' (again)' if arrow.retransmission else ''} "
    span = right - left - 3
    if len(label) > span:
        label = label[: span - 1] + "~ "
    start = left + 2 + (span - len(label)) // 2
    row[start : start + len(label)] = label
    return "".join(row)
