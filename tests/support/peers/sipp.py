"""SIPp (sip-tester 3.6.1) runs: a scenario in the foreground, or a UAS in the background.

``run_sipp`` awaits one run of a scenario (``asyncio.create_subprocess_exec``, so the UA under
test keeps running on the same loop) and returns a ``SippResult``: exit code, the counters of
``-trace_stat``, the final screen of ``-trace_screen`` and the paths of its logs.
``start_sipp`` starts a scenario in the background (typically a UAS) that the test ends with
``await proc.wait()`` once its calls are done, or ``proc.stop()``.

Every run is bounded: ``-m`` calls, ``-timeout`` seconds with ``-timeout_error``, and a kill
after a grace period beyond that. Addresses are explicit (``-i``, ``-mi`` 127.0.0.1) and ports
are free ones picked here (``-p``, ``-mp``; ``-cp`` the control port); a run that finds one
of them taken meanwhile (``SIPP_BIND_FAILURE``) starts again on fresh ones. The scenarios in
``sipp/`` use these keywords, always given: ``[caller]`` (From user), ``[domain]`` (From/To
host), ``[contact]`` and ``[expires]`` (REGISTER), ``[service]`` (-s, the callee).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import re
import signal
import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypedDict, Unpack

from ._process import (
    LOOPBACK,
    PORT_ATTEMPTS,
    PeerHandle,
    PeerProcess,
    bound_ports,
    child_argv,
    free_port,
    free_port_range,
    log_has,
    log_tail,
    on_free_ports,
    require_binary,
    start_peer,
    wait_until,
)
from .kamailio import Kamailio

SCENARIOS = Path(__file__).with_name("sipp")
PCAP_G711A = Path("/usr/share/sip-tester/g711a.pcap")

_TRANSPORT_FLAG = {"udp": "u1", "tcp": "t1"}
_runs = itertools.count(1)
# beyond sipp's own -timeout, before the run is killed
_GRACE = 10.0
#: what sipp prints (and exits with 254) when a port it was given is taken: "Unable to bind
#: main socket, errno = 98 (Address already in use)", likewise "audio RTP socket" (-mp)
#: and "remote control socket" (-cp)
SIPP_BIND_FAILURE = re.compile(r"Unable to bind .*\(Address already in use\)")


def scenario_path(scenario: str | Path) -> Path:
    """A scenario of ``sipp/`` by name ("uac_call" or "uac_call.xml"), or a path as it is."""
    path = Path(scenario)
    if path.is_file():
        return path
    path = SCENARIOS / (path.name if path.suffix == ".xml" else f"{path.name}.xml")
    if not path.is_file():
        known = ", ".join(sorted(p.stem for p in SCENARIOS.glob("*.xml")))
        raise FileNotFoundError(f"no sipp scenario {scenario!r}; known: {known}")
    return path


@dataclass(frozen=True, slots=True)
class SippLogs:
    """The files of one sipp run, named ``sipp-<n>-<scenario>.<kind>`` in the log directory."""

    stdout: Path
    messages: Path
    errors: Path
    stats: Path
    screen: Path

    @classmethod
    def in_dir(cls, log_dir: Path, scenario: Path) -> SippLogs:
        log_dir.mkdir(parents=True, exist_ok=True)
        stem = log_dir / f"sipp-{next(_runs)}-{scenario.stem}"
        return cls(
            stdout=stem.with_suffix(".out"),
            messages=stem.with_suffix(".messages.log"),
            errors=stem.with_suffix(".errors.log"),
            stats=stem.with_suffix(".stats.csv"),
            screen=stem.with_suffix(".screen.log"),
        )


@dataclass(frozen=True, slots=True)
class SippResult:
    """What a sipp run did: exit code (0 iff every call succeeded) and its statistics."""

    scenario: Path
    argv: tuple[str, ...]
    returncode: int
    stats: Mapping[str, str]
    logs: SippLogs

    def _count(self, column: str) -> int:
        value = self.stats.get(column, "0")
        return int(value) if value.isdigit() else 0

    @property
    def successful(self) -> int:
        return self._count("SuccessfulCall(C)")

    @property
    def failed(self) -> int:
        return self._count("FailedCall(C)")

    @property
    def created(self) -> int:
        return self._count("TotalCallCreated")

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and self.failed == 0

    def messages(self) -> str:
        """Every SIP message sipp sent and received (``-trace_msg``), as text."""
        try:
            return self.logs.messages.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return ""

    def report(self) -> str:
        """A text for an assertion message: counters, errors, the final screen, the messages."""
        parts = [
            f"sipp {self.scenario.name}: exit {self.returncode}, {self.successful} successful, "
            f"{self.failed} failed, {self.created} created",
            "command: " + " ".join(self.argv),
        ]
        for path in (self.logs.errors, self.logs.screen, self.logs.stdout, self.logs.messages):
            if path.exists() and path.stat().st_size:
                parts.append(log_tail(path, 60))
        return "\n".join(parts)


def read_stat_rows(path: Path) -> list[dict[str, str]]:
    """The rows of a ``-trace_stat`` CSV (semicolon-separated, a header row first), one
    per statistics dump (``-fd``), oldest first; none before SIPp wrote any."""
    try:
        lines = [line for line in path.read_text(encoding="utf-8").splitlines() if line]
    except FileNotFoundError:
        return []
    header = lines[0].split(";") if lines else []
    return [dict(zip(header, line.split(";"), strict=False)) for line in lines[1:]]


def _read_stats(path: Path) -> dict[str, str]:
    """The last row of a ``-trace_stat`` CSV: the totals when SIPp ended."""
    rows = read_stat_rows(path)
    return rows[-1] if rows else {}


@dataclass(frozen=True, slots=True)
class SippCommand:
    argv: tuple[str, ...]
    scenario: Path
    logs: SippLogs
    port: int
    media_port: int
    transport: str
    timeout: float
    control_port: int

    def bound(self) -> set[tuple[str, int]]:
        """What sipp binds at its start: the SIP port, audio and video RTP (-mp, -mp + 2)
        and the control port."""
        media, control = self.media_port, self.control_port
        return {(self.transport, self.port), ("udp", media), ("udp", media + 2), ("udp", control)}

    def result(self, returncode: int) -> SippResult:
        return SippResult(
            self.scenario, self.argv, returncode, _read_stats(self.logs.stats), self.logs
        )


def sipp_command(
    scenario: str | Path,
    remote: str | tuple[str, int] | None = None,
    *,
    log_dir: Path,
    role: str = "uac",
    service: str | None = None,
    auth: tuple[str, str] | None = None,
    transport: str = "udp",
    calls: int = 1,
    rate: float = 10.0,
    duration_ms: int = 500,
    keys: Mapping[str, str] | None = None,
    extra_args: Sequence[str] = (),
    timeout: float = 30.0,
    local_port: int | None = None,
    media_port: int | None = None,
    rtp_echo: bool = False,
    trace_messages: bool = True,
) -> SippCommand:
    """The command line of a sipp run; the options are described in ``SippOptions``."""
    if role not in ("uac", "uas"):
        raise ValueError(f"role is 'uac' or 'uas', not {role!r}")
    if role == "uac" and remote is None:
        raise ValueError("a UAC scenario needs the remote host:port")
    if transport not in _TRANSPORT_FLAG:
        raise ValueError(f"sip-tester 3.6.1 has no TLS; transport is udp or tcp, not {transport!r}")
    path = scenario_path(scenario)
    logs = SippLogs.in_dir(log_dir, path)
    port = local_port or free_port("udp" if transport == "udp" else "tcp")
    # -mp uses the port and the next ones (RTP, RTCP; +2 for video): four from a free range.
    media = media_port or free_port_range(4)
    user = service or ("sipp" if role == "uas" else "service")
    all_keys = {
        "caller": auth[0] if auth else "sipp",
        "domain": LOOPBACK,
        "contact": f"sip:{user}@{LOOPBACK}:{port};transport={transport}",
        "expires": "3600",
    }
    all_keys.update(keys or {})

    argv = [require_binary("sipp")]
    if remote is not None:
        argv.append(remote if isinstance(remote, str) else f"{remote[0]}:{remote[1]}")
    argv += ["-sf", str(path), "-t", _TRANSPORT_FLAG[transport]]
    argv += ["-i", LOOPBACK, "-p", str(port), "-mi", LOOPBACK, "-mp", str(media)]
    control_port = free_port("udp")
    argv += ["-cp", str(control_port), "-nostdin"]
    argv += ["-m", str(calls), "-r", f"{rate:g}", "-d", str(duration_ms)]
    argv += ["-timeout", f"{timeout:g}s", "-timeout_error"]
    argv += ["-s", user]
    if auth:
        argv += ["-au", auth[0], "-ap", auth[1]]
    for name, value in all_keys.items():
        argv += ["-key", name, value]
    if role == "uas":
        # answer in-dialog INFO, NOTIFY, OPTIONS, UPDATE the scenario does not expect with 200
        argv.append("-aa")
    if rtp_echo:
        argv.append("-rtp_echo")
    if rate > 100:
        argv += ["-buff_size", "4194304"]
    argv += ["-trace_stat", "-stf", str(logs.stats), "-fd", "1"]
    argv += ["-trace_screen", "-screen_file", str(logs.screen)]
    argv += ["-trace_err", "-error_file", str(logs.errors)]
    if trace_messages:
        argv += ["-trace_msg", "-message_file", str(logs.messages)]
    argv += list(extra_args)
    return SippCommand(tuple(argv), path, logs, port, media, transport, timeout, control_port)


class SippOptions(TypedDict, total=False):
    """The options of a sipp run (``run_sipp``, ``start_sipp``, ``sipp_command``).

    role          "uac" or "uas" (a UAS gets ``-aa``); a UAC needs ``remote``
    service       ``-s``: the callee of a UAC, the AoR user of register.xml
    auth          (user, password) for 401/407 (``-au``/``-ap``); the user is also ``[caller]``
    transport     "udp" or "tcp" (this sipp has no TLS)
    calls, rate   ``-m`` and ``-r`` (calls per second)
    duration_ms   ``-d``: what a scenario's bare ``<pause/>`` waits
    keys          extra or overriding ``-key`` values
    extra_args    more sipp arguments, last on the command line
    timeout       ``-timeout`` in seconds, an error when reached
    local_port, media_port   ``-p`` and ``-mp``; free ones by default
    rtp_echo      echo the RTP received on the media port
    trace_messages  ``-trace_msg`` (every message in a file; turn off for load)
    """

    role: str
    service: str | None
    auth: tuple[str, str] | None
    transport: str
    calls: int
    rate: float
    duration_ms: int
    keys: Mapping[str, str] | None
    extra_args: Sequence[str]
    timeout: float
    local_port: int | None
    media_port: int | None
    rtp_echo: bool
    trace_messages: bool


async def run_sipp(
    scenario: str | Path,
    remote: str | tuple[str, int] | None = None,
    *,
    log_dir: Path,
    **options: Unpack[SippOptions],
) -> SippResult:
    """Run a scenario to its end and return what it did.

    ``scenario`` is a name in ``sipp/`` ("uac_call") or a path; ``remote`` the "host:port" or
    (host, port) the scenario talks to (a UAC's proxy or peer); logs go to ``log_dir``.
    A run that could not bind a port it was given starts again on fresh ones, up to
    ``PORT_ATTEMPTS`` times.
    """
    attempt = 1
    while True:
        cmd = sipp_command(scenario, remote, log_dir=log_dir, **options)
        returncode = await _run(cmd)
        if returncode == 0 or attempt == PORT_ATTEMPTS:
            break
        if log_has(cmd.logs.stdout, SIPP_BIND_FAILURE) is None:
            break
        attempt += 1
    return cmd.result(returncode)


async def _run(cmd: SippCommand) -> int:
    timeout = cmd.timeout
    with cmd.logs.stdout.open("wb") as out:
        proc = await asyncio.create_subprocess_exec(
            *child_argv(cmd.argv),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=out,
            stderr=asyncio.subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        returncode = await asyncio.wait_for(proc.wait(), timeout + _GRACE)
    except BaseException:
        # timed out or the test was cancelled: the run ends with the test
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        await proc.wait()
        raise
    return returncode


@dataclass(eq=False)
class SippProcess(PeerHandle):
    """A sipp running in the background (typically a UAS waiting for calls)."""

    command: SippCommand
    process: PeerProcess

    @property
    def port(self) -> int:
        return self.command.port

    @property
    def media_port(self) -> int:
        return self.command.media_port

    @property
    def address(self) -> str:
        return f"{LOOPBACK}:{self.port}"

    def uri(self, user: str = "sipp") -> str:
        """A URI that reaches this sipp directly."""
        return f"sip:{user}@{LOOPBACK}:{self.port};transport={self.command.transport}"

    async def wait(self, timeout: float | None = None) -> SippResult:
        """Wait for the run to end by itself (``calls`` done or its ``-timeout``)."""
        limit = self.command.timeout + _GRACE if timeout is None else timeout
        popen = self.process.popen
        deadline = asyncio.get_running_loop().time() + limit
        while popen.poll() is None:
            if asyncio.get_running_loop().time() > deadline:
                self.process.stop()
                raise AssertionError(
                    f"sipp {self.command.scenario.name} still running after {limit:g} s\n"
                    + self.command.result(-1).report()
                )
            await asyncio.sleep(0.05)
        self.process.stop()
        return self.command.result(popen.returncode)

    def stop(self) -> SippResult:
        """End the run now (SIGTERM, SIGKILL after a bound) and return what it did."""
        returncode = self.process.stop()
        return self.command.result(-1 if returncode is None else returncode)


def start_sipp(
    scenario: str | Path,
    remote: str | tuple[str, int] | None = None,
    *,
    log_dir: Path,
    start_timeout: float = 10.0,
    **options: Unpack[SippOptions],
) -> SippProcess:
    """Start a scenario in the background and return once sipp holds its ports (SIP, media,
    control), on fresh ones if another socket took one of those found free.

    The options are those of ``run_sipp``; ``role`` defaults to "uas".
    """
    options.setdefault("role", "uas")

    def start() -> SippProcess:
        cmd = sipp_command(scenario, remote, log_dir=log_dir, **options)
        process = start_peer("sipp", cmd.argv, log_path=cmd.logs.stdout)
        try:
            wait_until(
                process,
                lambda: cmd.bound() <= bound_ports(process.pid),
                what=f"its ports {sorted(cmd.bound())}",
                timeout=start_timeout,
            )
        except BaseException:
            process.stop()
            raise
        return SippProcess(cmd, process)

    return on_free_ports(start, SIPP_BIND_FAILURE)


@dataclass(eq=False)
class Sipp:
    """The sipp runs of one test: their logs in one directory, background runs ended with it."""

    log_dir: Path
    background: list[SippProcess] = field(default_factory=list)

    async def run(
        self,
        scenario: str | Path,
        remote: str | tuple[str, int] | None = None,
        **options: Unpack[SippOptions],
    ) -> SippResult:
        """``run_sipp`` with this test's log directory."""
        return await run_sipp(scenario, remote, log_dir=self.log_dir, **options)

    def start(
        self,
        scenario: str | Path,
        remote: str | tuple[str, int] | None = None,
        **options: Unpack[SippOptions],
    ) -> SippProcess:
        """``start_sipp`` with this test's log directory; stopped at the end of the test."""
        proc = start_sipp(scenario, remote, log_dir=self.log_dir, **options)
        self.background.append(proc)
        return proc

    async def register(
        self, registrar: Kamailio, user: str, contact: str, *, expires: int = 3600
    ) -> SippResult:
        """Bind ``contact`` to ``user`` at ``registrar`` with ``user``'s credentials
        (register.xml); the contact may be another process, e.g. a background sipp UAS."""
        result = await self.run(
            "register",
            (registrar.host, registrar.udp_port),
            service=user,
            auth=(user, registrar.users[user]),
            keys={"contact": contact, "expires": str(expires)},
            timeout=10,
        )
        assert result.ok, result.report()
        return result

    async def start_registered(
        self,
        registrar: Kamailio,
        user: str,
        scenario: str | Path = "uas_call",
        **options: Unpack[SippOptions],
    ) -> SippProcess:
        """Start a UAS scenario in the background, registered at ``registrar`` as ``user``:
        calls to ``registrar.aor(user)`` reach it."""
        options.setdefault("service", user)
        uas = self.start(scenario, **options)
        await self.register(registrar, user, uas.uri(user))
        return uas

    async def call(
        self,
        registrar: Kamailio,
        caller: str,
        callee: str,
        scenario: str | Path = "uac_call",
        **options: Unpack[SippOptions],
    ) -> SippResult:
        """Run a UAC scenario from ``caller`` (with its credentials) to ``callee`` through
        ``registrar``."""
        options.setdefault("auth", (caller, registrar.users[caller]))
        options["service"] = callee
        return await self.run(scenario, (registrar.host, registrar.udp_port), **options)

    def stop_all(self) -> None:
        for proc in self.background:
            proc.stop()


def with_payload_type(scenario: str | Path, old: int, new: int, directory: Path) -> Path:
    """A copy of ``scenario`` in ``directory`` where RTP payload type ``old`` is ``new``:
    in its SDP (``m=`` formats, ``a=rtpmap``/``a=fmtp``) and in the RTP of every pcap it
    plays (copied beside it, each packet's payload type rewritten; sipp sends the UDP
    payload of a pcap as it is, so no checksum matters)."""
    directory.mkdir(parents=True, exist_ok=True)
    text = scenario_path(scenario).read_text(encoding="utf-8")
    text = re.sub(rf"(m=audio .*? )({old})\b", rf"\g<1>{new}", text)
    text = re.sub(rf"a=(rtpmap|fmtp):{old}\b", rf"a=\g<1>:{new}", text)
    for pcap in sorted(set(re.findall(r'play_pcap_audio="([^"]+)"', text))):
        copy = directory / f"{Path(pcap).stem}-pt{new}.pcap"
        copy.write_bytes(_pcap_with_payload_type(Path(pcap).read_bytes(), old, new))
        text = text.replace(f'play_pcap_audio="{pcap}"', f'play_pcap_audio="{copy}"')
    path = directory / f"{scenario_path(scenario).stem}-pt{new}.xml"
    path.write_text(text, encoding="utf-8")
    return path


def _pcap_with_payload_type(data: bytes, old: int, new: int) -> bytes:
    """A pcap (little-endian, Ethernet, IPv4/UDP/RTP) with RTP payload type ``old`` made
    ``new`` in every packet, marker bits kept."""
    out = bytearray(data)
    magic, link = struct.unpack_from("<I16xI", data)
    assert (magic, link) == (0xA1B2C3D4, 1), "a little-endian Ethernet pcap"
    offset = 24
    while offset < len(out):
        length = struct.unpack_from("<8xI", out, offset)[0]
        packet = offset + 16
        ip = packet + 14
        rtp = ip + (out[ip] & 0x0F) * 4 + 8  # IPv4 header, then the UDP header
        if out[rtp + 1] & 0x7F == old:
            out[rtp + 1] = (out[rtp + 1] & 0x80) | new
        offset = packet + length
    return bytes(out)
