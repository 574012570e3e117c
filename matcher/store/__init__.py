"""The referral store: referrals and their outcomes in SQLite or PostgreSQL (SQLAlchemy Core),
with the schema moved by Alembic.

``Store(url)`` opens a database whose schema is current; ``upgrade(url)`` (``matcher db
upgrade``) brings one up to date and ``current(url)`` (``matcher db current``) says where it
is. The library reads no environment variable: the URL comes from the caller
(``matcher.settings.Settings().store_url()`` at the edges).
"""

from __future__ import annotations

from .database import StoreError
from .migrate import current, head, upgrade
from .referrals import Referral, Store, UnknownReferral

__all__ = ["Referral", "Store", "StoreError", "UnknownReferral", "current", "head", "upgrade"]
