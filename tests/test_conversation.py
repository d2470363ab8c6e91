"""The volunteer's conversation, as transcripts through the real service and an SQLite file."""

import string
from pathlib import Path

from sqlalchemy import func, select

from bot.app.service import WelfareService
from bot.domain.i18n import CATALOGUES
from bot.domain.messages import MAX_BUTTON_DATA, Contact, Location, Photo, Press, Text, Unsupported
from storage.models import Conversation, InboundEvent, Proposal, Volunteer
from tests.conftest import make_service
from tests.helpers import Chat, Clock, en, th
from tests.transcripts import EXPECTED_ANSWERS, FIRST_PROPOSAL, NEXT_PROPOSAL


def count(service: WelfareService, model: type) -> int:
    """Count the rows of a model."""
    with service.sessions() as session:
        return int(session.scalar(select(func.count()).select_from(model)) or 0)


def only_proposal(service: WelfareService) -> Proposal:
    """Return the one stored proposal."""
    with service.sessions() as session:
        proposals = list(session.scalars(select(Proposal)))
        assert len(proposals) == 1
        proposal = proposals[0]
        _ = proposal.photos, proposal.history
        return proposal


def volunteer(service: WelfareService) -> Volunteer:
    """Return the one stored volunteer."""
    with service.sessions() as session:
        return session.scalars(select(Volunteer)).one()


def test_the_first_message_asks_for_consent_and_stores_nothing(chat: Chat) -> None:
    """Whatever a stranger says, the bot greets, explains PDPA and asks for consent first."""
    chat.send("สวัสดีค่ะ")
    assert th("consent") in chat.last
    assert chat.buttons == ["consent:yes:th", "consent:no:th", "lang:en"]
    assert count(chat.service, Volunteer) == 0
    assert count(chat.service, Conversation) == 0


def test_declining_consent_stores_nothing_and_says_how_to_come_back(chat: Chat) -> None:
    """No means no: nothing personal is stored, and /start brings the question back."""
    chat.send("hello")
    chat.send(Press("consent:no:th"))
    assert chat.last == th("declined")
    assert count(chat.service, Volunteer) == 0
    chat.send("/start")
    assert th("consent") in chat.last


def test_consent_can_be_read_in_english_before_anything_is_stored(chat: Chat) -> None:
    """The language button shows the consent text in English, still storing nothing."""
    chat.send("hi")
    chat.send(Press("lang:en"))
    assert en("consent") in chat.last
    chat.send(Press("consent:yes:en"))
    assert en("q.full_name") in chat.said
    assert volunteer(chat.service).language == "en"


def test_a_whole_first_proposal_gets_a_reference_number(chat: Chat) -> None:
    """Consent, profile and a full proposal end with CM-2570-00001 and every answer stored."""
    chat.run(FIRST_PROPOSAL[:-1])
    assert chat.replies[-1].card is not None, "the review card comes before submitting"
    chat.send(Press("submit"))
    assert th("submitted", reference="CM-2570-00001") in chat.last
    proposal = only_proposal(chat.service)
    for name, value in EXPECTED_ANSWERS.items():
        assert getattr(proposal, name) == value, name
    assert proposal.reference == "CM-2570-00001"
    assert proposal.fiscal_year == 2570
    assert proposal.status == "received"
    assert [p.file_id for p in proposal.photos] == ["photo-1"]
    assert [h.to_status for h in proposal.history] == ["received"]
    person = volunteer(chat.service)
    assert (person.full_name, person.phone, person.district) == ("สมศรี ใจดี", "+66812345678", "5003")
    assert person.organisation == "กลุ่มอาสาบ้านแม่แจ่ม"


def test_the_profile_is_asked_once_and_the_own_district_comes_first(chat: Chat) -> None:
    """A second proposal starts at the target group; the volunteer's district is offered first."""
    chat.run(FIRST_PROPOSAL)
    chat.send("/new")
    assert th("q.target_group") in chat.last
    chat.run(NEXT_PROPOSAL[1:5])
    assert chat.buttons[0] == "a:district:5003"
    assert "แม่แจ่ม" in chat.replies[-1].buttons[0].label
    chat.run(NEXT_PROPOSAL[5:])
    assert th("submitted", reference="CM-2570-00002") in chat.last


def test_the_reference_carries_the_fiscal_year_of_submission(chat: Chat, clock: Clock) -> None:
    """A proposal sent on 1 October Bangkok time belongs to the next fiscal year."""
    chat.run(FIRST_PROPOSAL[:-1])
    clock.now = clock.now.replace(year=2027, month=9, day=30, hour=17)
    chat.send(Press("submit"))
    assert "CM-2571-00001" in chat.last


def test_invalid_answers_are_asked_again_with_a_specific_reason(chat: Chat) -> None:
    """Wrong phone numbers, non-numbers, out-of-range and overlong text each say what is wrong."""
    chat.run(FIRST_PROPOSAL[:3])
    chat.send("12345")
    assert chat.said.startswith(th("err.phone"))
    assert th("q.phone") in chat.last
    chat.send(Contact("66812345678"))
    assert th("saved", value="081-234-5678") in chat.said
    chat.run(FIRST_PROPOSAL[4:10])
    chat.send("หลายคน")
    assert th("err.number") in chat.said
    chat.send("0")
    assert th("err.number_range", minimum=1, maximum="10,000,000") in chat.said
    chat.send("๔๒")
    assert th("q.proposal.district") in chat.last
    chat.run([Press("a:district:5001"), Text("/skip"), Press("a:help_received:none")])
    chat.send("จน")
    assert th("err.few_words.solution") in chat.said
    assert th("q.solution") in chat.last


def test_typed_choices_match_labels_or_numbers_in_either_language(chat: Chat) -> None:
    """Buttons are not the only way: the label, its English twin or its number work too."""
    chat.run(FIRST_PROPOSAL[:7])
    chat.send("กลุ่มผู้สูงอายุ")
    assert th("q.subgroup") in chat.last
    chat.send("/back")
    chat.send("Working age")
    assert "a:subgroup:single_mother" in chat.buttons
    chat.send("๒")
    assert th("q.problem") in chat.last


def test_several_of_who_should_act_can_be_typed_as_numbers(chat: Chat) -> None:
    """A multi-choice question takes '1, 4' typed, not only button presses."""
    chat.run(FIRST_PROPOSAL[:15])
    chat.run(FIRST_PROPOSAL[15:18])
    chat.send("1, 4")
    chat.run([Press("a:urgency:urgent"), Text("ช่วยผู้สูงอายุ"), Text("/skip")])
    card = chat.replies[-1].card
    assert card is not None
    row = next(r for r in card.rows if r.label == th("label.responsible"))
    assert row.value == "พมจ.เชียงใหม่, สาธารณสุข (รพ.สต./โรงพยาบาล)"


def test_choosing_other_asks_for_the_typed_sub_group(chat: Chat) -> None:
    """'Other' is followed by a free-text question, and the text is stored."""
    chat.run(FIRST_PROPOSAL[:8])
    chat.send(Press("a:subgroup:other"))
    assert th("q.subgroup_other") in chat.last
    chat.send("ผู้สูงอายุที่ถูกทอดทิ้ง")
    assert th("q.problem") in chat.last


def test_back_returns_to_the_previous_question_and_forgets_its_answer(chat: Chat) -> None:
    """Back asks the previous question again; 'ย้อนกลับ' typed works like /back."""
    chat.run(FIRST_PROPOSAL[:9])
    chat.send("ย้อนกลับ")
    assert th("q.subgroup") in chat.last
    chat.send("/back")
    assert th("q.target_group") in chat.last


def test_only_optional_questions_can_be_skipped(chat: Chat) -> None:
    """Skip on a required question says so and asks it again."""
    chat.run(FIRST_PROPOSAL[:8])
    chat.send("ข้าม")
    assert th("err.not_optional") in chat.said
    assert th("q.subgroup") in chat.last


def test_editing_the_target_group_asks_the_sub_group_again_then_returns_to_review(
    chat: Chat,
) -> None:
    """An edit that changes what follows re-asks the dependent question, then shows the card."""
    chat.run(FIRST_PROPOSAL[:-1])
    chat.send(Press("e:target_group"))
    assert th("current", value="กลุ่มผู้สูงอายุ") in chat.last
    chat.send(Press("a:target_group:working_age"))
    assert th("q.subgroup") in chat.last
    chat.send(Press("a:subgroup:informal_worker"))
    assert chat.replies[-1].card is not None
    chat.send(Press("e:people_affected"))
    chat.send("/back")
    assert chat.replies[-1].card is not None, "back from an edit returns to the card unchanged"
    chat.send(Press("submit"))
    proposal = only_proposal(chat.service)
    assert (proposal.target_group, proposal.subgroup) == ("working_age", "informal_worker")
    assert proposal.people_affected == 35


def test_cancel_asks_first_and_discards_only_when_confirmed(chat: Chat) -> None:
    """Cancel needs a second press; 'continue' goes back to the same question."""
    chat.run(FIRST_PROPOSAL[:10])
    chat.send("ยกเลิก")
    assert chat.buttons == ["cancel:yes", "cancel:no"]
    chat.send(Press("cancel:no"))
    assert th("q.people_affected") in chat.last
    chat.send("/cancel")
    chat.send(Press("cancel:yes"))
    assert th("cancel.done") in chat.last
    chat.send("/new")
    assert th("q.target_group") in chat.last


def test_status_lists_my_proposals_and_returns_to_the_question(chat: Chat) -> None:
    """Status shows each proposal's reference and status, then the current question again."""
    chat.run(FIRST_PROPOSAL)
    chat.run(NEXT_PROPOSAL[:3])
    chat.send("สถานะ")
    assert "CM-2570-00001" in chat.said
    assert th("result.received") in chat.said
    assert th("q.problem") in chat.last


def test_my_data_gives_a_copy_of_everything_stored(chat: Chat) -> None:
    """My data shows the profile, the consent time and version, and the number of proposals."""
    chat.run(FIRST_PROPOSAL)
    chat.send("/mydata")
    for shown in ("สมศรี ใจดี", "081-234-5678", "อพม.", "กลุ่มอาสาบ้านแม่แจ่ม", "แม่แจ่ม"):
        assert shown in chat.said
    assert th("mydata.proposals", count=1) in chat.said


def test_delete_my_data_erases_personal_fields_but_keeps_proposals(chat: Chat) -> None:
    """After confirmation the person is gone; the proposal stays, unlinked from them."""
    chat.run(FIRST_PROPOSAL)
    chat.send("/deletedata")
    assert chat.buttons == ["delete:yes", "delete:no"]
    chat.send(Press("delete:yes"))
    assert chat.last == th("delete.done")
    person = volunteer(chat.service)
    assert person.full_name is None
    assert person.phone is None
    assert person.platform_user_id is None
    assert person.consent_withdrawn_at is not None
    assert only_proposal(chat.service).reference == "CM-2570-00001"
    chat.send("/start")
    assert th("consent") in chat.last


def test_language_can_be_changed_mid_question(chat: Chat) -> None:
    """Switching to English re-asks the current question in English."""
    chat.run(FIRST_PROPOSAL[:9])
    chat.send("/language")
    chat.send(Press("lang:en"))
    assert en("q.problem") in chat.last
    assert volunteer(chat.service).language == "en"


def test_an_old_button_is_answered_by_asking_the_current_question(chat: Chat) -> None:
    """Pressing a button of an earlier question changes nothing and re-asks the current one."""
    chat.run(FIRST_PROPOSAL[:10])
    chat.send(Press("a:target_group:children_youth"))
    assert th("err.stale") in chat.said
    assert th("q.people_affected") in chat.last
    chat.send(Press("zz:not-ours"))
    assert th("q.people_affected") in chat.last


def test_things_the_bot_cannot_read_get_a_clear_answer(chat: Chat) -> None:
    """Stickers, voice and empty messages get a reply in the volunteer's language."""
    chat.run(FIRST_PROPOSAL[:10])
    for event in (Unsupported("sticker"), Unsupported("voice"), Text("   ")):
        chat.send(event)
        assert chat.replies, "never silence"
        assert th("q.people_affected") in chat.last
    chat.send("/frobnicate")
    assert th("err.unknown") in chat.said


def test_photos_stop_at_three_and_location_can_be_shared(chat: Chat) -> None:
    """A shared location answers 'where'; the third photo moves on to the review card."""
    chat.run(FIRST_PROPOSAL[:12])
    chat.send(Location(18.49, 98.36))
    assert "18.49000, 98.36000" in chat.said
    chat.run(FIRST_PROPOSAL[13:23])
    chat.run([Photo("p1"), Photo("p2"), Photo("p3")])
    assert chat.replies[-1].card is not None
    chat.send(Press("submit"))
    proposal = only_proposal(chat.service)
    assert [p.file_id for p in proposal.photos] == ["p1", "p2", "p3"]
    assert (proposal.latitude, proposal.longitude, proposal.location_text) == (18.49, 98.36, None)


def test_the_same_event_twice_takes_effect_once(service: WelfareService) -> None:
    """A redelivered event id changes nothing and sends nothing."""
    first = service.handle("telegram", "7", "update-1", Press("consent:yes:th"))
    again = service.handle("telegram", "7", "update-1", Press("consent:yes:th"))
    assert first is not None
    assert again is None
    assert count(service, Volunteer) == 1
    with service.sessions() as session:
        event = session.scalars(select(InboundEvent)).one()
        assert event.payload is None, "no raw payload is kept once processed"


def test_a_conversation_continues_in_a_new_process(
    sqlite_url: str, clock: Clock, tmp_path: Path
) -> None:
    """State lives in the database: a fresh service continues where the volunteer was."""
    Chat(make_service(sqlite_url, clock, tmp_path)).run(FIRST_PROPOSAL[:10])
    later = Chat(make_service(sqlite_url, clock, tmp_path))
    later.send("/start")
    assert th("q.people_affected") in later.last
    later.run(FIRST_PROPOSAL[10:])
    assert "CM-2570-00001" in later.last


def test_every_button_fits_telegram_callback_data(chat: Chat) -> None:
    """Every button the bot draws, on every step of both transcripts, is 1-64 bytes of data."""
    seen = []
    for event in [*FIRST_PROPOSAL, *NEXT_PROPOSAL, Text("/language"), Text("/deletedata")]:
        for reply in chat.send(event):
            seen += [b.data for b in reply.buttons]
            if reply.card:
                seen += [row.edit.data for row in reply.card.rows if row.edit]
    assert seen
    assert all(0 < len(data.encode()) <= MAX_BUTTON_DATA for data in seen)


def test_both_catalogues_have_every_text() -> None:
    """Thai and English name the same texts with the same placeholders, so none is missing."""
    assert set(CATALOGUES["th"]) == set(CATALOGUES["en"])
    fields = string.Formatter()
    for key, thai in CATALOGUES["th"].items():
        named = [
            {name for _, name, _, _ in fields.parse(t) if name}
            for t in (thai, CATALOGUES["en"][key])
        ]
        assert named[0] == named[1], key
