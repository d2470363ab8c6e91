"""The conversation engine: state, volunteer and one input in; new state and actions out (pure)."""

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
from bot.domain.i18n import LANGUAGES, text, words
from bot.domain.messages import Contact, Input, Location, Photo, Press, Reply, Text, Unsupported
from bot.domain.normalize import ascii_digits, clean_text, parse_count, parse_phone
from bot.domain.province import Province
from bot.domain.questionnaire import CONSENT_VERSION, FORMS, PROFILE, PROPOSAL, Form, Kind, Question

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
_DONE_WORDS = words("words.done")
_DECORATION = " \t\n◀▶✔✅✖️📝📋👤🔒❓"


class Invalid(Exception):
    """An answer that does not fit its question; carries the catalogue key and values."""

    def __init__(self, key: str, **values: object) -> None:
        super().__init__(key)
        self.key = key
        self.values = values


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
    return _COMMAND_WORDS.get(bare(typed))


def bare(typed: str) -> str:
    """Return typed text case-folded, without the symbols a button label may start with."""
    return typed.strip(_DECORATION).casefold()


class Engine:
    """Runs the questionnaire for one volunteer at a time, without side effects."""

    def __init__(self, province: Province) -> None:
        self.province = province

    def handle(self, state: State, who: Who, event: Input) -> Turn:
        """Return the new state and the actions that answer one input."""
        if not who.consented:
            return self._before_consent(who, event)
        if isinstance(event, Press) and event.data.startswith("lang:"):
            return self._set_language(state, who, event.data[5:])
        if isinstance(event, Press) and event.data.startswith("revise:"):
            return self._revise(state, who, event.data[7:])
        command = command_of(event)
        if command is not None:
            return self._command(command, state, who)
        if state.confirm is not None:
            return self._confirm(state, who, event)
        if state.form is None or state.step is None:
            return self._idle(state, who, event)
        if state.step == REVIEW:
            return self._review(state, who, event)
        return self._answer(state, who, event)

    # consent --------------------------------------------------------------------------------

    def _before_consent(self, who: Who, event: Input) -> Turn:
        language = who.language
        if isinstance(event, Press):
            parts = event.data.split(":")
            if parts[0] == "lang" and parts[-1] in LANGUAGES:
                return Turn(None, (views.consent(parts[-1], self.province),))
            if parts[0] == "consent" and len(parts) == 3 and parts[2] in LANGUAGES:
                language = parts[2]
                if parts[1] == "yes":
                    who = replace(who, consented=True, language=language)
                    state = State(form=PROFILE.name)
                    first = self._next(state, who)
                    return Turn(
                        first.state,
                        (
                            GiveConsent(language, CONSENT_VERSION),
                            Reply(text(language, "consent.thanks")),
                            *first.actions,
                        ),
                    )
                return Turn(None, (Reply(text(language, "declined")),))
        return Turn(None, (views.consent(language, self.province),))

    # commands -------------------------------------------------------------------------------

    def _command(self, command: str, state: State, who: Who) -> Turn:
        lang = who.language
        state = replace(state, confirm=None)
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
                state = State(form=PROFILE.name, answers=dict(who.profile))
            return self._next(state, who)
        turn = self._next(State(form=PROPOSAL.name), who)
        return Turn(turn.state, (Reply(text(lang, "proposal.intro")), *turn.actions))

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
        kind = state.confirm
        answer = event.data if isinstance(event, Press) else ""
        if answer == f"{kind}:yes":
            if kind == "delete":
                return Turn(None, (EraseMyData(), Reply(text(lang, "delete.done"))))
            return Turn(State(), (views.menu(lang, text(lang, "cancel.done")),))
        if answer == f"{kind}:no":
            lead = Reply(text(lang, "delete.kept")) if kind == "delete" else None
            return self._with_prompt(replace(state, confirm=None), who, lead)
        return Turn(state, (Reply(text(lang, "err.pick")), views.confirm(lang, kind or "cancel")))

    def _idle(self, state: State, who: Who, event: Input) -> Turn:
        lang = who.language
        if isinstance(event, Press):
            return Turn(state, (views.menu(lang, text(lang, "err.stale")),))
        if isinstance(event, Unsupported):
            return Turn(state, (views.menu(lang, text(lang, "err.unsupported")),))
        return Turn(state, (views.menu(lang),))

    def _review(self, state: State, who: Who, event: Input) -> Turn:
        form = self._form(state)
        assert form is not None
        lang = who.language
        data = event.data if isinstance(event, Press) else ""
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
        key = "err.stale" if data else "err.pick"
        return self._with_prompt(state, who, Reply(text(lang, key)))

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
            raise Invalid("err.stale")
        if isinstance(event, Contact) and question.kind is Kind.PHONE:
            return self._phone(event.phone)
        if isinstance(event, Location) and question.kind is Kind.PLACE:
            return {"latitude": event.latitude, "longitude": event.longitude}
        if not isinstance(event, Text):
            kind = "err.pick" if question.kind in (Kind.CHOICE, Kind.DISTRICT) else None
            raise Invalid(
                kind
                or ("err.unsupported" if isinstance(event, Unsupported) else "err.text_expected")
            )
        typed = clean_text(event.text)
        if question.kind in (Kind.CHOICE, Kind.DISTRICT):
            return self._match(state, who, question, typed)
        if question.kind is Kind.PHONE:
            return self._phone(typed)
        if question.kind is Kind.NUMBER:
            number = parse_count(typed)
            if number is None:
                raise Invalid("err.number")
            if not question.minimum <= number <= question.maximum:
                raise Invalid(
                    "err.number_range", minimum=question.minimum, maximum=f"{question.maximum:,}"
                )
            return number
        if not typed:
            raise Invalid("err.text_expected")
        if len(typed) < question.min_length:
            raise Invalid("err.too_short", minimum=question.min_length)
        if len(typed) > question.max_length:
            raise Invalid("err.too_long", length=f"{len(typed):,}", maximum=question.max_length)
        return typed

    def _phone(self, typed: str) -> str:
        phone = parse_phone(typed)
        if phone is None:
            raise Invalid("err.phone")
        return phone.e164

    def _match(self, state: State, who: Who, question: Question, typed: str) -> str:
        codes = self._options(state, who, question)
        folded = typed.casefold()
        digits = ascii_digits(folded)
        if digits.isdigit() and 1 <= int(digits) <= len(codes):
            return codes[int(digits) - 1]
        for code in codes:
            labels = {views.option_label(lang, question, code, self.province) for lang in LANGUAGES}
            if folded in {label.casefold() for label in labels}:
                return code
        raise Invalid("err.pick")

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
            chosen = [
                self._match(state, who, question, part.strip())
                for part in typed.replace("、", ",").split(",")
                if part.strip()
            ]
            if chosen:
                return self._finish_multi(state, who, question, chosen)
        raise Invalid("err.pick")

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
        moved = replace(state, answers=answers, history=history, pending=[], step=None)
        turn = self._next(moved, who)
        if question.kind in (Kind.PHONE, Kind.PLACE) and value is not None:
            # a plain acknowledgement also lets channels put away a share-phone/location keyboard
            shown = views.format_value(who.language, question, value, self.province)
            saved = Reply(text(who.language, "saved", value=shown), closes_keyboard=True)
            return Turn(turn.state, (saved, *turn.actions))
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
            turn = self._next(State(form=PROPOSAL.name), who)
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
