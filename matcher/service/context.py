"""What one app keeps for its requests: the watched Matcher, the referral store and the
bootstrap keys."""

from __future__ import annotations

import hashlib
import hmac
import logging
from datetime import datetime, timezone
from typing import Any

from flask import current_app, g

from ..catalogue import Catalogue
from ..contract import Profile
from ..demand import demand_line
from ..ranking import Matcher
from ..store import OutcomeExists, Store, UnknownReferral
from ..watch import Watcher
from .logs import log_event

__all__ = ["OutcomeExists", "Service", "UnknownReferral", "audit_actor", "service"]

# Who acted, as the audit trail takes it: a bootstrap key (MATCHER_API_KEYS, deprecated) is one
# shared key, named as one; in open mode (loopback, no credentials) nobody is identified and the
# service itself acts.
_AUDIT_ACTORS = {"bootstrap-key": "key:bootstrap-key", "open": "system"}


def audit_actor(actor: str) -> str:
    return _AUDIT_ACTORS.get(actor, actor)


class Service:
    """Catalogue and model (through the watcher) and the referral store, loaded once per
    process."""

    def __init__(self, watcher: Watcher, store: Store, keys: list[str], queue_timeout: float):
        self.watcher = watcher
        self.store = store
        self.queue_timeout = queue_timeout
        self._key_digests = [hashlib.sha256(k.encode()).digest() for k in keys]
        self._closed = False
        self.demand_failures = 0  # demand lines that could not be written, since start

    @property
    def catalogue(self) -> Catalogue:
        """The catalogue in service now (a pull may have swapped it in)."""
        return self.watcher.catalogue

    @property
    def auth_required(self) -> bool:
        """Credentials exist (bootstrap keys, or accounts or keys in the store): then the page
        needs a sign-in and ``/v1`` a key. Without any, the service runs open (loopback only).
        Once closed it stays closed for this process, whatever happens in the store."""
        if self._closed:
            return True
        self._closed = bool(self._key_digests) or self.store.has_credentials()
        return self._closed

    @property
    def has_bootstrap_keys(self) -> bool:
        return bool(self._key_digests)

    def key_ok(self, token: str) -> bool:
        """Compare against every key in constant time (digests make lengths equal)."""
        digest = hashlib.sha256(token.encode()).digest()
        found = False
        for key in self._key_digests:
            found |= hmac.compare_digest(digest, key)
        return found

    def matcher(self) -> Matcher:
        m = self.watcher.current()
        g.model_version = m.model_version
        return m

    def note_demand(self, profile: Profile, matcher: Matcher) -> None:
        """Add this match request's anonymous line to the demand record (matcher.demand). A
        failure here never fails the match: it is logged as a count of failures, with the
        error's type only (never a profile field)."""
        try:
            line = demand_line(profile, matcher.catalogue)
            self.store.add_demand(
                datetime.now(timezone.utc).date(), line.district, line.travel, line.age_band,
                line.within_reach,
            )  # fmt: skip
        except Exception as exc:  # noqa: BLE001 - the person's match matters more than a count
            self.demand_failures += 1
            log_event(logging.WARNING, "demand_not_recorded", error=type(exc).__name__,
                      failures=self.demand_failures)  # fmt: skip

    def refer(
        self, profile: Profile, activity_id: str, shown: list[str] | None, *, actor: str,
        case: str | None = None, wellbeing: dict[str, int] | None = None,
    ) -> str:  # fmt: skip
        """``case`` and ``wellbeing`` (baseline ONS4) as the store checks them (contract §7)."""
        matcher = self.matcher()
        matcher.catalogue.get(activity_id)  # raises UnknownActivity
        return self.store.add_referral(
            profile.to_dict(), activity_id, shown=shown, model_version=matcher.model_version,
            actor=audit_actor(actor), case=case, wellbeing=wellbeing,
        )  # fmt: skip

    def record_outcome(
        self, referral_id: str, attended: bool, sessions: int | None, *, actor: str,
        correction: bool, declined: bool = False, wellbeing: dict[str, int] | None = None,
    ) -> Any:  # fmt: skip
        """Raises UnknownReferral, or OutcomeExists for a second outcome not a correction."""
        return self.store.record_outcome(
            referral_id, attended, sessions, actor=audit_actor(actor), correction=correction,
            declined=declined, wellbeing=wellbeing,
        )  # fmt: skip

    def erase(self, referral_id: str, *, actor: str) -> None:
        self.store.erase(referral_id, actor=audit_actor(actor))

    def audit(self, actor: str, action: str, *, referral_id: str | None = None,
              outcome: str = "ok") -> None:  # fmt: skip
        self.store.audit(audit_actor(actor), action, referral_id=referral_id, outcome=outcome)


def service() -> Service:
    return current_app.extensions["matcher"]
