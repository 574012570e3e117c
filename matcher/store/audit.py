"""The audit trail's lines: who (an actor), did what (an action), to which referral, how it
ended (an outcome word), when. Every field has a narrow shape, checked before a line is
written, so that no free text, and so no profile value, can reach the trail."""

from __future__ import annotations

import re
from datetime import date, datetime, time, timezone
from typing import Any

from .accounts import NAME

__all__ = ["ACTIONS", "line", "row", "since_text", "timestamp"]

# Actions the store itself writes; the web layer adds its own of the same shape.
ACTIONS = (
    "referral.created", "referral.erased", "referrals.purged", "referrals.exported",
    "outcome.recorded", "outcome.corrected", "user.added", "user.disabled", "key.created",
    "key.revoked",
)  # fmt: skip

_ACTOR = re.compile(rf"system|migration|(?:user|key|cli):{NAME}")
_ACTION = re.compile(r"[a-z][a-z0-9_]*(?:[.:][a-z0-9_]+)*")
_OUTCOME = re.compile(r"[a-z][a-z0-9_]{0,31}")
_REFERRAL_ID = re.compile(r"r-[0-9a-f]{32}")


def timestamp(when: datetime) -> str:
    return when.astimezone(timezone.utc).isoformat(timespec="milliseconds")


def since_text(since: datetime | date) -> str:
    """``since`` as a value comparable with stored times (a date means its midnight UTC; a
    naive time is taken as UTC)."""
    if not isinstance(since, datetime):
        since = datetime.combine(since, time(0), tzinfo=timezone.utc)
    elif since.tzinfo is None:
        since = since.replace(tzinfo=timezone.utc)
    return timestamp(since)


def row(
    at: datetime,
    actor: str,
    action: str,
    *,
    referral_id: str | None = None,
    outcome: str = "ok",
    subject: str | None = None,
) -> dict[str, Any]:
    """A line to insert. A bad actor, action, outcome or subject is a programming error
    (ValueError, naming the field). A ``referral_id`` not shaped like one of the store's ids
    ("r-" and 32 hex digits) is recorded as no id: it came from outside (a URL) and may be
    anything, a person's details included."""
    if not isinstance(actor, str) or len(actor) > 80 or not _ACTOR.fullmatch(actor):
        raise ValueError("audit actor: expected system, or user:, key: or cli: and a name")
    if not isinstance(action, str) or len(action) > 64 or not _ACTION.fullmatch(action):
        raise ValueError("audit action: expected dotted lower-case words")
    if not isinstance(outcome, str) or not _OUTCOME.fullmatch(outcome):
        raise ValueError("audit outcome: expected one lower-case word")
    if subject is not None and (len(subject) > 80 or not _ACTOR.fullmatch(subject)):
        raise ValueError("audit subject: expected user: or key: and a name")
    if referral_id is not None and (
        not isinstance(referral_id, str) or not _REFERRAL_ID.fullmatch(referral_id)
    ):
        referral_id = None
    return {
        "at": timestamp(at),
        "actor": actor,
        "action": action,
        "referral_id": referral_id,
        "subject": subject,
        "outcome": outcome,
    }


def line(stored: Any) -> dict[str, Any]:
    """A stored row as ``audit_lines`` yields it; ``subject`` only when there is one."""
    out = {
        "at": stored["at"],
        "actor": stored["actor"],
        "action": stored["action"],
        "referral_id": stored["referral_id"],
        "outcome": stored["outcome"],
    }
    if stored["subject"] is not None:
        out["subject"] = stored["subject"]
    return out
