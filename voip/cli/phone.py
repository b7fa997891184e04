"""The softphone commands: ``voip call``, ``voip register``, ``voip options``,
``voip answer`` and ``voip serve``."""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import importlib.util
import inspect
import statistics
import sys
import traceback
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import click

from voip.call import Call, CallState
from voip.cli.agent import (
    Softphone,
    account_options,
    end_of_unanswered,
    refusal,
    softphone,
    status,
    stop_on_signals,
    trace_options,
)
from voip.cli.exits import EXIT_CODES_HELP, CommandFailed, ExitCode
from voip.cli.live import live_calls, live_status
from voip.eventloop import LOOPS, run, settle_collector
from voip.negotiation import AUDIO_CODECS
from voip.registration import Registration
from voip.report import QualityReport
from voip.session import Session, SessionError
from voip.sip import Request, Response
from voip.sip.redirect import DEFAULT_MAX_REDIRECTS
from voip.useragent import RequestFailed

__all__ = [
    "answer_command",
    "call_command",
    "options_command",
    "register_command",
    "serve_command",
]

Bot = Callable[[Session], Awaitable[Any]]


def media_options(function: Any) -> Any:
    """What to do with the audio of a call."""
    options = [
        click.option(
            "--play", type=click.Path(exists=True, dir_okay=False), help="WAV file to send."
        ),
        click.option(
            "--record", type=click.Path(dir_okay=False), help="WAV file for the audio received."
        ),
        click.option("--dtmf", help="Digits to send once answered (RFC 4733), e.g. 12#."),
        click.option(
            "--duration",
            type=float,
            help="Hang up this many seconds after the answer (default: when --play ends, "
            "else when the other side hangs up).",
        ),
        click.option(
            "--codec",
            "codecs",
            multiple=True,
            type=click.Choice(AUDIO_CODECS, case_sensitive=False),
            help="Codec to offer or accept (repeat for several, in order of preference).",
        ),
        click.option(
            "--report/--no-report", default=True, help="Print the quality report after a call."
        ),
    ]
    for option in reversed(options):
        function = option(function)
    return function


# === voip call =================================================================================


@click.command("call", epilog=EXIT_CODES_HELP)
@click.argument("uri")
@media_options
@click.option(
    "--ring-timeout",
    type=float,
    default=60.0,
    show_default=True,
    help="Seconds to let it ring before giving up (CANCEL).",
)
@click.option(
    "--max-redirects",
    type=click.IntRange(min=0),
    default=DEFAULT_MAX_REDIRECTS,
    show_default=True,
    help="3xx redirects to follow in a row (RFC 3261 8.1.3.4); 0: a 3xx ends the call and "
    "its Contacts are printed.",
)
@click.option(
    "--live/--no-live",
    default=None,
    help="Live status while the call lasts (default: when stderr is a terminal).",
)
@account_options
@trace_options
def call_command(uri: str, **params: Any) -> None:
    """Call URI (sip:bob@example.com, bob@host:port, or a user of our domain), play,
    record and send DTMF, then print the quality report (and the ladder with --ladder).

    \b
    Examples:
      voip call sip:bob@127.0.0.1:5062 --play hello.wav --record answer.wav
      VOIP_PASSWORD=secret voip call bob --user alice --domain pbx.example.com \\
          --proxy sip:pbx.example.com --dtmf 12# --duration 10
    """
    params["live_forced"] = params["live"] is True
    if params["live"] is None:
        params["live"] = sys.stderr.isatty()
    asyncio.run(_call(uri, params))


async def _call(uri: str, params: dict[str, Any]) -> None:
    async with softphone(params) as phone:
        stop = asyncio.Event()
        stop_on_signals(stop)
        if params["codecs"]:
            phone.ua.codecs = tuple(c.upper() for c in params["codecs"])
        target = phone.uri(uri)
        status(f"calling {target} from {phone.where}")
        phone.ua.max_redirects = params["max_redirects"]
        call = phone.ua.dial(target)
        call.on("ringing", lambda response: status(f"ringing ({_status_line(response)})"))
        call.on(
            "redirected",
            lambda response, to: status(f"redirected to {to} ({_status_line(response)})"),
        )
        try:
            await _until_answered(phone, call, str(target), params["ring_timeout"], stop)
        finally:
            if call.state is not CallState.ANSWERED:
                phone.show_ladder(call.call_id)
        await _converse(phone, call, params, stop)
        phone.show_ladder(call.call_id)


async def _until_answered(
    phone: Softphone, call: Call, target: str, ring_timeout: float, stop: asyncio.Event
) -> None:
    loop = asyncio.get_running_loop()
    answered = asyncio.ensure_future(call.answered())
    stopped = asyncio.ensure_future(stop.wait())
    started = loop.time()
    try:
        while not answered.done():
            now = loop.time()
            heard = phone.heard_from_peer(call.call_id) or call.state is CallState.ENDED
            deadline = started + (ring_timeout if heard else phone.timeout)
            if now >= deadline:
                break
            await asyncio.wait({answered, stopped}, timeout=min(0.2, deadline - now))
            if stopped.done():
                break
        if not answered.done():
            if not phone.heard_from_peer(call.call_id):
                raise CommandFailed(
                    ExitCode.UNREACHABLE,
                    f"call to {target}: no response in {phone.timeout:g} s",
                    "Check the address and port, that the peer or server runs, and the "
                    f"transport ({phone.transport}).",
                )
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(call.cancel(), 5.0)
            raise CommandFailed(
                ExitCode.NO_ANSWER,
                f"call to {target}: not answered"
                + (" (stopped)" if stop.is_set() else f" within {ring_timeout:g} s"),
                "Try again later, or let it ring longer (--ring-timeout).",
            )
        if answered.exception() is not None:  # refused, or failed before an answer
            raise end_of_unanswered(phone, call, target)
    finally:
        answered.cancel()
        stopped.cancel()


async def _converse(
    phone: Softphone, call: Call, params: dict[str, Any], stop: asyncio.Event
) -> None:
    """Play, record and send DTMF on an answered call, until it should end."""
    loop = asyncio.get_running_loop()
    answered_at = loop.time()
    media = call.media
    codec = media.agreed.codecs[0].name if media and media.agreed and media.agreed.codecs else "?"
    status(f"answered ({codec})")
    recorder = None
    if media is not None and params.get("record"):
        recorder = media.record(params["record"])
    jobs: list[asyncio.Future[Any]] = [
        asyncio.ensure_future(call.ended()),
        asyncio.ensure_future(stop.wait()),
    ]
    if media is not None and params.get("dtmf"):
        media.send_dtmf(params["dtmf"])
    duration = params.get("duration")
    if media is not None and params.get("play"):

        async def play() -> None:
            await media.play(params["play"])
            await media.drain()

        player = asyncio.ensure_future(play())
        if duration is None:
            jobs.append(player)
    if duration is not None:
        jobs.append(asyncio.ensure_future(asyncio.sleep(duration)))
    try:
        live = bool(params.get("live"))
        async with live_status(call, enabled=live, forced=bool(params.get("live_forced"))):
            await asyncio.wait(jobs, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for job in jobs:
            job.cancel()
    if call.state is not CallState.ENDED:
        await call.hangup()
    if recorder is not None:
        recorder.close()
    elapsed = loop.time() - answered_at
    reason = call.end_reason
    status(f"call ended after {elapsed:.1f} s: {reason}")
    if params.get("report", True):
        report = QualityReport.of_call(call, elapsed)
        if report is not None:
            click.echo(report.text(), nl=False)
    if reason is not None and reason.by == "provider":
        raise CommandFailed(
            ExitCode.FAILED,
            f"the call was cut: {reason.status} {reason.text}",
            "The network or the peer stopped answering: run with -v to see the messages.",
        )


def _status_line(response: Response) -> str:
    return f"{response.status} {response.reason_phrase}"


# === voip register ==============================================================================


@click.command("register", epilog=EXIT_CODES_HELP)
@click.argument("registrar", required=False)
@click.option("--expires", type=int, default=3600, show_default=True, help="Seconds asked for.")
@click.option("--stay", is_flag=True, help="Stay registered (refreshing) until interrupted.")
@account_options
@trace_options
def register_command(registrar: str | None, **params: Any) -> None:
    """Register at REGISTRAR (default: the account's registrar, else sip:DOMAIN) and say
    what it granted. Without --stay, the binding is removed again before exiting: a check
    that the account works.

    \b
    Example:
      VOIP_PASSWORD=secret voip register sip:127.0.0.1 --user alice
    """
    asyncio.run(_register(registrar, params))


async def _register(registrar_text: str | None, params: dict[str, Any]) -> None:
    async with softphone(params, registrar=registrar_text) as phone:
        registration = await register_account(phone, registrar_text, params["expires"])
        aor, registrar = registration.aor.uri, registration.registrar
        mine = [b for b in registration.bindings if b.ours]
        click.echo(f"registered {aor} at {registrar}: expires in {registration.granted} s")
        for binding in registration.bindings:
            mark = " (this agent)" if binding.ours else ""
            click.echo(f"  contact {binding.contact} expires {binding.expires}{mark}")
        if not mine:
            status("note: the registrar did not list our contact")
        if params["stay"]:
            status("staying registered; Ctrl-C to un-register and stop")
            stop = asyncio.Event()
            stop_on_signals(stop)
            await stop.wait()
        with contextlib.suppress(RequestFailed, TimeoutError):
            await asyncio.wait_for(registration.unregister(), phone.timeout)
        phone.show_ladder()


# === voip options ===============================================================================


@click.command("options", epilog=EXIT_CODES_HELP)
@click.argument("uri")
@click.option("--count", type=int, default=1, show_default=True, help="How many pings.")
@click.option(
    "--interval", type=float, default=1.0, show_default=True, help="Seconds between pings."
)
@account_options
@trace_options
def options_command(uri: str, **params: Any) -> None:
    """Ping URI with OPTIONS (RFC 3261 §11): print who answered, what it supports, and the
    round-trip time of each ping.

    \b
    Example:
      voip options sip:127.0.0.1:5060 --count 5
    """
    asyncio.run(_options(uri, params))


async def _options(uri: str, params: dict[str, Any]) -> None:
    async with softphone(params) as phone:
        ua = phone.ua
        target = phone.uri(uri)
        loop = asyncio.get_running_loop()
        times: list[float] = []
        count = max(1, params["count"])
        for number in range(count):
            if number:
                await asyncio.sleep(params["interval"])
            request = ua.new_request("OPTIONS", target, headers=[("Accept", "application/sdp")])
            started = loop.time()
            try:
                response = await asyncio.wait_for(ua.request(request), phone.timeout)
            except TimeoutError:
                phone.show_ladder()
                raise CommandFailed(
                    ExitCode.UNREACHABLE,
                    f"OPTIONS {target}: no response in {phone.timeout:g} s",
                    "Check the address and port, that the peer runs, and the transport "
                    f"({phone.transport}).",
                ) from None
            except RequestFailed as error:
                phone.show_ladder()
                raise refusal(
                    phone, f"OPTIONS {target}", error.status, error.reason, request.call_id
                ) from None
            elapsed = loop.time() - started
            times.append(elapsed)
            click.echo(f"{_status_line(response)} from {target} in {1000 * elapsed:.1f} ms")
            if number == 0:
                _describe(response)
        if count > 1:
            click.echo(
                f"{count} answered: min {1000 * min(times):.1f} ms, "
                f"median {1000 * statistics.median(times):.1f} ms, "
                f"max {1000 * max(times):.1f} ms"
            )
        phone.show_ladder()


def _describe(response: Response) -> None:
    for name in ("Server", "User-Agent", "Allow", "Accept", "Supported"):
        value = response.headers.get(name)
        if value:
            click.echo(f"  {name}: {value}")


# === voip answer and voip serve ================================================================


def serve_options(function: Any) -> Any:
    options = [
        click.option(
            "--calls",
            type=int,
            default=0,
            show_default=True,
            help="Stop after this many calls (0: run until interrupted).",
        ),
        click.option(
            "--register", "do_register", is_flag=True, help="Register at the account's registrar."
        ),
        click.option("--registrar", help="Registrar URI (implies --register)."),
        click.option(
            "--loop",
            "event_loop",
            type=click.Choice(LOOPS),
            default="auto",
            show_default=True,
            help="Event loop: asyncio's own, or uvloop (auto: uvloop when installed, the "
            "'uvloop' extra; less CPU per call).",
        ),
        click.option(
            "--live/--no-live",
            default=None,
            help="Live status, one line per active call: peer, state, duration, codec, "
            "loss (default: when stderr is a terminal).",
        ),
    ]
    for option in reversed(options):
        function = option(function)
    return function


@click.command("answer", epilog=EXIT_CODES_HELP)
@media_options
@serve_options
@account_options
@trace_options
def answer_command(**params: Any) -> None:
    """Answer incoming calls (several at once): play, record, send DTMF, then hang up
    (after --duration, or when --play ends) or wait for the caller to. With --record,
    the second call records to FILE-2.wav, the third to FILE-3.wav, and so on.

    \b
    Example:
      voip answer --listen 127.0.0.1:5062 --calls 1 --play greeting.wav --record msg.wav
    """
    run(_serve(params, None), loop=params["event_loop"])


@click.command("serve", epilog=EXIT_CODES_HELP)
@click.option(
    "--bot",
    "bot_name",
    required=True,
    metavar="MODULE:FUNCTION",
    help="The bot: async def FUNCTION(session) in MODULE (a module name or a .py file).",
)
@click.option("--codec", "codecs", multiple=True, type=click.Choice(AUDIO_CODECS, False))
@click.option("--report/--no-report", default=True, help="Print a quality report per call.")
@serve_options
@account_options
@trace_options
def serve_command(bot_name: str, **params: Any) -> None:
    """Answer every incoming call and run the bot on it, each call in its own task.

    The bot is ``async def bot(session)``: ``session`` is a :class:`voip.session.Session`
    (S-CONNECT already accepted): ``await session.send_data(pcm)``, ``session.media.read()``,
    ``await session.send_expedited("1")`` (DTMF), ``await session.release()`` ... When the
    bot returns, the call is released if it is still up.

    \b
    Example:
      voip serve --bot samples.echo:handle --listen 127.0.0.1:5062
    """
    bot = load_bot(bot_name)
    run(_serve(params, bot), loop=params["event_loop"])


def load_bot(name: str) -> Bot:
    """``module:function`` or ``path/to/file.py:function``."""
    module_name, sep, function_name = name.rpartition(":")
    if not sep or not module_name or not function_name:
        raise click.BadParameter(f"{name!r}: expected MODULE:FUNCTION", param_hint="--bot")
    try:
        if module_name.endswith(".py"):
            spec = importlib.util.spec_from_file_location(Path(module_name).stem, module_name)
            if spec is None or spec.loader is None:
                raise ImportError(f"cannot load {module_name}")
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
        else:
            if "" not in sys.path and str(Path.cwd()) not in sys.path:
                sys.path.insert(0, str(Path.cwd()))
            module = importlib.import_module(module_name)
    except (ImportError, OSError, SyntaxError) as error:
        raise CommandFailed(ExitCode.USAGE, f"cannot load the bot {name}: {error}") from error
    bot = getattr(module, function_name, None)
    if bot is None or not inspect.iscoroutinefunction(bot):
        raise CommandFailed(
            ExitCode.USAGE,
            f"{name}: no coroutine function {function_name!r} in {module_name}",
            "A bot is: async def bot(session): ...",
        )
    return bot  # type: ignore[no-any-return]


async def _serve(params: dict[str, Any], bot: Bot | None) -> None:
    registrar = params.get("registrar")
    async with softphone(params, registrar=registrar) as phone:
        ua = phone.ua
        if params.get("codecs"):
            ua.codecs = tuple(c.upper() for c in params["codecs"])
        stop = asyncio.Event()
        stop_on_signals(stop)
        live = params.get("live")
        enabled = sys.stderr.isatty() if live is None else bool(live)
        if params.get("do_register") or registrar:
            registration = await register_account(phone, registrar)
            status(f"registered {registration.aor.uri} at {registration.registrar}")
        settle_collector()  # up: a long-running agent from now on
        async with live_calls(enabled=enabled, forced=live is True) as board:
            limit = params["calls"]
            handled = 0
            tasks: set[asyncio.Task[None]] = set()
            all_done = asyncio.Event()

            def on_call(call: Call) -> None:
                nonlocal handled
                handled += 1
                number = handled
                if limit and number > limit:
                    call.reject_now(486, "Busy Here")
                    return
                task = asyncio.ensure_future(
                    _one_call(phone, call, number, params, bot=bot, stop=stop)
                )
                tasks.add(task)
                board.add(number, call)

                def finished(done: asyncio.Task[None]) -> None:
                    tasks.discard(done)
                    board.remove(number)
                    if limit and number >= limit and not tasks:
                        all_done.set()

                task.add_done_callback(finished)

            ua.on("incoming_call", on_call)
            if phone.local is None:
                status(f"answering calls on {phone.where}")
            else:
                where = str(phone.local).split(":", 1)[1]
                status(f"answering calls at sip:{phone.account.user}@{where}")
            waiting = {asyncio.ensure_future(stop.wait()), asyncio.ensure_future(all_done.wait())}
            await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
            for job in waiting:
                job.cancel()
            if tasks:
                await asyncio.wait(tasks, timeout=10.0)
        phone.show_ladder()


async def register_account(
    phone: Softphone, registrar_text: str | None, expires: int = 3600
) -> Registration:
    """Register the account at ``registrar_text`` (or its registrar, or sip:DOMAIN);
    the errors say why it failed and what to do."""
    account = phone.account
    text = (
        registrar_text or account.registrar or (f"sip:{account.domain}" if account.domain else None)
    )
    if text is None:
        raise CommandFailed(
            ExitCode.USAGE,
            "no registrar",
            "Give one (voip register sip:pbx.example.com), or --domain, or set it in the account.",
        )
    registrar = phone.uri(text)
    aor = f"sip:{account.user}@{account.domain or registrar.host}"
    ua = phone.ua
    try:
        return await asyncio.wait_for(
            ua.register(registrar, aor=aor, expires=expires), phone.timeout
        )
    except TimeoutError:
        raise CommandFailed(
            ExitCode.UNREACHABLE,
            f"registration at {registrar}: no response in {phone.timeout:g} s",
            "Check the registrar's address and port, that it runs, and the transport "
            f"({phone.transport}).",
        ) from None
    except RequestFailed as error:
        call_id = ua.registrations[-1].call_id if ua.registrations else ""
        phone.show_ladder()
        raise refusal(
            phone,
            f"registration of {aor} at {registrar} refused",
            error.status,
            error.reason,
            call_id,
            register=True,
        ) from None


def _numbered(path: str | None, number: int) -> str | None:
    if path is None or number == 1:
        return path
    file = Path(path)
    return str(file.with_name(f"{file.stem}-{number}{file.suffix}"))


async def _one_call(
    phone: Softphone,
    call: Call,
    number: int,
    params: dict[str, Any],
    *,
    bot: Bot | None,
    stop: asyncio.Event,
) -> None:
    invite = call.invite
    caller = str(invite.from_.uri) if isinstance(invite, Request) else "?"
    status(f"call {number} from {caller}")
    try:
        if bot is None:
            await call.ring()
            await call.accept()
            # the call's line is on the board of live_calls: no display of its own
            converse = {**params, "record": _numbered(params.get("record"), number), "live": False}
            await _converse(phone, call, converse, stop)
        else:
            await _run_bot(phone, call, number, params, bot)
    except CommandFailed as error:
        status(f"call {number}: {error.format_message()}")
    except Exception as error:
        status(f"call {number} failed: {type(error).__name__}: {error}")
        with contextlib.suppress(Exception):
            await call.hangup()


async def _run_bot(
    phone: Softphone, call: Call, number: int, params: dict[str, Any], bot: Bot
) -> None:
    loop = asyncio.get_running_loop()
    session = Session.incoming(call)
    await session.accept()
    answered_at = loop.time()
    try:
        await bot(session)
    except SessionError as error:
        if call.state is not CallState.ENDED:
            raise
        # the caller hung up while the bot was still talking: nothing went wrong
        status(f"call {number}: the session ended during the bot ({error})")
    except Exception:
        status(f"call {number}: the bot failed:\n{traceback.format_exc().rstrip()}")
        if call.state is not CallState.ENDED:
            await session.abort("the bot failed", cause=500)
    if call.state is not CallState.ENDED:
        await session.release()
    elapsed = loop.time() - answered_at
    status(f"call {number} ended after {elapsed:.1f} s: {call.end_reason}")
    if params.get("report", True):
        report = QualityReport.of_call(call, elapsed)
        if report is not None:
            click.echo(report.text(), nl=False)
