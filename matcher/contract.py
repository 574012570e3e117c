"""The exchange contract (../shared/contract): vocabularies and validated types for activities,
patient profiles and uptake records, with error messages that name the field, never the value."""

from __future__ import annotations

import json
from datetime import date
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    ValidationError,
    ValidationInfo,
    WithJsonSchema,
    field_validator,
    model_validator,
)

from .errors import InvalidActivity, InvalidInput, InvalidProfile, InvalidUptake

# --- vocabularies (contract §1) -------------------------------------------------------------

NEED_DESCRIPTIONS: dict[str, str] = {
    "loneliness": "social isolation, loneliness",
    "mental_wellbeing": "low mood, anxiety, stress",
    "physical_activity": "inactive, wants to get moving",
    "long_term_condition": "living with a long-term condition (diabetes, COPD, chronic pain, "
    "dementia)",
    "weight": "healthy weight, healthy eating",
    "money": "money worries, debt, benefits",
    "housing": "housing problems",
    "employment": "work, volunteering, training for work",
    "learning": "learning new skills, education",
    "carers": "support for unpaid carers",
    "bereavement": "bereavement and loss",
    "substance_use": "alcohol or drug recovery",
    "food": "not enough food",
    "digital": "getting online, digital skills",
}
NEEDS: tuple[str, ...] = tuple(NEED_DESCRIPTIONS)
ACCESSIBILITY: tuple[str, ...] = (
    "wheelchair",
    "step_free",
    "hearing_loop",
    "accessible_toilet",
    "bsl",
    "large_print",
)
DAYS: tuple[str, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
PARTS: tuple[str, ...] = ("am", "pm", "eve")
DAY_PARTS: tuple[str, ...] = tuple(f"{d}_{p}" for d in DAYS for p in PARTS)
TRAVEL_MODES: tuple[str, ...] = ("walk", "public_transport", "car")

Need = Literal[
    "loneliness",
    "mental_wellbeing",
    "physical_activity",
    "long_term_condition",
    "weight",
    "money",
    "housing",
    "employment",
    "learning",
    "carers",
    "bereavement",
    "substance_use",
    "food",
    "digital",
]
Feature = Literal[
    "wheelchair", "step_free", "hearing_loop", "accessible_toilet", "bsl", "large_print"
]
Day = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
DayPart = Literal[
    "mon_am", "mon_pm", "mon_eve", "tue_am", "tue_pm", "tue_eve", "wed_am", "wed_pm", "wed_eve",
    "thu_am", "thu_pm", "thu_eve", "fri_am", "fri_pm", "fri_eve", "sat_am", "sat_pm", "sat_eve",
    "sun_am", "sun_pm", "sun_eve",
]  # fmt: skip
Travel = Literal["walk", "public_transport", "car"]
Format = Literal["group", "one_to_one"]
Gender = Literal["female", "male"]

Text = Annotated[str, Field(max_length=20_000)]
ShortText = Annotated[str, Field(max_length=500)]
Time = Annotated[str, Field(pattern=r"^([01]\d|2[0-3]):[0-5]\d$")]
Language = Annotated[str, Field(pattern=r"^[a-z]{2}$")]
Latitude = Annotated[float, Field(ge=-90, le=90, allow_inf_nan=False)]
Longitude = Annotated[float, Field(ge=-180, le=180, allow_inf_nan=False)]


def day_part(start: str) -> str:
    """The contract's day part of a session starting at ``HH:MM``: am, pm or eve."""
    hour = int(start[:2])
    return "am" if hour < 12 else ("pm" if hour < 17 else "eve")


def _unique(values: list) -> list:
    return list(dict.fromkeys(values))


def _string_or_strings(value: Any) -> Any:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return value
    raise ValueError("expected a string or a list of strings")


_INTERESTS_SCHEMA = {
    "anyOf": [
        {"type": "string", "maxLength": 2000},
        {"type": "array", "items": {"type": "string", "maxLength": 2000}, "maxItems": 50},
    ],
    "description": 'free text, as said: "used to sing in a choir, likes the allotment"',
}


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, hide_input_in_errors=True)

    def to_dict(self) -> dict[str, Any]:
        """The contract form: JSON-ready, without fields left unset."""
        return self.model_dump(mode="json", exclude_none=True, exclude_unset=True)


# --- activity (contract §2) -----------------------------------------------------------------


class ActivityLocation(_Model):
    """Where an activity happens: coordinates and/or a postcode, and an optional address."""

    model_config = ConfigDict(extra="ignore")
    lat: Latitude | None = None
    lon: Longitude | None = None
    postcode: ShortText | None = None
    address: Text | None = None

    @model_validator(mode="after")
    def _coordinates_pair(self) -> ActivityLocation:
        if (self.lat is None) != (self.lon is None):
            raise ValueError("expected both lat and lon, or neither")
        return self


class Session(_Model):
    """One weekly session: a day and start and end times (``"10:00"``)."""

    model_config = ConfigDict(extra="ignore")
    day: Day
    start: Time
    end: Time | None = None


class Contact(_Model):
    model_config = ConfigDict(extra="ignore")
    phone: ShortText | None = None
    email: ShortText | None = None
    url: Text | None = None


class Activity(_Model):
    """One catalogue record. Unknown fields are ignored here and reported by the loader."""

    model_config = ConfigDict(extra="ignore")
    id: Annotated[str, Field(min_length=1, max_length=200)]
    name: Annotated[str, Field(min_length=1, max_length=1000)]
    description: Text | None = None
    organisation: ShortText | None = None
    needs: list[Need] = Field(default_factory=list, max_length=len(NEEDS))
    tags: list[ShortText] = Field(default_factory=list, max_length=100)
    location: ActivityLocation | None = None
    online: StrictBool = False
    sessions: list[Session] = Field(default_factory=list, max_length=100)
    cost: Annotated[float, Field(ge=0, allow_inf_nan=False)] | None = None
    accessibility: list[Feature] = Field(default_factory=list)
    min_age: Annotated[int, Field(ge=0, le=130)] | None = None
    max_age: Annotated[int, Field(ge=0, le=130)] | None = None
    gender: Gender | None = None
    format: Format | None = None
    languages: list[Language] = Field(default_factory=list, max_length=50)
    referral: Literal["self", "professional"] | None = None
    capacity: Annotated[int, Field(ge=0)] | None = None
    status: Literal["active", "inactive"] = "active"
    contact: Contact | None = None

    @field_validator("id", "name")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("expected a non-empty string")
        return value.strip()

    @field_validator("needs", "accessibility", "tags", "languages")
    @classmethod
    def _dedupe(cls, value: list) -> list:
        return _unique(value)

    @model_validator(mode="after")
    def _age_range(self) -> Activity:
        if self.min_age is not None and self.max_age is not None and self.min_age > self.max_age:
            raise ValueError("expected min_age to be no more than max_age")
        return self


# --- patient profile (contract §3) ----------------------------------------------------------


class ProfileLocation(_Model):
    """Where the person is: a full or partial UK postcode, or coordinates."""

    model_config = ConfigDict(extra="forbid", strict=True)
    postcode: Annotated[str, Field(min_length=1, max_length=10)] | None = None
    lat: Latitude | None = None
    lon: Longitude | None = None

    @model_validator(mode="after")
    def _one_form(self) -> ProfileLocation:
        has_point = self.lat is not None and self.lon is not None
        if (self.lat is None) != (self.lon is None):
            raise ValueError("expected both lat and lon")
        if not has_point and self.postcode is None:
            raise ValueError("expected a postcode or lat and lon")
        return self


class Profile(_Model):
    """What matching needs to know about one person. Unknown fields are refused, not stored."""

    model_config = ConfigDict(extra="forbid", strict=True)
    id: Annotated[str, Field(max_length=200)] | None = None
    age: Annotated[int, Field(ge=16, le=120)] | None = None
    location: ProfileLocation | None = None
    needs: list[Need] = Field(default_factory=list, max_length=len(NEEDS) * 2)
    interests: Annotated[
        list[Annotated[str, Field(max_length=2000)]],
        BeforeValidator(_string_or_strings),
        Field(max_length=50),
        WithJsonSchema(_INTERESTS_SCHEMA),
    ] = Field(default_factory=list)
    travel: Travel | None = None
    max_travel_km: Annotated[float, Field(gt=0, le=1000, allow_inf_nan=False)] | None = None
    accessibility: list[Feature] = Field(default_factory=list, max_length=20)
    availability: list[DayPart] | None = Field(default=None, max_length=len(DAY_PARTS) * 2)
    max_cost: Annotated[float, Field(ge=0, allow_inf_nan=False)] | None = None
    format: Format | None = None
    online: Literal["no", "ok", "only"] = "ok"
    gender: Annotated[str, Field(max_length=50)] | None = None
    languages: list[Language] = Field(default_factory=list, max_length=20)
    exclude: list[Annotated[str, Field(max_length=200)]] = Field(
        default_factory=list, max_length=10_000
    )

    @field_validator("needs", "accessibility", "availability", "languages", "exclude")
    @classmethod
    def _dedupe(cls, value: list | None) -> list | None:
        return None if value is None else _unique(value)

    @field_validator("gender")
    @classmethod
    def _gender_case(cls, value: str | None) -> str | None:
        return None if value is None else value.strip().lower()

    @property
    def interest_text(self) -> str:
        return " ; ".join(self.interests)


# --- referral lifecycle (contract §7, v1.1) -------------------------------------------------

# The pattern is the whole check: a case reference is pseudonymous by shape (no spaces, so no
# "Mary Smith"; no "/" or "@", so no dates of birth or email addresses).
CASE_PATTERN = r"^[A-Za-z0-9_-]{1,40}$"
CaseRef = Annotated[
    str,
    Field(
        pattern=CASE_PATTERN,
        description="the link worker's pseudonymous case reference (1-40 of A-Z a-z 0-9 - _), "
        "never a name; groups the referrals of one plan",
    ),
]
Score = Annotated[int, Field(ge=0, le=10)]


class Wellbeing(_Model):
    """ONS4 personal wellbeing: the four ONS questions, each a whole number 0-10 (for anxiety,
    lower is better). All four are required; nothing else is accepted."""

    model_config = ConfigDict(extra="forbid", strict=True)
    life_satisfaction: Score = Field(
        description="Overall, how satisfied are you with your life nowadays?"
    )
    worthwhile: Score = Field(
        description="Overall, to what extent do you feel that the things you do in your life "
        "are worthwhile?"
    )
    happiness: Score = Field(description="Overall, how happy did you feel yesterday?")
    anxiety: Score = Field(description="Overall, how anxious did you feel yesterday?")


# --- uptake record (contract §4) ------------------------------------------------------------


class UptakeRecord(_Model):
    """One referral of one person to one activity, and whether they went. The v1.1 fields
    (``declined``, ``wellbeing_before``, ``wellbeing_after``, ``case``) are optional and read
    for reports, not for training."""

    model_config = ConfigDict(extra="forbid")
    referral_id: Annotated[str, Field(min_length=1, max_length=200)]
    date: date
    profile: Profile
    activity_id: Annotated[str, Field(min_length=1, max_length=200)]
    attended: StrictBool
    sessions_attended: Annotated[int, Field(ge=0)] | None = None
    shown: list[Annotated[str, Field(max_length=200)]] | None = None
    declined: StrictBool | None = None
    wellbeing_before: Wellbeing | None = None
    wellbeing_after: Wellbeing | None = None
    case: CaseRef | None = None

    @field_validator("declined")
    @classmethod
    def _declined_not_attended(cls, value: bool | None, info: ValidationInfo) -> bool | None:
        # Declining means not going: a record saying both is contradictory, not merely odd.
        if value and info.data.get("attended"):
            raise ValueError("expected false when attended is true (declined means not going)")
        return value


# --- validation with messages safe for health data ------------------------------------------

_EXPECTED = {
    "missing": "is required",
    "extra_forbidden": "is not a contract field (unknown fields are refused)",
    "int_type": "expected a whole number",
    "int_parsing": "expected a whole number",
    "int_from_float": "expected a whole number",
    "float_type": "expected a number",
    "float_parsing": "expected a number",
    "finite_number": "expected a finite number",
    "string_type": "expected a string",
    "bool_type": "expected true or false",
    "bool_parsing": "expected true or false",
    "int_from_bool": "expected a whole number",
    "list_type": "expected a list",
    "dict_type": "expected an object",
    "model_type": "expected an object",
    "model_attributes_type": "expected an object",
    "date_type": "expected a date as YYYY-MM-DD",
    "date_parsing": "expected a date as YYYY-MM-DD",
    "date_from_datetime_parsing": "expected a date as YYYY-MM-DD",
    "date_from_datetime_inexact": "expected a date as YYYY-MM-DD",
}


def _describe(error: dict[str, Any]) -> str:
    kind, ctx = error["type"], error.get("ctx") or {}
    if kind in _EXPECTED:
        return _EXPECTED[kind]
    if kind == "literal_error":
        return f"expected one of {ctx.get('expected', '')}"
    if kind in ("greater_than_equal", "greater_than", "less_than_equal", "less_than"):
        sign = {"greater_than_equal": "≥", "greater_than": ">", "less_than_equal": "≤",
                "less_than": "<"}[kind]  # fmt: skip
        bound = next(iter(ctx.values()), "")
        return f"expected a number {sign} {bound}"
    if kind == "string_too_short":
        return "expected a non-empty string"
    if kind == "string_too_long":
        return f"expected at most {ctx.get('max_length')} characters"
    if kind == "too_long":
        return f"expected at most {ctx.get('max_length')} items"
    if kind == "string_pattern_mismatch":
        pattern = ctx.get("pattern", "")
        if "[0-5]" in pattern:
            return 'expected a time as "HH:MM"'
        if "[a-z]{2}" in pattern:
            return "expected a two-letter ISO 639-1 language code"
        if pattern == CASE_PATTERN:
            return "expected 1-40 letters, digits, - or _ (a case reference, never a name)"
        return "expected a different format"
    if kind == "value_error":
        # Our own validators word these messages, without the value.
        return str(ctx.get("error", "invalid value"))
    return str(error.get("msg", "invalid value")).split(",")[0]


def problems_from(exc: ValidationError, prefix: str = "") -> list[tuple[str, str]]:
    """Turn a pydantic error into ``(field_path, expected)`` pairs that never hold the value."""
    problems = []
    for error in exc.errors(include_input=False, include_url=False):
        loc = [str(p) for p in error["loc"] if not str(p).startswith("function-")]
        path = ".".join([prefix, *loc] if prefix else loc)
        problems.append((path or prefix, _describe(error)))
    return problems


def _validate(model: type[_Model], data: Any, error: type[InvalidInput], prefix: str) -> Any:
    if not isinstance(data, dict):
        raise error([(prefix, "expected a JSON object")])
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise error(problems_from(exc, prefix)) from None


def parse_profile(data: Any, prefix: str = "profile") -> Profile:
    """Validate a profile mapping; raises :class:`InvalidProfile` naming each bad field."""
    return _validate(Profile, data, InvalidProfile, prefix)


def parse_activity(data: Any, prefix: str = "activity") -> Activity:
    """Validate one catalogue record; raises :class:`InvalidActivity` naming each bad field."""
    return _validate(Activity, data, InvalidActivity, prefix)


def parse_uptake(data: Any, prefix: str = "") -> UptakeRecord:
    """Validate one uptake record; raises :class:`InvalidUptake` naming each bad field."""
    return _validate(UptakeRecord, data, InvalidUptake, prefix)


def loads_json(text: str, what: str = "JSON") -> Any:
    """``json.loads`` with a one-line :class:`InvalidInput` instead of a decoder traceback."""
    try:
        return json.loads(text, parse_constant=_refuse_constant)
    except json.JSONDecodeError as exc:
        raise InvalidInput(
            f"malformed {what} (line {exc.lineno}, column {exc.colno}: {exc.msg})"
        ) from None
    except ValueError as exc:
        raise InvalidInput(f"malformed {what} ({exc})") from None


def _refuse_constant(name: str) -> float:
    raise ValueError(f"{name} is not valid JSON")


def json_schema(kind: str) -> dict[str, Any]:
    """The JSON Schema of ``profile``, ``activity`` or ``uptake``."""
    model = {"profile": Profile, "activity": Activity, "uptake": UptakeRecord}[kind]
    return model.model_json_schema()
