"""The conversation engine: state, volunteer and one input in; new state and actions out (pure)."""

import re
from dataclasses import replace
from typing import Any

from bot.conversation import views
from bot.conversation.state import (
    REVIEW,
    Action,
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
    Turn,
    Who,
)
from bot.domain.counts import parse_baht, parse_people
from bot.domain.i18n import LANGUAGES, has, text, words
from bot.domain.matching import (
    fold,
    is_one_of,
    match_many,
    match_one,
    without_closing_particle,
)
from bot.domain.messages import (
    Button,
    Contact,
    Input,
    Location,
    Photo,
    Press,
    Reply,
    Text,
    Unsupported,
)
from bot.domain.normalize import (
    clean_text,
    count_words,
    find_phone,
    first_graphemes,
    graphemes,
    has_letters,
)
from bot.domain.province import Province
from bot.domain.questionnaire import (
    CONSENT_VERSION,
    FORMS,
    LONG_TEXT,
    PROFILE,
    PROPOSAL,
    Form,
    Kind,
    Question,
    budget_band,
)

COMMANDS = (
    "start",
    "new",
    "back",
    "skip",
    "cancel",
    "help",
    "status",
    "language",
    "mydata",
    "deletedata",
    "profile",
    "reminders",
)
UNKNOWN = "unknown"
_COMMAND_WORDS = {word: name for name in COMMANDS for word in words(f"words.{name}")}
# the same words with polite particles and punctuation folded away ("สถานะค่ะ", "ยกเลิก นะคะ")
_COMMAND_CORES = {fold(word, prefixes=False): name for word, name in _COMMAND_WORDS.items()}
_DONE_WORDS = words("words.done")
_YES_WORDS = words("words.yes")
_NO_WORDS = words("words.no")
_SUBMIT_WORDS = words("words.submit")
_EDIT_WORDS = tuple(sorted(words("words.edit"), key=len, reverse=True))
_AGREE_WORDS = words("words.agree")
_DECLINE_WORDS = words("words.decline")
_GREETING_WORDS = tuple(w if w.isascii() else fold(w) for w in words("words.greeting"))
_EMPTY_WORDS = words("words.empty")
# a greeting longer than this is more likely an answer that starts politely
_GREETING_MAX = 40
_VOICE = frozenset({"voice", "audio", "video_note"})
_DECORATION = " \t\n◀▶✔✅✖️📝📋👤🔒❓"


class Invalid(Exception):
    """An answer that does not fit its question; carries the catalogue key and values."""

    def __init__(self, key: str, **values: object) -> None:
        super().__init__(key)
        self.key = key
        self.values = values


class TooLong(Exception):
    """A typed answer longer than its question allows; the text is kept, not refused."""

    def __init__(self, typed: str, length: int, maximum: int) -> None:
        super().__init__("err.too_long")
        self.typed = typed
        self.length = length
        self.maximum = maximum


def _seed(state: State) -> dict[str, Any]:
    """Return a new proposal's first answers: idle text the volunteer chose as its problem."""
    return {"problem": state.idea} if state.idea else {}


def is_greeting(typed: str) -> bool:
    """Tell whether a short message is a greeting ("สวัสดีค่ะ ขอโทษที่หายไป"), not an answer."""
    if graphemes(typed) > _GREETING_MAX:
        return False
    core, lowered = fold(typed), typed.strip().casefold()
    # Thai runs words together ("สวัสดีค่ะขอโทษ"); an English greeting ends at a word's end
    return any(
        core.startswith(g) if not g.isascii() else re.match(rf"{g}\b", lowered) is not None
        for g in _GREETING_WORDS
    )


def command_of(event: Input) -> str | None:
    """Return the command an input asks for (typed, as a word, or pressed), or None."""
    if isinstance(event, Press) and event.data.startswith("cmd:"):
        name = event.data[4:]
        return name if name in COMMANDS else UNKNOWN
    if not isinstance(event, Text):
        return None
    typed = clean_text(event.text)
    if typed.startswith("/"):
        name = typed[1:].split(maxsplit=1)[0].split("@")[0].lower() if len(typed) > 1 else ""
        return name if name in COMMANDS else UNKNOWN
    return _COMMAND_WORDS.get(bare(typed)) or _COMMAND_CORES.get(fold(typed, prefixes=False))


def bare(typed: str) -> str:
    """Return typed text case-folded, without the symbols a button label may start with."""
    return typed.strip(_DECORATION).casefold()


# idle text of at least this many words is offered as the problem of a new proposal
PROPOSAL_IDEA_WORDS = 3


_REFERENCE = re.compile(r"\b([A-Z]{2,4}-\d{4}-\d{1,6})\b", re.IGNORECASE)
_REVISE_WORDS = {fold(word) for word in words("words.revise")}
_ENGLISH_WORDS, _THAI_WORDS = words("words.lang_en"), words("words.lang_th")
_EDIT_CORES = {fold(word) for word in words("words.edit")}


def revision_asked(typed: str) -> str | None:
    """Return the reference a volunteer typed to revise ("" for their newest), else None.

    The button's own words work typed: "แก้ไขข้อเสนอ", "แก้ไข CM-2570-00001", "revise".
    """
    found = _REFERENCE.search(typed)
    core = fold(_REFERENCE.sub(" ", typed))
    if found and (core in _EDIT_CORES or core in _REVISE_WORDS):
        return found.group(1).upper()
    if not found and core in _REVISE_WORDS:
        return ""
    return None


def _synonyms(language: str, key: str, code: str) -> list[str]:
    """Return the everyday words an option is also typed as ("ได้บ้าง"), from the catalogue."""
    name = f"syn.{key}.{code}"
    return text(language, name).split("|") if has(language, name) else []


class Engine:
    """Runs the questionnaire for one volunteer at a time, without side effects."""

    def __init__(self, province: Province) -> None:
        self.province = province

    def handle(self, state: State, who: Who, event: Input) -> Turn:
        """Return the new state and the actions that answer one input."""
        if not who.consented:
            # someone asked to consent to a new notice may still erase what is stored
            erasing = command_of(event) == "deletedata" or state.confirm == "delete"
            if not (who.consent_outdated and erasing):
                return self._before_consent(state, who, event)
        if isinstance(event, Press) and event.data.startswith("lang:"):
            return self._set_language(state, who, event.data[5:])
        if isinstance(event, Press) and event.data.startswith("revise:"):
            return self._revise(state, who, event.data[7:])
        if state.form is None and isinstance(event, Text):
            asked = revision_asked(event.text)
            if asked is not None:
                return Turn(state, (OpenRevision(asked or None),))
        command = command_of(event)
        if command is not None:
            return self._command(command, state, who)
        if isinstance(event, Text) and is_greeting(event.text):
            return self._welcome_back(state, who, "back.hello")
        if isinstance(event, Unsupported):
            return self._unreadable(state, who, event)
        if state.confirm is not None:
            return self._confirm(state, who, event)
        if state.form is None or state.step is None:
            return self._idle(state, who, event)
        if state.step == REVIEW:
            return self._review(state, who, event)
        turn = self._answer(state, who, event)
        if who.returning and isinstance(event, Text):
            if turn.state == state:
                # after days away a typed line that fits nothing is not a mistake to scold
                return self._welcome_back(state, who, "back.again")
            return Turn(turn.state, (Reply(text(who.language, "back.again")), *turn.actions))
        return turn

    # consent --------------------------------------------------------------------------------

    def _before_consent(self, state: State, who: Who, event: Input) -> Turn:
        language = who.language
        answer: str | None = None
        if isinstance(event, Press):
            parts = event.data.split(":")
            if parts[0] == "lang" and parts[-1] in LANGUAGES:
                return Turn(state, (views.consent(parts[-1], self.province),))
            if parts[0] == "consent" and len(parts) == 3 and parts[2] in LANGUAGES:
                language, answer = parts[2], parts[1]
        elif isinstance(event, Text):
            typed = bare(clean_text(event.text))
            if typed in _DECLINE_WORDS or is_one_of(typed, sorted(_DECLINE_WORDS)):
                answer = "no"
            elif typed in _AGREE_WORDS or is_one_of(typed, sorted(_AGREE_WORDS)):
                answer = "yes"
            elif typed in _ENGLISH_WORDS:
                return Turn(state, (views.consent("en", self.province),))
            elif typed in _THAI_WORDS:
                return Turn(state, (views.consent("th", self.province),))
        if answer == "yes":
            return self._consented(state, replace(who, consented=True, language=language))
        if answer == "no":
            if who.consent_outdated:
                return Turn(state, (Reply(text(language, "declined.outdated")),))
            return Turn(None, (Reply(text(language, "declined")),))
        lead = (Reply(text(language, "consent.updated")),) if who.consent_outdated else ()
        return Turn(state, (*lead, views.consent(language, self.province)))

    def _consented(self, state: State, who: Who) -> Turn:
        """Record consent; a newcomer goes on to the profile, someone known to where they were."""
        thanks = (
            GiveConsent(who.language, CONSENT_VERSION),
            Reply(text(who.language, "consent.thanks")),
        )
        if who.consent_outdated and who.profile_complete:
            turn = self._prompt(state, who)
            return Turn(turn.state, (*thanks, *turn.actions))
        first = self._next(State(form=PROFILE.name, answers=dict(who.profile)), who)
        lead = Reply(text(who.language, "consent.profile"))
        return Turn(first.state, (*thanks, lead, *first.actions))

    # commands -------------------------------------------------------------------------------

    def _command(self, command: str, state: State, who: Who) -> Turn:
        lang = who.language
        # a confirmation's own words typed ("ยกเลิก" at "cancel this proposal?") answer it
        if (state.confirm, command) in {("cancel", "cancel"), ("delete", "deletedata")}:
            return self._confirm(state, who, Press(f"{state.confirm}:yes"))
        if state.confirm == "cancel" and command == "new":
            return Turn(replace(state, confirm="restart"), (views.confirm(lang, "restart"),))
        state = replace(state, confirm=None, idea=None)
        if command == "start":
            if state.form is not None:
                return self._prompt(state, who)
            return Turn(state, (views.menu(lang),))
        if command == "new":
            return self._new(state, who)
        if command == "back":
            return self._back(state, who)
        if command == "skip":
            return self._skip(state, who)
        if command == "cancel":
            return self._cancel(state, who)
        if command == "help":
            return self._with_prompt(state, who, Reply(text(lang, "help")))
        if command == "status":
            return self._with_prompt(state, who, ShowStatus())
        if command == "mydata":
            return self._with_prompt(state, who, ShowMyData())
        if command == "language":
            return Turn(state, (views.language_choice(),))
        if command == "deletedata":
            return Turn(replace(state, confirm="delete"), (views.confirm(lang, "delete"),))
        if command == "profile":
            return self._edit_profile(state, who)
        if command == "reminders":
            return self._with_prompt(state, who, ToggleReminders())
        return self._with_prompt(state, who, Reply(text(lang, "err.unknown")))

    def _new(self, state: State, who: Who) -> Turn:
        lang = who.language
        if state.form == PROPOSAL.name:
            return self._with_prompt(state, who, Reply(text(lang, "proposal.resume")))
        if state.form == PROFILE.name or not who.profile_complete:
            if state.form != PROFILE.name:
                state = State(form=PROFILE.name, answers=dict(who.profile), idea=state.idea)
            return self._next(state, who)
        return self._start_proposal(state, who)

    def _start_proposal(self, state: State, who: Who, *lead: Action) -> Turn:
        """Start a new proposal; text typed while idle, when accepted, is its problem."""
        turn = self._next(State(form=PROPOSAL.name, answers=_seed(state)), who)
        intro = Reply(text(who.language, "proposal.intro"))
        return Turn(turn.state, (*lead, intro, *turn.actions))

    def _back(self, state: State, who: Who) -> Turn:
        form = self._form(state)
        if form is None:
            return Turn(state, (views.menu(who.language),))
        if state.reviewed:
            if state.step != REVIEW:
                return self._next(replace(state, step=None, pending=[]), who)
            last = form.question(state.history[-1]) if state.history else None
            if last is not None:
                return self._edit(state, who, last)
        if not state.history:
            return self._with_prompt(state, who, Reply(text(who.language, "err.no_back")))
        history = list(state.history)
        key = history.pop()
        answers = self._without(form, state.answers, key)
        step = replace(state, step=key, answers=answers, history=history, pending=[])
        return self._prompt(step, who)

    def _skip(self, state: State, who: Who) -> Turn:
        question = self._question(state)
        if question is None or not question.optional:
            return self._with_prompt(state, who, Reply(text(who.language, "err.not_optional")))
        value: Any = list(state.pending) if question.kind is Kind.PHOTOS and state.pending else None
        return self._accept(state, who, question, value)

    def _cancel(self, state: State, who: Who) -> Turn:
        lang = who.language
        if state.form == PROPOSAL.name:
            return Turn(replace(state, confirm="cancel"), (views.confirm(lang, "cancel"),))
        if state.form == PROFILE.name:
            return Turn(State(), (views.menu(lang, text(lang, "cancel.profile")),))
        return Turn(state, (views.menu(lang, text(lang, "err.nothing_to_cancel")),))

    def _edit_profile(self, state: State, who: Who) -> Turn:
        if state.form == PROPOSAL.name:
            return self._with_prompt(state, who, Reply(text(who.language, "profile.busy")))
        if not who.profile_complete:
            return self._new(state, who)
        editing = State(form=PROFILE.name, step=REVIEW, answers=dict(who.profile), reviewed=True)
        return self._prompt(editing, who)

    def _set_language(self, state: State, who: Who, language: str) -> Turn:
        if language not in LANGUAGES:
            return self._with_prompt(state, who, Reply(text(who.language, "err.stale")))
        who = replace(who, language=language)
        turn = self._with_prompt(state, who, Reply(text(language, "language.set")))
        return Turn(turn.state, (SetLanguage(language), *turn.actions))

    # confirmations, idle and review ---------------------------------------------------------

    def _confirm(self, state: State, who: Who, event: Input) -> Turn:
        lang = who.language
        kind = state.confirm or "cancel"
        answer = event.data if isinstance(event, Press) else ""
        if isinstance(event, Text):
            answer = self._typed_confirmation(kind, lang, clean_text(event.text))
        if answer == f"{kind}:yes":
            if kind == "delete":
                return Turn(None, (EraseMyData(), Reply(text(lang, "delete.done"))))
            if kind == "idea":
                turn = self._new(replace(state, confirm=None), who)
                return Turn(turn.state, (Reply(text(lang, "idea.used")), *turn.actions))
            if kind == "restart":
                return self._start_proposal(State(), who, Reply(text(lang, "cancel.done")))
            return Turn(State(), (views.menu(lang, text(lang, "cancel.done")),))
        if answer == f"{kind}:no":
            if kind == "idea":
                return Turn(State(), (views.menu(lang, text(lang, "idea.dropped")),))
            lead = Reply(text(lang, "delete.kept")) if kind == "delete" else None
            return self._with_prompt(replace(state, confirm=None), who, lead)
        return Turn(state, (Reply(text(lang, "err.confirm")), views.confirm(lang, kind)))

    def _typed_confirmation(self, kind: str, language: str, typed: str) -> str:
        """Return the button data a typed yes or no stands for ("" when it is neither)."""
        if bare(typed) in _YES_WORDS or is_one_of(typed, sorted(_YES_WORDS)):
            return f"{kind}:yes"
        if bare(typed) in _NO_WORDS or is_one_of(typed, sorted(_NO_WORDS)):
            return f"{kind}:no"
        shown = views.confirm(language, kind).buttons
        found = match_one(typed, {button.data: [button.label] for button in shown})
        return found.codes[0] if found.codes else ""

    def _idle(self, state: State, who: Who, event: Input) -> Turn:
        lang = who.language
        if isinstance(event, Press):
            return Turn(state, (views.menu(lang, text(lang, "err.stale")),))
        if isinstance(event, Text):
            typed = clean_text(event.text)
            if count_words(typed) >= PROPOSAL_IDEA_WORDS and graphemes(typed) <= LONG_TEXT:
                offer = replace(State(), confirm="idea", idea=typed)
                return Turn(offer, (views.confirm(lang, "idea"),))
            return Turn(State(), (views.menu(lang, text(lang, "idle.hint")),))
        return Turn(state, (views.menu(lang),))

    def _unreadable(self, state: State, who: Who, event: Unsupported) -> Turn:
        """Answer a voice message, sticker or file kindly and ask the open question again."""
        key = "err.voice" if event.kind in _VOICE else "err.sticker"
        if event.kind not in _VOICE and event.kind != "sticker":
            key = "err.unsupported"
        if state.step is not None and state.step != REVIEW and state.confirm is None:
            question = self._question(state)
            if question is not None and question.kind is Kind.PHOTOS and event.kind == "document":
                key = "err.photo_expected"
        return self._with_prompt(state, who, Reply(text(who.language, key)))

    def _welcome_back(self, state: State, who: Who, key: str) -> Turn:
        """Greet someone who writes again, say where they were and ask the open question."""
        lang = who.language
        form = self._form(state)
        if form is None or state.step is None:
            return Turn(replace(state, confirm=None, idea=None),
                        (views.menu(lang, text(lang, "back.idle")),))  # fmt: skip
        recap = views.recap(lang, form, state, self.province)
        return self._with_prompt(state, who, Reply(f"{text(lang, key)}\n{recap}"))

    def _review(self, state: State, who: Who, event: Input) -> Turn:
        form = self._form(state)
        assert form is not None
        lang = who.language
        data = event.data if isinstance(event, Press) else ""
        if isinstance(event, Text):
            data = self._typed_review(form, state, lang, clean_text(event.text))
        question = form.question(data[2:]) if data.startswith("e:") else None
        if question is not None and question.applies(state.answers):
            return self._edit(state, who, question)
        if data == "submit" and form is PROPOSAL and state.revising:
            answers = form.prune(state.answers)
            return Turn(State(), (ResubmitProposal(state.revising, answers),))
        if data == "submit" and form is PROPOSAL:
            return Turn(State(), (SubmitProposal(form.prune(state.answers)),))
        if data == "save" and form is PROFILE:
            fields = form.prune(state.answers)
            lead = text(lang, "profile.saved")
            return Turn(State(), (SaveProfile(fields), views.menu(lang, lead)))
        key = "err.stale" if isinstance(event, Press) else f"err.review.{form.name}"
        return self._with_prompt(state, who, Reply(text(lang, key)))

    def _typed_review(self, form: Form, state: State, language: str, typed: str) -> str:
        """Return the button a typed word stands for on a review card ("ส่ง", "แก้ไขอำเภอ")."""
        finish = "submit" if form is PROPOSAL else "save"
        if bare(typed) in _SUBMIT_WORDS or is_one_of(typed, sorted(_SUBMIT_WORDS | _YES_WORDS)):
            return finish
        rest = bare(typed)
        for word in _EDIT_WORDS:
            if rest.startswith(word):
                rest = rest[len(word) :].strip()
                break
        else:
            return ""
        labels = {
            f"e:{q.key}": [text(lang, f"label.{q.key}") for lang in LANGUAGES]
            for q in form.questions
            if q.applies(state.answers) and q.key in state.answers
        }
        found = match_one(rest, labels) if rest else None
        return found.codes[0] if found is not None and found.codes else ""

    def _revise(self, state: State, who: Who, reference: str) -> Turn:
        """Ask for a proposal sent back for revision, unless another draft is open."""
        if state.form == PROPOSAL.name and state.revising != reference:
            return self._with_prompt(state, who, Reply(text(who.language, "revise.busy")))
        return Turn(state, (OpenRevision(reference),))

    def open_revision(self, who: Who, reference: str, answers: dict[str, Any]) -> Turn:
        """Show a stored proposal's answers on the review card, to change and send again."""
        state = State(form=PROPOSAL.name, step=REVIEW, answers=answers, reviewed=True,
                      revising=reference)  # fmt: skip
        return self._prompt(state, who, lead=Reply(text(who.language, "revise.intro",
                                                        reference=reference)))  # fmt: skip

    def _edit(self, state: State, who: Who, question: Question) -> Turn:
        """Ask one answered question again, showing its current answer."""
        current = state.answers.get(question.key)
        pending = list(current) if question.kind is Kind.MULTI and current else []
        return self._prompt(replace(state, step=question.key, pending=pending), who, current)

    # answers --------------------------------------------------------------------------------

    def _answer(self, state: State, who: Who, event: Input) -> Turn:
        question = self._question(state)
        lang = who.language
        if question is None:
            return Turn(State(), (views.menu(lang),))
        try:
            if question.kind is Kind.MULTI:
                return self._multi(state, who, question, event)
            if question.kind is Kind.PHOTOS:
                return self._photos(state, who, question, event)
            value = self._parse(state, who, question, event)
        except TooLong as long:
            kept = replace(state, kept=long.typed)
            cut = Button(text(lang, "btn.cut", maximum=f"{long.maximum:,}"), f"cut:{question.key}")
            warning = text(
                lang, "err.too_long", length=f"{long.length:,}", maximum=f"{long.maximum:,}"
            )
            turn = self._prompt(kept, who)
            asked = turn.actions[-1]
            assert isinstance(asked, Reply)
            asked = replace(asked, text=f"{warning}\n\n{asked.text}", buttons=(cut, *asked.buttons))
            return Turn(kept, (*turn.actions[:-1], asked))
        except Invalid as problem:
            return self._with_prompt(state, who, Reply(text(lang, problem.key, **problem.values)))
        return self._accept(state, who, question, value)

    def _parse(self, state: State, who: Who, question: Question, event: Input) -> Any:
        if isinstance(event, Press):
            prefix = f"a:{question.key}:"
            if event.data.startswith(prefix) and question.kind in (Kind.CHOICE, Kind.DISTRICT):
                code = event.data[len(prefix) :]
                if code in self._options(state, who, question):
                    return code
            if event.data == f"cut:{question.key}" and state.kept:
                return first_graphemes(state.kept, question.max_length)
            raise Invalid("err.stale")
        if isinstance(event, Contact) and question.kind is Kind.PHONE:
            return self._phone(event.phone)
        if isinstance(event, Location) and question.kind is Kind.PLACE:
            return {"latitude": event.latitude, "longitude": event.longitude}
        if not isinstance(event, Text):
            if question.kind in (Kind.CHOICE, Kind.DISTRICT):
                raise self._unclear(state, who, question, ())
            raise Invalid("err.text_expected")
        typed = clean_text(event.text)
        if question.optional and bare(typed) in _EMPTY_WORDS:
            return None
        if question.kind in (Kind.CHOICE, Kind.DISTRICT):
            return self._match(state, who, question, typed)
        if question.kind is Kind.PHONE:
            return self._phone(typed)
        if question.kind is Kind.NUMBER:
            return self._count(question, typed)
        return self._text(question, typed)

    def _text(self, question: Question, typed: str) -> str:
        """Check a typed answer; too long is kept aside (never lost) and the volunteer asked."""
        typed = without_closing_particle(typed)
        if not typed:
            raise Invalid("err.text_expected")
        length = graphemes(typed)
        if length > question.max_length:
            raise TooLong(typed, length, question.max_length)
        if question.min_words and count_words(typed) < question.min_words:
            raise Invalid(f"err.few_words.{question.key}")
        if length < question.min_length:
            raise Invalid("err.too_short", minimum=question.min_length)
        if question.key == "full_name" and (not has_letters(typed) or find_phone(typed)):
            raise Invalid("err.name")
        return typed

    def _count(self, question: Question, typed: str) -> dict[str, Any]:
        count = parse_people(typed)
        if count is None:
            raise Invalid("err.number")
        for number in (count.low, count.high):
            if number is not None and not question.minimum <= number <= question.maximum:
                raise Invalid(
                    "err.number_range", minimum=question.minimum, maximum=f"{question.maximum:,}"
                )
        return count.to_json()

    def _phone(self, typed: str) -> str:
        phone = find_phone(typed)
        if phone is None:
            raise Invalid("err.phone")
        return phone.e164

    def _labels(self, state: State, who: Who, question: Question) -> dict[str, list[str]]:
        """Return each option code with its labels in every language, in the order shown."""
        return {
            code: [views.option_label(lang, question, code, self.province) for lang in LANGUAGES]
            + [word for lang in LANGUAGES for word in _synonyms(lang, question.key, code)]
            for code in self._options(state, who, question)
        }

    def _match(self, state: State, who: Who, question: Question, typed: str) -> str:
        baht = parse_baht(typed) if question.key == "budget" else None
        if baht is not None and baht >= 100:
            return budget_band(baht)
        found = match_one(typed, self._labels(state, who, question))
        if found.codes:
            return found.codes[0]
        raise self._unclear(state, who, question, found.ambiguous)

    def _unclear(
        self, state: State, who: Who, question: Question, ambiguous: tuple[str, ...]
    ) -> Invalid:
        """Return the answer to a typed choice that fits several options, or none."""
        if ambiguous:
            names = ", ".join(
                views.option_label(who.language, question, code, self.province)
                for code in ambiguous[:6]
            )
            return Invalid("err.ambiguous", choices=names)
        key = "err.pick_many" if question.kind is Kind.MULTI else "err.pick"
        return Invalid(key, **self._pick_values(state, who, question))

    def _pick_values(self, state: State, who: Who, question: Question) -> dict[str, str]:
        """Return an example of a typed answer: the short name of an option shown."""
        codes = self._options(state, who, question)
        example = views.option_label(who.language, question, codes[-1 if len(codes) > 1 else 0],
                                     self.province) if codes else ""  # fmt: skip
        return {"example": example.split(" (")[0]}

    def _multi(self, state: State, who: Who, question: Question, event: Input) -> Turn:
        codes = self._options(state, who, question)
        if isinstance(event, Press):
            toggle, done = f"t:{question.key}:", f"d:{question.key}"
            if event.data.startswith(toggle) and (code := event.data[len(toggle) :]) in codes:
                pending = [c for c in codes if (c in state.pending) != (c == code)]
                return self._toggled(replace(state, pending=pending), who, question)
            if event.data == done:
                return self._finish_multi(state, who, question, state.pending)
            raise Invalid("err.stale")
        if isinstance(event, Text):
            typed = clean_text(event.text)
            if bare(typed) in _DONE_WORDS:
                return self._finish_multi(state, who, question, state.pending)
            found = match_many(typed, self._labels(state, who, question))
            if found.codes:
                return self._finish_multi(state, who, question, list(found.codes))
            raise self._unclear(state, who, question, found.ambiguous)
        raise Invalid("err.pick_many", **self._pick_values(state, who, question))

    def _toggled(self, state: State, who: Who, question: Question) -> Turn:
        """Redraw a multi-select after a tap, marked to replace the pressed question's buttons."""
        turn = self._prompt(state, who)
        chosen = [views.option_label(who.language, question, c, self.province)
                  for c in state.pending]  # fmt: skip
        shown = ", ".join(chosen) or text(who.language, "value.none")
        toast = text(who.language, "toggle.chosen", count=len(chosen), options=shown)
        redrawn = tuple(
            replace(a, in_place=True, toast=toast) if isinstance(a, Reply) else a
            for a in turn.actions
        )
        return Turn(turn.state, redrawn)

    def _finish_multi(self, state: State, who: Who, question: Question, chosen: list[str]) -> Turn:
        if not chosen:
            raise Invalid("err.multi_empty")
        ordered = [c for c in self._options(state, who, question) if c in chosen]
        return self._accept(state, who, question, ordered)

    def _photos(self, state: State, who: Who, question: Question, event: Input) -> Turn:
        lang = who.language
        if isinstance(event, Photo):
            pending = [*state.pending, event.file_id]
            if len(pending) >= question.max_items:
                return self._accept(state, who, question, pending[: question.max_items])
            received = text(lang, "photo.received", count=len(pending), max=question.max_items)
            return self._prompt(replace(state, pending=pending), who, lead=Reply(received))
        done = isinstance(event, Press) and event.data == f"d:{question.key}"
        typed_done = isinstance(event, Text) and bare(clean_text(event.text)) in _DONE_WORDS
        if done or typed_done:
            return self._accept(state, who, question, list(state.pending) or None)
        raise Invalid("err.photo_expected")

    def _accept(self, state: State, who: Who, question: Question, value: Any) -> Turn:
        form = self._form(state)
        assert form is not None
        answers = dict(state.answers)
        if question.key in answers and answers[question.key] != value:
            answers = self._without(form, answers, question.key)
        answers[question.key] = value
        history = [k for k in state.history if k != question.key] + [question.key]
        moved = replace(state, answers=answers, history=history, pending=[], step=None, kept=None)
        turn = self._next(moved, who)
        if question.kind in (Kind.PHONE, Kind.PLACE):
            # a plain acknowledgement also lets channels put away a share-phone/location keyboard
            if value is None:
                said = text(who.language, "skipped")
            else:
                shown = views.format_value(who.language, question, value, self.province)
                said = text(who.language, "saved", value=shown)
            return Turn(turn.state, (Reply(said, closes_keyboard=True), *turn.actions))
        return turn

    def _next(self, state: State, who: Who) -> Turn:
        """Ask the next unanswered question, or show the review card, or finish the profile."""
        form = self._form(state)
        assert form is not None
        question = form.next_question(state.answers)
        if question is not None:
            return self._prompt(replace(state, step=question.key), who)
        if form is PROFILE and not state.reviewed:
            fields = form.prune(state.answers)
            who = replace(who, profile=fields, profile_complete=True)
            turn = self._next(State(form=PROPOSAL.name, answers=_seed(state)), who)
            lead = (
                SaveProfile(fields),
                Reply(text(who.language, "profile.saved")),
                Reply(text(who.language, "proposal.intro")),
            )
            return Turn(turn.state, (*lead, *turn.actions))
        return self._prompt(replace(state, step=REVIEW, reviewed=True), who)

    # helpers --------------------------------------------------------------------------------

    def _prompt(
        self, state: State, who: Who, current: Any = None, lead: Reply | None = None
    ) -> Turn:
        """Show whatever the state is waiting for: a question, a card, a confirmation, a menu."""
        lang = who.language
        form = self._form(state)
        head: tuple[Action, ...] = (lead,) if lead else ()
        if state.confirm is not None:
            return Turn(state, (*head, views.confirm(lang, state.confirm)))
        if form is None or state.step is None:
            return Turn(State(), (*head, views.menu(lang)))
        if state.step == REVIEW:
            return Turn(state, (*head, views.review_card(lang, form, state, self.province)))
        question = form.question(state.step)
        if question is None:
            return Turn(State(), (*head, views.menu(lang)))
        reply = views.ask(lang, form, question, state, self.province, who.profile, current)
        return Turn(state, (*head, reply))

    def _with_prompt(self, state: State, who: Who, lead: Action | None) -> Turn:
        """Return an action followed by the current prompt (the menu when idle)."""
        turn = self._prompt(state, who)
        if lead is None:
            return turn
        if state.form is None and isinstance(lead, Reply):
            return Turn(turn.state, (views.menu(who.language, lead.text),))
        return Turn(turn.state, (lead, *turn.actions))

    def _form(self, state: State) -> Form | None:
        return FORMS.get(state.form) if state.form else None

    def _question(self, state: State) -> Question | None:
        form = self._form(state)
        if form is None or state.step in (None, REVIEW):
            return None
        return form.question(state.step or "")

    def _options(self, state: State, who: Who, question: Question) -> list[str]:
        form = self._form(state) or PROPOSAL
        own = views.own_district(form, who.profile)
        return views.options(question, state.answers, self.province, own)

    def _without(self, form: Form, answers: dict[str, Any], key: str) -> dict[str, Any]:
        """Return answers without a key and everything that follows from it."""
        gone = {key} | form.dependents(key)
        return {k: v for k, v in answers.items() if k not in gone}
