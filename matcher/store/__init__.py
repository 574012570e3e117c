"""The referral store: referrals and their outcomes in SQLite or PostgreSQL (SQLAlchemy Core),
with the schema moved by Alembic; and the governance of that health data: accounts, API keys,
an append-only audit trail, erasure, retention and a shared sign-in throttle.

``Store(url)`` opens a database whose schema is current; ``upgrade(url)`` (``matcher db
upgrade``) brings one up to date and ``current(url)`` (``matcher db current``) says where it
is. The library reads no environment variable: the URL comes from the caller
(``matcher.settings.Settings().store_url()`` at the edges).
"""

from __future__ import annotations

from .accounts import ROLES, SCOPES, AccountError, ApiKey, User, hash_password
from .database import StoreError
from .demand import AGE_BANDS, Demand, age_band
from .migrate import current, head, upgrade
from .referrals import (
    ONS4,
    Outcome,
    OutcomeExists,
    Referral,
    ReferralFact,
    Store,
    UnknownReferral,
    check_case,
    check_wellbeing,
    district_of,
    minimise,
)

__all__ = [
    "AGE_BANDS",
    "ONS4",
    "ROLES",
    "SCOPES",
    "AccountError",
    "ApiKey",
    "Demand",
    "Outcome",
    "OutcomeExists",
    "Referral",
    "ReferralFact",
    "Store",
    "StoreError",
    "UnknownReferral",
    "User",
    "age_band",
    "check_case",
    "check_wellbeing",
    "current",
    "district_of",
    "hash_password",
    "head",
    "minimise",
    "upgrade",
]
