"""Runs every configured channel in one process until asked to stop."""

import asyncio
import contextlib
import logging
import signal
import socket
import threading
from collections.abc import Callable, Coroutine, Sequence
from datetime import timedelta
from typing import Any

import uvicorn
from starlette.routing import BaseRoute
from starlette.types import ASGIApp

from bot.app.service import WelfareService
from bot.app.settings import Settings
from bot.domain.schedule import QuietHours
from handlers.broadcaster import Broadcaster, Sender
from handlers.courier import SWEEP_SECONDS, Courier
from handlers.desk_web.app import desk_routes
from handlers.exporter import Exporter
from handlers.line.broadcast import LineBroadcastSender
from handlers.line.channel import LineChannel
from handlers.line.rich_menu import RichMenus
from handlers.metrics import metrics_route
from handlers.photo_fetcher import PhotoFetcher
from handlers.pruner import Pruner
from handlers.telegram.broadcast import TelegramBroadcastSender
from handlers.telegram.channel import TelegramChannel
from handlers.telegram.pacer import Bucket, Pacer, TokenBucket
from handlers.telegram.shared_bucket import SharedBucket
from handlers.web import create_app, export_route
from handlers.worker import Worker

log = logging.getLogger(__name__)


RUN, WEB, WORKER = "run", "web", "worker"


def telegram_channel(
    settings: Settings,
    service: WelfareService,
    queued: bool = False,
    receive: bool = True,
    replace_webhook: bool = False,
) -> TelegramChannel:
    """Build the Telegram channel from settings."""
    assert settings.telegram_bot_token is not None
    secret = settings.telegram_webhook_secret
    return TelegramChannel(
        service,
        settings.telegram_bot_token.get_secret_value(),
        base_url=settings.telegram_api_base_url,
        webhook_url=settings.telegram_webhook_url,
        webhook_secret=secret.get_secret_value() if secret else None,
        replace_webhook=replace_webhook,
        # one rate for everything the bot sends, replies first (the setting predates that)
        pacer=Pacer(telegram_bucket(settings, service)),
        queued=queued,
        receive=receive,
    )


def telegram_bucket(settings: Settings, service: WelfareService) -> Bucket:
    """Return the Telegram rate: shared by every process on PostgreSQL, else this process's."""
    rate = settings.telegram_broadcast_rate
    if service.db.dialect.name == "postgresql":
        return SharedBucket(service.db, "telegram", rate)
    return TokenBucket(rate)


def line_channel(settings: Settings, service: WelfareService, queued: bool = False) -> LineChannel:
    """Build the LINE channel from settings."""
    assert settings.line_channel_secret is not None
    assert settings.line_channel_access_token is not None
    return LineChannel(
        service,
        settings.line_channel_secret.get_secret_value(),
        settings.line_channel_access_token.get_secret_value(),
        base_url=settings.line_api_base_url,
        public_url=settings.public_url,
        queued=queued,
        data_url=settings.line_data_api_base_url,
        rich_menus=rich_menus(settings),
    )


def rich_menus(settings: Settings) -> RichMenus:
    """Return the LINE rich menu's API clients from settings."""
    assert settings.line_channel_access_token is not None
    token = settings.line_channel_access_token.get_secret_value()
    return RichMenus(token, settings.line_api_base_url, settings.line_data_api_base_url)


def broadcast_senders(
    settings: Settings, service: WelfareService, channels: list[TelegramChannel | LineChannel]
) -> list[Sender]:
    """Return a broadcast sender for each running channel."""
    senders: list[Sender] = []
    for channel in channels:
        if isinstance(channel, TelegramChannel):
            senders.append(TelegramBroadcastSender(service, channel.app.bot, channel.pacer))
        else:
            senders.append(LineBroadcastSender(service, channel.sender))
    return senders


async def start_channels(
    channels: Sequence[TelegramChannel | LineChannel], stop: asyncio.Event
) -> bool:
    """Start channels in turn (Telegram may wait for its API); False if stopped meanwhile."""
    started: list[TelegramChannel | LineChannel] = []

    async def start_all() -> None:
        for channel in channels:
            await channel.start()
            started.append(channel)

    starting = asyncio.create_task(start_all())
    stopping = asyncio.create_task(stop.wait())
    await asyncio.wait({starting, stopping}, return_when=asyncio.FIRST_COMPLETED)
    stopping.cancel()
    if starting.done() and starting.exception() is None:
        return True
    if not starting.done():
        starting.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await starting
    for channel in started:
        await channel.stop()
    if starting.cancelled():
        return False
    error = starting.exception()
    assert error is not None
    raise error


def listening_socket(host: str, port: int) -> socket.socket:
    """Bind the web server's socket (raises OSError when the port is taken)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


async def start_web(
    settings: Settings, app: ASGIApp, required: bool
) -> tuple[uvicorn.Server | None, asyncio.Task[None] | None]:
    """Start the web server (webhooks, web desk); a busy port stops only a required one."""
    try:
        sock = listening_socket(settings.web_host, settings.web_port)
    except OSError:
        if required:
            raise
        log.warning("web desk not started: port %s is in use (set WEB_PORT)", settings.web_port)
        return None, None
    config = uvicorn.Config(app, log_level="warning", access_log=False)
    server = uvicorn.Server(config)
    # uvicorn must not take over the signals this function already handles
    server.capture_signals = contextlib.nullcontext  # type: ignore[method-assign,assignment]
    web_task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started and not web_task.done():  # noqa: ASYNC110 (uvicorn has no event)
        await asyncio.sleep(0.01)
    log.info("web server listening on %s:%s; web desk at %s/desk", settings.web_host,
             settings.web_port, settings.web_url)  # fmt: skip
    return server, web_task


async def serve(
    settings: Settings, service: WelfareService, role: str = RUN, replace_webhook: bool = False
) -> None:
    """Run a role until a signal: web (store webhooks), worker (handle and send), or both.

    On PostgreSQL every role goes through the shared queue (handlers/worker.py), so any number of
    web and worker processes keep each volunteer's order; on SQLite `run` handles events itself.
    """
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    queued = service.db.dialect.name == "postgresql"
    receive, work = role != WORKER, role != WEB
    channels: list[TelegramChannel | LineChannel] = []
    if settings.telegram_enabled:
        channels.append(telegram_channel(settings, service, queued, receive, replace_webhook))
    if settings.line_enabled:
        channels.append(line_channel(settings, service, queued))
    routes: list[BaseRoute] = []
    if receive:
        routes = [route for channel in channels for route in channel.routes()]
        routes.append(export_route(service))
    routes.append(metrics_route(service.db))
    webhooks = settings.line_enabled or bool(settings.telegram_webhook_url)
    if not await start_channels(channels, stop):
        return
    courier = broadcaster = worker = fetcher = exporter = pruner = None
    if work:
        courier = Courier(service, {channel.platform: channel.notify for channel in channels})
        # on the queue, orphaned rows are the worker's to sweep, within a second
        courier.start(sweep_every=None if queued else SWEEP_SECONDS)
        senders = broadcast_senders(settings, service, channels)
        lease = timedelta(seconds=settings.broadcast_lease_seconds)
        quiet = QuietHours.parse(settings.quiet_hours)
        broadcaster = Broadcaster(service, senders, quiet, lease=lease)
        broadcaster.start()
        if service.photos is not None:
            downloads = {channel.platform: channel.download_photo for channel in channels}
            fetcher = PhotoFetcher(service, service.photos, downloads)
            fetcher.start()
        exporter = Exporter(service)
        exporter.start()
        pruner = Pruner(service)
        pruner.start()
    if work and queued:
        worker = Worker(
            service,
            {channel.platform: channel for channel in channels},
            concurrency=settings.worker_concurrency,
        )
        await worker.start()
    if receive:
        routes += desk_routes(service, settings.web_url, secure=settings.desk_secure_cookies)
    # the web desk is served even without webhooks, unless its port is taken
    required = webhooks or role != RUN
    server, web_task = await start_web(settings, create_app(routes, service.db), required)
    log.info("%s ready", role)
    try:
        await stop.wait()
    finally:
        log.info("stopping: finishing work in hand for up to %.0f s", settings.drain_seconds)
        if server is not None and web_task is not None:
            server.should_exit = True
            await web_task
        if worker is not None:
            await worker.stop(settings.drain_seconds)
        if broadcaster is not None:
            await broadcaster.stop()
        if fetcher is not None:
            await fetcher.stop()
        if exporter is not None:
            await exporter.stop()
        if pruner is not None:
            await pruner.stop()
        if courier is not None:
            await courier.stop()
        for channel in channels:
            await channel.stop()


def loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """Return uvloop's event loop where it is installed (not on Windows), else None (asyncio's)."""
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


def run_loop(main: Coroutine[Any, Any, None]) -> None:
    """Run the bot's main coroutine on uvloop's event loop when there is one."""
    with asyncio.Runner(loop_factory=loop_factory()) as runner:
        runner.run(main)


def web_in_background(settings: Settings, service: WelfareService) -> Callable[[], None]:
    """Serve the web desk from a thread (beside the terminal chat); return what stops it."""
    routes = [export_route(service), *desk_routes(service, settings.web_url,
                                                  secure=settings.desk_secure_cookies)]  # fmt: skip
    try:
        sock = listening_socket(settings.web_host, settings.web_port)
    except OSError:
        log.warning("web desk not started: port %s is in use (set WEB_PORT)", settings.web_port)
        return lambda: None
    config = uvicorn.Config(create_app(routes, service.db), log_level="warning", access_log=False)
    server = uvicorn.Server(config)
    thread = threading.Thread(
        target=lambda: asyncio.run(server.serve(sockets=[sock])), name="web-desk", daemon=True
    )
    thread.start()

    def stop() -> None:
        server.should_exit = True
        thread.join(timeout=5)

    return stop
