"""The syntax core runs compiled (mypyc) or as pure Python, and behaves alike in both.

``setup.py`` compiles the modules of ``voip.sip._implementation.COMPILED``; the
compiled modules are used only while they match their sources, and never with
``VOIP_PURE_PYTHON`` set. The whole SIP test suite runs here once more with the pure-
Python modules, so that both implementations pass it whichever one this run uses.
"""

from __future__ import annotations

import ast
import copy
import os
import pickle
import shutil
import subprocess
import sys
from pathlib import Path

import voip.sip
from voip.sip import (
    CSeq,
    NameAddress,
    Request,
    SipError,
    SipUri,
    Via,
    parse_message,
)
from voip.sip import _implementation as implementation

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "voip" / "sip"

INVITE = (
    b"INVITE sip:bob@198.51.100.20:5060 SIP/2.0\r\n"
    b"Via: SIP/2.0/UDP 203.0.113.5:5060;branch=z9hG4bKc7a4.0\r\n"
    b"Via: SIP/2.0/UDP 192.0.2.10:5062;received=192.0.2.10;rport=5062;branch=z9hG4bK.Pj\r\n"
    b"Max-Forwards: 69\r\n"
    b'From: "Alice" <sip:alice@example.com>;tag=9fxced76sl\r\n'
    b"To: <sip:bob@example.com>\r\n"
    b"Call-ID: 3848276298220188511@192.0.2.10\r\n"
    b"CSeq: 2 INVITE\r\n"
    b"Contact: <sip:alice@192.0.2.10:5062;transport=udp>\r\n"
    b"Content-Length: 0\r\n\r\n"
)


def _run(code: str, cwd: Path, **env: str) -> str:
    inherited = {k: v for k, v in os.environ.items() if k != "VOIP_PURE_PYTHON"}
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=cwd,
        env={**inherited, **env},
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return done.stdout.strip()


def test_the_implementation_is_the_compiled_one_exactly_when_it_matches_its_sources() -> None:
    if implementation.compiled_is_current() and not os.environ.get("VOIP_PURE_PYTHON"):
        assert voip.sip.IMPLEMENTATION == implementation.MYPYC
    else:
        assert voip.sip.IMPLEMENTATION == implementation.PURE_PYTHON
    for name in implementation.COMPILED:
        module = sys.modules[f"voip.sip.{name}"]
        assert (module.__file__ or "").endswith(".py") == (
            voip.sip.IMPLEMENTATION == implementation.PURE_PYTHON
        ), name


def test_setup_compiles_the_modules_voip_sip_selects() -> None:
    tree = ast.parse((ROOT / "setup.py").read_text(encoding="utf-8"))
    compiled = next(
        ast.literal_eval(node.value)
        for node in tree.body
        if isinstance(node, ast.Assign)
        and any(isinstance(t, ast.Name) and t.id == "COMPILED" for t in node.targets)
    )
    assert tuple(compiled) == implementation.COMPILED


def test_pure_python_is_selected_by_the_environment() -> None:
    code = "import voip.sip, voip.sip.parser as p; print(voip.sip.IMPLEMENTATION, p.__file__)"
    out = _run(code, ROOT, VOIP_PURE_PYTHON="1")
    assert out.startswith(implementation.PURE_PYTHON + " ")
    assert out.endswith("parser.py")


def test_compiled_modules_older_than_their_sources_are_not_used(tmp_path: Path) -> None:
    # A copy of the package with whatever was built, its digest recorded afresh.
    shutil.copytree(ROOT / "voip", tmp_path / "voip", ignore=shutil.ignore_patterns("__pycache__"))
    copied = tmp_path / "voip" / "sip"
    (copied / "_compiled.sha256").write_text(implementation.source_digest() + "\n")
    built = any(PACKAGE.glob("parser.*.so"))
    code = "import voip.sip, voip.sip.fields as f; print(voip.sip.IMPLEMENTATION, f.__file__)"
    expected = implementation.MYPYC if built else implementation.PURE_PYTHON
    assert _run(code, tmp_path).startswith(expected + " ")
    # An edit (a pull, a rebase) makes the compiled modules stale: the sources run.
    with (copied / "fields.py").open("a", encoding="utf-8") as source:
        source.write("\n# edited after the build\n")
    out = _run(code, tmp_path)
    assert out.startswith(implementation.PURE_PYTHON + " ")
    assert out.endswith(str(copied / "fields.py"))


def test_the_sip_tests_pass_with_the_pure_python_implementation() -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "tests/sip",
            "--ignore",
            str(Path(__file__).relative_to(ROOT)),
        ],
        cwd=ROOT,
        env={**os.environ, "VOIP_PURE_PYTHON": "1"},
        capture_output=True,
        text=True,
        check=False,
        timeout=900,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert " passed" in done.stdout.splitlines()[-1]


def test_parsed_messages_and_their_fields_copy_like_the_original() -> None:
    message = parse_message(INVITE)
    values = (message.via[1], message.from_, message.to, message.contact[0], message.cseq)
    for value in values:
        assert copy.copy(value) == value
        assert copy.deepcopy(value) == value
    for clone in (copy.copy(message), copy.deepcopy(message)):
        assert bytes(clone) == INVITE
        assert clone.from_.tag == "9fxced76sl"
        assert clone.contact[0].uri == message.contact[0].uri


def test_built_values_pickle_and_copy_to_equal_values() -> None:
    uri = SipUri("example.com", "alice", port=5062, params={"transport": "tcp"})
    values: list[object] = [
        uri,
        NameAddress(uri, "Alice", {"tag": "a1"}),
        Via("UDP", "192.0.2.1", 5060, {"branch": "z9hG4bK1"}),
        CSeq(7, "BYE"),
    ]
    for value in values:
        assert pickle.loads(pickle.dumps(value)) == value
        assert copy.copy(value) == value
    request = Request("OPTIONS", uri, [("Via", "SIP/2.0/UDP h;branch=z9hG4bK2")])
    assert bytes(pickle.loads(pickle.dumps(request))) == bytes(request)


def test_programs_may_subclass_the_syntax_classes() -> None:
    class Traced(Request):
        pass

    class Refused(SipError):
        pass

    traced = Traced("OPTIONS", SipUri("example.com"))
    assert traced.start_line() == "OPTIONS sip:example.com SIP/2.0"
    assert isinstance(Refused(403, "no"), SipError)
    assert Refused(403, "no").status == 403
