"""linphonec 5.1 (linphone-cli) as a second headless softphone, on a pseudo-terminal.

linphonec only iterates its core when its stdin is a terminal (with a pipe or /dev/null it never
refreshes a registration nor sees an incoming call), so it runs on a pseudo-terminal and the
fixture types its commands (``call``, ``terminate``, ``answer``, ``play``) into it; what it
prints goes to ``log_path``, liblinphone's own log (``-d 4``) to ``debug_log``. HOME is a private
directory holding ``.local/share/linphone/`` (without it liblinphone cannot open its database
and never starts). It ignores SIGTERM: it is stopped by typing ``quit`` (it un-registers), then
SIGKILL after a bound. It rewrites its config file on exit: each start writes a new one.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from ._process import (
    LOOPBACK,
    PeerProcess,
    Phone,
    free_port,
    free_port_range,
    log_has,
    start_peer,
    wait_until,
)
from .kamailio import Kamailio

_QUIT_TIMEOUT = 4.0


@dataclass(eq=False)
class Linphone(Phone):
    """A running linphonec with one account (UDP only). Stopping it types ``quit`` (it
    un-registers), then SIGKILL after 4 s."""

    established = r"Call \d+ with (?P<peer>\S+) connected\."
    closed = r"Call \d+ with (?P<peer>\S+) ended"

    user: str
    process: PeerProcess
    config_path: Path
    debug_log: Path
    sip_port: int
    rtp_port: int
    registrar: Kamailio | None

    def uri(self) -> str:
        """A URI that reaches this linphonec directly, not through a registrar."""
        return f"sip:{self.user}@{LOOPBACK}:{self.sip_port};transport=udp"

    def command(self, line: str) -> None:
        """Type a linphonec command (``help`` lists them)."""
        self.process.type_line(line)

    def call(self, uri: str) -> None:
        self.command(f"call {uri}")

    def answer(self) -> None:
        """Answer the incoming call (when started with ``auto_answer=False``)."""
        self.command("answer")

    def terminate(self) -> None:
        """Hang up the current call."""
        self.command("terminate")

    def play(self, wav: Path) -> None:
        """Send ``wav`` into the current call (without it linphonec sends almost no RTP)."""
        self.command(f"play {wav}")

    def record(self, wav: Path) -> None:
        """Write the audio of the next call received to ``wav`` (48 kHz mono WAV); the file
        is complete once the call has ended."""
        self.command(f"record {wav}")


def _config(
    user: str,
    password: str | None,
    registrar: Kamailio | None,
    sip_port: int,
    rtp_port: int,
    *,
    sip_options: Mapping[str, str],
) -> str:
    sections = {
        "sip": {
            "sip_port": str(sip_port),
            "sip_tcp_port": "0",
            "sip_tls_port": "0",
            "contact": f"<sip:{user}@{LOOPBACK}>",
            "register_only_when_network_is_up": "0",
            "ipv6_enabled": "0",
            "default_proxy": "0" if registrar is not None else "-1",
            **sip_options,
        },
        # without these it puts the address of its default route into SDP
        "net": {"firewall_policy": "1", "nat_address": LOOPBACK, "stun_server": ""},
        "rtp": {"audio_rtp_port": str(rtp_port)},
        # files instead of a sound card (``play``/``record``), and nothing that alters the
        # audio between them and the call (echo canceller, AGC), so it can be scored
        "sound": {
            "use_files": "1",
            "playback_dev_id": "",
            "capture_dev_id": "",
            "echocancellation": "0",
            "agc": "0",
        },
        "video": {"enabled": "0", "display": "0", "capture": "0"},
    }
    if registrar is not None:
        proxy = f"<sip:{registrar.host}:{registrar.udp_port};transport=udp>"
        sections["proxy_0"] = {
            "reg_proxy": proxy,
            "reg_route": f"<sip:{registrar.host}:{registrar.udp_port};transport=udp;lr>",
            "reg_identity": f"<{registrar.aor(user)}>",
            "reg_expires": "600",
            "reg_sendregister": "1",
            "publish": "0",
        }
        sections["auth_info_0"] = {
            "username": user,
            "passwd": registrar.users[user] if password is None else password,
            "realm": registrar.domain,
        }
    return "".join(
        f"[{name}]\n" + "".join(f"{key}={value}\n" for key, value in items.items()) + "\n"
        for name, items in sections.items()
    )


def start_linphonec(
    workdir: Path,
    *,
    user: str,
    registrar: Kamailio | None = None,
    password: str | None = None,
    auto_answer: bool = True,
    wait_registered: bool = True,
    timeout: float = 15.0,
    sip_options: Mapping[str, str] | None = None,
) -> Linphone:
    """Start linphonec for ``user`` in ``workdir``, registered at ``registrar`` over UDP
    (password from its users unless given), or with no registrar. ``sip_options`` are
    more keys of the config's ``[sip]`` section (e.g. ``session_expires_enabled``)."""
    home = workdir / "home"
    (home / ".local" / "share" / "linphone").mkdir(parents=True, exist_ok=True)
    sip_port = free_port("udp")
    rtp_port = free_port_range(4)
    config_path = workdir / "linphonerc"
    config = _config(user, password, registrar, sip_port, rtp_port, sip_options=sip_options or {})
    config_path.write_text(config, encoding="utf-8")
    debug_log = workdir / "liblinphone.log"
    argv = ["linphonec", "-c", str(config_path), "-d", "4", "-l", str(debug_log)]
    if auto_answer:
        argv.append("-a")
    process = start_peer(
        f"linphonec {user}",
        argv,
        log_path=workdir / "linphonec.log",
        cwd=workdir,
        env={**os.environ, "HOME": str(home)},
        terminal=True,
        stop_signal=signal.SIGKILL,
    )

    def quit_first() -> None:
        process.type_line("quit")
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.popen.wait(_QUIT_TIMEOUT)

    process.before_stop = quit_first
    phone = Linphone(user, process, config_path, debug_log, sip_port, rtp_port, registrar)
    try:
        wait_until(
            process,
            lambda: log_has(phone.log_path, "linphonec> ") is not None,
            what="the linphonec> prompt",
            timeout=timeout,
        )
        if registrar is not None and wait_registered:
            wait_until(
                process,
                lambda: any(
                    c.address.endswith(f":{sip_port};transport=udp")
                    for c in registrar.bindings_sync().get(user, [])
                ),
                what=f"a contact of {user} on port {sip_port} at kamailio",
                timeout=timeout,
            )
    except BaseException:
        phone.stop()
        raise
    return phone
