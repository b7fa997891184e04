"""Peer processes on loopback: started in a session of their own, logged to a file, stopped by pid.

Every peer (kamailio, sipp, baresip, linphonec) is a child of the test process, started with
``start_new_session=True`` so that its process group id is its pid, and through
``setpriv --pdeathsig KILL`` (util-linux; it execs the peer in place, same pid) so that it
cannot outlive a test run that is itself killed. It is stopped
by pid: SIGTERM, a bounded wait, then SIGKILL to its process group (kamailio forks workers into
it). A registry of the live peers lets ``stop_all`` end whatever a failed fixture left running;
it runs at interpreter exit too. Nothing is ever looked up or signalled by name.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import os
import pty
import random
import re
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, ClassVar, TypeVar

import pytest

LOOPBACK = "127.0.0.1"
T = TypeVar("T")

_LOG_TAIL_LINES = 80


class PeerStartError(AssertionError):
    """A peer did not come up; the message carries the tail of its log."""


def require_binary(name: str) -> str:
    """The path of a peer's executable, or a test failure that says how to install it."""
    path = shutil.which(name) or shutil.which(name, path="/usr/sbin:/sbin")
    if path is None:
        pytest.fail(
            f"{name!r} is not installed: run scripts/setup (it installs the SIP peers the "
            "interop tests run against: kamailio, sip-tester, baresip, linphone-cli, sox, "
            "espeak-ng, openssl)",
            pytrace=False,
        )
    return path


# A peer that forks workers (kamailio) runs under this shell, the leader of its process group:
# a SIGTERM (from ``stop`` or, as the parent-death signal, from the kernel when the test process
# dies) goes on to the peer, and once the peer has exited the whole group is killed, so that no
# worker outlives it (kamailio's workers do not notice that their main process was killed).
_GROUP_GUARD = (
    'trap \'kill -TERM "$peer" 2>/dev/null; wait "$peer"; kill -KILL 0\' TERM; '
    '"$@" & peer=$!; wait "$peer"'
)


def child_argv(
    argv: Sequence[str], *, line_buffered: bool = False, group_guard: bool = False
) -> list[str]:
    """``argv`` run so that the kernel signals it when the test process dies.

    (A ``preexec_fn`` calling prctl would do the same, but is unsafe once threads exist, and
    asyncio's child watcher starts threads.) ``line_buffered``: stdout flushed at each line
    (``stdbuf -oL``), for a peer whose log a test waits on. ``group_guard``: under
    ``_GROUP_GUARD``, for a peer that forks.
    """
    command = [require_binary(argv[0]), *argv[1:]]
    if line_buffered:
        command = ["stdbuf", "-oL", "-eL", *command]
    if group_guard:
        guard = ["sh", "-c", _GROUP_GUARD, "peer-group-guard", *command]
        return ["setpriv", "--pdeathsig", "TERM", "--", *guard]
    return ["setpriv", "--pdeathsig", "KILL", "--", *command]


def log_tail(path: Path, lines: int = _LOG_TAIL_LINES) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return f"(no log at {path})"
    tail = text.splitlines()[-lines:]
    return f"--- last {len(tail)} lines of {path} ---\n" + "\n".join(tail)


@dataclass(eq=False)
class PeerProcess:
    """A running peer: its pid, its command line and the file its output goes to."""

    name: str
    argv: Sequence[str]
    log_path: Path
    popen: subprocess.Popen[bytes]
    stop_signal: int = signal.SIGTERM
    # the master side of the peer's pseudo-terminal, when it runs on one (linphonec)
    terminal: int | None = None
    before_stop: Callable[[], None] | None = None
    _stopped: bool = field(default=False, repr=False)

    @property
    def pid(self) -> int:
        return self.popen.pid

    @property
    def returncode(self) -> int | None:
        return self.popen.poll()

    def alive(self) -> bool:
        return self.popen.poll() is None

    def log_text(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def log_tail(self, lines: int = _LOG_TAIL_LINES) -> str:
        return log_tail(self.log_path, lines)

    def type_line(self, line: str) -> None:
        """Type ``line`` and Enter on the peer's terminal."""
        if self.terminal is None:
            raise RuntimeError(f"{self.name} does not run on a terminal")
        os.write(self.terminal, line.encode() + b"\n")

    def start_failure(self, what: str) -> PeerStartError:
        state = "running" if self.alive() else f"exited with {self.returncode}"
        return PeerStartError(
            f"{self.name} (pid {self.pid}, {state}): {what}\n"
            f"command: {' '.join(self.argv)}\n{self.log_tail()}"
        )

    def stop(self, timeout: float = 5.0) -> int | None:
        """Stop the peer by pid: its own shutdown first, SIGKILL to its group after ``timeout``."""
        if self._stopped:
            return self.popen.returncode
        self._stopped = True
        _LIVE.discard(self)
        if self.alive() and self.before_stop is not None:
            with contextlib.suppress(Exception):
                self.before_stop()
        if self.alive():
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, self.stop_signal)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.popen.wait(timeout)
        # The group id is the pid (start_new_session): this reaches forked workers too.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.popen.wait(timeout)
        return self.popen.returncode


class PeerHandle:
    """What every peer's handle (Kamailio, Baresip, SippProcess, Linphone) knows from its
    process: pid, log, and waiting for a line in the log."""

    process: PeerProcess

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def log_path(self) -> Path:
        return self.process.log_path

    def log_mark(self) -> int:
        """The log's current size: pass it as ``since`` to wait for what happens next."""
        try:
            return self.log_path.stat().st_size
        except FileNotFoundError:
            return 0

    async def wait_for(
        self, pattern: str | re.Pattern[str], *, since: int = 0, timeout: float = 10.0
    ) -> re.Match[str]:
        """Wait until the log (from byte ``since``) matches ``pattern`` (re.MULTILINE)."""
        deadline = time.monotonic() + timeout
        while (match := log_has(self.log_path, pattern, since)) is None:
            if not self.process.alive():
                raise self.process.start_failure(f"exited while waiting for {pattern!r}")
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"{self.process.name}: no {pattern!r} in its log within {timeout:g} s\n"
                    + self.process.log_tail()
                )
            await asyncio.sleep(0.05)
        return match


class Phone(PeerHandle):
    """A softphone whose log tells when a call is up and when it is over."""

    # what the phone prints when a call is established and when it has ended
    established: ClassVar[str]
    closed: ClassVar[str]

    def stop(self) -> int | None:
        """Stop the phone by pid (its own shutdown, then SIGKILL to its group after a bound)."""
        return self.process.stop()

    async def wait_established(self, *, since: int = 0, timeout: float = 10.0) -> re.Match[str]:
        return await self.wait_for(self.established, since=since, timeout=timeout)

    async def wait_closed(self, *, since: int = 0, timeout: float = 10.0) -> re.Match[str]:
        return await self.wait_for(self.closed, since=since, timeout=timeout)


_LIVE: set[PeerProcess] = set()
# Every peer started in this process, in order: a failed test lists the logs of its own.
STARTED: list[PeerProcess] = []


def start_peer(
    name: str,
    argv: Sequence[str],
    *,
    log_path: Path,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
    stdin: int | IO[bytes] = subprocess.DEVNULL,
    stop_signal: int = signal.SIGTERM,
    line_buffered: bool = False,
    terminal: bool = False,
    group_guard: bool = False,
) -> PeerProcess:
    """Start a peer in its own session with stdout and stderr appended to ``log_path``.

    ``terminal``: stdin, stdout and stderr are a pseudo-terminal (a peer that does nothing
    without one, like linphonec); a thread copies what it prints into ``log_path`` and
    ``PeerProcess.type_line`` types into it. ``group_guard``: see ``child_argv``.
    """
    log_path.parent.mkdir(parents=True, exist_ok=True)
    master = None
    with log_path.open("ab") as log:
        if terminal:
            master, slave = pty.openpty()
            streams: dict[str, Any] = {"stdin": slave, "stdout": slave, "stderr": slave}
        else:
            streams = {"stdin": stdin, "stdout": log, "stderr": subprocess.STDOUT}
        try:
            popen = subprocess.Popen(
                child_argv(argv, line_buffered=line_buffered, group_guard=group_guard),
                cwd=cwd,
                env=None if env is None else dict(env),
                start_new_session=True,
                **streams,
            )
        except BaseException:
            if master is not None:
                os.close(master)
            raise
        finally:
            if master is not None:
                os.close(slave)
    if master is not None:
        threading.Thread(
            target=_copy_terminal, args=(master, log_path), name=f"{name} terminal", daemon=True
        ).start()
    peer = PeerProcess(name, tuple(argv), log_path, popen, stop_signal, master)
    _LIVE.add(peer)
    STARTED.append(peer)
    return peer


def _copy_terminal(master: int, log_path: Path) -> None:
    with log_path.open("ab") as log:
        while True:
            try:
                data = os.read(master, 65536)
            except OSError:  # EIO: the peer has closed its side
                break
            if not data:
                break
            log.write(data)
            log.flush()


def stop_all() -> None:
    """Stop every peer still running (session teardown, interpreter exit)."""
    for peer in list(_LIVE):
        peer.stop()


atexit.register(stop_all)


def wait_until(peer: PeerProcess, ready: Callable[[], bool], *, what: str, timeout: float) -> None:
    """Poll ``ready`` until it holds; fail with the peer's log if it dies or time runs out."""
    deadline = time.monotonic() + timeout
    delay = 0.01
    while not ready():
        if not peer.alive():
            raise peer.start_failure(f"exited while waiting for {what}")
        if time.monotonic() > deadline:
            raise peer.start_failure(f"no {what} within {timeout:g} s")
        time.sleep(delay)
        delay = min(delay * 2, 0.1)


def log_has(path: Path, pattern: str | re.Pattern[str], since: int = 0) -> re.Match[str] | None:
    """The first match of ``pattern`` in the log from byte offset ``since`` (a string is
    searched with re.MULTILINE, a compiled pattern with its own flags)."""
    try:
        with path.open("rb") as f:
            f.seek(since)
            text = f.read().decode("utf-8", errors="replace")
    except FileNotFoundError:
        return None
    if isinstance(pattern, re.Pattern):
        return pattern.search(text)
    return re.search(pattern, text, re.MULTILINE)


# --- ports ---------------------------------------------------------------------------------

# Ports handed out in this process, so that two peers never get the same one between the moment
# it is found free and the moment the peer binds it.
_GIVEN: set[int] = set()

# Below the kernel's ephemeral range (32768-60999) and well away from sipp's default RTP ports
# 6000+ (another program on the machine once held them): ranges for RTP are picked from here.
_RANGE_LOW, _RANGE_HIGH = 20000, 32000


def _can_bind(kind: int, port: int) -> bool:
    with socket.socket(socket.AF_INET, kind) as s:
        try:
            s.bind((LOOPBACK, port))
        except OSError:
            return False
    return True


def port_in_use(port: int, kind: str = "udp") -> bool:
    return not _can_bind(socket.SOCK_DGRAM if kind == "udp" else socket.SOCK_STREAM, port)


def free_port(kind: str = "udp", *, count: int = 1) -> int:
    """A port the kernel says is free on 127.0.0.1 for ``kind`` "udp", "tcp" or "both".

    With ``count`` > 1, the first of that many consecutive ports all free for ``kind`` (baresip
    listens for TLS on its SIP port + 1).
    """
    kinds = {"udp": [socket.SOCK_DGRAM], "tcp": [socket.SOCK_STREAM]}.get(
        kind, [socket.SOCK_DGRAM, socket.SOCK_STREAM]
    )
    for _ in range(200):
        with socket.socket(socket.AF_INET, kinds[0]) as s:
            s.bind((LOOPBACK, 0))
            port: int = s.getsockname()[1]
        ports = range(port, port + count)
        if any(p in _GIVEN for p in ports) or ports[-1] > 65535:
            continue
        if all(_can_bind(k, p) for p in ports for k in kinds):
            _GIVEN.update(ports)
            return port
    raise RuntimeError(f"no {count} free {kind} port(s) on {LOOPBACK}")


def bound_ports(pid: int) -> set[tuple[str, int]]:
    """The ("udp" or "tcp", port) of every socket process ``pid`` holds (Linux: its socket
    inodes, /proc/PID/fd, looked up in /proc/net/udp, tcp and their IPv6 twins). Unlike
    :func:`port_in_use`, a port some other socket holds is not among them."""
    inodes = set()
    try:
        descriptors = os.listdir(f"/proc/{pid}/fd")
    except OSError:  # the process is gone
        return set()
    for fd in descriptors:
        with contextlib.suppress(OSError):
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
            if target.startswith("socket:["):
                inodes.add(target[len("socket:[") : -1])
    bound = set()
    for table in ("udp", "udp6", "tcp", "tcp6"):
        with contextlib.suppress(OSError), open(f"/proc/net/{table}", encoding="ascii") as f:
            for line in f.readlines()[1:]:
                fields = line.split()  # sl local_address rem_address st ... uid timeout inode
                if fields[9] in inodes:
                    bound.add((table[:3], int(fields[1].rsplit(":", 1)[1], 16)))
    return bound


#: starts on fresh ports when another socket took one found free
PORT_ATTEMPTS = 3
#: what a peer that could not bind a port prints (kamailio: "bind(...) on 127.0.0.1: Address
#: already in use"); each peer's module has its own (SIPP_BIND_FAILURE, BARESIP_BIND_FAILURE)
ADDRESS_IN_USE = re.compile("Address already in use")


def on_free_ports(start: Callable[[], T], bind_failure: re.Pattern[str] = ADDRESS_IN_USE) -> T:
    """``start()`` (which takes its ports from :func:`free_port`), again up to
    ``PORT_ATTEMPTS`` times while the peer fails with ``bind_failure`` in its log: a port
    found free can be taken by any socket bound to port 0 before the peer binds it."""
    attempt = 1
    while True:
        try:
            return start()
        except PeerStartError as error:
            if not bind_failure.search(str(error)) or attempt == PORT_ATTEMPTS:
                raise
            attempt += 1


def free_port_range(count: int, *, even: bool = True) -> int:
    """The first of ``count`` consecutive free UDP ports (RTP and RTCP pairs), below 32000."""
    rng = random.Random()
    for _ in range(500):
        start = rng.randrange(_RANGE_LOW, _RANGE_HIGH - count)
        if even:
            start &= ~1
        ports = range(start, start + count)
        if any(p in _GIVEN for p in ports):
            continue
        if all(_can_bind(socket.SOCK_DGRAM, p) for p in ports):
            _GIVEN.update(ports)
            return start
    raise RuntimeError(f"no {count} consecutive free UDP ports on {LOOPBACK}")
