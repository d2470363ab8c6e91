"""Takes one inbound event through the engine: dedupe, state, effects and outbox, atomically."""

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Connection
from sqlalchemy import Engine as Database
from sqlalchemy.orm import Session

from bot.app.photos import FIRST_RETRY, PhotoKeeper
from bot.app.settings import data_home
from bot.conversation import views
from bot.conversation.engine import Engine
from bot.conversation.state import (
    Effect,
    EraseMyData,
    GiveConsent,
    OpenRevision,
    ResubmitProposal,
    SaveProfile,
    SetLanguage,
    ShowMyData,
    ShowStatus,
    State,
    SubmitProposal,
    ToggleReminders,
    Who,
)
from bot.desk import lookups
from bot.desk.lookups import ReadAhead
from bot.desk.staff_desk import Desk
from bot.domain.calendar import as_utc, fiscal_year, utcnow
from bot.domain.i18n import LANGUAGES, text
from bot.domain.messages import (
    Button,
    Document,
    Input,
    Notice,
    Photo,
    Reply,
    Text,
    reply_from_json,
    reply_to_json,
)
from bot.domain.proposal_filter import ProposalFilter
from bot.domain.province import Province
from bot.domain.questionnaire import CONSENT_VERSION, PROFILE
from bot.domain.retention import Retention
from bot.domain.schedule import QuietHours
from bot.reports.export_job import export_path, write_export
from storage import erasure, exports, inbox, photos, queue, retention, staff
from storage import proposal_queries as queries
from storage import repositories as repo
from storage.db import make_sessions, reading
from storage.models import Volunteer

log = logging.getLogger(__name__)
# a message queued this long ago and still not sent is one nobody is sending (see claim_stale)
STALE_AFTER = timedelta(seconds=30)
CLAIM_LEASE = timedelta(minutes=5)
# LINE takes a reply token once, for about a minute; a row taken over sooner than this tries its
# token again, and a refusal then means the first worker's reply went out (see LineChannel)
REPLY_TOKEN_LIFE = timedelta(seconds=50)

# the connection holding the current volunteer's turn (a worker's advisory lock, see
# storage/queue.py): work done inside a turn runs on it, so one turn needs one connection
TURN: ContextVar[Connection | None] = ContextVar("turn", default=None)
# someone writing after this long a silence is greeted and told where they were
RETURN_AFTER = timedelta(hours=12)


@dataclass(frozen=True)
class Delivery:
    """Replies committed to the outbox for one recipient, to be sent and then confirmed."""

    outbox_id: int
    platform: str
    recipient: str
    replies: tuple[Reply, ...]
    reply_token: str | None = None
    # taken over from a worker that died: part of it may have gone out already
    retaken: bool = False
    # requests of it that already went out (a resend starts after them)
    sent_batches: int = 0


def _delivery(row: dict[str, Any], with_token: bool = True, retaken: bool = False) -> Delivery:
    """Return the delivery an outbox row holds (its reply token only when still of use)."""
    replies = tuple(reply_from_json(r) for r in row["replies"])
    token = row["reply_token"] if with_token else None
    return Delivery(
        row["id"], row["platform"], row["recipient"], replies, token, retaken, row["sent_batches"]
    )


@dataclass
class _After:
    """What one event leaves to do once its transaction commits."""

    # a photo recorded, to download
    photo: str | None = None
    # photo files no longer used by anyone, to delete
    unused_photos: set[str] = field(default_factory=set)
    # other files (relative to the data directory) an erasure left to delete
    files: list[str] = field(default_factory=list)


def _holds(state: State | None, file_id: str) -> bool:
    """Tell whether a draft took a photo (still collecting, or among its answers)."""
    if state is None:
        return False
    return file_id in state.pending or file_id in (state.answers.get("photos") or [])


class WelfareService:
    """The one way inbound events change stored state, shared by every channel."""

    def __init__(
        self,
        db: Database,
        province: Province,
        default_language: str = "th",
        clock: Callable[[], datetime] = utcnow,
        quiet: QuietHours | None = None,
        photo_keeper: PhotoKeeper | None = None,
        return_after: timedelta = RETURN_AFTER,
        web_url: str = "http://127.0.0.1:8080",
        data_dir: Path | None = None,
        retention: Retention | None = None,
    ) -> None:
        self.db = db
        # stores photos and deletes their files on erasure; without one, rows wait for a
        # process that has one (and its start-up sweep deletes files of erased photos)
        self.photos = photo_keeper
        # where files live (chat exports); shared by every worker of one deployment
        self.data_dir = data_dir or data_home()
        self.retention = retention or Retention()
        self.sessions = make_sessions(db)
        self.province = province
        self.engine = Engine(province)
        self.desk = Desk(province, clock, default_language, quiet, web_url)
        # called with each message queued for someone else (a notice), to send it right away
        self.on_outbox: Callable[[Delivery], None] | None = None
        # called with (platform, file id) of each photo recorded, to download it after the reply
        self.on_photo: Callable[[str, str], None] | None = None
        # called with each export asked for, to build it off the event loop; without it (the
        # terminal, the tests) the export is built right after the turn commits
        self.on_export: Callable[[int], None] | None = None
        self.default_language = default_language
        self.clock = clock
        self.return_after = return_after
        # outbox ids confirmed sent but not yet deleted: they go with the next transaction
        self._delivered: list[int] = []
        # this process's worker id on the shared queue (None when it is not a queue worker)
        self.owner: int | None = None

    @contextlib.contextmanager
    def transaction(self) -> Iterator[Connection]:
        """Begin a transaction, on the current turn's connection when there is one."""
        held = TURN.get()
        if held is None:
            with self.db.begin() as connection:
                yield connection
        else:
            with held.begin():
                yield held

    async def answer(
        self,
        platform: str,
        user_id: str,
        event_id: str | None,
        event: Input,
        language_hint: str | None = None,
        reply_token: str | None = None,
    ) -> Delivery | None:
        """Apply one event from an event loop: a staff command's long read runs in a thread.

        Everyone else's events go on meanwhile; this sender's next one waits, as the channels
        keep each sender's events in order, so the officer's answers keep their order too.
        """
        ahead = None
        if lookups.may_read(event):
            ahead = await asyncio.to_thread(self.read_ahead, platform, user_id, event)
        return self.handle(platform, user_id, event_id, event, language_hint, reply_token, ahead)

    def read_ahead(self, platform: str, user_id: str, event: Input) -> ReadAhead:
        """Make a staff command's long read on a read-only connection, before its transaction."""
        if not lookups.may_read(event):
            return ReadAhead()
        with reading(self.db) as connection:
            return self.desk.read_ahead(connection, platform, user_id, event)

    def handle(
        self,
        platform: str,
        user_id: str,
        event_id: str | None,
        event: Input,
        language_hint: str | None = None,
        reply_token: str | None = None,
        ahead: ReadAhead | None = None,
    ) -> Delivery | None:
        """Apply one event exactly once; return the replies to send (None for a duplicate).

        A staff command's long read is made first (`read_ahead`, unless `ahead` brings it),
        so the event's write transaction never holds SQLite's write lock while it counts.
        """
        if ahead is None:
            ahead = self.read_ahead(platform, user_id, event)
        done = self._delivered[:]
        notices: list[Delivery] = []
        after = _After()
        asked: list[int] = []
        saving: inbox.SavedState | None = None
        with self.transaction() as connection:
            if event_id is not None and not inbox.claim_event(connection, platform, event_id):
                return None
            staff_turn = self.desk.handle(connection, platform, user_id, event, ahead)
            if staff_turn is None:
                replies, saving = self._volunteer_turn(
                    connection, platform, user_id, event, language_hint, after
                )
            else:
                replies = staff_turn.replies
                notices = [self.queue(connection, notice) for notice in staff_turn.notices]
                asked = staff_turn.exports
            payload = [reply_to_json(r) for r in replies]
            # the state is saved with the outbox row: one statement on PostgreSQL
            outbox_id = inbox.add_outbox(
                connection, platform, user_id, payload, reply_token, owner=self.owner, state=saving
            )
            if done:
                inbox.remove_outbox(connection, done)
        self._forget(done)
        self.remove_files(after.files)
        for notice in notices:
            if self.on_outbox is not None:
                self.on_outbox(notice)
        if after.unused_photos and self.photos is not None:
            self.photos.forget(after.unused_photos)
        if after.photo is not None and self.on_photo is not None:
            self.on_photo(platform, after.photo)
        for export_id in asked:
            if self.on_export is not None:
                self.on_export(export_id)
            else:
                self.build_export(export_id)
        return Delivery(outbox_id, platform, user_id, tuple(replies), reply_token)

    def queue(self, connection: Connection, notice: Notice) -> Delivery:
        """Put a message for someone else in the outbox, to send after the commit."""
        payload = [reply_to_json(r) for r in notice.replies]
        outbox_id = inbox.add_outbox(
            connection, notice.platform, notice.recipient, payload, None, self.clock(), self.owner
        )
        return Delivery(outbox_id, notice.platform, notice.recipient, notice.replies)

    def _volunteer_turn(
        self,
        connection: Connection,
        platform: str,
        user_id: str,
        event: Input,
        language_hint: str | None,
        after: "_After",
    ) -> tuple[list[Reply], inbox.SavedState | None]:
        """Run the volunteer engine on one input and apply its effects; the state to save."""
        loaded = inbox.load(connection, platform, user_id)
        row = loaded.volunteer
        if row is not None and row["unreachable_at"] is not None:
            inbox.reachable_again(connection, row["id"])
        who = self._who(row, language_hint)
        if (
            loaded.state_at is not None
            and self.clock() - as_utc(loaded.state_at) >= self.return_after
        ):
            who = replace(who, returning=True)
        turn = self.engine.handle(State.from_json(loaded.state), who, event)
        replies: list[Reply] = []
        effects = [a for a in turn.actions if not isinstance(a, Reply)]
        volunteer_id = row["id"] if row else None
        state = turn.state
        if effects:
            with Session(bind=connection) as session:
                volunteer = session.get(Volunteer, volunteer_id) if volunteer_id else None
                for action in turn.actions:
                    if isinstance(action, Reply):
                        replies.append(action)
                    elif isinstance(action, OpenRevision) and volunteer is not None:
                        state = self._open_revision(connection, volunteer, who, action, state,
                                                    replies)  # fmt: skip
                    elif isinstance(action, EraseMyData) and volunteer is not None:
                        session.flush()
                        left = erasure.erase(session.connection(), volunteer.id, platform,
                                             user_id, self.clock())  # fmt: skip
                        session.expire(volunteer)
                        after.unused_photos |= left.photos
                        after.files += left.files
                        volunteer = None
                    else:
                        volunteer = self._apply(session, volunteer, platform, user_id, action,
                                                who.language, replies)  # fmt: skip
                        who = self._after(who, action)
                session.flush()
                volunteer_id = volunteer.id if volunteer is not None else None
        else:
            replies = list(turn.actions)  # type: ignore[arg-type]
        saving = None
        if volunteer_id is not None and not any(isinstance(a, EraseMyData) for a in effects):
            saved = state.to_json() if state is not None else None
            saving = inbox.SavedState(volunteer_id, saved, loaded.state is not None, self.clock())
            if isinstance(event, Photo) and _holds(state, event.file_id):
                now = self.clock()
                photos.record(connection, platform, event.file_id, volunteer_id, now,
                              now + FIRST_RETRY)  # fmt: skip
                after.photo = event.file_id
        return replies, saving

    def _open_revision(
        self,
        connection: Connection,
        volunteer: Volunteer,
        who: Who,
        action: OpenRevision,
        state: State | None,
        replies: list[Reply],
    ) -> State | None:
        """Load a proposal sent back for revision onto the review card; return the new state."""
        reference = action.reference or queries.awaiting_revision(connection, volunteer.id)
        proposal = queries.by_reference(connection, reference) if reference else None
        if (
            proposal is None
            or proposal["volunteer_id"] != volunteer.id
            or proposal["status"] != "needs_revision"
        ):
            turn = self.engine.handle(state or State(), who, Text("/start"))
            replies += [Reply(text(who.language, "revise.unavailable")), *turn.replies]
            return turn.state
        turn = self.engine.open_revision(who, proposal["reference"], proposal["answers"])
        replies += turn.replies
        return turn.state

    def delivered(self, outbox_ids: list[int]) -> None:
        """Note that outbox messages reached the platform; they go with the next transaction.

        Under load that saves a commit per event; a crash before then sends those replies once
        more after the restart, which the outbox allows anyway (at least once).
        """
        self._delivered.extend(outbox_ids)

    def flush_delivered(self) -> None:
        """Forget delivered outbox messages now (when idle, and on shutdown)."""
        done = self._delivered[:]
        if done:
            with self.transaction() as connection:
                inbox.remove_outbox(connection, done)
            self._forget(done)

    def delivered_ids(self) -> list[int]:
        """Return the outbox ids confirmed sent whose rows are not deleted yet."""
        return self._delivered[:]

    def forget_delivered(self, done: list[int]) -> None:
        """Note that the rows of outbox ids confirmed sent were deleted (by a queue worker)."""
        self._forget(done)

    def _forget(self, done: list[int]) -> None:
        """Drop outbox ids whose rows a committed transaction deleted."""
        if done:
            gone = set(done)
            self._delivered = [i for i in self._delivered if i not in gone]

    def progress(self, outbox_id: int, sent_batches: int) -> None:
        """Note how many requests of a delivery went out, so a resend starts after them."""
        with self.db.begin() as connection:
            inbox.outbox_progress(connection, outbox_id, sent_batches)

    def hold(self, outbox_id: int, reason: str) -> None:
        """Note why a delivery waits; it stays in the outbox for a later sweep."""
        with self.db.begin() as connection:
            inbox.hold_outbox(connection, outbox_id, reason)

    def undelivered(self, platform: str) -> list[Delivery]:
        """Return committed replies of a platform that were never confirmed sent."""
        self.flush_delivered()
        with self.db.begin() as connection:
            rows = inbox.undelivered(connection, platform)
        return [_delivery(row) for row in rows]

    def claim_stale(self, platform: str, older_than: timedelta = STALE_AFTER) -> list[Delivery]:
        """Claim and return outbox messages of a platform that nobody has been sending."""
        now = self.clock()
        with self.db.begin() as connection:
            rows = inbox.claim_stale(connection, platform, now, now - older_than, now - CLAIM_LEASE)
        return [_delivery(row, with_token=False) for row in rows]

    def orphaned_recipients(self, platform: str) -> list[str]:
        """Return recipients with outbox rows no live worker owns that are due for a try."""
        assert self.owner is not None
        with self.db.begin() as connection:
            return queue.orphaned_recipients(connection, platform, self.owner, self.clock())

    def claim_orphans(
        self, platform: str, recipient: str | None = None, due_only: bool = False
    ) -> list[Delivery]:
        """Take over outbox rows no live worker owns (of one recipient; only due ones)."""
        assert self.owner is not None
        now = self.clock()
        with self.transaction() as connection:
            rows = queue.claim_orphans(connection, platform, self.owner, now, recipient, due_only)
        return [
            _delivery(row, row["created_at"] > now - REPLY_TOKEN_LIFE, retaken=True) for row in rows
        ]

    def retry_later(self, outbox_ids: list[int]) -> None:
        """Give back rows whose send failed, tried again after a growing wait (queue workers).

        Without a queue (SQLite) the courier's claim lease already spaces the retries.
        """
        if self.owner is not None and outbox_ids:
            with self.transaction() as connection:
                queue.retry_later(connection, outbox_ids, self.clock())

    def release(self, outbox_ids: list[int]) -> None:
        """Give back claimed rows that were not tried (their volunteer was busy elsewhere)."""
        if outbox_ids:
            with self.transaction() as connection:
                queue.release(connection, outbox_ids)

    def staff_role(self, platform: str, user_id: str) -> str | None:
        """Return a platform user's staff role, or None for a volunteer."""
        with reading(self.db) as connection:
            found = staff.find(connection, platform, user_id)
        return str(found["role"]) if found else None

    def staff_roles(self, platform: str) -> dict[str, str]:
        """Return the role of every staff member on a platform, by user id."""
        with reading(self.db) as connection:
            rows = staff.members(connection)
        return {r["platform_user_id"]: r["role"] for r in rows if r["platform"] == platform}

    # chat exports -----------------------------------------------------------------------------

    def pending_exports(self) -> list[int]:
        """Return exports asked for and not built yet (after a restart)."""
        with reading(self.db) as connection:
            return exports.pending(connection, self.clock())

    def build_export(self, export_id: int) -> None:
        """Build an export here and now, then send it (when no worker builds exports)."""
        try:
            rows: int | None = write_export(self.db, export_id, self.data_dir, self.province)
        except Exception:
            log.exception("export %s failed", export_id)
            rows = None
        delivery = self.complete_export(export_id, rows)
        if delivery is not None and self.on_outbox is not None:
            self.on_outbox(delivery)

    def complete_export(self, export_id: int, rows: int | None) -> Delivery | None:
        """Record a built (or failed: None) export, audit it, and queue it for its officer."""
        language = self.desk.language
        with self.transaction() as connection:
            job = exports.job(connection, export_id)
            if job is None or job["status"] != "pending":
                return None
            exports.finish(connection, export_id, rows)
            asked = job["request"]
            if rows is None:
                reply = Reply(text(language, "desk.export.failed"))
            elif rows == 0:
                found = ProposalFilter.from_json(asked["filter"])
                reply = Reply(text(language, "desk.list.none",
                                   filter=found.describe(language, self.province)))  # fmt: skip
            else:
                caption = text(language, "desk.export.ready", count=f"{rows:,}")
                reply = Reply(caption, document=Document(job["filename"], job["token"]))
                staff.audit(connection, job["created_by"], "export",
                            {"filter": asked["filter"], "rows": rows, "format": job["kind"]},
                            self.clock())  # fmt: skip
            delivery = self.queue(connection, Notice(job["platform"], job["recipient"], (reply,)))
        if not rows:
            export_path(self.data_dir, job["token"], job["kind"]).unlink(missing_ok=True)
        return delivery

    def prune(self) -> retention.Pruned:
        """Remove personal data past its retention period, and export files nothing names."""
        pruned = retention.prune(self.db, self.retention, self.clock(),
                                 self.province.office.retention_years)  # fmt: skip
        self.remove_files(pruned.files)
        if pruned.photos and self.photos is not None:
            self.photos.forget(pruned.photos)
        with reading(self.db) as connection:
            kept = exports.tokens(connection)
        folder = self.data_dir / "exports"
        # files of exports whose row went (erased or pruned) while they were being built
        for path in folder.glob("*.*") if folder.is_dir() else ():
            if path.name.split(".")[0] not in kept:
                path.unlink(missing_ok=True)
                pruned.files.append(f"exports/{path.name}")
        return pruned

    def remove_files(self, names: list[str]) -> None:
        """Delete files of the data directory (once what pointed at them is committed)."""
        for name in names:
            (self.data_dir / name).unlink(missing_ok=True)

    def export_link_state(self, token: str) -> str | None:
        """Tell why an export link cannot be used ("gone", "used_up"), or None when it can."""
        with reading(self.db) as connection:
            found = exports.fetch(connection, token, self.clock())
        if found is None or not self._export_path(found).exists():
            return "gone"
        return "used_up" if found["downloads"] >= exports.MAX_DOWNLOADS else None

    def open_export_link(self, token: str) -> tuple[str, str] | str:
        """Ask the export's officer in their chat to confirm a browser's download request.

        Returns the browser's ticket and the code both see, or why not ("gone", "used_up",
        "busy" when several requests already wait).
        """
        now = self.clock()
        language = self.desk.language
        with self.transaction() as connection:
            found = exports.fetch(connection, token, now)
            if found is None:
                return "gone"
            if found["downloads"] >= exports.MAX_DOWNLOADS:
                return "used_up"
            opened = exports.open_link(connection, found, now)
            if opened is None:
                return "busy"
            download_id, ticket, code = opened
            ask = Reply(
                text(language, "desk.export.confirm", filename=found["filename"], code=code),
                (Button(text(language, "desk.btn.allow"), f"s:dl:{download_id}:yes"),
                 Button(text(language, "desk.btn.deny"), f"s:dl:{download_id}:no")),
            )  # fmt: skip
            notice = self.queue(connection, Notice(found["platform"], found["recipient"], (ask,)))
        if self.on_outbox is not None:
            self.on_outbox(notice)
        return ticket, code

    def download_export(self, token: str, ticket: str) -> tuple[str, Path] | str:
        """Hand over an export to a browser whose request its officer allowed; audit it.

        Returns the file's name and path, or why not ("gone", "used_up", "unknown" for a
        browser that never asked, "waiting" for confirmation, "refused").
        """
        now = self.clock()
        with self.transaction() as connection:
            found = exports.fetch(connection, token, now)
            if found is None:
                return "gone"
            opening = exports.ticket(connection, found["id"], ticket) if ticket else None
            if opening is None:
                return "unknown"
            if opening["refused_at"] is not None:
                return "refused"
            if opening["approved_at"] is None:
                return "waiting"
            if not exports.use(connection, found["id"], opening["id"], now):
                return "used_up"
            staff.audit(connection, found["created_by"], "download",
                        {"file": found["filename"], "rows": found["rows"],
                         "download": found["downloads"] + 1}, now)  # fmt: skip
        return found["filename"], self._export_path(found)

    def _export_path(self, found: Any) -> Path:
        return export_path(self.data_dir, found["token"], found["kind"])

    def export_file(self, token: str) -> tuple[str, Path] | None:
        """Return the name and path of a chat export still kept, or None."""
        with reading(self.db) as connection:
            found = exports.fetch(connection, token, self.clock())
        if found is None:
            return None
        path = export_path(self.data_dir, found["token"], found["kind"])
        return (found["filename"], path) if path.exists() else None

    def set_reachable(self, platform: str, user_id: str, reachable: bool) -> None:
        """Record that a volunteer blocked (or unblocked) the bot."""
        with self.transaction() as connection, Session(bind=connection) as session:
            repo.set_reachable(session, platform, user_id, None if reachable else self.clock())
            session.flush()

    def store_events(
        self,
        platform: str,
        events: list[tuple[str, dict[str, Any]]],
        key_of: Callable[[dict[str, Any]], str | None] | None = None,
    ) -> None:
        """Durably store raw inbound events (and whose they are) before the platform is told."""
        with self.db.connect() as connection:
            inbox.store_events(connection, platform, events, key_of)

    def pending_events(self, platform: str) -> list[tuple[str, dict[str, Any]]]:
        """Return stored events that have not taken effect yet."""
        with reading(self.db) as connection:
            return inbox.pending_events(connection, platform)

    def finish_event(self, platform: str, event_id: str) -> None:
        """Mark an event processed when nothing else did (events the bot ignores)."""
        with self.transaction() as connection:
            inbox.finish_event(connection, platform, event_id)

    # effects ----------------------------------------------------------------------------------

    def _who(self, row: dict[str, Any] | None, language_hint: str | None) -> Who:
        consented = (
            row is not None
            and row["consent_given_at"] is not None
            and row["consent_withdrawn_at"] is None
        )
        if row is None or not consented:
            hint = language_hint if language_hint in LANGUAGES else None
            return Who(consented=False, language=hint or self.default_language)
        outdated = row["consent_version"] != CONSENT_VERSION
        return Who(
            consented=not outdated,
            language=row["language"],
            profile=repo.profile_of(row),
            profile_complete=row["profile_completed_at"] is not None,
            consent_outdated=outdated,
        )

    @staticmethod
    def _after(who: Who, action: Effect) -> Who:
        """Return what the engine knows of the volunteer after an effect (its language)."""
        if isinstance(action, GiveConsent | SetLanguage):
            return replace(who, language=action.language)
        return who

    def _apply(
        self,
        session: Session,
        volunteer: Volunteer | None,
        platform: str,
        user_id: str,
        action: Effect,
        language: str,
        replies: list[Reply],
    ) -> Volunteer | None:
        """Carry out one effect; return the volunteer as it now is (None once erased)."""
        if isinstance(action, GiveConsent):
            return self._consent(session, volunteer, platform, user_id, action)
        if volunteer is None:
            return None
        if isinstance(action, SetLanguage):
            volunteer.language = action.language
        elif isinstance(action, SaveProfile):
            self._save_profile(volunteer, action.fields)
        elif isinstance(action, SubmitProposal):
            replies.append(self._submit(session, volunteer, action.answers, language))
        elif isinstance(action, ResubmitProposal):
            replies.append(self._resubmit(session, volunteer, action, language))
        elif isinstance(action, ShowStatus):
            replies.append(self._status(session, volunteer, language))
        elif isinstance(action, ShowMyData):
            replies.append(self._my_data(session, volunteer, language))
        elif isinstance(action, ToggleReminders):
            volunteer.reminders_opt_out = not volunteer.reminders_opt_out
            replies.append(Reply(text(language, "reminders.off" if volunteer.reminders_opt_out
                                      else "reminders.on")))  # fmt: skip
        return volunteer

    def _consent(
        self,
        session: Session,
        volunteer: Volunteer | None,
        platform: str,
        user_id: str,
        action: GiveConsent,
    ) -> Volunteer:
        now = self.clock()
        if volunteer is None:
            volunteer = Volunteer(platform=platform, platform_user_id=user_id)
            session.add(volunteer)
        volunteer.language = action.language
        volunteer.consent_version = action.version
        volunteer.consent_given_at = now
        volunteer.consent_withdrawn_at = None
        session.flush()
        return volunteer

    def _save_profile(self, volunteer: Volunteer, fields: dict[str, Any]) -> None:
        for name in repo.PROFILE_FIELDS:
            setattr(volunteer, name, fields.get(name))
        volunteer.profile_completed_at = volunteer.profile_completed_at or self.clock()

    def _submit(
        self, session: Session, volunteer: Volunteer, answers: dict[str, Any], language: str
    ) -> Reply:
        now = self.clock()
        proposal = repo.add_proposal(
            session,
            volunteer=volunteer,
            province=self.province.code,
            fiscal_year=fiscal_year(now),
            answers=answers,
            submitted_at=now,
        )
        office = self.province.office.short["th" if language == "th" else "en"]
        return views.submitted(language, proposal.reference, office)

    def _resubmit(
        self, session: Session, volunteer: Volunteer, action: ResubmitProposal, language: str
    ) -> Reply:
        revised = repo.revise_proposal(
            session, volunteer, action.reference, action.answers, self.clock()
        )
        key = "revise.done" if revised is not None else "revise.unavailable"
        return views.menu(language, text(language, key, reference=action.reference))

    def _status(self, session: Session, volunteer: Volunteer, language: str) -> Reply:
        proposals = [
            {
                "reference": p.reference,
                "title": p.title,
                "target_group": p.target_group,
                "district": p.district,
                "status": p.status,
                "submitted_at": p.submitted_at,
                "comment": p.history[-1].comment if p.history else None,
                "agency": p.history[-1].agency if p.history else None,
            }
            for p in repo.proposals_of(session, volunteer.id)
        ]
        return views.status_list(language, proposals, self.province)

    def _my_data(self, session: Session, volunteer: Volunteer, language: str) -> Reply:
        return views.my_data(
            language,
            PROFILE,
            repo.profile_of(repo.as_row(volunteer)),
            volunteer.consent_given_at,
            volunteer.consent_version,
            repo.count_proposals(session, volunteer.id),
            self.province,
        )
