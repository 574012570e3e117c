"""Accounts and API keys as the store keeps them: who may sign in, with which role; which keys
may call the API, with which scopes. Passwords are kept as argon2id hashes and keys as SHA-256
hashes; neither is ever stored, logged or shown again after it is made.

Names (``alice``, ``case-system``) are short and plain, because they appear in the audit trail
as actors (``user:alice``, ``key:case-system``); a name is never reused, even once disabled or
revoked, so an actor in an old audit line always means the same account.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from functools import cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from ..errors import MatcherError

__all__ = [
    "ROLES",
    "SCOPES",
    "AccountError",
    "ApiKey",
    "User",
    "hash_password",
    "key_digest",
    "new_key",
]

ROLES = ("link_worker", "maintainer", "admin")
SCOPES = ("match", "activities", "referrals:write", "referrals:read", "model", "reports:read")

KEY_PREFIX = "mk_"
NAME = r"[A-Za-z0-9][A-Za-z0-9._@-]{0,63}"
_NAME = re.compile(NAME)
# NIST SP 800-63B and the NCSC: at least 8 characters, no composition rules; a cap keeps a
# megabyte "password" from costing a hash's worth of memory per request.
MIN_PASSWORD = 8
MAX_PASSWORD = 1024

# argon2id with argon2-cffi's defaults (RFC 9106's second recommended option: t=3, 64 MiB, p=4).
_HASHER = PasswordHasher()


class AccountError(MatcherError, ValueError):
    """An unknown or duplicate user or key, or a bad role, scope, name or password. The message
    names the field, never the value given."""


@dataclass(frozen=True)
class User:
    name: str
    role: str
    disabled: bool
    created_at: str


@dataclass(frozen=True)
class ApiKey:
    name: str
    scopes: tuple[str, ...]
    revoked: bool
    created_at: str
    last_used_at: str | None = None


def check_name(name: object) -> str:
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise AccountError(
            "name: expected 1 to 64 letters, digits, '.', '_', '@' or '-', starting with a "
            "letter or digit"
        )
    return name


def check_role(role: object) -> str:
    if role not in ROLES:
        raise AccountError(f"role: expected one of {', '.join(ROLES)}")
    return str(role)


def check_scopes(scopes: object) -> tuple[str, ...]:
    """The scopes in SCOPES order, once each; at least one."""
    if isinstance(scopes, str) or not isinstance(scopes, (list, tuple, set, frozenset)):
        raise AccountError("scopes: expected a list of scopes")
    given = set(scopes)
    if not given or not given <= set(SCOPES):
        raise AccountError(f"scopes: expected one or more of {', '.join(SCOPES)}")
    return tuple(s for s in SCOPES if s in given)


def check_password(password: object) -> str:
    if not isinstance(password, str) or not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
        raise AccountError(f"password: expected {MIN_PASSWORD} to {MAX_PASSWORD} characters")
    return password


def hash_password(password: str) -> str:
    """An argon2id hash of ``password`` (a PHC string holding its own salt and parameters)."""
    return _HASHER.hash(check_password(password))


def verify_password(stored_hash: str, password: str) -> bool:
    try:
        return _HASHER.verify(stored_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(stored_hash: str) -> bool:
    try:
        return _HASHER.check_needs_rehash(stored_hash)
    except InvalidHashError:
        return False


@cache
def dummy_hash() -> str:
    """A hash no password matches, verified against when the user is unknown or disabled, so
    that answering takes as long as for a real one."""
    return _HASHER.hash(secrets.token_urlsafe(32))


def new_key() -> str:
    """A new API key: "mk_" and 32 random bytes, URL-safe base64 (43 characters)."""
    return KEY_PREFIX + secrets.token_urlsafe(32)


def key_digest(key: str) -> str:
    """What the store keeps of a key: its SHA-256, hex.

    A fast hash is enough here, unlike for passwords: a key is 256 random bits, so no guessing
    or dictionary can reach it however fast each guess is, and a slow hash would only cost
    every API request the work. Being deterministic, the digest is also what the key is looked
    up by (a unique index), so checking a key reads one row.
    """
    return hashlib.sha256(key.encode("utf-8")).hexdigest()
