"""The questionnaire as data: the profile form and the proposal form (see docs/domain.md)."""

from dataclasses import dataclass, field
from enum import StrEnum


class Kind(StrEnum):
    """How a question is answered."""

    CHOICE = "choice"
    MULTI = "multi"
    TEXT = "text"
    NUMBER = "number"
    PHONE = "phone"
    DISTRICT = "district"
    PLACE = "place"
    PHOTOS = "photos"


@dataclass(frozen=True)
class Question:
    """One question; its texts live in the catalogues under `q.<key>` and `label.<key>`."""

    key: str
    kind: Kind
    options: tuple[str, ...] = ()
    # options that depend on an earlier answer, e.g. sub-groups by target group
    options_by: dict[str, tuple[str, ...]] = field(default_factory=dict)
    depends_on: str | None = None
    # asked only when the answer to `when[0]` is, or contains, `when[1]`
    when: tuple[str, str] | None = None
    optional: bool = False
    # lengths count the characters a reader sees (grapheme clusters), not code points
    min_length: int = 1
    max_length: int = 500
    # free text that must say something: at least this many words (Thai words too)
    min_words: int = 0
    # asked again whenever the answer to this other question changes (sub-district by district)
    follows: str | None = None
    minimum: int = 1
    maximum: int = 10_000_000
    max_items: int = 3

    def option_codes(self, answers: dict[str, object]) -> tuple[str, ...]:
        """Return the option codes offered given the answers so far."""
        if self.depends_on is not None:
            return self.options_by.get(str(answers.get(self.depends_on)), ())
        return self.options

    def applies(self, answers: dict[str, object]) -> bool:
        """Tell whether this question is asked given the answers so far."""
        if self.when is None:
            return True
        source, value = self.when
        answer = answers.get(source)
        return answer == value or (isinstance(answer, list) and value in answer)


@dataclass(frozen=True)
class Form:
    """An ordered set of questions answered together and reviewed on one card."""

    name: str
    questions: tuple[Question, ...]

    def question(self, key: str) -> Question | None:
        """Return the question with a key, or None."""
        return next((q for q in self.questions if q.key == key), None)

    def next_question(self, answers: dict[str, object]) -> Question | None:
        """Return the first question that applies and is not answered yet."""
        return next(
            (q for q in self.questions if q.applies(answers) and q.key not in answers), None
        )

    def dependents(self, key: str) -> set[str]:
        """Return the keys whose options or relevance follow, directly or not, from a key."""
        found: set[str] = set()
        frontier = {key}
        while frontier:
            current = frontier.pop()
            for q in self.questions:
                follows = (
                    q.depends_on == current
                    or q.follows == current
                    or (q.when is not None and q.when[0] == current)
                )
                if follows and q.key not in found:
                    found.add(q.key)
                    frontier.add(q.key)
        return found

    def prune(self, answers: dict[str, object]) -> dict[str, object]:
        """Drop answers to questions that no longer apply."""
        return {k: v for k, v in answers.items() if (q := self.question(k)) and q.applies(answers)}


TARGET_GROUPS = ("children_youth", "elderly", "disabled_disadvantaged", "working_age")

SUBGROUPS: dict[str, tuple[str, ...]] = {
    "children_youth": ("orphan", "multi_disabled", "stateless", "teen_mother", "other"),
    "elderly": ("unaware_of_rights", "living_alone", "bedridden", "other"),
    "disabled_disadvantaged": ("no_disability_card", "no_registration_status", "other"),
    "working_age": ("single_mother", "informal_worker", "other"),
}

NETWORK_TYPES = (
    "youth_council",
    "women_org",
    "elderly_club",
    "public_benefit_org",
    "community_welfare_org",
    "welfare_fund",
    "disability_org",
    "volunteer",
    "other",
)

HELP_RECEIVED = ("none", "not_enough", "enough", "unknown")
RESPONSIBLE = (
    "provincial_office",
    "local_admin",
    "community_fund",
    "health",
    "education",
    "district_office",
    "labour",
    "community",
    "other",
)
BUDGET = ("unknown", "under_10k", "10k_50k", "50k_200k", "over_200k")


def budget_band(baht: int) -> str:
    """Return the budget option an amount in baht falls in (bands include their upper end)."""
    if baht < 10_000:
        return "under_10k"
    if baht <= 50_000:
        return "10k_50k"
    return "50k_200k" if baht <= 200_000 else "over_200k"


# free text up to this many characters is kept; longer text is kept aside and cut on request
LONG_TEXT = 4000
URGENCY = ("urgent", "this_year", "long_term")

PROFILE = Form(
    "profile",
    (
        Question("full_name", Kind.TEXT, min_length=2, max_length=100),
        Question("phone", Kind.PHONE),
        Question("network", Kind.CHOICE, options=NETWORK_TYPES),
        Question("network_other", Kind.TEXT, when=("network", "other"), max_length=100),
        Question("organisation", Kind.TEXT, optional=True, max_length=200),
        Question("district", Kind.DISTRICT),
    ),
)

PROPOSAL = Form(
    "proposal",
    (
        Question("target_group", Kind.CHOICE, options=TARGET_GROUPS),
        Question("subgroup", Kind.CHOICE, options_by=SUBGROUPS, depends_on="target_group"),
        Question("subgroup_other", Kind.TEXT, when=("subgroup", "other"), max_length=200),
        Question("problem", Kind.TEXT, min_words=2, max_length=LONG_TEXT),
        Question("people_affected", Kind.NUMBER),
        Question("district", Kind.DISTRICT),
        Question("location", Kind.PLACE, optional=True, max_length=200, follows="district"),
        Question("help_received", Kind.CHOICE, options=HELP_RECEIVED),
        Question("solution", Kind.TEXT, min_words=2, max_length=LONG_TEXT),
        Question("expected_result", Kind.TEXT, min_words=2, max_length=LONG_TEXT),
        Question("resources", Kind.TEXT, optional=True, max_length=LONG_TEXT),
        Question("budget", Kind.CHOICE, options=BUDGET, optional=True),
        Question("responsible", Kind.MULTI, options=RESPONSIBLE),
        Question("responsible_other", Kind.TEXT, when=("responsible", "other"), max_length=200),
        Question("urgency", Kind.CHOICE, options=URGENCY),
        # asked once everything is told, when a short name comes easily
        Question("title", Kind.TEXT, min_length=3, max_length=100),
        Question("photos", Kind.PHOTOS, optional=True, max_items=3),
    ),
)

FORMS = {form.name: form for form in (PROFILE, PROPOSAL)}
# the PDPA notice's version: a volunteer who consented to an older one is asked again
CONSENT_VERSION = "2026-12"
