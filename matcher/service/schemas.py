"""Request and response bodies of the JSON API; the OpenAPI document is generated from these."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool

from ..contract import Activity, CaseRef, Day, Need, Profile, Wellbeing

MAX_LIMIT = 50


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, hide_input_in_errors=True)


class MatchRequest(_Body):
    """Suggestions for one person (contract §6)."""

    profile: Profile
    limit: Annotated[int, Field(ge=1, le=MAX_LIMIT)] = 10


class MatchOut(BaseModel):
    activity_id: str
    name: str
    score: float
    distance_km: float | None
    reasons: list[str]


class MatchResponse(BaseModel):
    id: str | None = Field(default=None, description="the profile's id, echoed back")
    matches: list[MatchOut]
    model_version: str
    notes: list[str] | None = Field(
        default=None,
        description="present when the list is empty or shorter than the limit asked for, or "
        "when the nearest activities beyond the person's usual travel distance filled it (no "
        "max_travel_km stated): why, in words; names profile fields, never their values "
        "(max_travel_km aside)",
    )


class ActivityOut(Activity):
    distance_km: float | None = Field(default=None, description="from the postcode searched")
    inferred_needs: list[Need] | None = Field(
        default=None, description="need codes inferred from the text, when none are listed"
    )


class ActivityPage(BaseModel):
    """One page of activities, in the style of Open Referral UK v3."""

    total_items: int
    total_pages: int
    page_number: int
    size: int
    first_page: bool
    last_page: bool
    empty: bool
    contents: list[ActivityOut]


class ActivityQuery(BaseModel):
    model_config = ConfigDict(extra="ignore", hide_input_in_errors=True)
    text: Annotated[str, Field(min_length=1, max_length=200)] | None = None
    postcode: Annotated[str, Field(min_length=1, max_length=10)] | None = None
    proximity: Annotated[float, Field(gt=0, le=1_000_000, allow_inf_nan=False)] | None = Field(
        default=None, description="metres from the postcode"
    )
    need: Need | None = None
    day: Day | None = None
    page: Annotated[int, Field(ge=1, le=1_000_000)] = 1
    per_page: Annotated[int, Field(ge=1, le=100)] = 20


class ReferralRequest(_Body):
    """A link worker referred this person to this activity."""

    profile: Profile
    activity_id: Annotated[str, Field(min_length=1, max_length=200)]
    shown: list[Annotated[str, Field(max_length=200)]] | None = Field(
        default=None, max_length=100, description="the activity ids suggested, in order"
    )
    case: CaseRef | None = None
    wellbeing: Wellbeing | None = Field(
        default=None, description="baseline ONS4 personal wellbeing, before the activity"
    )


class ReferralCreated(BaseModel):
    referral_id: str


class OutcomeRequest(_Body):
    attended: StrictBool = Field(description="whether the person went at least once")
    sessions_attended: Annotated[int, Field(ge=0, le=10_000)] | None = None
    correction: StrictBool = Field(
        default=False,
        description="true to correct an outcome already recorded; without it a second outcome "
        "is refused with 409",
    )
    declined: StrictBool = Field(
        default=False,
        description="the person chose not to go; attended must then be false (else 422)",
    )
    wellbeing: Wellbeing | None = Field(
        default=None, description="ONS4 personal wellbeing at follow-up"
    )


class OutcomeRecorded(BaseModel):
    referral_id: str
    activity_id: str
    date: str
    attended: bool
    sessions_attended: int | None = None
    correction: bool = False
    declined: bool = False
    wellbeing: Wellbeing | None = None


class OutcomeOut(BaseModel):
    """One outcome as recorded: corrections are added, never overwrite."""

    attended: bool
    sessions_attended: int | None = None
    recorded_at: str = Field(description="when it was recorded (ISO 8601)")
    recorded_by: str = Field(description="who recorded it: user:NAME, key:NAME, bootstrap-key, "
                             "open or system")  # fmt: skip
    correction: bool
    declined: bool = False
    wellbeing: Wellbeing | None = Field(default=None, description="ONS4 at follow-up")


class ReferralOut(BaseModel):
    """A referral with its outcome history, oldest first (each read is audited)."""

    referral_id: str
    activity_id: str
    date: str
    model_version: str | None = None
    shown: list[str] | None = None
    profile: dict[str, Any]
    outcomes: list[OutcomeOut]
    case: str | None = Field(default=None, description="the case reference, when given")
    created_by: str | None = Field(
        default=None, description="who made it: user:NAME, key:NAME or system (None if unknown)"
    )
    wellbeing: Wellbeing | None = Field(default=None, description="baseline ONS4")
    status: Literal["open", "attended", "declined", "not_attended"] = Field(
        default="open", description="the latest outcome in a word"
    )


class ModelCard(BaseModel):
    model_config = ConfigDict(extra="allow")
    version: str
    kind: str
    trained: bool


class Health(BaseModel):
    """Liveness: the process answers. It touches neither the store nor the disk."""

    status: Literal["ok"]
    model_version: str
    catalogue_size: int
    catalogue_version: str | None = None
    note: str | None = None


class Ready(BaseModel):
    """Readiness: a real write round trip to the store, and what is being served."""

    status: Literal["ready", "unavailable"]
    database: Literal["ok", "unavailable"]
    model_version: str
    catalogue_version: str | None = None
    catalogue_size: int


class FieldProblem(BaseModel):
    path: str = Field(description="where in the request, e.g. profile.age; never the value")
    expected: str


class Problem(BaseModel):
    """An RFC 9457 problem."""

    model_config = ConfigDict(extra="allow")
    type: str = "about:blank"
    title: str
    status: int
    detail: str | None = None
    request_id: str | None = None
    error_id: str | None = Field(default=None, description="quote it when reporting a fault")
    errors: list[FieldProblem] | None = None


# --- errors as RFC 9457 problems --------------------------------------------------------------
