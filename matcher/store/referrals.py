"""The referral store: which person was referred to which activity, and whether they went, so
the service's own outcomes can train the next model; and the governance around that health
data: accounts and API keys, an append-only audit trail, erasure, retention and a shared
sign-in throttle.

One :class:`Store` per process holds one pooled engine; its methods are thread-safe, and several
processes (gunicorn workers, replicas) may write at once. Each write is one short transaction
that commits before the method returns, so a write the caller saw succeed is stored once, and
its audit line with it.

Only what matching needs is kept: a full postcode is cut to its sector ("LS6 3HN" -> "LS6 3"),
which is all matching ever looks at (:func:`matcher.geo.lookup` resolves a full postcode to its
sector's centre).
"""

from __future__ import annotations

import json
import re
import time as clock
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from typing import Any, NamedTuple

from sqlalchemy import (
    Connection,
    Engine,
    Insert,
    delete,
    exists,
    func,
    insert,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.engine import RowMapping
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from ..errors import MatcherError, UnknownPostcode
from ..geo import normalise_postcode
from . import accounts as acc
from . import audit as trail
from . import demand as demand_lines
from .accounts import AccountError, ApiKey, User
from .database import (
    BUSY_TIMEOUT_MS,
    WRITE,
    StoreError,
    database_file,
    describe,
    fork_safe,
    make_engine,
    make_folder,
    parse_url,
    sqlite_in_use,
)
from .demand import Demand
from .migrate import check, upgrade_engine
from .tables import api_keys, audit, demand, outcomes, throttle, users
from .tables import referrals as table

__all__ = [
    "ONS4", "OutcomeExists", "Outcome", "Referral", "ReferralFact", "Store", "UnknownReferral",
    "check_case", "check_wellbeing", "district_of", "minimise",
]  # fmt: skip

FIELDS = ("id", "created_at", "date", "profile", "activity_id", "shown", "model_version",
          "case_ref", "created_by", "wellbeing")  # fmt: skip
COLUMNS = [table.c[name] for name in FIELDS]
OUTCOME_COLUMNS = [
    outcomes.c.referral_id, outcomes.c.attended, outcomes.c.sessions_attended,
    outcomes.c.recorded_at, outcomes.c.recorded_by, outcomes.c.correction, outcomes.c.declined,
    outcomes.c.wellbeing,
]  # fmt: skip

# The four ONS personal wellbeing questions, each scored 0-10 (for anxiety, lower is better).
ONS4 = ("life_satisfaction", "worthwhile", "happiness", "anxiety")
# A case reference is pseudonymous by shape: letters, digits, "-" and "_", at most 40.
_CASE = re.compile(r"[A-Za-z0-9_-]{1,40}")

# SQLite has no sequences; its writers take turns (BEGIN IMMEDIATE), so max + 1 is unique.
NEXT_SEQ = select(func.coalesce(func.max(table.c.seq), 0) + 1).scalar_subquery()

# A key's last use is written at most this often, not on every request.
TOUCH_SECONDS = 300
# Failed sign-ins older than this are dropped by ``purge``; no throttle looks further back.
THROTTLE_HORIZON_SECONDS = 24 * 3600
AUDIT_PAGE = 1000


class UnknownReferral(MatcherError, KeyError):
    """A referral id that is not in the store."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "unknown referral"


class OutcomeExists(MatcherError):
    """A referral already has an outcome, and this one was not marked as a correction."""


@dataclass(frozen=True)
class Outcome:
    """One outcome as recorded: what, when, by whom, and whether it replaced an earlier one."""

    attended: bool
    sessions_attended: int | None
    recorded_at: str
    recorded_by: str
    correction: bool
    declined: bool = False  # the person chose not to go (``attended`` is then False)
    wellbeing: dict[str, int] | None = None  # ONS4 at follow-up


@dataclass(frozen=True)
class Referral:
    """One stored referral and every outcome recorded for it (oldest first); ``attended``,
    ``sessions_attended``, ``outcome_at``, ``declined`` and ``wellbeing_after`` are the latest
    outcome's, None while there is none. ``case`` is the link worker's case reference,
    ``created_by`` the actor who made it ("user:alice"; None when unknown), ``wellbeing`` the
    baseline ONS4 scores (a dict of :data:`ONS4` -> 0-10, or None)."""

    id: str
    created_at: str
    date: str
    profile: dict[str, Any]
    activity_id: str
    shown: list[str] | None
    model_version: str | None
    outcomes: list[Outcome] = field(default_factory=list)
    case: str | None = None
    created_by: str | None = None
    wellbeing: dict[str, int] | None = None

    @property
    def latest(self) -> Outcome | None:
        return self.outcomes[-1] if self.outcomes else None

    @property
    def attended(self) -> bool | None:
        return None if self.latest is None else self.latest.attended

    @property
    def sessions_attended(self) -> int | None:
        return None if self.latest is None else self.latest.sessions_attended

    @property
    def outcome_at(self) -> str | None:
        return None if self.latest is None else self.latest.recorded_at

    @property
    def declined(self) -> bool | None:
        return None if self.latest is None else self.latest.declined

    @property
    def wellbeing_after(self) -> dict[str, int] | None:
        """The latest outcome's ONS4 scores (None when it gave none, or there is none)."""
        return None if self.latest is None else self.latest.wellbeing

    @property
    def status(self) -> str:
        """ "open" (no outcome yet), "attended", "declined" or "not_attended"."""
        if self.latest is None:
            return "open"
        if self.latest.declined:
            return "declined"
        return "attended" if self.latest.attended else "not_attended"

    def to_uptake(self) -> dict[str, Any]:
        """The contract's uptake record (§4), with the latest outcome; only for a referral
        with an outcome."""
        if self.attended is None:
            raise ValueError("a referral without an outcome is not an uptake record")
        out: dict[str, Any] = {
            "referral_id": self.id,
            "date": self.date,
            "profile": self.profile,
            "activity_id": self.activity_id,
            "attended": self.attended,
        }
        if self.sessions_attended is not None:
            out["sessions_attended"] = self.sessions_attended
        if self.shown is not None:
            out["shown"] = self.shown
        # Contract v1.1 (§7): present only when there is something to say, so a v1.0 record
        # reads as it always did.
        if self.declined:
            out["declined"] = True
        if self.wellbeing is not None:
            out["wellbeing_before"] = self.wellbeing
        if self.wellbeing_after is not None:
            out["wellbeing_after"] = self.wellbeing_after
        if self.case is not None:
            out["case"] = self.case
        return out


class ReferralFact(NamedTuple):
    """What the provision report needs of one referral, and nothing that identifies it: the
    day made, the postcode district of the person's stored postcode (None without one), the
    stated need codes in priority order, and the outcome: "attended", "declined",
    "not_attended", or None while there is none."""

    date: str
    district: str | None
    needs: tuple[str, ...]
    outcome: str | None


def check_case(case: Any) -> str | None:
    """A case reference as stored (None for none); ValueError naming the field otherwise."""
    if case is None:
        return None
    if not isinstance(case, str) or not _CASE.fullmatch(case):
        raise ValueError("case: expected 1-40 letters, digits, - or _")
    return case


def check_wellbeing(scores: Any, name: str = "wellbeing") -> dict[str, int] | None:
    """ONS4 scores as stored (None for none): exactly the four questions, whole numbers 0-10;
    ValueError naming the field otherwise."""
    if scores is None:
        return None
    if not isinstance(scores, dict) or set(scores) != set(ONS4):
        raise ValueError(f"{name}: expected the four ONS4 scores {', '.join(ONS4)}")
    for key in ONS4:
        value = scores[key]
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 10:
            raise ValueError(f"{name}.{key}: expected a whole number from 0 to 10")
    return {key: scores[key] for key in ONS4}


def _scores_text(scores: dict[str, int] | None) -> str | None:
    return None if scores is None else json.dumps(scores, separators=(",", ":"))


def district_of(profile: dict[str, Any]) -> str | None:
    """The postcode district ("LS6") of a stored profile's postcode; None without one."""
    location = profile.get("location")
    postcode = location.get("postcode") if isinstance(location, dict) else None
    if not isinstance(postcode, str):
        return None
    try:
        return normalise_postcode(postcode).partition(" ")[0]
    except UnknownPostcode:
        return None


def minimise(profile: dict[str, Any]) -> dict[str, Any]:
    """The profile as stored: a full postcode cut to its sector ("LS6 3HN" -> "LS6 3"), in
    :mod:`matcher.geo`'s canonical form; a partial postcode (or anything not shaped like a full
    one) is left as it is. Returns a copy; ``profile`` is not changed."""
    location = profile.get("location")
    postcode = location.get("postcode") if isinstance(location, dict) else None
    if not isinstance(postcode, str):
        return profile
    try:
        canonical = normalise_postcode(postcode)
    except UnknownPostcode:
        return profile
    outward, _, inward = canonical.partition(" ")
    if len(inward) != 3:  # a sector or a district: already no finer than matching needs
        return profile
    return {**profile, "location": {**location, "postcode": f"{outward} {inward[0]}"}}


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _stamp(when: datetime | None = None) -> str:
    return (when or _now()).isoformat(timespec="seconds")


class Store:
    """Referrals in an SQLite file or a PostgreSQL database.

    ``url`` is ``sqlite:///PATH`` or ``postgresql+psycopg://USER@HOST:PORT/DB`` (a plain
    ``postgresql://`` means psycopg too). Opening checks that the database's schema is this
    code's newest and raises :class:`StoreError` otherwise, naming what to do. With
    ``create=True`` it instead upgrades the schema itself, creating an SQLite file and its
    folder if need be (for the built-in SQLite default; elsewhere run ``matcher db upgrade``).

    ``actor`` arguments name who acts, as the audit trail records it: ``"user:alice"``,
    ``"key:case-system"``, ``"cli:root"`` or ``"system"``.
    """

    def __init__(self, url: str, *, create: bool = False):
        parsed = parse_url(url)
        self.url = parsed.render_as_string(hide_password=False)
        self._shown_url = parsed.render_as_string(hide_password=True)
        file = database_file(parsed)
        self.path: str | None = None if file is None else str(file)
        if file is not None and create:
            make_folder(file)
        elif file is not None and not file.is_file():
            raise StoreError(
                f'no referral database at {file}; run "matcher db upgrade" to create it'
            )
        engine = make_engine(parsed)
        self._in_use = lambda: sqlite_in_use(parsed)
        try:
            with self._in_use():
                if create:
                    upgrade_engine(engine)
                else:
                    with engine.connect() as conn:
                        check(conn)
        except SQLAlchemyError as exc:
            engine.dispose()
            raise StoreError(f"cannot open the referral database ({describe(exc)})") from exc
        except BaseException:
            engine.dispose()
            raise
        self._engine = fork_safe(engine)
        self._writer = engine.execution_options(**WRITE)

    def __repr__(self) -> str:
        return f"Store({self._shown_url!r})"

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- connections ---------------------------------------------------------------------

    @contextmanager
    def _transaction(self, *, write: bool = False) -> Iterator[Connection]:
        """One transaction, committed on leaving; on SQLite a writing one starts with
        BEGIN IMMEDIATE, so it waits for the write lock before reading anything."""
        engine: Engine = self._writer if write else self._engine
        try:
            with self._in_use(), engine.begin() as conn:
                yield conn
        except SQLAlchemyError as exc:
            what = "write to" if write else "read"
            raise StoreError(f"cannot {what} the referral database ({describe(exc)})") from exc

    def close(self) -> None:
        """Close the pooled connections (a later call opens new ones)."""
        self._engine.dispose()

    def ping(self) -> bool:
        """Whether the database answers a query on the referrals table."""
        try:
            with self._transaction() as conn:
                conn.execute(select(table.c.id).limit(1)).all()
        except StoreError:
            return False
        return True

    def writable(self) -> bool:
        """Whether a referral could be stored now: inserts a probe row the way
        :meth:`add_referral` does, in a transaction that is then rolled back."""
        probe = {
            "id": f"r-probe-{uuid.uuid4().hex}",
            "created_at": _stamp(),
            "date": _now().date().isoformat(),
            "profile": "{}",
            "activity_id": "probe",
        }
        try:
            with self._in_use(), self._writer.connect() as conn:
                transaction = conn.begin()
                try:
                    if conn.dialect.name == "postgresql":  # a probe waits briefly, not forever
                        conn.execute(text("SET LOCAL lock_timeout = '2s'"))
                    conn.execute(_insert(conn, probe))
                finally:
                    transaction.rollback()
        except SQLAlchemyError:
            return False
        return True

    def _scrub(self) -> None:
        """After an erasure or a purge on SQLite, move the WAL's frames into the file and empty
        the WAL, so the deleted rows (zeroed there: ``secure_delete``) leave no older copy in
        it. Best effort, and never waiting: with another process reading or writing, a
        TRUNCATE checkpoint would hold the write lock while it waited for them (stalling every
        writer for up to the busy timeout), so here it gives up at once and copies what it can
        (the WAL's old frames are then overwritten as SQLite reuses it)."""
        if self.path is None:
            return
        with self._in_use():
            self._checkpoint()

    def _checkpoint(self) -> None:
        try:
            raw = self._engine.raw_connection()
        except SQLAlchemyError:
            return
        try:
            sqlite = raw.driver_connection
            sqlite.execute("PRAGMA busy_timeout = 0").fetchall()
            try:
                sqlite.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
            finally:
                sqlite.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}").fetchall()
        except Exception:  # noqa: BLE001 - best effort; the erasure itself is committed
            raw.invalidate()  # its busy timeout is unknown now: never pool it again
        finally:
            raw.close()

    # --- referrals -----------------------------------------------------------------------

    def add_referral(
        self,
        profile: dict[str, Any],
        activity_id: str,
        shown: list[str] | None = None,
        model_version: str | None = None,
        *,
        actor: str = "system",
        when: datetime | None = None,
        case: str | None = None,
        wellbeing: dict[str, int] | None = None,
    ) -> str:
        """Record that a person (their contract profile) was referred; returns the new id.

        ``case`` is the link worker's pseudonymous case reference (1-40 of A-Z a-z 0-9 - _),
        ``wellbeing`` the baseline ONS4 scores; either may be None (ValueError naming the
        field when malformed). The profile is stored minimised (:func:`minimise`), and
        ``actor`` as who made it. Audited "referral.created"."""
        case = check_case(case)
        wellbeing = check_wellbeing(wellbeing)
        when = when or _now()
        referral_id = f"r-{uuid.uuid4().hex}"
        values = {
            "id": referral_id,
            "created_at": _stamp(when),
            "date": when.date().isoformat(),
            "profile": json.dumps(minimise(profile), ensure_ascii=False, separators=(",", ":")),
            "activity_id": activity_id,
            "shown": None if shown is None else json.dumps(shown, ensure_ascii=False),
            "model_version": model_version,
            "case_ref": case,
            "created_by": actor,
            "wellbeing": _scores_text(wellbeing),
        }
        line = trail.row(_now(), actor, "referral.created", referral_id=referral_id)
        with self._transaction(write=True) as conn:
            conn.execute(_insert(conn, values))
            conn.execute(insert(audit).values(**line))
        return referral_id

    def record_outcome(
        self,
        referral_id: str,
        attended: bool,
        sessions_attended: int | None = None,
        *,
        actor: str = "system",
        correction: bool = False,
        declined: bool = False,
        wellbeing: dict[str, int] | None = None,
    ) -> Referral:
        """Record whether the person went; every outcome is kept, with who and when.

        ``declined=True`` records that the person chose not to go (``attended`` must then be
        false: ValueError naming the field); ``wellbeing`` the ONS4 scores at follow-up.

        A referral's first outcome is recorded once: another one raises
        :class:`OutcomeExists` unless ``correction=True``, which adds it as the latest. Of two
        first outcomes recorded at once (any workers, any replicas) exactly one is stored; the
        other raises :class:`OutcomeExists`. Raises :class:`UnknownReferral` for an unknown id.
        Audited "outcome.recorded", or "outcome.corrected" when it replaced one. Returns the
        referral as this call left it."""
        if declined and attended:
            raise ValueError("attended: expected false when declined is true")
        wellbeing = check_wellbeing(wellbeing)
        with self._transaction(write=True) as conn:
            # Lock the referral (on SQLite, BEGIN IMMEDIATE already made this transaction the
            # only writer), so whoever comes second sees the first one's outcome.
            locked = conn.execute(
                select(table.c.id).where(table.c.id == referral_id).with_for_update()
            ).first()
            if locked is None:
                raise UnknownReferral(f"no referral with id {referral_id!r}")
            earlier = conn.execute(
                select(func.count()).select_from(outcomes)
                .where(outcomes.c.referral_id == referral_id)
            ).scalar_one()  # fmt: skip
            if earlier and not correction:
                raise OutcomeExists(
                    f"referral {referral_id!r} already has an outcome; send it as a correction "
                    "to replace it"
                )
            action = "outcome.corrected" if earlier else "outcome.recorded"
            line = trail.row(_now(), actor, action, referral_id=referral_id)
            try:
                conn.execute(
                    insert(outcomes).values(
                        referral_id=referral_id,
                        attended=int(bool(attended)),
                        sessions_attended=sessions_attended,
                        recorded_at=_stamp(),
                        recorded_by=actor,
                        correction=int(bool(earlier)),
                        declined=int(bool(declined)),
                        wellbeing=_scores_text(wellbeing),
                    )
                )
            except IntegrityError:  # the partial unique index: a first outcome got there first
                raise OutcomeExists(
                    f"referral {referral_id!r} already has an outcome; send it as a correction "
                    "to replace it"
                ) from None
            conn.execute(insert(audit).values(**line))
            row = conn.execute(select(*COLUMNS).where(table.c.id == referral_id)).mappings().one()
            return _referral(row, _outcomes(conn, [referral_id]).get(referral_id, []))

    def get(self, referral_id: str) -> Referral:
        with self._transaction() as conn:
            row = conn.execute(select(*COLUMNS).where(table.c.id == referral_id)).mappings().first()
            found = [] if row is None else _outcomes(conn, [referral_id]).get(referral_id, [])
        if row is None:
            raise UnknownReferral(f"no referral with id {referral_id!r}")
        return _referral(row, found)

    def referrals(self, *, since: date | None = None) -> Iterator[Referral]:
        """Every referral in the order made (optionally from a date on), with its outcomes."""
        query = select(*COLUMNS).order_by(table.c.created_at, table.c.seq)
        if since is not None:
            query = query.where(table.c.date >= since.isoformat())
        with self._transaction() as conn:
            rows = conn.execute(query).mappings().all()
            found = _outcomes(conn, None, since=since)
        for row in rows:
            yield _referral(row, found.get(row["id"], []))

    def case_referrals(self, case: str, owner: str | None = None) -> list[Referral]:
        """The referrals under one case reference, in the order made, with their outcomes;
        with ``owner`` (an actor, "user:alice") only those that actor made. An ill-formed case
        reference finds none."""
        try:
            check_case(case)
        except ValueError:
            return []
        query = select(*COLUMNS).where(table.c.case_ref == case)
        if owner is not None:
            query = query.where(table.c.created_by == owner)
        return self._with_outcomes(query.order_by(table.c.created_at, table.c.seq))

    def open_referrals(self, owner: str | None = None) -> list[Referral]:
        """Referrals with no outcome yet, oldest first (the caseload: the oldest are the most
        overdue for a follow-up); with ``owner`` (an actor, "user:alice") only those that
        actor made, without it everyone's (for admins). Each has ``outcomes == []``; group by
        ``case`` (None when none was given)."""
        query = select(*COLUMNS).where(
            ~exists().where(outcomes.c.referral_id == table.c.id)
        )  # fmt: skip
        if owner is not None:
            query = query.where(table.c.created_by == owner)
        return self._with_outcomes(query.order_by(table.c.created_at, table.c.seq))

    def _with_outcomes(self, query: Any) -> list[Referral]:
        with self._transaction() as conn:
            rows = conn.execute(query).mappings().all()
            found = _outcomes(conn, [r["id"] for r in rows]) if rows else {}
        return [_referral(row, found.get(row["id"], [])) for row in rows]

    def referral_facts(self, since: date | None = None) -> Iterator[ReferralFact]:
        """For the provision report, each referral (made on or after ``since``) as a
        :class:`ReferralFact` ``(date, district, needs, outcome)``: no referral or profile id,
        no case reference, nothing else of the profile."""
        for ref in self.referrals(since=since):
            needs = ref.profile.get("needs")
            yield ReferralFact(
                date=ref.date,
                district=district_of(ref.profile),
                needs=tuple(n for n in needs if isinstance(n, str)) if isinstance(needs, list)
                else (),
                outcome=None if ref.latest is None else ref.status,
            )  # fmt: skip

    def counts(self) -> dict[str, int]:
        with_outcome = select(func.count(func.distinct(outcomes.c.referral_id))).scalar_subquery()
        query = select(func.count(), with_outcome).select_from(table)
        with self._transaction() as conn:
            total, answered = conn.execute(query).one()
        return {"referrals": total, "with_outcome": answered, "pending": total - answered}

    # --- demand record -------------------------------------------------------------------

    def add_demand(
        self,
        day: date | str,
        district: str | None,
        travel: str | None,
        age_band: str,
        within_reach: dict[str, int],
    ) -> None:
        """Add one anonymous line to the demand record (one per match request): the day
        (a date or "YYYY-MM-DD"), the postcode district ("LS6", or None), the travel mode (a
        contract travel mode or None), the age band ("<40", "40-64", "65+" or "unknown"; see
        :func:`matcher.store.demand.age_band`) and, for each stated need code, how many allowed
        activities serving it were within reach (``{}`` when no need was stated).

        Each field is checked for its narrow shape first (ValueError naming the field): no
        profile id or free text can be stored. Not audited: a search changes nothing about
        anyone, and the line names no one."""
        values = demand_lines.row(demand_lines.check(day, district, travel, age_band, within_reach))
        with self._transaction(write=True) as conn:
            conn.execute(insert(demand).values(**values))

    def demand_rows(self, since: date | None = None) -> Iterator[Demand]:
        """The demand record, oldest first (optionally from a day on): each line a
        :class:`matcher.store.demand.Demand` named tuple ``(day, district, travel, age_band,
        within_reach)``, ``within_reach`` a dict of need code -> count. Read a page at a time,
        each in its own short transaction."""
        columns = [demand.c.id, demand.c.day, demand.c.district, demand.c.travel,
                   demand.c.age_band, demand.c.within_reach]  # fmt: skip
        where = None if since is None else demand.c.day >= since.isoformat()
        for row in self._pages(columns, demand.c.id, where):
            yield demand_lines.read(row)

    # --- erasure and retention -----------------------------------------------------------

    def erase(self, referral_id: str, *, actor: str) -> None:
        """Delete a referral and all its outcomes (a person's request, a mistake); raises
        :class:`UnknownReferral` if there is none. Audited "referral.erased" with the id and
        nothing else."""
        line = trail.row(_now(), actor, "referral.erased", referral_id=referral_id)
        with self._transaction(write=True) as conn:
            conn.execute(delete(outcomes).where(outcomes.c.referral_id == referral_id))
            gone = conn.execute(delete(table).where(table.c.id == referral_id)).rowcount
            if not gone:
                raise UnknownReferral(f"no referral with id {referral_id!r}")
            conn.execute(insert(audit).values(**line))
        self._scrub()

    def purge(self, before: date, *, actor: str = "system") -> int:
        """Delete every referral made before ``before`` (a date, UTC), with its outcomes (their
        case references, baseline and follow-up wellbeing go with them); returns how many.
        Also drops demand lines from before that day (anonymous, but kept no longer than the
        referrals they are reported beside) and failed sign-ins too old for any throttle.
        Audited once, "referrals.purged", naming no referral."""
        if isinstance(before, datetime):
            before = before.date()
        old = table.c.date < before.isoformat()
        line = trail.row(_now(), actor, "referrals.purged")
        with self._transaction(write=True) as conn:
            conn.execute(
                delete(outcomes).where(outcomes.c.referral_id.in_(select(table.c.id).where(old)))
            )
            count = conn.execute(delete(table).where(old)).rowcount
            conn.execute(delete(demand).where(demand.c.day < before.isoformat()))
            conn.execute(
                delete(throttle).where(throttle.c.at < clock.time() - THROTTLE_HORIZON_SECONDS)
            )
            conn.execute(insert(audit).values(**line))
        self._scrub()
        return count

    # --- audit trail ---------------------------------------------------------------------

    def audit(
        self,
        actor: str,
        action: str,
        *,
        referral_id: str | None = None,
        outcome: str = "ok",
        subject: str | None = None,
    ) -> None:
        """Append a line to the audit trail: ``actor`` did ``action`` (dotted lower-case
        words, e.g. "referral.read") to ``referral_id``, ending in ``outcome`` (one word:
        "ok", "denied", "not_found"). ``subject`` names the account an account action was
        about ("user:bob"). A referral id not shaped like the store's is recorded as none (it
        came from outside and may be anything). A bad actor, action or outcome raises
        ValueError."""
        line = trail.row(
            _now(), actor, action, referral_id=referral_id, outcome=outcome, subject=subject
        )
        with self._transaction(write=True) as conn:
            conn.execute(insert(audit).values(**line))

    def audit_lines(self, since: datetime | date | None = None) -> Iterator[dict[str, Any]]:
        """The audit trail, oldest first (optionally from a time, or a date's midnight UTC,
        on): ``{"at", "actor", "action", "referral_id", "outcome"}`` and ``"subject"`` when
        there is one. Read a page at a time, each in its own short transaction."""
        columns = [audit.c.id, audit.c.at, audit.c.actor, audit.c.action, audit.c.referral_id,
                   audit.c.subject, audit.c.outcome]  # fmt: skip
        where = None if since is None else audit.c.at >= trail.since_text(since)
        for row in self._pages(columns, audit.c.id, where):
            yield trail.line(row)

    def _pages(self, columns: list[Any], key: Any, where: Any = None) -> Iterator[Any]:
        """Rows of ``columns`` in ``key`` order (an integer id), optionally filtered, read
        :data:`AUDIT_PAGE` at a time by keyset, each page in its own short transaction, so a
        long read holds no lock and memory stays bounded."""
        last: int | None = None
        while True:
            query = select(*columns).order_by(key).limit(AUDIT_PAGE)
            if where is not None:
                query = query.where(where)
            if last is not None:
                query = query.where(key > last)
            with self._transaction() as conn:
                rows = conn.execute(query).mappings().all()
            yield from rows
            if len(rows) < AUDIT_PAGE:
                return
            last = rows[-1][key.name]

    # --- accounts ------------------------------------------------------------------------

    def add_user(self, name: str, role: str, password: str, *, actor: str) -> None:
        """Add a user who signs in with ``password`` (kept as an argon2id hash)."""
        acc.check_name(name)
        acc.check_role(role)
        hashed = acc.hash_password(password)
        line = trail.row(_now(), actor, "user.added", subject=f"user:{name}")
        with self._transaction(write=True) as conn:
            if conn.execute(select(users.c.name).where(users.c.name == name)).first():
                raise AccountError("name: a user with this name exists (names are not reused)")
            conn.execute(
                insert(users).values(
                    name=name, role=role, password_hash=hashed, disabled=0, created_at=_stamp()
                )
            )
            conn.execute(insert(audit).values(**line))

    def authenticate_user(self, name: str, password: str) -> User | None:
        """The user, if ``name`` is an enabled user and ``password`` is theirs; else None.
        Takes about as long whether or not the user exists (a dummy hash is checked)."""
        if not isinstance(name, str) or not isinstance(password, str):
            return None
        with self._transaction() as conn:
            row = conn.execute(select(users).where(users.c.name == name)).mappings().first()
        if row is None or row["disabled"] or len(password) > acc.MAX_PASSWORD:
            acc.verify_password(acc.dummy_hash(), password[: acc.MAX_PASSWORD])
            return None
        if not acc.verify_password(row["password_hash"], password):
            return None
        if acc.needs_rehash(row["password_hash"]):  # argon2's parameters were raised
            try:
                with self._transaction(write=True) as conn:
                    conn.execute(
                        update(users)
                        .where(users.c.name == name)
                        .values(password_hash=acc.hash_password(password))
                    )
            except (StoreError, AccountError):
                pass
        return _user(row)

    def user(self, name: str) -> User | None:
        """The user of that name (disabled or not), or None."""
        with self._transaction() as conn:
            row = conn.execute(select(users).where(users.c.name == name)).mappings().first()
        return None if row is None else _user(row)

    def disable_user(self, name: str, *, actor: str) -> None:
        """Stop a user signing in (for good: the name is not reused). Disabling a disabled
        user changes nothing and is not an error."""
        self._retire(users, "disabled", name, "user", actor)

    def _retire(self, table: Any, flag: str, name: str, kind: str, actor: str) -> None:
        """Set a user's ``disabled`` or a key's ``revoked`` (with its time) and audit it, once:
        retiring what is retired already changes nothing."""
        acc.check_name(name)
        line = trail.row(_now(), actor, f"{kind}.{flag}", subject=f"{kind}:{name}")
        with self._transaction(write=True) as conn:
            found = conn.execute(select(table.c[flag]).where(table.c.name == name)).first()
            if found is None:
                raise AccountError(f"name: no such {kind}")
            if not found[0]:
                conn.execute(
                    update(table).where(table.c.name == name)
                    .values({flag: 1, f"{flag}_at": _stamp()})
                )  # fmt: skip
                conn.execute(insert(audit).values(**line))

    def users(self) -> list[User]:
        with self._transaction() as conn:
            rows = conn.execute(select(users).order_by(users.c.name)).mappings().all()
        return [_user(r) for r in rows]

    def create_key(self, name: str, scopes: list[str], *, actor: str) -> str:
        """Make an API key with these scopes; returns the key, which is shown this once and
        never stored (only its SHA-256 is; see :func:`accounts.key_digest` for why that is
        enough for a key, though not for a password)."""
        acc.check_name(name)
        chosen = acc.check_scopes(scopes)
        key = acc.new_key()
        line = trail.row(_now(), actor, "key.created", subject=f"key:{name}")
        with self._transaction(write=True) as conn:
            if conn.execute(select(api_keys.c.name).where(api_keys.c.name == name)).first():
                raise AccountError("name: a key with this name exists (names are not reused)")
            conn.execute(
                insert(api_keys).values(
                    name=name,
                    key_hash=acc.key_digest(key),
                    scopes=" ".join(chosen),
                    revoked=0,
                    created_at=_stamp(),
                )
            )
            conn.execute(insert(audit).values(**line))
        return key

    def key_for(self, token: str) -> ApiKey | None:
        """The active key ``token`` is, or None (unknown or revoked). Notes when it was last
        used, at most every few minutes."""
        if not isinstance(token, str) or not token.startswith(acc.KEY_PREFIX) or len(token) > 200:
            return None
        digest = acc.key_digest(token)
        with self._transaction() as conn:
            row = conn.execute(
                select(api_keys).where(api_keys.c.key_hash == digest)
            ).mappings().first()  # fmt: skip
        if row is None or row["revoked"]:
            return None
        now = _now()
        cutoff = _stamp(datetime.fromtimestamp(now.timestamp() - TOUCH_SECONDS, timezone.utc))
        if row["last_used_at"] is None or row["last_used_at"] < cutoff:
            try:
                with self._transaction(write=True) as conn:
                    conn.execute(
                        update(api_keys)
                        .where(api_keys.c.name == row["name"])
                        .values(last_used_at=_stamp(now))
                    )
                row = {**row, "last_used_at": _stamp(now)}
            except StoreError:  # a read-only moment must not refuse a good key
                pass
        return _key(row)

    def revoke_key(self, name: str, *, actor: str) -> None:
        """Revoke a key for good (the name is not reused). Revoking a revoked key changes
        nothing and is not an error."""
        self._retire(api_keys, "revoked", name, "key", actor)

    def keys(self) -> list[ApiKey]:
        with self._transaction() as conn:
            rows = conn.execute(select(api_keys).order_by(api_keys.c.name)).mappings().all()
        return [_key(r) for r in rows]

    def has_credentials(self) -> bool:
        """Whether any enabled user or unrevoked key exists (if not, the service runs open,
        on loopback only)."""
        query = select(
            or_(
                exists().where(users.c.disabled == 0),
                exists().where(api_keys.c.revoked == 0),
            )
        )
        with self._transaction() as conn:
            return bool(conn.execute(query).scalar_one())

    # --- throttle ------------------------------------------------------------------------

    def record_failure(self, client: str) -> None:
        """Note a failed sign-in or key check from ``client`` (a keyed hash the web layer made;
        nothing else about the client is stored). Seen by every worker and replica."""
        if not isinstance(client, str) or not 0 < len(client) <= 200:
            raise ValueError("client: expected a short non-empty string")
        with self._transaction(write=True) as conn:
            conn.execute(insert(throttle).values(client=client, at=clock.time()))

    def failures(self, client: str, within_seconds: float) -> int:
        """How many failures ``client`` had in the last ``within_seconds``."""
        query = select(func.count()).where(
            throttle.c.client == client, throttle.c.at >= clock.time() - within_seconds
        )
        with self._transaction() as conn:
            return int(conn.execute(query).scalar_one())


def _insert(conn: Connection, values: dict[str, Any]) -> Insert:
    statement = insert(table).values(**values)
    if conn.dialect.name == "sqlite":
        statement = statement.values(seq=NEXT_SEQ)
    return statement


def _outcomes(
    conn: Connection, ids: list[str] | None, *, since: date | None = None
) -> dict[str, list[Outcome]]:
    """Outcomes by referral id, oldest first: of ``ids``, or of every referral (made on or
    after ``since``)."""
    query = select(*OUTCOME_COLUMNS).order_by(outcomes.c.id)
    if ids is not None:
        query = query.where(outcomes.c.referral_id.in_(ids))
    elif since is not None:
        query = query.join(table, table.c.id == outcomes.c.referral_id).where(
            table.c.date >= since.isoformat()
        )
    found: dict[str, list[Outcome]] = {}
    for row in conn.execute(query).mappings():
        found.setdefault(row["referral_id"], []).append(
            Outcome(
                attended=bool(row["attended"]),
                sessions_attended=row["sessions_attended"],
                recorded_at=row["recorded_at"],
                recorded_by=row["recorded_by"],
                correction=bool(row["correction"]),
                declined=bool(row["declined"]),
                wellbeing=_scores(row["wellbeing"]),
            )
        )
    return found


def _referral(row: RowMapping, found: list[Outcome]) -> Referral:
    return Referral(
        id=row["id"],
        created_at=row["created_at"],
        date=row["date"],
        profile=json.loads(row["profile"]),
        activity_id=row["activity_id"],
        shown=None if row["shown"] is None else json.loads(row["shown"]),
        model_version=row["model_version"],
        outcomes=found,
        case=row["case_ref"],
        created_by=row["created_by"],
        wellbeing=_scores(row["wellbeing"]),
    )


def _scores(stored: str | None) -> dict[str, int] | None:
    return None if stored is None else json.loads(stored)


def _user(row: Any) -> User:
    return User(
        name=row["name"], role=row["role"], disabled=bool(row["disabled"]),
        created_at=row["created_at"],
    )  # fmt: skip


def _key(row: Any) -> ApiKey:
    return ApiKey(
        name=row["name"],
        scopes=tuple(row["scopes"].split()),
        revoked=bool(row["revoked"]),
        created_at=row["created_at"],
        last_used_at=row["last_used_at"],
    )
