"""Accounts for the ``voip`` commands: a TOML file, environment variables, options.

What a command uses is, for each setting, the first of: its command-line option, its
environment variable, the account's entry in the TOML file. The password is never an
option: it comes from ``VOIP_PASSWORD``, a file (``--password-file``,
``VOIP_PASSWORD_FILE`` or the account's ``password_file``) or a prompt
(``--ask-password``).

The file (``--config``, ``VOIP_CONFIG``, or ``~/.config/voip/config.toml``)::

    [accounts.office]            # chosen by --account office or VOIP_ACCOUNT=office
    user = "alice"               # the user part of our address (From, Contact)
    domain = "pbx.example.com"   # the host part of our address-of-record
    registrar = "sip:pbx.example.com"
    proxy = "sip:pbx.example.com;transport=tcp"   # outbound proxy: every request goes there
    auth_user = "alice"          # digest user name, if not ``user``
    password_file = "~/.config/voip/office.password"
    display_name = "Alice"
    transport = "udp"            # udp, tcp, tls, ws or wss
    ca_file = "~/.config/voip/office-ca.pem"   # CA to trust for TLS (default: the system's)
    srtp = "off"                 # off, optional, required, dtls or dtls-preferred

An account named ``default`` is used when none is chosen.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

import click

from voip.cli.exits import CommandFailed, ExitCode
from voip.rtp.srtp import SrtpMode

__all__ = ["Account", "load_account"]

#: under the home directory
DEFAULT_CONFIG = Path(".config", "voip", "config.toml")
#: setting -> environment variable
ENVIRONMENT = {
    "user": "VOIP_USER",
    "domain": "VOIP_DOMAIN",
    "registrar": "VOIP_REGISTRAR",
    "proxy": "VOIP_PROXY",
    "auth_user": "VOIP_AUTH_USER",
    "password_file": "VOIP_PASSWORD_FILE",
    "display_name": "VOIP_DISPLAY_NAME",
    "transport": "VOIP_TRANSPORT",
    "ca_file": "VOIP_CA_FILE",
    "srtp": "VOIP_SRTP",
}
PASSWORD_VARIABLE = "VOIP_PASSWORD"
#: the media protection an account may ask for (voip.rtp.srtp.SrtpMode)
SRTP_MODES = tuple(mode.value for mode in SrtpMode)


@dataclass(frozen=True, slots=True)
class Account:
    """Who the agent is and where it registers and sends its requests."""

    name: str = "default"
    user: str = "voip"
    domain: str | None = None
    registrar: str | None = None
    proxy: str | None = None
    auth_user: str | None = None
    password_file: str | None = None
    display_name: str | None = None
    transport: str = "udp"
    ca_file: str | None = None
    srtp: str = "off"
    password: str | None = None

    def __repr__(self) -> str:  # never show the password
        shown = ", ".join(
            f"{f.name}={getattr(self, f.name)!r}" for f in fields(self) if f.name != "password"
        )
        return f"Account({shown})"


def _read_config(path: Path, required: bool) -> dict[str, Any]:
    path = path.expanduser()
    if not path.exists():
        if required:
            raise CommandFailed(ExitCode.USAGE, f"no configuration file {path}")
        return {}
    try:
        with path.open("rb") as file:
            return tomllib.load(file)
    except (OSError, tomllib.TOMLDecodeError) as error:
        raise CommandFailed(
            ExitCode.USAGE,
            f"cannot read the configuration {path}: {error}",
            "It is TOML: [accounts.NAME] tables with user, domain, registrar, proxy ...",
        ) from error


def _section(config: dict[str, Any], name: str | None, path: Path) -> dict[str, Any]:
    accounts = config.get("accounts", {})
    if not isinstance(accounts, dict):
        raise CommandFailed(ExitCode.USAGE, f"{path}: [accounts] must be a table of accounts")
    chosen = name or "default"
    section = accounts.get(chosen)
    if section is None:
        if name is not None:
            known = ", ".join(sorted(accounts)) or "none"
            raise CommandFailed(
                ExitCode.USAGE,
                f"no account {name!r} in {path}",
                f"Accounts there: {known}.",
            )
        return {}
    if not isinstance(section, dict):
        raise CommandFailed(ExitCode.USAGE, f"{path}: accounts.{chosen} must be a table")
    unknown = set(section) - {f.name for f in fields(Account)} - {"name"}
    if "password" in section:
        raise CommandFailed(
            ExitCode.USAGE,
            f"{path}: accounts.{chosen} holds a password",
            "Keep it in a file of its own (password_file) or in VOIP_PASSWORD.",
        )
    if unknown:
        raise CommandFailed(
            ExitCode.USAGE, f"{path}: accounts.{chosen}: unknown settings {sorted(unknown)}"
        )
    return {key: str(value) for key, value in section.items()}


def load_account(
    options: Mapping[str, str | None],
    *,
    config: str | None = None,
    account: str | None = None,
    ask_password: bool = False,
    environ: Mapping[str, str] | None = None,
) -> Account:
    """The account for a command: ``options`` (settings given on the command line, None
    when not given) over the environment over the TOML file."""
    env = os.environ if environ is None else environ
    path_text = config or env.get("VOIP_CONFIG")
    home = Path(env["HOME"]) if env.get("HOME") else Path.home()
    path = Path(path_text) if path_text else home / DEFAULT_CONFIG
    name = account or env.get("VOIP_ACCOUNT")
    settings = _section(_read_config(path, required=path_text is not None), name, path)
    for key, variable in ENVIRONMENT.items():
        if env.get(variable):
            settings[key] = env[variable]
    for key, value in options.items():
        if value is not None:
            settings[key] = value
    settings.pop("name", None)
    result = Account(name=name or "default", **settings)
    if result.ca_file is not None:
        result = replace(result, ca_file=str(Path(result.ca_file).expanduser()))
    if result.transport not in ("udp", "tcp", "tls", "ws", "wss"):
        raise CommandFailed(
            ExitCode.USAGE,
            f"unknown transport {result.transport!r}",
            "Use udp, tcp, tls, ws or wss.",
        )
    if result.srtp not in SRTP_MODES:
        raise CommandFailed(
            ExitCode.USAGE,
            f"unknown SRTP mode {result.srtp!r}",
            f"Use {', '.join(SRTP_MODES[:-1])} or {SRTP_MODES[-1]}.",
        )
    return replace(result, password=_password(result, env, ask_password))


def _password(account: Account, env: Mapping[str, str], ask: bool) -> str | None:
    if env.get(PASSWORD_VARIABLE):
        return env[PASSWORD_VARIABLE]
    if account.password_file:
        path = Path(account.password_file).expanduser()
        try:
            return path.read_text(encoding="utf-8").rstrip("\r\n")
        except OSError as error:
            raise CommandFailed(
                ExitCode.USAGE, f"cannot read the password file {path}: {error.strerror}"
            ) from error
    if ask:
        user = account.auth_user or account.user
        return str(click.prompt(f"Password for {user}", hide_input=True, err=True))
    return None
