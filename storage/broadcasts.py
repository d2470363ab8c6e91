"""Broadcasts in storage: audiences as SQL, runs claimed by one worker, each recipient's fate.

A run is held by one worker while it sends: on PostgreSQL by a session advisory lock (RUNS, the
run's id) on a connection of the worker's, which the server drops the moment that worker dies;
on SQLite, where only one process uses the file, by a lease the worker renews.
"""

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Connection,
    bindparam,
    case,
    column,
    exists,
    false,
    func,
    insert,
    literal,
    select,
    text,
    update,
)
from sqlalchemy.engine import RowMapping

from bot.domain import platforms
from bot.domain.audience import Audience
from bot.domain.calendar import as_utc
from bot.domain.schedule import next_due
from storage.models import (
    Broadcast,
    BroadcastDelivery,
    BroadcastRun,
    Conversation,
    Proposal,
    Volunteer,
)
from storage.queue import RUNS

B = Broadcast.__table__.c
R = BroadcastRun.__table__.c
D = BroadcastDelivery.__table__.c
V = Volunteer.__table__.c
P = Proposal.__table__.c
C = Conversation.__table__.c
DONE = ("sent", "failed", "skipped")
WAITING = ("pending", "sending")

_HOLD_RUN = text("SELECT pg_try_advisory_lock(:ns, :id)").bindparams(ns=RUNS)
_LET_GO = text("SELECT pg_advisory_unlock(:ns, :id)").bindparams(ns=RUNS)
_HELD_RUNS = (
    text(
        "SELECT objid::bigint AS id FROM pg_locks WHERE locktype = 'advisory' AND granted"
        f" AND classid = {RUNS} AND objsubid = 2"
        " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
    )
    .columns(column("id", BigInteger))
    .scalar_subquery()
)
_STILL_HELD = text(
    "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted"
    " AND pid = pg_backend_pid() AND classid = :ns AND objid = :id AND objsubid = 2"
).bindparams(ns=RUNS)


def _due(now: datetime) -> ColumnElement[bool]:
    """Recipients who may be sent to now: not waiting out a failed send's back-off."""
    return D.retry_at.is_(None) | (D.retry_at <= now)


def _work_due(now: datetime) -> ColumnElement[bool]:
    """Runs with something to do now: recipients to write, or some to send to."""
    sendable = exists().where(D.run_id == R.id, D.status.in_(WAITING), _due(now))
    return R.started_at.is_(None) | sendable


def audience_where(audience: Audience, fiscal_year: int) -> list[ColumnElement[bool]]:
    """Return the conditions on volunteers for an audience (reachable or not)."""
    where: list[ColumnElement[bool]] = [
        V.consent_given_at.is_not(None),
        V.consent_withdrawn_at.is_(None),
        V.erased_at.is_(None),
        V.platform_user_id.is_not(None),
        V.reminders_opt_out.is_(false()),
        V.platform.in_(list(audience.platforms or platforms.MESSAGING)),
    ]
    if audience.districts:
        where.append(V.district.in_(list(audience.districts)))
    if audience.networks:
        where.append(V.network.in_(list(audience.networks)))
    if audience.groups:
        where.append(
            exists().where(P.volunteer_id == V.id, P.target_group.in_(list(audience.groups)))
        )
    if audience.has_draft:
        draft = Conversation.state["form"].as_string() == "proposal"
        where.append(exists().where(C.volunteer_id == V.id, draft))
    if audience.not_submitted_this_year:
        where.append(~exists().where(P.volunteer_id == V.id, P.fiscal_year == fiscal_year))
    return where


def preview(connection: Connection, audience: Audience, fiscal_year: int) -> dict[str, int]:
    """Count an audience per platform, and those who cannot be reached ("unreachable")."""
    reachable = V.unreachable_at.is_(None)
    query = (
        select(V.platform, reachable.label("reachable"), func.count())
        .where(*audience_where(audience, fiscal_year))
        .group_by(V.platform, reachable)
    )
    counts = {platform: 0 for platform in audience.platforms or platforms.MESSAGING}
    counts["unreachable"] = 0
    for platform, ok, number in connection.execute(query):
        key = platform if ok else "unreachable"
        counts[key] = counts.get(key, 0) + number
    return counts


def create(
    connection: Connection,
    created_by: str,
    text_th: str,
    text_en: str | None,
    audience: Audience,
    first_at: datetime,
    every: str | None,
    now: datetime,
) -> int:
    """Store a broadcast as a draft (nothing goes out until it is scheduled); return its id."""
    return int(
        connection.execute(
            insert(Broadcast)
            .values(
                created_by=created_by,
                text_th=text_th,
                text_en=text_en,
                audience=audience.to_json(),
                every=every,
                next_at=as_utc(first_at),
                status="draft",
                created_at=now,
            )
            .returning(B.id)
        ).scalar_one()
    )


def get(connection: Connection, broadcast_id: int) -> RowMapping | None:
    """Return one broadcast, or None."""
    return (
        connection.execute(select(Broadcast.__table__).where(B.id == broadcast_id))
        .mappings()
        .first()
    )


def schedule(connection: Connection, broadcast_id: int) -> bool:
    """Turn a draft into a scheduled broadcast; tell whether it was a draft."""
    changed = connection.execute(
        update(Broadcast)
        .where(B.id == broadcast_id, B.status == "draft")
        .values(status="scheduled")
    )
    return bool(changed.rowcount)


def cancel(connection: Connection, broadcast_id: int, now: datetime) -> bool:
    """Cancel a broadcast: no further runs, and recipients not yet sent to are skipped."""
    changed = connection.execute(
        update(Broadcast)
        .where(B.id == broadcast_id, B.status.in_(("draft", "scheduled", "sending")))
        .values(status="cancelled", next_at=None)
    ).rowcount
    runs = select(R.id).where(R.broadcast_id == broadcast_id, R.finished_at.is_(None))
    connection.execute(
        update(BroadcastDelivery)
        .where(D.run_id.in_(runs), D.status.in_(("pending", "sending")))
        .values(status="skipped", reason="cancelled", updated_at=now)
    )
    connection.execute(
        update(BroadcastRun).where(R.id.in_(runs)).values(finished_at=now, claimed_by=None)
    )
    return bool(changed)


def refuse(connection: Connection, broadcast_id: int, reason: str, now: datetime) -> None:
    """Refuse a broadcast before anyone got it (the LINE quota would be exceeded)."""
    cancel(connection, broadcast_id, now)
    connection.execute(
        update(Broadcast).where(B.id == broadcast_id).values(status="refused", refused=reason)
    )


def listing(connection: Connection, limit: int = 20) -> list[RowMapping]:
    """Return the newest broadcasts."""
    query = select(Broadcast.__table__).order_by(B.id.desc()).limit(limit)
    return list(connection.execute(query).mappings())


def start_due(connection: Connection, now: datetime) -> list[int]:
    """Create a run for each scheduled broadcast now due, moving recurring ones on.

    A recurring broadcast whose occurrences were missed (no worker ran for days) goes once, not
    once per missed occurrence: its next time is the first one still to come.
    """
    due = connection.execute(
        select(B.id, B.next_at, B.every).where(B.status == "scheduled", B.next_at <= now)
    ).all()
    started = []
    for broadcast_id, due_at, every in due:
        # the first run's day is the one a monthly broadcast keeps (31 Jan → 28 Feb → 31 Mar)
        first = connection.execute(
            select(func.min(R.due_at)).where(R.broadcast_id == broadcast_id)
        ).scalar()
        anchor = as_utc(first) if first else as_utc(due_at)
        following = next_due(as_utc(due_at), every, anchor)
        while following is not None and following <= now:
            following = next_due(following, every, anchor)
        following = as_utc(following) if following is not None else None
        # only the worker whose update wins creates the run (and (broadcast, due_at) is unique)
        moved = connection.execute(
            update(Broadcast)
            .where(B.id == broadcast_id, B.next_at == due_at)
            .values(next_at=following, status="scheduled" if following else "sending")
        ).rowcount
        if moved:
            run = insert(BroadcastRun).values(broadcast_id=broadcast_id, due_at=due_at)
            started.append(int(connection.execute(run.returning(R.id)).scalar_one()))
    return started


def being_sent(connection: Connection, broadcast_id: int, now: datetime) -> bool:
    """Tell whether a live worker holds an unfinished run of a broadcast."""
    held = (
        R.id.in_(_HELD_RUNS) if connection.dialect.name == "postgresql" else R.claimed_until >= now
    )
    query = select(R.id).where(R.broadcast_id == broadcast_id, R.finished_at.is_(None), held)
    return connection.execute(query.limit(1)).first() is not None


def work_due(connection: Connection, broadcast_id: int, now: datetime) -> bool:
    """Tell whether a broadcast has a run with something to send now (not only back-offs)."""
    query = select(R.id).where(
        R.broadcast_id == broadcast_id, R.finished_at.is_(None), _work_due(now)
    )
    return connection.execute(query.limit(1)).first() is not None


def _details(connection: Connection, run_id: int) -> RowMapping:
    """Return a run with what its broadcast says and to whom."""
    query = (
        select(BroadcastRun.__table__, B.text_th, B.text_en, B.audience, B.created_by)
        .join(Broadcast, B.id == R.broadcast_id)
        .where(R.id == run_id)
    )
    return connection.execute(query).mappings().one()


def claim_run(
    connection: Connection, worker: str, now: datetime, lease_until: datetime
) -> RowMapping | None:
    """Lease the oldest unfinished run with work due that nobody holds (or whose lease lapsed)."""
    free = (R.claimed_by.is_(None)) | (R.claimed_until < now) | (R.claimed_by == worker)
    candidate = connection.execute(
        select(R.id).where(R.finished_at.is_(None), free, _work_due(now)).order_by(R.id).limit(1)
    ).scalar()
    if candidate is None:
        return None
    won = connection.execute(
        update(BroadcastRun)
        .where(R.id == candidate, R.finished_at.is_(None), free)
        .values(claimed_by=worker, claimed_until=lease_until)
    ).rowcount
    if not won:
        return None
    return _details(connection, candidate)


def runs_due(connection: Connection, now: datetime, limit: int = 20) -> list[int]:
    """Return unfinished runs with work due, oldest first (held by a worker or not)."""
    query = select(R.id).where(R.finished_at.is_(None), _work_due(now)).order_by(R.id)
    found = list(connection.execute(query.limit(limit)).scalars())
    connection.commit()
    return found


def hold_run(connection: Connection, run_id: int) -> bool:
    """Take a run's advisory lock on this session; False when another session holds it."""
    got = bool(connection.execute(_HOLD_RUN, {"id": run_id}).scalar_one())
    connection.commit()
    return got


def take_held(connection: Connection, run_id: int, worker: str, now: datetime) -> RowMapping | None:
    """Return a run whose lock this session holds, if it still has work due; note who sends it."""
    claimed = connection.execute(
        update(BroadcastRun)
        .where(R.id == run_id, R.finished_at.is_(None), _work_due(now))
        .values(claimed_by=worker, claimed_until=None)
    ).rowcount
    run = _details(connection, run_id) if claimed else None
    connection.commit()
    return run


def still_held(connection: Connection, run_id: int) -> bool:
    """Tell whether this session still holds a run's lock (its connection is alive)."""
    held = bool(connection.execute(_STILL_HELD, {"id": run_id}).scalar_one())
    connection.commit()
    return held


def let_go(connection: Connection, run_id: int) -> None:
    """Give a run's advisory lock back."""
    connection.execute(_LET_GO, {"id": run_id})
    connection.commit()


def renew(connection: Connection, run_id: int, worker: str, lease_until: datetime) -> bool:
    """Extend this worker's lease on a run; False if another worker has taken it."""
    changed = connection.execute(
        update(BroadcastRun)
        .where(R.id == run_id, R.claimed_by == worker, R.finished_at.is_(None))
        .values(claimed_until=lease_until)
    )
    return bool(changed.rowcount)


def release(connection: Connection, run_id: int) -> None:
    """Let go of a run (quiet hours began, or the worker is stopping)."""
    connection.execute(update(BroadcastRun).where(R.id == run_id).values(claimed_by=None))


def materialize(connection: Connection, run: RowMapping, fiscal_year: int, now: datetime) -> None:
    """Write one pending row per recipient, once per run: the audience as it is now."""
    if run["started_at"] is not None:
        return
    audience = Audience.from_json(run["audience"])
    reachable = V.unreachable_at.is_(None)
    for ok, status, reason in ((True, "pending", None), (False, "skipped", "unreachable")):
        rows = select(
            literal(run["id"]), V.id, V.platform, V.platform_user_id, V.language,
            literal(status), literal(reason), literal(now),
        ).where(*audience_where(audience, fiscal_year))  # fmt: skip
        rows = rows.where(reachable if ok else ~reachable)
        connection.execute(
            insert(BroadcastDelivery).from_select(
                ["run_id", "volunteer_id", "platform", "recipient", "language", "status",
                 "reason", "updated_at"],
                rows,
            )
        )  # fmt: skip
    connection.execute(update(BroadcastRun).where(R.id == run["id"]).values(started_at=now))


def pending(
    connection: Connection, run_id: int, platform: str, now: datetime, limit: int = 1000
) -> list[RowMapping]:
    """Return recipients of a run on a platform to send to now, in order."""
    query = (
        select(D.id, D.volunteer_id, D.recipient, D.language)
        .where(D.run_id == run_id, D.platform == platform, D.status == "pending", _due(now))
        .order_by(D.id)
        .limit(limit)
    )
    return list(connection.execute(query).mappings())


def take_for_sending(
    connection: Connection, delivery_ids: Sequence[int], now: datetime
) -> set[int]:
    """Mark recipients as being sent to, unless no longer pending (cancelled); return those."""
    taken = connection.execute(
        update(BroadcastDelivery)
        .where(D.id.in_(list(delivery_ids)), D.status == "pending")
        .values(status="sending", updated_at=now)
        .returning(D.id)
    )
    return set(taken.scalars())


def untake(connection: Connection, delivery_ids: Sequence[int] | set[int]) -> None:
    """Put recipients marked `sending` whose requests were never made back to pending."""
    connection.execute(
        update(BroadcastDelivery)
        .where(D.id.in_(list(delivery_ids)), D.status == "sending")
        .values(status="pending")
    )


def resume_unconfirmed(connection: Connection, run_id: int, platform: str, now: datetime) -> int:
    """Put back to pending the recipients a dead sender had in flight; return how many."""
    changed = connection.execute(
        update(BroadcastDelivery)
        .where(D.run_id == run_id, D.platform == platform, D.status == "sending")
        .values(status="pending", updated_at=now)
    )
    return int(changed.rowcount)


def count_pending_elsewhere(connection: Connection, run_id: int, platform: str) -> int:
    """Count recipients on a platform that other runs have still to send to."""
    query = select(func.count()).where(
        D.run_id != run_id, D.platform == platform, D.status.in_(("pending", "sending"))
    )
    return int(connection.execute(query).scalar_one())


def count_pending(connection: Connection, run_id: int, platform: str) -> int:
    """Count a run's recipients on a platform still to be sent to."""
    query = select(func.count()).where(
        D.run_id == run_id, D.platform == platform, D.status.in_(("pending", "sending"))
    )
    return int(connection.execute(query).scalar_one())


# built once: Telegram records each recipient as its send ends, hundreds a second
_MARK = (
    update(BroadcastDelivery)
    .where(D.id.in_(bindparam("ids", expanding=True)))
    .values(status=bindparam("status"), reason=bindparam("reason"), updated_at=bindparam("now"))
)


def mark(
    connection: Connection,
    delivery_ids: Sequence[int],
    status: str,
    now: datetime,
    reason: str | None = None,
) -> None:
    """Record what became of recipients."""
    params = {"ids": list(delivery_ids), "status": status, "reason": reason, "now": now}
    connection.execute(_MARK, params)


def retry_later(
    connection: Connection,
    delivery_ids: Sequence[int],
    reason: str,
    now: datetime,
    delays: Sequence[timedelta],
) -> int:
    """Count a failed send: wait the next delay before another, or give up past the last one.

    A recipient of a LINE multicast stays `sending`, to be resent in the same batch with the same
    retry key; others go back to `pending`. Return how many were given up on (now `failed`).
    """
    rows = connection.execute(select(D.id, D.attempts).where(D.id.in_(list(delivery_ids))))
    by_attempt: dict[int, list[int]] = {}
    for delivery_id, attempts in rows:
        by_attempt.setdefault(attempts + 1, []).append(delivery_id)
    gave_up = 0
    for attempt, ids in by_attempt.items():
        where = update(BroadcastDelivery).where(D.id.in_(ids))
        if attempt > len(delays):
            connection.execute(where.values(
                status="failed", attempts=attempt, retry_at=None, updated_at=now,
                reason=f"{reason}; gave up after {attempt} attempts"[:200],
            ))  # fmt: skip
            gave_up += len(ids)
            continue
        connection.execute(where.values(
            status=case((D.batch.is_(None), "pending"), else_=D.status), attempts=attempt,
            retry_at=now + delays[attempt - 1], updated_at=now,
            reason=f"{reason}; trying again"[:200],
        ))  # fmt: skip
    return gave_up


Batch = tuple[int, str, list[int], list[str]]


def line_batches(connection: Connection, run_id: int, now: datetime) -> list[Batch]:
    """Return LINE multicasts begun, unconfirmed and due: (batch, language, ids, recipients)."""
    rows = connection.execute(
        select(D.batch, D.language, D.id, D.recipient)
        .where(D.run_id == run_id, D.platform == "line", D.status == "sending", _due(now))
        .order_by(D.batch, D.id)
    ).all()
    batches: dict[int, tuple[str, list[int], list[str]]] = {}
    for batch, language, delivery_id, recipient in rows:
        entry = batches.setdefault(batch, (language, [], []))
        entry[1].append(delivery_id)
        entry[2].append(recipient)
    return [(b, lang, ids, to) for b, (lang, ids, to) in sorted(batches.items())]


def next_line_batch(connection: Connection, run_id: int, size: int, now: datetime) -> Batch | None:
    """Put up to `size` pending LINE recipients of one language into a new numbered batch."""
    first = connection.execute(
        select(D.language)
        .where(D.run_id == run_id, D.platform == "line", D.status == "pending")
        .order_by(D.id)
        .limit(1)
    ).scalar()
    if first is None:
        return None
    rows = connection.execute(
        select(D.id, D.recipient)
        .where(D.run_id == run_id, D.platform == "line", D.status == "pending",
               D.language == first)
        .order_by(D.id)
        .limit(size)
    ).all()  # fmt: skip
    last = connection.execute(select(func.max(D.batch)).where(D.run_id == run_id)).scalar()
    batch = (last or 0) + 1
    ids = [r[0] for r in rows]
    connection.execute(
        update(BroadcastDelivery)
        .where(D.id.in_(ids))
        .values(status="sending", batch=batch, updated_at=now, retry_at=None)
    )
    return batch, first, ids, [r[1] for r in rows]


def finish_if_done(connection: Connection, run_id: int, now: datetime) -> bool:
    """Close a run once nobody is left to send to; tell whether it is done."""
    left = connection.execute(
        select(func.count())
        .select_from(BroadcastDelivery)
        .where(D.run_id == run_id, D.status.in_(WAITING))
    ).scalar_one()
    if left:
        return False
    connection.execute(
        update(BroadcastRun).where(R.id == run_id).values(finished_at=now, claimed_by=None)
    )
    return True


def report(connection: Connection, broadcast_id: int) -> dict[str, Any]:
    """Count a broadcast's recipients by platform and status, with the reasons."""
    query = (
        select(D.platform, D.status, D.reason, func.count())
        .join(BroadcastRun, R.id == D.run_id)
        .where(R.broadcast_id == broadcast_id)
        .group_by(D.platform, D.status, D.reason)
    )
    counts: dict[str, dict[str, int]] = {}
    reasons: dict[str, int] = {}
    for platform, status, reason, number in connection.execute(query):
        counts.setdefault(platform, {}).setdefault(status, 0)
        counts[platform][status] += number
        if reason:
            reasons[reason] = reasons.get(reason, 0) + number
    runs = connection.execute(
        select(func.count(), func.max(R.finished_at)).where(R.broadcast_id == broadcast_id)
    ).one()
    return {"counts": counts, "reasons": reasons, "runs": runs[0], "finished_at": runs[1]}


def idle_drafts(connection: Connection, idle_since: datetime, limit: int = 500) -> list[RowMapping]:
    """Return reachable, opted-in volunteers whose proposal draft has been idle, unreminded."""
    draft = Conversation.state["form"].as_string() == "proposal"
    query = (
        select(V.id, V.platform, V.platform_user_id, V.language)
        .join(Conversation, C.volunteer_id == V.id)
        .where(
            draft,
            C.updated_at < idle_since,
            (C.reminded_at.is_(None)) | (C.reminded_at < C.updated_at),
            *audience_where(Audience(), 0),
            V.unreachable_at.is_(None),
        )
        .limit(limit)
    )
    return list(connection.execute(query).mappings())


def mark_reminded(connection: Connection, volunteer_id: int, now: datetime) -> None:
    """Note that a volunteer was reminded of their draft (once per idle spell)."""
    connection.execute(
        update(Conversation).where(C.volunteer_id == volunteer_id).values(reminded_at=now)
    )


def sample(
    connection: Connection, audience: Audience, fiscal_year: int, limit: int = 5
) -> list[str]:
    """Return a few reachable recipients' names, for an administrator to check the audience."""
    query = (
        select(V.full_name)
        .where(*audience_where(audience, fiscal_year), V.unreachable_at.is_(None))
        .order_by(V.id.desc())
        .limit(limit)
    )
    return [name or "-" for name in connection.execute(query).scalars()]
