"""``matcher gp-export``: the referral store's referrals as FHIR R4 Bundles for GP systems, one
bundle per line (NDJSON), written atomically and audited.

Each line is :func:`matcher.fhir.referral_bundle` of one referral and its catalogue activity.
``since`` picks the referrals made on or after that day *and* those whose outcome was recorded
on or after it, so a daily run carries both new referrals and the status changes of older
ones to the GP record.
"""

from __future__ import annotations

import contextlib
import json
import os
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from .catalogue import Catalogue
from .errors import InvalidInput, UnknownActivity
from .fhir import referral_bundle
from .store import Referral, Store

__all__ = ["GpExport", "export_bundles"]

# The audit trail's word for it: who exported referrals to GP systems, and when (never which).
ACTION = "referrals.gp_exported"


@dataclass
class GpExport:
    """What an export wrote."""

    bundles: int = 0
    unknown_activity: int = 0  # referrals whose activity has left the catalogue (id only)

    def summary(self, out: str) -> str:
        text = f"wrote {self.bundles} FHIR bundles to {out}"
        if self.unknown_activity:
            text += (
                f"; {self.unknown_activity} name an activity no longer in the catalogue "
                "(by its id only)"
            )
        return text


def _chosen(referral: Referral, since: date | None) -> bool:
    if since is None:
        return True
    day = since.isoformat()
    return referral.date >= day or any(o.recorded_at[:10] >= day for o in referral.outcomes)


def export_bundles(
    store: Store,
    catalogue: Catalogue,
    out: Path,
    *,
    since: date | None = None,
    actor: str = "system",
) -> GpExport:
    """Write the chosen referrals' bundles to ``out`` as NDJSON and audit it (``ACTION`` by
    ``actor``, naming no referral).

    The file is written beside ``out`` and renamed into place once the audit line is stored:
    a failed export leaves no half file, and no file leaves unaudited. Raises
    :class:`InvalidInput` naming the file when it cannot be written."""
    report = GpExport()
    out = Path(out)
    tmp = out.with_name(out.name + ".tmp")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        with tmp.open("w", encoding="utf-8") as f:
            for referral in store.referrals():
                if not _chosen(referral, since):
                    continue
                try:
                    activity = catalogue.get(referral.activity_id)
                except UnknownActivity:
                    activity = None
                    report.unknown_activity += 1
                bundle = referral_bundle(referral, activity)
                f.write(json.dumps(bundle, ensure_ascii=False, separators=(",", ":")) + "\n")
                report.bundles += 1
            f.flush()
            os.fsync(f.fileno())
        store.audit(actor, ACTION)
        os.replace(tmp, out)
    except OSError:
        raise InvalidInput(f"{out}: cannot write the export file") from None
    finally:
        # OSError: its folder could not be made, so there is nothing to remove.
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
    return report
