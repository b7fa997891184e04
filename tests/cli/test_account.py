"""Accounts of the ``voip`` commands: options over environment over the TOML file; the
password from the environment, a file or a prompt, never from the file's account table."""

from __future__ import annotations

from pathlib import Path

import pytest

from voip.cli.account import load_account
from voip.cli.exits import CommandFailed, ExitCode

NONE: dict[str, str | None] = {}


@pytest.fixture
def config(tmp_path: Path) -> Path:
    secret = tmp_path / "office.password"
    secret.write_text("s3cret\n", encoding="utf-8")
    path = tmp_path / "voip.toml"
    path.write_text(
        "[accounts.default]\n"
        'user = "dflt"\n'
        "[accounts.office]\n"
        'user = "alice"\n'
        'domain = "pbx.example.com"\n'
        'registrar = "sip:pbx.example.com"\n'
        'transport = "tcp"\n'
        f'password_file = "{secret}"\n',
        encoding="utf-8",
    )
    return path


def test_the_named_account_of_the_toml_file_is_used(config: Path) -> None:
    account = load_account(NONE, config=str(config), account="office", environ={})
    assert (account.user, account.domain, account.transport) == ("alice", "pbx.example.com", "tcp")
    assert account.registrar == "sip:pbx.example.com"
    assert account.password == "s3cret"  # from its file, without the newline


def test_the_default_account_is_used_when_none_is_named(config: Path) -> None:
    assert load_account(NONE, config=str(config), environ={}).user == "dflt"


def test_the_environment_overrides_the_file_and_options_override_both(config: Path) -> None:
    environ = {"VOIP_ACCOUNT": "office", "VOIP_USER": "bob", "VOIP_DOMAIN": "env.example"}
    account = load_account({"user": "carol"}, config=str(config), environ=environ)
    assert (account.user, account.domain) == ("carol", "env.example")


def test_voip_password_wins_over_the_password_file(config: Path) -> None:
    environ = {"VOIP_PASSWORD": "from-env"}
    account = load_account(NONE, config=str(config), account="office", environ=environ)
    assert account.password == "from-env"
    assert "from-env" not in repr(account)


def test_a_password_inside_the_toml_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "voip.toml"
    path.write_text('[accounts.default]\nuser = "a"\npassword = "x"\n', encoding="utf-8")
    with pytest.raises(CommandFailed) as failure:
        load_account(NONE, config=str(path), environ={})
    assert failure.value.code is ExitCode.USAGE
    assert "password_file" in failure.value.format_message()


def test_an_unknown_account_names_the_known_ones(config: Path) -> None:
    with pytest.raises(CommandFailed) as failure:
        load_account(NONE, config=str(config), account="home", environ={})
    assert "Accounts there: default, office." in failure.value.format_message()


def test_a_missing_config_named_explicitly_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(CommandFailed):
        load_account(NONE, config=str(tmp_path / "none.toml"), environ={})


def test_without_any_configuration_the_defaults_apply(tmp_path: Path) -> None:
    environ = {"HOME": str(tmp_path)}
    account = load_account(NONE, environ=environ)
    assert (account.user, account.transport, account.password) == ("voip", "udp", None)


def test_the_ca_file_comes_from_the_account_or_voip_ca_file_with_the_home_expanded(
    tmp_path: Path,
) -> None:
    path = tmp_path / "voip.toml"
    path.write_text('[accounts.default]\nca_file = "~/pki/ca.pem"\n', encoding="utf-8")
    account = load_account(NONE, config=str(path), environ={"HOME": str(tmp_path)})
    assert account.ca_file == str(Path("~/pki/ca.pem").expanduser())
    environ = {"VOIP_CA_FILE": "/etc/voip/ca.pem"}
    assert load_account(NONE, config=str(path), environ=environ).ca_file == "/etc/voip/ca.pem"


def test_the_srtp_mode_comes_from_the_account_the_environment_or_the_option(
    tmp_path: Path,
) -> None:
    path = tmp_path / "voip.toml"
    path.write_text('[accounts.default]\nsrtp = "required"\n', encoding="utf-8")
    assert load_account(NONE, environ={"HOME": str(tmp_path)}).srtp == "off"
    assert load_account(NONE, config=str(path), environ={}).srtp == "required"
    environ = {"VOIP_SRTP": "dtls"}
    assert load_account(NONE, config=str(path), environ=environ).srtp == "dtls"
    options = {"srtp": "dtls-preferred"}
    assert load_account(options, config=str(path), environ=environ).srtp == "dtls-preferred"


def test_an_unknown_srtp_mode_is_a_usage_error_naming_the_modes(tmp_path: Path) -> None:
    path = tmp_path / "voip.toml"
    path.write_text('[accounts.default]\nsrtp = "zrtp"\n', encoding="utf-8")
    with pytest.raises(CommandFailed) as failed:
        load_account(NONE, config=str(path), environ={})
    assert failed.value.code == ExitCode.USAGE
    assert "unknown SRTP mode 'zrtp'" in str(failed.value)
    assert "off, optional, required, dtls or dtls-preferred" in (failed.value.hint or "")
