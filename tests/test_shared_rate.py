"""The Telegram rate kept in PostgreSQL holds across processes (here: two buckets, two engines)."""

import time

import pytest
from sqlalchemy import text

from handlers.telegram.shared_bucket import SharedBucket
from storage.db import make_engine


@pytest.fixture
def buckets(postgres_url: str) -> list[SharedBucket]:
    """Two processes' views of one shared bucket of 20 sends a second, starting full."""
    engines = [make_engine(postgres_url), make_engine(postgres_url)]
    with engines[0].begin() as connection:
        connection.execute(text("DELETE FROM send_rates"))
    return [SharedBucket(engine, "telegram", rate=20.0) for engine in engines]


async def test_a_send_taken_by_one_process_is_gone_for_the_other(
    buckets: list[SharedBucket],
) -> None:
    """The first take gets the one token; the other process is told to wait about 1/rate."""
    # a slow rate, so that a loaded machine's pause between the two takes refills nothing
    first, second = (SharedBucket(b.database, "slow", rate=0.1) for b in buckets)
    assert await first.take() == 0.0
    wait = await second.take()
    assert 0.0 < wait <= 1 / 0.1


async def test_a_429_in_one_process_pauses_every_process(buckets: list[SharedBucket]) -> None:
    """A hold for retry_after in one process makes the other wait it out too."""
    first, second = buckets
    await first.hold(60.0)
    assert 50.0 < await second.take() <= 60.0


async def test_two_processes_together_stay_within_the_rate(buckets: list[SharedBucket]) -> None:
    """Taking as fast as they can for a second, both together get at most rate + burst sends."""
    taken = 0
    end = time.monotonic() + 1.0
    while time.monotonic() < end:
        for bucket in buckets:
            if await bucket.take() == 0.0:
                taken += 1
    # at least one each; the bound that matters is the upper one, whatever the machine's load
    assert 2 <= taken <= 20 + 1 + 1  # one more for the time the loop overran its second
