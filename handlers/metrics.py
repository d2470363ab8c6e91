"""Prometheus metrics of this process, and the queue's depth read from the database on scrape."""

from collections.abc import Iterator
from datetime import datetime

from prometheus_client import CONTENT_TYPE_LATEST, Counter, Histogram, generate_latest
from prometheus_client.core import REGISTRY, GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import Engine
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from bot.domain.calendar import utcnow
from storage import queue

RECEIVED = Counter("welfarebot_events_received_total", "Inbound events stored", ["platform"])
HANDLED = Counter("welfarebot_events_handled_total", "Inbound events handled", ["platform"])
HANDLING = Histogram(
    "welfarebot_handling_seconds",
    "Time from taking an event to its replies being sent",
    ["platform"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
SEND_ERRORS = Counter(
    "welfarebot_send_errors_total", "Refused or failed sends to a platform", ["platform", "status"]
)
RATE_LIMITED = Counter("welfarebot_rate_limited_total", "429 answers from a platform", ["platform"])
BROADCAST_SENT = Counter(
    "welfarebot_broadcast_recipients_total", "Broadcast recipients done, by outcome", ["status"]
)


def send_failed(platform: str, status: int | str) -> None:
    """Count a refused or failed send (and a 429 separately)."""
    SEND_ERRORS.labels(platform, str(status)).inc()
    if str(status) == "429":
        RATE_LIMITED.labels(platform).inc()


class QueueCollector(Collector):
    """Reads the number of waiting events and the oldest one's age on every scrape."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def collect(self) -> Iterator[GaugeMetricFamily]:
        """Yield the queue depth and the oldest waiting event's age in seconds."""
        with self.engine.connect() as connection:
            count, oldest = queue.depth(connection)
        yield GaugeMetricFamily(
            "welfarebot_queue_depth", "Stored events not handled yet", value=count
        )
        yield GaugeMetricFamily(
            "welfarebot_queue_oldest_seconds",
            "Age of the oldest event not handled yet",
            value=_age(oldest),
        )


def _age(oldest: datetime | None) -> float:
    if oldest is None:
        return 0.0
    if oldest.tzinfo is None:
        return (utcnow().replace(tzinfo=None) - oldest).total_seconds()
    return (utcnow() - oldest).total_seconds()


_collectors: dict[int, QueueCollector] = {}


def metrics_route(engine: Engine) -> Route:
    """Return the /metrics route, registering the queue collector once per engine."""
    if id(engine) not in _collectors:
        _collectors[id(engine)] = QueueCollector(engine)
        REGISTRY.register(_collectors[id(engine)])

    async def scrape(_request: Request) -> Response:
        return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)

    return Route("/metrics", scrape, methods=["GET"])
