"""Export the service's referral store as uptake records (contract §4), closing the loop:
suggest -> refer -> record outcome -> export -> train -> gate -> serve.

``python -m training.export --out uptake.jsonl`` reads the referral store named by
``--database`` (else the settings: ``MATCHER_DATABASE_URL``, else the SQLite file in the
instance folder) and writes one JSON line per referral that has an outcome, with its latest
outcome (a correction replaces the first). Only what is still stored is exported: an erased or
purged referral is gone. Referrals still waiting for an outcome are not exported; how many
there are is printed. The store must exist and be at this code's schema (``matcher db
upgrade``); an export never creates it, and changes it only by one audit line,
"referrals.exported", whose actor is ``cli:`` and the operating-system user.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from pydantic import ValidationError

from matcher.admin import actor as cli_actor
from matcher.contract import parse_uptake
from matcher.errors import InvalidInput, MatcherError
from matcher.settings import Settings
from matcher.store import Store

EXIT_BAD_INPUT = 2


@dataclass
class ExportReport:
    """What an export wrote and what it left out, and why."""

    exported: int = 0
    pending: int = 0
    invalid: int = 0

    def summary(self, out: str) -> str:
        text = f"exported {self.exported} referrals with an outcome to {out}; "
        text += f"{self.pending} referrals with no outcome yet were not exported"
        if self.invalid:
            text += f"; {self.invalid} stored referrals break the contract and were skipped"
        return text


def export_uptake(
    store: Store, out: Path, *, since: date | None = None, actor: str = "system"
) -> ExportReport:
    """Write the store's referrals that have an outcome to ``out`` as JSON Lines, each with
    its latest outcome, and audit it ("referrals.exported" by ``actor``).

    Each line is checked against the contract first, so what training reads is valid. The
    file is written beside ``out`` and renamed into place once the audit line is stored: a
    failed export leaves no half file, and no file leaves unaudited.
    """
    report = ExportReport()
    tmp = out.with_name(out.name + ".tmp")
    out.parent.mkdir(parents=True, exist_ok=True)
    try:
        with tmp.open("w", encoding="utf-8") as f:
            for referral in store.referrals(since=since):
                if referral.attended is None:
                    report.pending += 1
                    continue
                record = referral.to_uptake()
                try:
                    parse_uptake(record)
                except InvalidInput:
                    report.invalid += 1
                    continue
                f.write(json.dumps(record, ensure_ascii=False, separators=(",", ":")) + "\n")
                report.exported += 1
        store.audit(actor, "referrals.exported")
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
    return report


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m training.export",
        description="Write the referral store's outcomes as uptake JSON Lines (contract §4).",
    )
    parser.add_argument("--out", required=True, help="uptake file to write (JSON Lines)")
    parser.add_argument(
        "--database",
        default=None,
        help="referral store URL, or the path of an SQLite file (default: $MATCHER_DATABASE_URL "
        "or instance/matcher.sqlite3)",
    )
    parser.add_argument("--since", default=None, help="only referrals made on or after YYYY-MM-DD")
    return parser


def database_url(given: str | None) -> str:
    """``--database`` as a URL (a bare path means that SQLite file), else the settings'."""
    if not given:
        return Settings().store_url()
    if "://" not in given:
        return f"sqlite:///{Path(given).resolve()}"
    return given


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        since = date.fromisoformat(args.since) if args.since else None
    except ValueError:
        print("export: error: --since: expected a date as YYYY-MM-DD", file=sys.stderr)
        return EXIT_BAD_INPUT
    try:
        url = database_url(args.database)
    except ValidationError as exc:
        fields = ", ".join(f"MATCHER_{str(e['loc'][0]).upper()}" for e in exc.errors() if e["loc"])
        print(f"export: error: invalid settings: {fields or exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    try:
        with Store(url) as store:
            report = export_uptake(store, Path(args.out), since=since, actor=cli_actor())
    except MatcherError as exc:
        print(f"export: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    print(report.summary(args.out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
