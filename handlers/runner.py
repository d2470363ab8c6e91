"""Runs every configured channel in one process until asked to stop."""

import asyncio
import contextlib
import logging
import signal
from datetime import timedelta

import uvicorn

from bot.app.service import WelfareService
from bot.app.settings import Settings
from bot.domain.schedule import QuietHours
from handlers.broadcaster import Broadcaster, Sender
from handlers.courier import Courier
from handlers.line.broadcast import LineBroadcastSender
from handlers.line.channel import LineChannel
from handlers.telegram.broadcast import TelegramBroadcastSender
from handlers.telegram.channel import TelegramChannel
from handlers.telegram.pacer import Pacer, TokenBucket
from handlers.web import create_app, export_route

log = logging.getLogger(__name__)


def telegram_channel(settings: Settings, service: WelfareService) -> TelegramChannel:
    """Build the Telegram channel from settings."""
    assert settings.telegram_bot_token is not None
    secret = settings.telegram_webhook_secret
    return TelegramChannel(
        service,
        settings.telegram_bot_token.get_secret_value(),
        base_url=settings.telegram_api_base_url,
        webhook_url=settings.telegram_webhook_url,
        webhook_secret=secret.get_secret_value() if secret else None,
        # one rate for everything the bot sends, replies first (the setting predates that)
        pacer=Pacer(TokenBucket(settings.telegram_broadcast_rate)),
    )


def line_channel(settings: Settings, service: WelfareService) -> LineChannel:
    """Build the LINE channel from settings."""
    assert settings.line_channel_secret is not None
    assert settings.line_channel_access_token is not None
    return LineChannel(
        service,
        settings.line_channel_secret.get_secret_value(),
        settings.line_channel_access_token.get_secret_value(),
        base_url=settings.line_api_base_url,
        public_url=settings.public_url,
    )


def broadcast_senders(
    settings: Settings, service: WelfareService, channels: list[TelegramChannel | LineChannel]
) -> list[Sender]:
    """Return a broadcast sender for each running channel."""
    senders: list[Sender] = []
    for channel in channels:
        if isinstance(channel, TelegramChannel):
            senders.append(TelegramBroadcastSender(service, channel.app.bot, channel.pacer))
        else:
            senders.append(LineBroadcastSender(service, channel.client))
    return senders


async def serve(settings: Settings, service: WelfareService) -> None:
    """Start the configured channels (and the web server for webhooks); stop on a signal."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    channels: list[TelegramChannel | LineChannel] = []
    if settings.telegram_enabled:
        channels.append(telegram_channel(settings, service))
    if settings.line_enabled:
        channels.append(line_channel(settings, service))
    routes = [route for channel in channels for route in channel.routes()]
    routes.append(export_route(service))
    webhooks = settings.line_enabled or bool(settings.telegram_webhook_url)
    for channel in channels:
        await channel.start()
    courier = Courier(service, {channel.platform: channel.notify for channel in channels})
    courier.start()
    senders = broadcast_senders(settings, service, channels)
    lease = timedelta(seconds=settings.broadcast_lease_seconds)
    quiet = QuietHours.parse(settings.quiet_hours)
    broadcaster = Broadcaster(service, senders, quiet, lease=lease)
    broadcaster.start()
    server: uvicorn.Server | None = None
    web_task: asyncio.Task[None] | None = None
    if webhooks:
        config = uvicorn.Config(
            create_app(routes, service.db),
            host=settings.web_host,
            port=settings.web_port,
            log_level="warning",
            access_log=False,
        )
        server = uvicorn.Server(config)
        # uvicorn must not take over the signals this function already handles
        server.capture_signals = contextlib.nullcontext  # type: ignore[method-assign,assignment]
        web_task = asyncio.create_task(server.serve())
        while not server.started and not web_task.done():  # noqa: ASYNC110 (uvicorn has no event)
            await asyncio.sleep(0.01)
        log.info("web server listening on %s:%s", settings.web_host, settings.web_port)
    try:
        await stop.wait()
    finally:
        if server is not None and web_task is not None:
            server.should_exit = True
            await web_task
        await broadcaster.stop()
        await courier.stop()
        for channel in channels:
            await channel.stop()
