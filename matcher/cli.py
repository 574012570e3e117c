"""The command line (``python -m matcher`` / ``matcher``): suggest, rank, import-oruk, schema,
serve, pull and db. Settings come from ``MATCHER_*`` environment variables (matcher.settings),
read here at the edge; flags override them.

Bad input exits 2 with one line naming the file, line and field; never a traceback."""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import textwrap
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NoReturn

from . import admin, pull
from .catalogue import Catalogue
from .contract import (
    ACCESSIBILITY,
    NEEDS,
    Profile,
    json_schema,
    loads_json,
    parse_profile,
)
from .errors import InvalidInput, InvalidProfile, MatcherError
from .features import locate
from .pull import catalogue_file
from .ranking import Match, Matcher
from .scoring import load_scorer
from .scoring.shape import suited
from .settings import Settings, load_settings

EXIT_BAD_INPUT = 2


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # one line, not usage plus error
        self.exit(EXIT_BAD_INPUT, f"{self.prog}: error: {message} (see --help)\n")


def _positive(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError("expected a whole number of at least 1")
    return int(text)


def _csv(value: str) -> list[str]:
    return [v.strip() for v in value.split(",") if v.strip()]


def _number(flag: str, kind: Callable[[str], Any]) -> Callable[[str], Any]:
    """Parse a number without echoing what was typed (it may be personal data)."""

    def parse(text: str) -> Any:
        try:
            return kind(text)
        except ValueError:
            what = "a whole number" if kind is int else "a number"
            raise InvalidProfile([(flag, f"expected {what}")]) from None

    return parse


# flag, profile field, converter, help
PROFILE_FLAGS: list[tuple[str, str, Callable[[str], Any], str]] = [
    ("--id", "id", str, "pseudonymous id, echoed back"),
    ("--age", "age", _number("--age", int), "age in years (16-120)"),
    ("--postcode", "postcode", str, 'full or partial UK postcode, e.g. "LS6 3HN" or "LS6"'),
    ("--lat", "lat", _number("--lat", float), "latitude (with --lon) instead of a postcode"),
    ("--lon", "lon", _number("--lon", float), "longitude (with --lat)"),
    ("--needs", "needs", _csv, "needs in priority order, comma-separated: " + ",".join(NEEDS)),
    ("--interests", "interests", str, 'interests as said, e.g. "likes the allotment"'),
    ("--travel", "travel", str, "walk, public_transport or car"),
    ("--max-travel-km", "max_travel_km", _number("--max-travel-km", float),
     "furthest the person will travel (default from --travel)"),
    ("--accessibility", "accessibility", _csv, "features needed: " + ",".join(ACCESSIBILITY)),
    ("--availability", "availability", _csv, "free times, e.g. tue_am,wed_am,thu_pm"),
    ("--max-cost", "max_cost", _number("--max-cost", float), "GBP per session; 0 = free only"),
    ("--format", "format", str, "group or one_to_one"),
    ("--online", "online", str, "no, ok (default) or only"),
    ("--gender", "gender", str, "used only for single-gender groups"),
    ("--languages", "languages", _csv, "ISO 639-1 codes, e.g. en,pl"),
    ("--exclude", "exclude", _csv, "activity ids never to suggest, comma-separated"),
]  # fmt: skip


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="matcher",
        description="Rank local social-prescribing activities for one person.",
    )
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    def model_options(p: argparse.ArgumentParser) -> None:
        p.add_argument("--catalogue", default=None,
                       help="catalogue file, Open Referral UK feed or pulled folder "
                            "(default: $MATCHER_CATALOGUE or the bundled Leeds demo "
                            "catalogue)")  # fmt: skip
        p.add_argument(
            "--model",
            default=None,
            help="model folder, or cold-start for the transparent cold-start scorer "
            "(default: $MATCHER_MODEL_DIR or the shipped model)",
        )
        p.add_argument("--top", type=_positive, default=10, help="how many (default 10)")

    suggest = sub.add_parser("suggest", help="suggestions for one person, as a readable table")
    model_options(suggest)
    suggest.add_argument("--profile", help="a profile as a JSON file (flags override its fields)")
    for flag, _field, _kind, text in PROFILE_FLAGS:
        suggest.add_argument(flag, type=str, default=None, help=text)
    suggest.add_argument("--json", action="store_true", help="print JSON instead of a table")

    rank = sub.add_parser("rank", help="rank a JSON Lines file of profiles (contract §5)")
    model_options(rank)
    rank.add_argument("--profiles", required=True, help="JSON Lines, one profile per line")

    imp = sub.add_parser("import-oruk", help="convert an Open Referral UK feed to a catalogue")
    imp.add_argument("feed", help="Open Referral UK feed (v1 or v3 page, or a bare array)")
    imp.add_argument("--out", required=True, help="catalogue file to write")
    imp.add_argument("--report", help="also write the import report as JSON here")

    schema = sub.add_parser("schema", help="print the JSON Schema of a contract type")
    schema.add_argument("kind", choices=["profile", "activity", "uptake"])

    serve = sub.add_parser("serve", help="run the web page and JSON API under gunicorn")
    serve.add_argument("--host", default="127.0.0.1",
                       help="address to listen on (default 127.0.0.1; any other address "
                            "needs $MATCHER_API_KEYS)")  # fmt: skip
    serve.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    serve.add_argument("--workers", type=_positive, default=2,
                       help="worker processes (default 2)")  # fmt: skip
    serve.add_argument("--threads", type=_positive, default=1,
                       help="threads per worker (default 1)")  # fmt: skip
    serve.add_argument("--catalogue", default=None, help="as for suggest")
    serve.add_argument("--model", default=None,
                       help="model folder, watched for a new model; or cold-start for the "
                            "transparent cold-start scorer")  # fmt: skip
    serve.add_argument("--database", default=None,
                       help="referral store URL (default: $MATCHER_DATABASE_URL or "
                            "instance/matcher.sqlite3)")  # fmt: skip

    pulled = sub.add_parser(
        "pull", help="read a live Open Referral UK / HSDS 3.0 API into a versioned catalogue folder"
    )
    pull.add_arguments(pulled)

    admin.add_arguments(sub)  # users, keys, audit, purge

    report = sub.add_parser("report", help="reports from the store, small numbers suppressed")
    report.add_argument(
        "kind", choices=["provision"],
        help="provision: by need and postcode district, searches, searches with fewer than 3 "
        "activities within reach, referrals and attendance",
    )  # fmt: skip
    report.add_argument("--out", required=True, help="CSV file to write")
    report.add_argument("--since", default=None, help="only from this day on (YYYY-MM-DD)")
    report.add_argument("--database", default=None, help="as for serve")

    gp = sub.add_parser(
        "gp-export", help="referrals as FHIR R4 Bundles for GP systems, one per line (NDJSON)"
    )
    gp.add_argument("--out", required=True, help="NDJSON file to write")
    gp.add_argument(
        "--since", default=None,
        help="only referrals made, or given an outcome, on or after YYYY-MM-DD",
    )  # fmt: skip
    gp.add_argument("--catalogue", default=None, help="as for suggest (names the activities)")
    gp.add_argument("--database", default=None, help="as for serve")

    db = sub.add_parser("db", help="the referral store's schema")
    db.add_argument("action", choices=["upgrade", "current"],
                    help="upgrade: apply the migrations; current: print the revision")  # fmt: skip
    db.add_argument("--database", default=None, help="as for serve")
    return parser


# --- commands -------------------------------------------------------------------------------


def _settings(args: argparse.Namespace) -> Settings:
    """The environment's settings, with this command's flags over them."""
    flags = {
        "catalogue": getattr(args, "catalogue", None),
        "model_dir": getattr(args, "model", None),
        "database_url": getattr(args, "database", None),
    }
    return load_settings(**{k: v for k, v in flags.items() if v is not None})


def _matcher(args: argparse.Namespace) -> Matcher:
    settings = _settings(args)
    catalogue = Catalogue.load(catalogue_file(settings.catalogue_source()))
    # --model must load; $MATCHER_MODEL_DIR or the shipped model may fall back to cold start.
    scorer, note = load_scorer(settings.model_dir, required=args.model is not None)
    # One summary line, as training logs it, so skipped records are never silent: always for
    # rank (a batch job), for suggest when a catalogue was named (not the bundled demo).
    if args.command == "rank" or settings.catalogue:
        print(f"matcher: {catalogue.report.summary()}", file=sys.stderr)
    scorer, unlike = suited(scorer, catalogue)
    for line in (note, unlike):
        if line:
            print(f"matcher: {line}", file=sys.stderr)
    return Matcher(catalogue, scorer)


def _profile_from_flags(args: argparse.Namespace) -> Profile:
    data: dict[str, Any] = {}
    if args.profile:
        data = _read_json_file(args.profile, "profile")
        if not isinstance(data, dict):
            raise InvalidProfile([("", "expected a JSON object")], where=args.profile)
    point: dict[str, Any] = {}
    for _flag, name, kind, _text in PROFILE_FLAGS:
        raw = getattr(args, name)
        if raw is None:
            continue
        if name in ("postcode", "lat", "lon"):
            point[name] = kind(raw)
        else:
            data[name] = kind(raw)
    if point:  # location flags replace the file's location as a whole
        data["location"] = point
    try:
        return parse_profile(data)
    except InvalidProfile as exc:
        raise exc.located(args.profile) if args.profile else exc from None


def _read_json_file(path: str, what: str) -> Any:
    try:
        text = Path(path).read_text(encoding="utf-8-sig")
    except OSError:
        raise InvalidInput(f"{path}: cannot read the {what} file") from None
    try:
        return loads_json(text, what)
    except InvalidInput as exc:
        raise exc.located(path) from None


def cmd_suggest(args: argparse.Namespace) -> int:
    profile = _profile_from_flags(args)
    locate(profile)  # an unknown postcode fails before any model is loaded
    matcher = _matcher(args)
    found = matcher.suggest(profile, args.top)
    matches = found.matches
    if args.json:
        out = {"id": profile.id, "matches": [m.to_dict() for m in matches],
               "model_version": matcher.model_version}  # fmt: skip
        if found.notes:
            out["notes"] = found.notes
        print(json.dumps(out, ensure_ascii=False, indent=1))
    else:
        print(format_table(matches, matcher, found.notes))
    if not matches:  # exit 0 all the same: an empty list is an answer, not an error
        print(f"matcher: no suggestions: {'; '.join(found.notes)}", file=sys.stderr)
    return 0


def format_table(matches: Sequence[Match], matcher: Matcher, notes: Sequence[str] = ()) -> str:
    """A link worker's view: rank, name, distance, when, cost, then the reasons; and the notes
    (a short list, or one filled from beyond the usual distance) at the foot."""
    if not matches:
        return ("No activity in the catalogue meets all of this person's stated needs. "
                "Try a larger travel distance or fewer constraints.")  # fmt: skip
    width = max(60, min(shutil.get_terminal_size((100, 20)).columns, 120))
    name_w = max(20, width - 4 - 10 - 34 - 10 - 4)
    header = f"{'#':>2}  {'Activity':<{name_w}} {'Distance':<10}{'When':<34}{'Cost':<10}"
    lines = [header, "-" * len(header)]
    for rank, m in enumerate(matches, start=1):
        distance = (
            "online"
            if m.activity.online
            else ("unknown" if m.distance_km is None else f"{m.distance_km:.1f} km")
        )
        name = textwrap.shorten(m.activity.name, name_w - 1, placeholder="…")
        when_text = textwrap.shorten(m.when(), 33, placeholder="…")
        lines.append(f"{rank:>2}  {name:<{name_w}} {distance:<10}{when_text:<34}{m.cost():<10}")
        for reason in m.reasons:
            lines.append(f"{'':4}- {reason}")
        contact = m.activity.contact
        if contact and (contact.phone or contact.email or contact.url):
            lines.append(f"{'':4}  Contact: " + ", ".join(
                x for x in (contact.phone, contact.email, contact.url) if x))  # fmt: skip
    lines.append("")
    lines += [f"Note: {note[:1].upper()}{note[1:]}." for note in notes]
    lines.append(f"Catalogue: {len(matcher.catalogue)} activities; model: {matcher.model_version}")
    return "\n".join(lines)


def cmd_rank(args: argparse.Namespace) -> int:
    path = args.profiles
    try:
        text = Path(path).read_text(encoding="utf-8-sig")
    except OSError:
        raise InvalidInput(f"{path}: cannot read the profiles file") from None
    profiles: list[tuple[int, Profile]] = []
    # Every line is checked before anything is written, so bad input gives no partial output.
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        where = f"{path} line {number}"
        try:
            profile = parse_profile(loads_json(line, "JSON"))
            locate(profile)  # a postcode not in the table
        except InvalidInput as exc:
            raise exc.located(where) from None
        profiles.append((number, profile))
    matcher = _matcher(args)
    for number, profile in profiles:
        found = matcher.suggest(profile, args.top)
        out = {"id": profile.id, "matches": [m.to_dict() for m in found.matches]}
        sys.stdout.write(json.dumps(out, ensure_ascii=False) + "\n")
        if not found.matches:  # the line number, not the profile: it may hold personal data
            sys.stdout.flush()  # keeps stdout and stderr in order on a terminal
            notes = "; ".join(found.notes)
            print(f"matcher: {path} line {number}: no suggestions: {notes}", file=sys.stderr)
    return 0


def cmd_import_oruk(args: argparse.Namespace) -> int:
    catalogue = Catalogue.load(args.feed)  # the same loading, cleaning and report as serving
    report = catalogue.report
    if report.kind != "oruk":
        raise InvalidInput(f"{args.feed}: not an Open Referral UK feed (a {report.kind} file)")
    out = {
        "about": f"Imported from the Open Referral UK feed {Path(args.feed).name}",
        "activities": [a.to_dict() for a in catalogue.activities],
    }
    Path(args.out).write_text(json.dumps(out, ensure_ascii=False, indent=1) + "\n", "utf-8")
    if args.report:
        Path(args.report).write_text(json.dumps(report.to_dict(), indent=1) + "\n", "utf-8")
    print(report.summary(), file=sys.stderr)
    for where, why in report.skipped[:20]:
        print(f"  skipped {where}: {why}", file=sys.stderr)
    if len(report.skipped) > 20:
        print(f"  … and {len(report.skipped) - 20} more (see --report)", file=sys.stderr)
    for warning in report.warnings:
        print(f"  note: {warning}", file=sys.stderr)
    print(f"wrote {len(catalogue)} activities to {args.out}", file=sys.stderr)
    return 0


def cmd_schema(args: argparse.Namespace) -> int:
    print(json.dumps(json_schema(args.kind), indent=1))
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    """The service under gunicorn; keys only from the environment, so they never show in the
    process list."""
    from .service.server import serve  # Flask and gunicorn only for this command

    return serve(_settings(args), args.host, args.port, args.workers, args.threads)


def cmd_db(args: argparse.Namespace) -> int:
    from . import store

    url = _settings(args).store_url()
    if args.action == "upgrade":
        print(f"database at revision {store.upgrade(url)}")
    else:
        print(store.current(url) or "empty (run: matcher db upgrade)")
    return 0


def _since(text: str | None):
    """``--since`` as a date, or None when not given."""
    from datetime import date

    if not text:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise InvalidInput([("--since", "expected a date as YYYY-MM-DD")]) from None


def cmd_report(args: argparse.Namespace) -> int:
    """The provision report as CSV: the same table, with the same suppression, as
    ``GET /v1/reports/provision?format=csv`` and the ``/reports`` page."""
    from .provision import provision_report
    from .store import Store

    since = _since(args.since)
    url = _settings(args).store_url()
    with Store(url, create=url.startswith("sqlite")) as store:
        report = provision_report(store.demand_rows(since), store.referral_facts(since),
                                  since=since)  # fmt: skip
        text = report.csv_text()
    try:
        Path(args.out).write_text(text, "utf-8")
    except OSError:
        raise InvalidInput(f"{args.out}: cannot write the report file") from None
    print(f"wrote {len(report.rows)} rows to {args.out}", file=sys.stderr)
    return 0


def cmd_gp_export(args: argparse.Namespace) -> int:
    """Referrals as FHIR bundles (matcher.gp_export), audited like other exports."""
    from .gp_export import export_bundles
    from .store import Store

    since = _since(args.since)
    settings = _settings(args)
    catalogue = Catalogue.load(catalogue_file(settings.catalogue_source()))
    if settings.catalogue:  # a named catalogue's skipped records are never silent
        print(f"matcher: {catalogue.report.summary()}", file=sys.stderr)
    url = settings.store_url()
    with Store(url, create=url.startswith("sqlite")) as store:
        report = export_bundles(store, catalogue, Path(args.out), since=since,
                                actor=admin.actor())  # fmt: skip
    print(report.summary(args.out), file=sys.stderr)
    return 0


COMMANDS = {
    "suggest": cmd_suggest,
    "rank": cmd_rank,
    "import-oruk": cmd_import_oruk,
    "schema": cmd_schema,
    "serve": cmd_serve,
    "db": cmd_db,
    "report": cmd_report,
    "gp-export": cmd_gp_export,
    "pull": pull.command,
}


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if getattr(args, "admin_handler", None) is not None:
            return admin.run(args, _settings(args))
        return COMMANDS[args.command](args)
    except MatcherError as exc:
        print(f"matcher: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except BrokenPipeError:
        return 0
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
