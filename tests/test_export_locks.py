"""Reads never take the write lock: volunteers answer while a 100,000-row export streams."""

import csv
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import event, func, select, text
from sqlalchemy.exc import DBAPIError

from bot.app.service import WelfareService
from bot.reports import export_job
from storage import proposal_queries as queries
from storage.db import reading
from storage.models import InboundEvent
from tests.helpers import Chat, th
from tests.staff_support import make_staff, seed_many

ROWS = 100_000
VOLUNTEERS = 100


def test_volunteers_answer_while_a_100000_row_export_streams(
    service: WelfareService, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With the export's read transaction open mid-stream, 100 volunteers' answers commit."""
    seed_many(service, ROWS)

    # an answer that waited for a lock fails at once instead of after the 30 s busy timeout
    @event.listens_for(service.db, "connect")
    def _no_waiting(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.execute("PRAGMA busy_timeout = 0")

    service.db.dispose()
    midway, resume = threading.Event(), threading.Event()
    streamed = queries.stream

    def pausing(*args: Any) -> Iterator[Any]:
        for number, row in enumerate(streamed(*args), start=1):
            if number == ROWS // 2:
                midway.set()
                resume.wait(timeout=60)
            yield row

    monkeypatch.setattr(export_job.queries, "stream", pausing)
    asked: list[int] = []
    service.on_export = asked.append
    officer = make_staff(service, "boss", "admin")
    assert officer.send("/export csv")[0].text == th("desk.export.preparing")

    def build() -> None:
        try:
            service.build_export(asked[0])
        finally:
            midway.set()  # a failed export must not leave the test waiting

    builder = threading.Thread(target=build)
    builder.start()
    try:
        assert midway.wait(timeout=60)
        assert builder.is_alive(), "the export failed before it got halfway"
        for number in range(VOLUNTEERS):
            assert Chat(service, user_id=f"v{number}").send("/start"), "no answer"
        assert builder.is_alive(), "the export finished before the answers: nothing was shown"
    finally:
        resume.set()
        builder.join(timeout=60)
    with reading(service.db) as connection:
        answered = connection.scalar(select(func.count()).select_from(InboundEvent))
    assert answered == VOLUNTEERS + 1  # and the officer's /export
    sent = [r for d in service.undelivered("terminal") for r in d.replies if r.document]
    assert sent[-1].text == th("desk.export.ready", count=f"{ROWS:,}")
    found = service.export_file(sent[-1].document.token)  # type: ignore[union-attr]
    assert found is not None
    with found[1].open(encoding="utf-8-sig", newline="") as file:
        assert sum(1 for _row in csv.reader(file)) == ROWS + 1


def test_a_read_transaction_is_read_only(any_service: WelfareService) -> None:
    """What reads proposals for an export cannot change anything, on either database."""
    with pytest.raises(DBAPIError), reading(any_service.db) as connection:
        connection.execute(text("DELETE FROM proposals"))
    with any_service.db.begin() as connection:  # and the connection is writable again after
        connection.execute(text("DELETE FROM proposals"))
