"""The Pacer's bucket shared by every process through PostgreSQL: one Telegram rate per bot."""

from sqlalchemy import Engine

from storage import rates


class SharedBucket:
    """A `Bucket` (handlers/telegram/pacer.py) kept in one row that all processes take from."""

    def __init__(self, database: Engine, name: str, rate: float, burst: float = 1.0) -> None:
        self.database = database
        self.name = name
        self.rate = rate
        self.capacity = max(1.0, burst)
        with database.begin() as connection:
            rates.ensure(connection, name)

    async def take(self) -> float:
        """Take one send if the shared row has a token; else return the wait for the next."""
        with self.database.begin() as connection:
            return rates.take(connection, self.name, self.rate, self.capacity)

    async def hold(self, wait: float) -> None:
        """Hold every process's sends back for `wait` seconds (a 429's retry_after)."""
        with self.database.begin() as connection:
            rates.hold(connection, self.name, wait)
