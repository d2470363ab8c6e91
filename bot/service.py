"""Takes one inbound event through the engine: dedupe, state, effects and outbox, atomically."""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from bot import views
from bot.calendar import fiscal_year, utcnow
from bot.engine import Engine
from bot.i18n import LANGUAGES
from bot.messages import Input, Reply, reply_from_json, reply_to_json
from bot.province import Province
from bot.questionnaire import PROFILE
from bot.state import (
    EraseMyData,
    GiveConsent,
    SaveProfile,
    SetLanguage,
    ShowMyData,
    ShowStatus,
    State,
    SubmitProposal,
    Who,
)
from storage import repositories as repo
from storage.models import Volunteer


@dataclass(frozen=True)
class Delivery:
    """Replies committed to the outbox for one recipient, to be sent and then confirmed."""

    outbox_id: int
    platform: str
    recipient: str
    replies: tuple[Reply, ...]
    reply_token: str | None = None


class WelfareService:
    """The one way inbound events change stored state, shared by every channel."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        province: Province,
        default_language: str = "th",
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.sessions = sessions
        self.province = province
        self.engine = Engine(province)
        self.default_language = default_language
        self.clock = clock

    def handle(
        self,
        platform: str,
        user_id: str,
        event_id: str | None,
        event: Input,
        language_hint: str | None = None,
        reply_token: str | None = None,
    ) -> Delivery | None:
        """Apply one event exactly once; return the replies to send (None for a duplicate)."""
        with self.sessions.begin() as session:
            if event_id is not None and not repo.claim_event(session, platform, event_id):
                return None
            volunteer = repo.find_volunteer(session, platform, user_id, lock=True)
            who = self._who(volunteer, language_hint)
            raw_state = repo.load_state(session, volunteer.id) if volunteer else None
            turn = self.engine.handle(State.from_json(raw_state), who, event)
            language = who.language
            replies: list[Reply] = []
            for action in turn.actions:
                if isinstance(action, Reply):
                    replies.append(action)
                elif isinstance(action, GiveConsent):
                    volunteer = self._consent(session, volunteer, platform, user_id, action)
                    language = action.language
                elif volunteer is None:
                    continue
                elif isinstance(action, SetLanguage):
                    volunteer.language = language = action.language
                elif isinstance(action, SaveProfile):
                    self._save_profile(volunteer, action.fields)
                elif isinstance(action, SubmitProposal):
                    replies.append(self._submit(session, volunteer, action.answers, language))
                elif isinstance(action, ShowStatus):
                    replies.append(self._status(session, volunteer, language))
                elif isinstance(action, ShowMyData):
                    replies.append(self._my_data(session, volunteer, language))
                elif isinstance(action, EraseMyData):
                    repo.erase_volunteer(session, volunteer)
                    volunteer = None
            if volunteer is not None:
                state = turn.state.to_json() if turn.state is not None else None
                repo.save_state(session, volunteer.id, state)
            payload = [reply_to_json(r) for r in replies]
            outbox_id = repo.add_outbox(session, platform, user_id, payload, reply_token)
        return Delivery(outbox_id, platform, user_id, tuple(replies), reply_token)

    def delivered(self, outbox_ids: list[int]) -> None:
        """Confirm that outbox messages reached the platform."""
        with self.sessions.begin() as session:
            repo.remove_outbox(session, outbox_ids)

    def undelivered(self, platform: str) -> list[Delivery]:
        """Return committed replies of a platform that were never confirmed sent."""
        with self.sessions.begin() as session:
            return [
                Delivery(
                    m.id,
                    m.platform,
                    m.recipient,
                    tuple(reply_from_json(r) for r in m.replies),
                    m.reply_token,
                )
                for m in repo.undelivered(session, platform)
            ]

    def store_events(self, platform: str, events: list[tuple[str, dict[str, Any]]]) -> None:
        """Durably store raw inbound events before the platform is told they arrived."""
        with self.sessions.begin() as session:
            repo.store_events(session, platform, events)

    def pending_events(self, platform: str) -> list[tuple[str, dict[str, Any]]]:
        """Return stored events that have not taken effect yet."""
        with self.sessions.begin() as session:
            return repo.pending_events(session, platform)

    def finish_event(self, platform: str, event_id: str) -> None:
        """Mark an event processed when nothing else did (events the bot ignores)."""
        with self.sessions.begin() as session:
            repo.finish_event(session, platform, event_id)

    # effects ----------------------------------------------------------------------------------

    def _who(self, volunteer: Volunteer | None, language_hint: str | None) -> Who:
        if volunteer is None or not volunteer.consented:
            hint = language_hint if language_hint in LANGUAGES else None
            return Who(consented=False, language=hint or self.default_language)
        return Who(
            consented=True,
            language=volunteer.language,
            profile=repo.profile_of(volunteer),
            profile_complete=volunteer.profile_completed_at is not None,
        )

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
        return views.submitted(language, proposal.reference)

    def _status(self, session: Session, volunteer: Volunteer, language: str) -> Reply:
        proposals = [
            {
                "reference": p.reference,
                "target_group": p.target_group,
                "status": p.status,
                "submitted_at": p.submitted_at,
                "comment": p.history[-1].comment if p.history else None,
            }
            for p in repo.proposals_of(session, volunteer.id)
        ]
        return views.status_list(language, proposals)

    def _my_data(self, session: Session, volunteer: Volunteer, language: str) -> Reply:
        return views.my_data(
            language,
            PROFILE,
            repo.profile_of(volunteer),
            volunteer.consent_given_at,
            volunteer.consent_version,
            repo.count_proposals(session, volunteer.id),
            self.province,
        )
