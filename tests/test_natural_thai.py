"""Volunteers typing as they really type: the defects of issue 10 (items 3, 4, 6) as transcripts.

Every test here failed before the engine understood natural Thai: typed answers had to equal a
button's text, lengths counted code points, greetings were stored as answers and idle text was
lost.
"""

import io
from datetime import timedelta

import pytest
from sqlalchemy import select, update

from bot.app.service import WelfareService
from bot.conversation.engine import is_greeting
from bot.domain.counts import format_count, stored_count
from bot.domain.matching import without_closing_particle
from bot.domain.messages import Press, Text, Unsupported
from bot.domain.proposal_filter import ProposalFilter
from handlers.terminal import TerminalChat
from storage import proposal_queries as queries
from storage.models import Conversation, Proposal, Volunteer
from tests.helpers import Chat, Clock, th
from tests.transcripts import FIRST_PROPOSAL


def stored(service: WelfareService) -> list[Proposal]:
    """Return every stored proposal."""
    with service.sessions() as session:
        return list(session.scalars(select(Proposal)))


def answers(chat: Chat) -> dict[str, object]:
    """Return the answers of the volunteer's draft so far."""
    with chat.service.sessions() as session:
        state = session.scalars(select(Conversation.state)).one()
    return dict(state["answers"])


def asked(chat: Chat, key: str) -> bool:
    """Tell whether the last reply asks a question (by its catalogue key)."""
    return th(key) in chat.last


# a volunteer whose profile is done, at the target-group question
AT_TARGET_GROUP = FIRST_PROPOSAL[:7]
# ... at the problem, the count, the help received, the solution, the agencies, the urgency
AT_PROBLEM, AT_COUNT, AT_HELP = FIRST_PROPOSAL[:9], FIRST_PROPOSAL[:10], FIRST_PROPOSAL[:13]
AT_AGENCIES, AT_URGENCY = FIRST_PROPOSAL[:18], FIRST_PROPOSAL[:21]


# item 3: typed answers -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("before", "typed", "key", "code"),
    [
        (AT_TARGET_GROUP, "ผู้สูงอายุ", "target_group", "elderly"),
        (AT_TARGET_GROUP, "เด็ก", "target_group", "children_youth"),
        (AT_TARGET_GROUP, "กลุ่มวัยแรงงานค่ะ", "target_group", "working_age"),
        (AT_HELP, "ยังไม่ได้รับ", "help_received", "none"),
        (AT_URGENCY, "ด่วน", "urgency", "urgent"),
        (AT_URGENCY, "เร่งด่วนนะคะ 🙏", "urgency", "urgent"),
    ],
)
def test_an_option_typed_by_its_meaning_is_understood(
    chat: Chat, before: list[object], typed: str, key: str, code: str
) -> None:
    """ "ผู้สูงอายุ" is กลุ่มผู้สูงอายุ, "ด่วน" is เร่งด่วน: a part of the label is enough."""
    chat.run(before)  # type: ignore[arg-type]
    chat.send(typed)
    assert answers(chat)[key] == code


@pytest.mark.parametrize(
    ("typed", "code"),
    [
        ("อ.แม่ริม", "5007"),
        ("อำเภอแม่ริม", "5007"),
        ("แม่ริม ค่ะ", "5007"),
        ("เมือง", "5001"),
        ("กัลยานิวัฒนา", "5025"),  # misspelt: ณ written น
        ("สันกำแพ่ง", "5013"),  # a wrong tone mark
    ],
)
def test_districts_are_understood_with_prefixes_short_names_and_typos(
    chat: Chat, typed: str, code: str
) -> None:
    """The profile's district typed the many ways people write it."""
    chat.run(FIRST_PROPOSAL[:6])
    chat.send(typed)
    assert th("q.target_group") in chat.last
    with chat.service.sessions() as session:
        assert session.scalars(select(Volunteer.district)).one() == code


def test_a_network_typed_without_its_dot_is_understood(chat: Chat) -> None:
    """ "อพม" is the button อพม."""
    chat.run(FIRST_PROPOSAL[:4])
    chat.send("อพม")
    assert th("q.organisation") in chat.last


def test_an_unclear_choice_names_the_candidates_and_never_mentions_numbers(chat: Chat) -> None:
    """ "ดอย" fits three districts: the bot lists them; no error text speaks of numbers."""
    chat.run(FIRST_PROPOSAL[:6])
    chat.send("ดอย")
    for district in ("ดอยสะเก็ด", "ดอยเต่า", "ดอยหล่อ"):
        assert district in chat.said
    chat.send("ฟหกด")
    assert th("err.pick", example="กัลยาณิวัฒนา") in chat.said
    assert "หมายเลข" not in chat.said


@pytest.mark.parametrize("typed", ["พมจ. และ อปท.", "1 2", "1,2", "1 และ 2", "พมจ อบต"])
def test_several_agencies_are_typed_as_names_or_numbers(chat: Chat, typed: str) -> None:
    """A multi-select takes names joined by และ, or the numbers of the options."""
    chat.run(AT_AGENCIES)
    chat.send(typed)
    assert answers(chat)["responsible"] == ["provincial_office", "local_admin"]


def test_the_review_card_is_answered_by_typing(chat: Chat) -> None:
    """ "แก้ไขอำเภอ" edits that answer; "ส่ง" sends; neither repeats the card forever."""
    chat.run(FIRST_PROPOSAL[:-1])
    chat.send("แก้ไขอำเภอ")
    assert th("q.proposal.district") in chat.last
    chat.send("แม่ริม")
    assert th("q.location") in chat.last, "a new district asks the sub-district again"
    chat.send("ต.ริมใต้")
    assert chat.replies[-1].card is not None
    chat.send("ส่งค่ะ")
    assert "CM-2570-00001" in chat.said
    assert [(p.district, p.location_text) for p in stored(chat.service)] == [("5007", "ต.ริมใต้")]


@pytest.mark.parametrize("typed", ["ยืนยัน", "ใช่", "ตกลงค่ะ", "ส่งข้อเสนอ"])
def test_typed_confirmation_sends_the_proposal(chat: Chat, typed: str) -> None:
    """Words of agreement on the review card send it."""
    chat.run(FIRST_PROPOSAL[:-1])
    chat.send(typed)
    assert len(stored(chat.service)) == 1


def test_a_typed_word_that_is_not_an_action_says_what_to_type(chat: Chat) -> None:
    """Anything else on the card gets words to type and buttons to press, not numbers."""
    chat.run(FIRST_PROPOSAL[:-1])
    chat.send("อืม")
    assert th("err.review.proposal") in chat.said
    assert "หมายเลข" not in chat.said


def test_cancel_confirmation_takes_typed_answers(chat: Chat) -> None:
    """At "cancel this proposal?", ทำต่อ continues, ใช่ discards."""
    chat.run(AT_PROBLEM)
    chat.send("ยกเลิก")
    chat.send("ทำต่อ")
    assert th("q.problem") in chat.last
    chat.send("ยกเลิก")
    chat.send("ใช่ค่ะ")
    assert th("cancel.done") in chat.said
    chat.send("/new")
    assert th("q.target_group") in chat.last


def test_a_command_during_a_confirmation_is_that_command(chat: Chat) -> None:
    """/new after /cancel asks to start anew; it is not read as "no, continue"."""
    chat.run(AT_PROBLEM)
    chat.send("/cancel")
    chat.send("/new")
    assert th("confirm.restart") in chat.last
    chat.send(Press("restart:yes"))
    assert th("q.target_group") in chat.last
    assert answers(chat) == {}
    chat.send("/cancel")
    chat.send("สถานะ")
    assert th("status.none") in chat.said


@pytest.mark.parametrize(("typed", "agreed"), [("ยินยอม", True), ("ตกลงค่ะ", True),
                                                 ("ไม่ยินยอม", False)])  # fmt: skip
def test_consent_is_given_or_declined_by_typing(chat: Chat, typed: str, agreed: bool) -> None:
    """Typing ยินยอม consents; before, the whole notice came back again."""
    chat.send("สวัสดีค่ะ")
    chat.send(typed)
    if agreed:
        assert th("q.full_name") in chat.last
    else:
        assert chat.last == th("declined")
    with chat.service.sessions() as session:
        assert len(list(session.scalars(select(Volunteer)))) == int(agreed)


# item 4: fair checks ---------------------------------------------------------------------------


@pytest.mark.parametrize("typed", ["ไม่มีเงิน", "ขาดรายได้"])
def test_a_short_problem_of_two_words_is_enough(chat: Chat, typed: str) -> None:
    """Thai vowel and tone marks are not letters: ไม่มีเงิน is a fair answer."""
    chat.run(AT_PROBLEM)
    chat.send(typed)
    assert answers(chat)["problem"] == typed


def test_one_word_gets_an_example_not_a_bare_refusal(chat: Chat) -> None:
    """A single word is met with what to tell and an example."""
    chat.run(AT_PROBLEM)
    chat.send("จน")
    assert th("err.few_words.problem") in chat.said
    assert th("q.problem") in chat.last


def test_long_answers_are_kept_and_overlong_ones_never_lost(chat: Chat) -> None:
    """2,550 characters are fine; 4,500 are kept aside and can be cut to fit with one press."""
    chat.run(AT_PROBLEM)
    chat.send("ผู้สูงอายุไม่มีรายได้ " * 110)  # 2,530 characters
    assert "problem" in answers(chat)
    chat.send("/back")
    long = "ก" * 4500
    chat.send(long)
    assert th("err.too_long", length="4,500", maximum="4,000") in chat.said
    assert chat.buttons[0] == "cut:problem"
    chat.send(Press("cut:problem"))
    assert answers(chat)["problem"] == "ก" * 4000


@pytest.mark.parametrize(
    ("typed", "shown"),
    [
        ("ประมาณ 30-40 คน", "30–40 คน"),
        ("สามสิบ", "30 คน"),
        ("๓๕ คน", "35 คน"),
        ("12 ครัวเรือน", "12 ครัวเรือน"),
        ("ไม่ทราบค่ะ", "ไม่ทราบ"),
    ],
)
def test_counts_take_ranges_words_households_and_unknown(
    chat: Chat, typed: str, shown: str
) -> None:
    """How many people: as people say it, stored as said and shown back with its unit."""
    chat.run(AT_COUNT)
    chat.send(typed)
    chat.run(FIRST_PROPOSAL[11:-1])
    card = chat.replies[-1].card
    assert card is not None
    row = next(r for r in card.rows if r.label == th("label.people_affected"))
    assert row.value == shown


def test_a_range_is_stored_as_a_range(chat: Chat) -> None:
    """30-40 people: the low end counts in totals, the high end is kept."""
    chat.run(AT_COUNT)
    chat.send("ประมาณ 30-40 คน")
    chat.run(FIRST_PROPOSAL[11:])
    [proposal] = stored(chat.service)
    assert (proposal.people_affected, proposal.people_max, proposal.people_unit) == (
        30,
        40,
        "people",
    )


@pytest.mark.parametrize("typed", ["0812345678 ค่ะ", "โทร 081–234–5678", "เบอร์ 081 234 5678 นะคะ"])
def test_phones_with_words_and_any_dash_are_accepted(chat: Chat, typed: str) -> None:
    """A phone number inside a sentence, with en dashes or spaces."""
    chat.run(FIRST_PROPOSAL[:3])
    chat.send(typed)
    assert th("q.network") in chat.last
    assert answers(chat)["phone"] == "+66812345678"


def test_a_phone_number_is_not_a_name(chat: Chat) -> None:
    """ "0812345678" at the name question is refused with what to type."""
    chat.run(FIRST_PROPOSAL[:2])
    chat.send("0812345678")
    assert th("err.name") in chat.said
    assert th("q.full_name") in chat.last


@pytest.mark.parametrize("typed", ["ไม่มี", "-", "ไม่มีค่ะ"])
def test_none_for_an_optional_answer_means_empty(chat: Chat, typed: str) -> None:
    """ "ไม่มี" as the organisation is no organisation, not one called ไม่มี."""
    chat.run(FIRST_PROPOSAL[:5])
    chat.send(typed)
    assert th("q.district") in chat.last
    chat.send("แม่แจ่ม")
    with chat.service.sessions() as session:
        assert session.scalars(select(Volunteer.organisation)).one() is None


# item 4: coming back ---------------------------------------------------------------------------


def test_a_greeting_after_days_is_not_stored_as_the_answer(chat: Chat, clock: Clock) -> None:
    """Back after three days: a welcome, where they were, the open question; nothing stored."""
    chat.run(AT_PROBLEM)
    clock.now += timedelta(days=3)
    chat.send("สวัสดีค่ะ ขอโทษที่หายไป")
    assert th("back.hello") in chat.said
    assert th("recap.proposal", count=2) in chat.said
    assert th("q.problem") in chat.last
    assert "problem" not in answers(chat)


def test_an_answer_after_a_long_gap_is_taken_with_a_welcome(chat: Chat, clock: Clock) -> None:
    """A real answer typed after a long silence is kept, and the volunteer welcomed."""
    chat.run(AT_COUNT)
    clock.now += timedelta(hours=13)
    chat.send("40 คน")
    assert th("back.again") in chat.said
    assert th("q.proposal.district") in chat.last


def test_a_stray_line_after_a_long_gap_gets_a_recap_not_an_error(chat: Chat, clock: Clock) -> None:
    """What does not fit the open question, after days away, is met with a recap."""
    chat.run(AT_COUNT)
    clock.now += timedelta(days=2)
    chat.send("ตอนนี้ฝนตกหนัก")
    assert th("back.again") in chat.said
    assert th("recap.group", group=th("opt.target_group.elderly")) in chat.said
    assert th("err.number") not in chat.said


def test_free_text_while_idle_offers_a_proposal_with_it_as_the_problem(chat: Chat) -> None:
    """Idle text is never lost: accepted, it is the new proposal's problem."""
    chat.run(FIRST_PROPOSAL)
    idea = "เด็กในชุมชนไม่มีที่เรียนพิเศษหลังเลิกเรียน"
    chat.send(idea)
    assert th("confirm.idea") in chat.last
    chat.send("ใช่")
    assert th("q.target_group") in chat.last
    assert answers(chat)["problem"] == idea
    chat.run([Text("เด็ก"), Text("เด็กกำพร้า")])
    assert th("q.people_affected") in chat.last, "the problem is not asked again"


@pytest.mark.parametrize(("kind", "key"), [("voice", "err.voice"), ("sticker", "err.sticker")])
def test_voice_and_stickers_get_a_kind_reply_and_the_question(
    chat: Chat, kind: str, key: str
) -> None:
    """A voice message or a sticker: thanks, and the open question again."""
    chat.run(AT_PROBLEM)
    chat.send(Unsupported(kind))
    assert th(key) in chat.said
    assert th("q.problem") in chat.last


def test_a_new_consent_version_asks_again_and_keeps_the_draft(chat: Chat) -> None:
    """Consent given to an older notice is asked again; afterwards the draft goes on."""
    chat.run(AT_PROBLEM)
    with chat.service.sessions.begin() as session:
        session.execute(update(Volunteer).values(consent_version="2026-11"))
    chat.send("ไม่มีเงินซื้อยา")
    assert th("consent.updated") in chat.said
    assert chat.buttons[0] == "consent:yes:th"
    chat.send(Press("consent:yes:th"))
    assert th("q.problem") in chat.last
    with chat.service.sessions() as session:
        assert session.scalars(select(Volunteer.consent_version)).one() == "2026-12"


# item 6: status ------------------------------------------------------------------------------


def test_status_tells_several_proposals_apart(chat: Chat) -> None:
    """Title, district, date and status with what happens next, for each proposal."""
    chat.run(FIRST_PROPOSAL)
    chat.send("สถานะ")
    said = chat.said
    assert "พาผู้สูงอายุลงทะเบียนเบี้ยยังชีพ" in said
    assert "อำเภอแม่แจ่ม" in said
    assert "29 พ.ย. 2569" in said
    assert th("result.received") in said
    assert th("next.received") in said


def test_my_data_dates_the_consent_in_the_buddhist_era(chat: Chat) -> None:
    """/mydata names the notice's version as ธ.ค. 2569, not 2026-12."""
    chat.run(FIRST_PROPOSAL[:7])
    chat.send("ข้อมูลของฉัน")
    assert "ธ.ค. 2569" in chat.said
    assert "2026" not in chat.said


# the whole proposal typed ---------------------------------------------------------------------

TYPED_PROPOSAL = """สวัสดีค่ะ
ยินยอมค่ะ
สมศรี ใจดี
โทร 081-234-5678 ค่ะ
อพม
ไม่มี
อ.แม่ริม
ผู้สูงอายุ
ไม่ทราบสิทธิ
ผู้สูงอายุในหมู่บ้านไม่รู้สิทธิเบี้ยยังชีพ ไม่มีคนพาไปลงทะเบียน
ประมาณ 30-40 คน
แม่ริมค่ะ
ต.ริมใต้ หมู่ 3
ยังไม่ได้รับ
ให้ อพม. ลงพื้นที่ช่วยลงทะเบียนและแจ้งสิทธิที่บ้าน
ผู้สูงอายุได้รับเบี้ยยังชีพครบทุกคน
วัดและ รพ.สต. ช่วยประสาน
ประมาณ 20,000 บาท
พมจ. และ อปท.
ด่วน
พาผู้สูงอายุลงทะเบียนเบี้ยยังชีพ
ข้าม
ส่งค่ะ
"""


def test_a_whole_proposal_typed_in_natural_thai_gets_a_reference(service: WelfareService) -> None:
    """No button pressed, no number typed: the terminal renderer, the real service, a reference."""
    out = io.StringIO()
    TerminalChat(service, "typist", io.StringIO(TYPED_PROPOSAL), out).run()
    shown = out.getvalue()
    assert "CM-2570-00001" in shown
    assert th("err.pick", example="x").split("“")[0] not in shown, "no typed choice was refused"
    [proposal] = stored(service)
    assert (proposal.district, proposal.location_text) == ("5007", "ต.ริมใต้ หมู่ 3")
    assert (proposal.target_group, proposal.subgroup) == ("elderly", "unaware_of_rights")
    assert (proposal.people_affected, proposal.people_max) == (30, 40)
    assert (proposal.help_received, proposal.urgency) == ("none", "urgent")
    assert proposal.responsible == ["provincial_office", "local_admin"]
    assert (proposal.budget, proposal.title) == ("10k_50k", "พาผู้สูงอายุลงทะเบียนเบี้ยยังชีพ")
    with service.sessions() as session:
        person = session.scalars(select(Volunteer)).one()
    assert (person.phone, person.network, person.district) == ("+66812345678", "volunteer", "5007")
    assert person.organisation is None


def test_declining_a_new_notice_keeps_the_data_unused_and_erasing_works(chat: Chat) -> None:
    """Saying no to a new notice is not told "nothing stored"; ลบข้อมูล still erases."""
    chat.run(AT_PROBLEM)
    with chat.service.sessions.begin() as session:
        session.execute(update(Volunteer).values(consent_version="2026-11"))
    chat.send("ไม่ยินยอม")
    assert chat.last == th("declined.outdated")
    chat.send("ลบข้อมูล")
    assert th("confirm.delete") in chat.last
    chat.send(Press("delete:yes"))
    assert th("delete.done") in chat.said
    with chat.service.sessions() as session:
        assert session.scalars(select(Volunteer.full_name)).one() is None


@pytest.mark.parametrize(
    ("typed", "greeting"),
    [("สวัสดีค่ะ ขอโทษที่หายไป", True), ("หวัดดีจ้า", True), ("Hi, sorry", True),
     ("good morning!", True), ("high prices for food", False), ("ผู้สูงอายุ", False)],
)  # fmt: skip
def test_greetings_are_told_from_answers(typed: str, greeting: bool) -> None:
    """A greeting starts with one; "high prices" does not start with "hi"."""
    assert is_greeting(typed) is greeting


def test_staff_lists_show_the_title_and_the_count_as_given(chat: Chat) -> None:
    """The desk's list names a proposal by its title; exports keep "30–40 คน" as said."""
    chat.run(AT_COUNT)
    chat.send("ประมาณ 30-40 คน")
    chat.run(FIRST_PROPOSAL[11:])
    [proposal] = stored(chat.service)
    with chat.service.db.begin() as connection:
        row = queries.newest(connection, ProposalFilter(), None)[0]
    assert row["title"] == proposal.title
    assert format_count("th", stored_count(row)) == "30–40 คน"


@pytest.mark.parametrize(
    ("typed", "key"),
    [("สถานะค่ะ", "status.none"), ("ข้อมูลของฉันค่ะ", "mydata.title"), ("ช่วยเหลือ นะคะ", "help")],
)
def test_command_words_work_with_polite_particles(chat: Chat, typed: str, key: str) -> None:
    """LINE has no command menu: the Thai words work however politely they are typed."""
    chat.run(FIRST_PROPOSAL[:7])
    chat.send(typed)
    assert th(key) in chat.said


@pytest.mark.parametrize(
    ("typed", "kept"),
    [
        ("นางสมศรี ใจดีค่ะ", "นางสมศรี ใจดี"),
        ("ต.ริมใต้ หมู่ 5 ค่ะ", "ต.ริมใต้ หมู่ 5"),
        ("ชมรมผู้สูงอายุบ้านป่าแดด นะคะ.", "ชมรมผู้สูงอายุบ้านป่าแดด"),
        ("ขาดค่า", "ขาดค่า"),  # ค่า is a word (a fee), not only a particle
        ("ค่ะ", "ค่ะ"),
    ],
)
def test_a_closing_polite_particle_is_not_stored_with_the_answer(typed: str, kept: str) -> None:
    """What an officer reads in lists and Excel is the name or place, not the particle."""
    assert without_closing_particle(typed) == kept


def test_a_name_typed_with_a_particle_is_stored_without_it(chat: Chat) -> None:
    """The profile keeps "นางสมศรี ใจดี" when the volunteer types "นางสมศรี ใจดีค่ะ"."""
    chat.run([*FIRST_PROPOSAL[:2], Text("นางสมศรี ใจดีค่ะ")])
    assert answers(chat)["full_name"] == "นางสมศรี ใจดี"


@pytest.mark.parametrize(
    ("steps", "typed", "key", "expected"),
    [
        (13, "ได้บ้างค่ะ", "help_received", "not_enough"),
        (13, "ไม่รู้", "help_received", "unknown"),
        (17, "ประมาณ 2 หมื่นบาทค่ะ", "budget", "10k_50k"),
        (17, "ไม่รู้ค่ะ", "budget", "unknown"),
        (21, "ปีนี้", "urgency", "this_year"),
    ],
)
def test_everyday_words_pick_their_option(
    chat: Chat, steps: int, typed: str, key: str, expected: str
) -> None:
    """What older volunteers type for an option, besides its label, picks that option."""
    chat.run(FIRST_PROPOSAL[:steps])
    assert asked(chat, f"q.{key}")
    chat.send(typed)
    assert answers(chat)[key] == expected
