"""SQLAlchemy 2.0 models: volunteers, proposals and their history, conversations, event logs."""

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from bot.domain.calendar import utcnow


class Base(DeclarativeBase):
    """Declarative base with the project's column types."""

    type_annotation_map = {  # noqa: RUF012  (SQLAlchemy reads this class attribute)
        datetime: DateTime(timezone=True),
        dict[str, Any]: JSON,
        list[Any]: JSON,
    }


class Volunteer(Base):
    """A person who sends proposals, on one platform; personal fields are erased on request."""

    __tablename__ = "volunteers"
    __table_args__ = (UniqueConstraint("platform", "platform_user_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    platform: Mapped[str] = mapped_column(String(16))
    # NULL once erased, so the same person can come back as someone new
    platform_user_id: Mapped[str | None] = mapped_column(String(64))
    full_name: Mapped[str | None] = mapped_column(String(100))
    phone: Mapped[str | None] = mapped_column(String(16))
    network: Mapped[str | None] = mapped_column(String(32))
    network_other: Mapped[str | None] = mapped_column(String(100))
    organisation: Mapped[str | None] = mapped_column(String(200))
    district: Mapped[str | None] = mapped_column(String(8))
    language: Mapped[str] = mapped_column(String(5), default="th")
    consent_version: Mapped[str | None] = mapped_column(String(16))
    consent_given_at: Mapped[datetime | None]
    consent_withdrawn_at: Mapped[datetime | None]
    profile_completed_at: Mapped[datetime | None]
    reminders_opt_out: Mapped[bool] = mapped_column(default=False)
    unreachable_at: Mapped[datetime | None]
    erased_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class Proposal(Base):
    """A submitted proposal; every answer staff filter on is a column of its own."""

    __tablename__ = "proposals"
    __table_args__ = (
        UniqueConstraint("province", "fiscal_year", "sequence"),
        Index("ix_proposals_year_group_district", "fiscal_year", "target_group", "district"),
        Index("ix_proposals_status_submitted", "status", "submitted_at"),
        Index("ix_proposals_submitted", "submitted_at"),
        # newest-first pages of one group, district or status walk these backwards
        Index("ix_proposals_group_id", "target_group", "id"),
        Index("ix_proposals_district_id", "district", "id"),
        Index("ix_proposals_status_id", "status", "id"),
        Index("ix_proposals_year_id", "fiscal_year", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    reference: Mapped[str] = mapped_column(String(24), unique=True)
    province: Mapped[str] = mapped_column(String(8))
    fiscal_year: Mapped[int]
    sequence: Mapped[int]
    volunteer_id: Mapped[int | None] = mapped_column(ForeignKey("volunteers.id"), index=True)
    platform: Mapped[str] = mapped_column(String(16))
    target_group: Mapped[str] = mapped_column(String(32))
    subgroup: Mapped[str] = mapped_column(String(32))
    subgroup_other: Mapped[str | None] = mapped_column(String(200))
    # a short name staff and the volunteer see in lists (NULL for proposals sent before titles)
    title: Mapped[str | None] = mapped_column(Text)
    problem: Mapped[str] = mapped_column(Text)
    # the number, or the low end of a range such as 30-40; 0 when the volunteer does not know
    people_affected: Mapped[int]
    people_max: Mapped[int | None]
    # "people" or "households"; only people are summed in the running totals
    people_unit: Mapped[str] = mapped_column(String(16), default="people")
    district: Mapped[str] = mapped_column(String(8))
    location_text: Mapped[str | None] = mapped_column(String(200))
    latitude: Mapped[float | None] = mapped_column(Float)
    longitude: Mapped[float | None] = mapped_column(Float)
    help_received: Mapped[str] = mapped_column(String(16))
    solution: Mapped[str] = mapped_column(Text)
    expected_result: Mapped[str | None] = mapped_column(Text)
    resources: Mapped[str | None] = mapped_column(Text)
    budget: Mapped[str | None] = mapped_column(String(16))
    responsible: Mapped[list[Any]]
    responsible_other: Mapped[str | None] = mapped_column(String(200))
    urgency: Mapped[str] = mapped_column(String(16))
    # title, problem, solution and place as keyword search sees them (storage/search.py)
    search_text: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default="received")
    submitted_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    photos: Mapped[list["ProposalPhoto"]] = relationship(
        order_by="ProposalPhoto.position", cascade="all, delete-orphan"
    )
    history: Mapped[list["StatusChange"]] = relationship(
        order_by="StatusChange.id", cascade="all, delete-orphan"
    )


class ProposalTotal(Base):
    """Proposals and people affected per fiscal year, group, district and status, kept current.

    Counts by group and district read this small table instead of a million proposals.
    """

    __tablename__ = "proposal_totals"

    fiscal_year: Mapped[int] = mapped_column(primary_key=True)
    target_group: Mapped[str] = mapped_column(String(32), primary_key=True)
    district: Mapped[str] = mapped_column(String(8), primary_key=True)
    status: Mapped[str] = mapped_column(String(16), primary_key=True)
    proposals: Mapped[int] = mapped_column(default=0)
    people: Mapped[int] = mapped_column(default=0)


class ProposalPhoto(Base):
    """A photo attached to a proposal, kept by the platform's file id."""

    __tablename__ = "proposal_photos"

    id: Mapped[int] = mapped_column(primary_key=True)
    proposal_id: Mapped[int] = mapped_column(ForeignKey("proposals.id"), index=True)
    position: Mapped[int] = mapped_column(Integer)
    platform: Mapped[str] = mapped_column(String(16))
    file_id: Mapped[str] = mapped_column(String(256))


class StoredPhoto(Base):
    """A photo a volunteer sent: its download from the platform and, once kept, its content hash.

    Rows are made when the photo arrives (pending) and the file is fetched after the reply, so a
    failed download stays here to be retried; proposal_photos link to it by platform and file id.
    """

    __tablename__ = "photos"
    __table_args__ = (
        UniqueConstraint("platform", "file_id"),
        Index("ix_photos_due", "status", "next_attempt_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    platform: Mapped[str] = mapped_column(String(16))
    file_id: Mapped[str] = mapped_column(String(256))
    volunteer_id: Mapped[int | None] = mapped_column(ForeignKey("volunteers.id"), index=True)
    # pending (to download), stored (kept on disk), refused (wrong type or too big), failed
    # (the platform no longer has it)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    sha256: Mapped[str | None] = mapped_column(String(64), index=True)
    content_type: Mapped[str | None] = mapped_column(String(32))
    size: Mapped[int | None]
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime | None]
    # why it was refused or last failed, never its content
    reason: Mapped[str | None] = mapped_column(String(200))
    received_at: Mapped[datetime] = mapped_column(default=utcnow)
    stored_at: Mapped[datetime | None]


class StatusChange(Base):
    """One change of a proposal's status: who, when, and the comment."""

    __tablename__ = "status_changes"

    id: Mapped[int] = mapped_column(primary_key=True)
    proposal_id: Mapped[int] = mapped_column(ForeignKey("proposals.id"), index=True)
    from_status: Mapped[str | None] = mapped_column(String(16))
    to_status: Mapped[str] = mapped_column(String(16))
    comment: Mapped[str | None] = mapped_column(Text)
    agency: Mapped[str | None] = mapped_column(String(200))
    changed_by: Mapped[str] = mapped_column(String(64))
    changed_at: Mapped[datetime] = mapped_column(default=utcnow)


class Conversation(Base):
    """A volunteer's conversation state (the draft included), so any worker can continue it."""

    __tablename__ = "conversations"

    volunteer_id: Mapped[int] = mapped_column(ForeignKey("volunteers.id"), primary_key=True)
    state: Mapped[dict[str, Any]]
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    # when the volunteer was last reminded of this draft (once per 24 idle hours)
    reminded_at: Mapped[datetime | None]


_WAITING = text("processed_at IS NULL")


class InboundEvent(Base):
    """An inbound platform event: stored before it is acknowledged, marked once it took effect."""

    __tablename__ = "inbound_events"
    __table_args__ = (
        UniqueConstraint("platform", "event_id"),
        Index("ix_inbound_pending", "platform", "processed_at"),
        Index("ix_inbound_waiting", "id", postgresql_where=_WAITING, sqlite_where=_WAITING),
        Index(
            "ix_inbound_waiting_user",
            "platform",
            "user_key",
            "id",
            postgresql_where=_WAITING,
            sqlite_where=_WAITING,
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    platform: Mapped[str] = mapped_column(String(16))
    event_id: Mapped[str] = mapped_column(String(64))
    # whose event it is (the platform's user, group or room id): one key's events go in order
    user_key: Mapped[str | None] = mapped_column(String(64))
    # the raw event while it waits; cleared once processed so no personal data lingers
    payload: Mapped[dict[str, Any] | None]
    received_at: Mapped[datetime] = mapped_column(default=utcnow)
    processed_at: Mapped[datetime | None]


class OutboxMessage(Base):
    """Replies committed with the state change that caused them, deleted once delivered."""

    __tablename__ = "outbox"
    __table_args__ = (Index("ix_outbox_platform", "platform", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    platform: Mapped[str] = mapped_column(String(16))
    recipient: Mapped[str] = mapped_column(String(64))
    replies: Mapped[list[Any]]
    reply_token: Mapped[str | None] = mapped_column(String(256))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # set by a worker sending a row nobody is sending (a notification, a crashed worker's reply)
    claimed_at: Mapped[datetime | None]
    # the worker sending this row (see storage/queue.py); another takes it over once it is gone
    owner: Mapped[int | None] = mapped_column(BigInteger)
    # requests of a many-request delivery that went out, so a resend starts after them
    sent_batches: Mapped[int] = mapped_column(default=0, server_default="0")
    # why a delivery waits, when the platform refused it for now ("LINE quota exhausted")
    held_reason: Mapped[str | None] = mapped_column(String(200))
    # sends of this row that failed, and when the sweep may try again (storage/queue.py)
    attempts: Mapped[int] = mapped_column(default=0, server_default="0")
    next_attempt_at: Mapped[datetime | None]


class SendRate(Base):
    """A token bucket every process takes its sends from (PostgreSQL; see storage/rates.py)."""

    __tablename__ = "send_rates"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    tokens: Mapped[float] = mapped_column(Float)
    stamp: Mapped[datetime]
    # after a 429, no process sends on this platform before then
    paused_until: Mapped[datetime]


class ReferenceCounter(Base):
    """The last reference sequence handed out per province and fiscal year."""

    __tablename__ = "reference_counters"

    province: Mapped[str] = mapped_column(String(8), primary_key=True)
    fiscal_year: Mapped[int] = mapped_column(primary_key=True)
    last: Mapped[int] = mapped_column(default=0)


class StaffMember(Base):
    """Someone at the provincial office, known by a platform user id, with one role."""

    __tablename__ = "staff_members"
    __table_args__ = (UniqueConstraint("platform", "platform_user_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    platform: Mapped[str] = mapped_column(String(16))
    platform_user_id: Mapped[str] = mapped_column(String(64))
    role: Mapped[str] = mapped_column(String(16))
    # the target groups a facilitator looks after (empty for every other role)
    groups: Mapped[list[Any]] = mapped_column(default=list)
    name: Mapped[str | None] = mapped_column(String(100))
    added_by: Mapped[str] = mapped_column(String(100))
    added_at: Mapped[datetime] = mapped_column(default=utcnow)
    # the staff chat's own state: the last filter (for paging) and a comment being waited for
    desk: Mapped[dict[str, Any] | None]


class StaffInvite(Base):
    """A one-time code that makes whoever sends it to the bot a staff member."""

    __tablename__ = "staff_invites"

    # only a hash is kept, so a database copy cannot be used to join
    code_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    role: Mapped[str] = mapped_column(String(16))
    groups: Mapped[list[Any]] = mapped_column(default=list)
    created_by: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]
    used_by: Mapped[str | None] = mapped_column(String(100))


class AuditEntry(Base):
    """One staff view, export or change of personal data: who, what, when."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(primary_key=True)
    actor: Mapped[str] = mapped_column(String(100), index=True)
    action: Mapped[str] = mapped_column(String(32))
    detail: Mapped[dict[str, Any]]
    at: Mapped[datetime] = mapped_column(default=utcnow, index=True)


class ExportFile(Base):
    """An export asked for in chat: built off the event loop into a file, kept for a while.

    The file lives under the data directory, named by the token; the row says who asked,
    what for, and how often it was downloaded.
    """

    __tablename__ = "export_files"

    id: Mapped[int] = mapped_column(primary_key=True)
    token: Mapped[str] = mapped_column(String(64), unique=True)
    filename: Mapped[str] = mapped_column(String(200))
    # csv or xlsx
    kind: Mapped[str] = mapped_column(String(8))
    # the filter, the officer's scope and whether names and phones are masked
    request: Mapped[dict[str, Any]]
    created_by: Mapped[str] = mapped_column(String(100))
    # the officer's chat, where the file (or its link) and download confirmations go
    platform: Mapped[str] = mapped_column(String(16))
    recipient: Mapped[str] = mapped_column(String(64))
    # pending (being built), ready or failed
    status: Mapped[str] = mapped_column(String(16), default="pending")
    rows: Mapped[int | None]
    downloads: Mapped[int] = mapped_column(default=0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(index=True)


class ExportDownload(Base):
    """One opening of an export link: confirmed in the officer's chat before the file is sent."""

    __tablename__ = "export_downloads"

    id: Mapped[int] = mapped_column(primary_key=True)
    export_id: Mapped[int] = mapped_column(
        ForeignKey("export_files.id", ondelete="CASCADE"), index=True
    )
    # only a hash of the browser's ticket is kept, so a database copy cannot download
    ticket_hash: Mapped[str] = mapped_column(String(64), unique=True)
    # shown on the page and in the chat, so the officer knows the request is theirs
    code: Mapped[str] = mapped_column(String(8))
    requested_at: Mapped[datetime] = mapped_column(default=utcnow)
    approved_at: Mapped[datetime | None]
    refused_at: Mapped[datetime | None]
    used_at: Mapped[datetime | None]


class Broadcast(Base):
    """A message for many volunteers: its texts, audience and schedule (once or recurring)."""

    __tablename__ = "broadcasts"

    id: Mapped[int] = mapped_column(primary_key=True)
    created_by: Mapped[str] = mapped_column(String(100))
    text_th: Mapped[str] = mapped_column(Text)
    text_en: Mapped[str | None] = mapped_column(Text)
    audience: Mapped[dict[str, Any]]
    # None: once; "daily", "weekly" or "monthly" in Bangkok time
    every: Mapped[str | None] = mapped_column(String(8))
    # the next time a run is due; None once it has no more runs
    next_at: Mapped[datetime | None] = mapped_column(index=True)
    status: Mapped[str] = mapped_column(String(16), default="draft")
    refused: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class BroadcastRun(Base):
    """One sending of a broadcast, to the audience as it was when the run began."""

    __tablename__ = "broadcast_runs"
    __table_args__ = (UniqueConstraint("broadcast_id", "due_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    broadcast_id: Mapped[int] = mapped_column(ForeignKey("broadcasts.id"), index=True)
    due_at: Mapped[datetime]
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None] = mapped_column(index=True)
    # the worker sending it; on SQLite also until when (a lease: another may take over once it
    # lapses); on PostgreSQL the run's advisory lock says whether that worker still lives
    claimed_by: Mapped[str | None] = mapped_column(String(64))
    claimed_until: Mapped[datetime | None]


class BroadcastDelivery(Base):
    """One recipient of one run: pending, sending, sent, failed or skipped, and why."""

    __tablename__ = "broadcast_deliveries"
    __table_args__ = (
        UniqueConstraint("run_id", "volunteer_id"),
        Index("ix_broadcast_deliveries_run_platform_status", "run_id", "platform", "status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("broadcast_runs.id"))
    volunteer_id: Mapped[int] = mapped_column(ForeignKey("volunteers.id"))
    platform: Mapped[str] = mapped_column(String(16))
    recipient: Mapped[str] = mapped_column(String(64))
    language: Mapped[str] = mapped_column(String(5))
    status: Mapped[str] = mapped_column(String(16), default="pending")
    reason: Mapped[str | None] = mapped_column(String(200))
    # LINE: the multicast request this recipient went in (its retry key follows from it)
    batch: Mapped[int | None]
    updated_at: Mapped[datetime | None]
    # sends that failed for now (a 5xx, the network), and when the next may be tried
    attempts: Mapped[int] = mapped_column(default=0, server_default="0")
    retry_at: Mapped[datetime | None]


class ScheduledJob(Base):
    """A periodic job (retention), run once per occurrence by whichever worker comes first."""

    __tablename__ = "scheduled_jobs"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    next_at: Mapped[datetime]
    # the last run that finished, and how many have
    ran_at: Mapped[datetime | None]
    runs: Mapped[int] = mapped_column(default=0, server_default="0")


class DeskLogin(Base):
    """A pending web desk sign-in: a one-time link from chat, or a code shown to a browser."""

    __tablename__ = "desk_logins"

    id: Mapped[int] = mapped_column(primary_key=True)
    # only hashes are kept, so a database copy cannot be used to sign in
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    kind: Mapped[str] = mapped_column(String(8))
    # a link names its officer; a code learns it when the officer confirms it in chat
    platform: Mapped[str | None] = mapped_column(String(16))
    platform_user_id: Mapped[str | None] = mapped_column(String(64))
    # a code may only be used by the browser it was shown to (its cookie's hash)
    browser_hash: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    confirmed_at: Mapped[datetime | None]
    used_at: Mapped[datetime | None]


class DeskSession(Base):
    """A signed-in browser: revocable, with idle and absolute expiry."""

    __tablename__ = "desk_sessions"

    id: Mapped[int] = mapped_column(primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    platform: Mapped[str] = mapped_column(String(16))
    platform_user_id: Mapped[str] = mapped_column(String(64), index=True)
    csrf: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]
