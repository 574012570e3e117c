"""Export the service's referral store as uptake records (contract §4), closing the loop:
suggest -> refer -> record outcome -> export -> train -> gate -> serve.

``python -m training.export --out uptake.jsonl`` reads ``MATCHER_DATABASE_URL`` (or
``--database``) and writes one JSON line per referral that has an outcome. Referrals still
waiting for an outcome are not exported; how many there are is printed.
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

from matcher.contract import parse_uptake
from matcher.errors import InvalidInput, MatcherError
from matcher.store import Store, StoreError, database_path, default_database_url

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


def export_uptake(store: Store, out: Path, *, since: date | None = None) -> ExportReport:
    """Write the store's referrals that have an outcome to ``out`` as JSON Lines.

    Each line is checked against the contract first, so what training reads is valid. The
    file is written beside ``out`` and renamed into place: a failed export leaves no half file.
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
        help="referral store (default: $MATCHER_DATABASE_URL or instance/matcher.sqlite3)",
    )
    parser.add_argument("--since", default=None, help="only referrals made on or after YYYY-MM-DD")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    url = args.database or default_database_url()
    try:
        since = date.fromisoformat(args.since) if args.since else None
    except ValueError:
        print("export: error: --since: expected a date as YYYY-MM-DD", file=sys.stderr)
        return EXIT_BAD_INPUT
    try:
        path = database_path(url)
        if path != ":memory:" and not Path(path).is_file():
            raise StoreError(f"no referral database at {path}")
        store = Store(url)
        report = export_uptake(store, Path(args.out), since=since)
    except MatcherError as exc:
        print(f"export: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    print(report.summary(args.out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
