"""A token bucket in one PostgreSQL row, so every process sending on a platform shares its rate.

One statement per send: it refills the row by the time since its stamp (the server's clock, so
the processes' clocks do not matter), takes a token when there is one, and returns the wait
otherwise; the row lock makes concurrent takers queue for a fraction of a millisecond.
"""

from sqlalchemy import Connection, text

_ENSURE = text(
    "INSERT INTO send_rates (name, tokens, stamp, paused_until)"
    " VALUES (:name, 1, clock_timestamp(), clock_timestamp()) ON CONFLICT (name) DO NOTHING"
)
_TAKE = text(
    """
    WITH now AS (SELECT clock_timestamp() AS at),
    cur AS (
        SELECT r.name, r.paused_until, now.at,
               least(:capacity, r.tokens
                     + greatest(0, extract(epoch FROM now.at - r.stamp)) * :rate) AS tokens
        FROM send_rates r, now WHERE r.name = :name FOR UPDATE OF r
    )
    UPDATE send_rates s SET
        tokens = CASE WHEN cur.at < cur.paused_until THEN s.tokens
                      WHEN cur.tokens >= 1 THEN cur.tokens - 1 ELSE cur.tokens END,
        stamp = CASE WHEN cur.at < cur.paused_until THEN s.stamp ELSE cur.at END
    FROM cur WHERE s.name = cur.name
    RETURNING CASE WHEN cur.at < cur.paused_until
                   THEN extract(epoch FROM cur.paused_until - cur.at)
                   WHEN cur.tokens >= 1 THEN 0
                   ELSE (1 - cur.tokens) / :rate END
    """
)
_HOLD = text(
    "UPDATE send_rates SET tokens = 0,"
    " paused_until = greatest(paused_until, clock_timestamp() + make_interval(secs => :wait)),"
    " stamp = greatest(paused_until, clock_timestamp() + make_interval(secs => :wait))"
    " WHERE name = :name"
)


def ensure(connection: Connection, name: str) -> None:
    """Create a bucket holding one token, unless it exists."""
    connection.execute(_ENSURE, {"name": name})


def take(connection: Connection, name: str, rate: float, capacity: float) -> float:
    """Take one send (returning 0.0), or return the seconds to wait before asking again."""
    params = {"name": name, "rate": rate, "capacity": capacity}
    return float(connection.execute(_TAKE, params).scalar_one())


def hold(connection: Connection, name: str, wait: float) -> None:
    """Allow no send from this bucket for `wait` seconds, then start from empty."""
    connection.execute(_HOLD, {"name": name, "wait": wait})
