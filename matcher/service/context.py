"""What one app keeps for its requests: the watched Matcher, the referral store and the keys."""

from __future__ import annotations

import hashlib
import hmac

from flask import current_app, g

from ..catalogue import Catalogue
from ..contract import Profile
from ..ranking import Matcher
from ..store import Store
from ..watch import Watcher


class Service:
    """Catalogue and model (through the watcher) and the referral store, loaded once per
    process."""

    def __init__(self, watcher: Watcher, store: Store, keys: list[str], queue_timeout: float):
        self.watcher = watcher
        self.store = store
        self.queue_timeout = queue_timeout
        self._key_digests = [hashlib.sha256(k.encode()).digest() for k in keys]

    @property
    def catalogue(self) -> Catalogue:
        """The catalogue in service now (a pull may have swapped it in)."""
        return self.watcher.catalogue

    @property
    def auth_required(self) -> bool:
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

    def refer(self, profile: Profile, activity_id: str, shown: list[str] | None) -> str:
        matcher = self.matcher()
        matcher.catalogue.get(activity_id)  # raises UnknownActivity
        return self.store.add_referral(
            profile.to_dict(), activity_id, shown=shown, model_version=matcher.model_version
        )


def service() -> Service:
    return current_app.extensions["matcher"]
