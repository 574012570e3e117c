"""Administration on the command line: accounts, API keys, the audit trail and retention.

=======================================================  ==========================================
``matcher users add NAME --role ROLE --password-stdin``  add a user; the password is read from
                                                         standard input (never an argument, which
                                                         other users could see in ``ps``)
``matcher users disable NAME``                           stop a user signing in, for good
``matcher users list``                                   users, roles, and which are disabled
``matcher keys create NAME --scopes match,...``          make an API key; prints the key, once,
                                                         and nothing else on standard output
``matcher keys revoke NAME``                             revoke a key, for good
``matcher keys list``                                    keys and their scopes (never the key)
``matcher audit [--since YYYY-MM-DD]``                   the audit trail as JSON Lines
``matcher purge [--before YYYY-MM-DD]``                  delete referrals made before that date
                                                         (default: today minus
                                                         MATCHER_RETENTION_DAYS); prints how many
=======================================================  ==========================================

Each command is a function taking ``(args, settings)`` and returning an exit code; bad input
exits 2 with one line. What a command changes is audited with the actor ``cli:`` and the
operating-system user's name. The store is the settings' (``--database`` overrides): the
default SQLite file is created on first use, as serving does; a PostgreSQL database must have
been upgraded (``matcher db upgrade``).
"""

from __future__ import annotations

import argparse
import getpass
import json
import re
import sys
from collections.abc import Callable, Sequence
from datetime import date, datetime, timedelta, timezone
from typing import Any, NoReturn

from .errors import MatcherError
from .settings import Settings, load_settings
from .store import SCOPES, AccountError, Store
from .store.accounts import ROLES

__all__ = ["COMMANDS", "DEFAULT_RETENTION_DAYS", "actor", "add_arguments", "main", "run"]

EXIT_BAD_INPUT = 2

COMMANDS = ("users", "keys", "audit", "purge")

# Referrals (and their outcomes) are kept two years unless MATCHER_RETENTION_DAYS says
# otherwise: long enough for outcomes that arrive months later and for a training set that
# spans every season twice; the person's record of care is the case system's, not this copy.
DEFAULT_RETENTION_DAYS = 730

Handler = Callable[[argparse.Namespace, Settings], int]


# --- who is acting --------------------------------------------------------------------------


def actor() -> str:
    """``cli:`` and the operating-system user running the command, as the audit records it."""
    try:
        name = getpass.getuser()
    except (OSError, KeyError):  # no login name and no passwd entry (some containers)
        name = ""
    name = re.sub(r"[^A-Za-z0-9._@-]", "_", name)[:64].lstrip("._@-")
    return f"cli:{name or 'unknown'}"


# --- arguments ------------------------------------------------------------------------------


def _date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError("expected a date as YYYY-MM-DD") from None


def _scopes(text: str) -> list[str]:
    chosen = [s.strip() for s in text.split(",") if s.strip()]
    if not chosen or not set(chosen) <= set(SCOPES):
        raise argparse.ArgumentTypeError(f"expected one or more of {','.join(SCOPES)}")
    return chosen


def _database(p: argparse.ArgumentParser) -> None:
    p.add_argument("--database", default=None,
                   help="referral store URL (default: $MATCHER_DATABASE_URL or "
                        "instance/matcher.sqlite3)")  # fmt: skip


def add_arguments(subparsers: Any) -> None:
    """Register ``users``, ``keys``, ``audit`` and ``purge`` on the command line's subparsers.
    Each parsed command carries its handler: call :func:`run` with the arguments."""
    users = subparsers.add_parser("users", help="add, disable and list the people who sign in")
    users_sub = users.add_subparsers(dest="users_action", required=True)
    add = users_sub.add_parser("add", help="add a user")
    add.add_argument("name", help="user name (letters, digits, '.', '_', '@', '-')")
    add.add_argument("--role", required=True, choices=ROLES, help="what the user may do")
    add.add_argument("--password-stdin", action="store_true",
                     help="read the password from standard input (required; a password is "
                          "never taken as an argument)")  # fmt: skip
    add.set_defaults(admin_handler=cmd_users_add)
    disable = users_sub.add_parser("disable", help="stop a user signing in, for good")
    disable.add_argument("name")
    disable.set_defaults(admin_handler=cmd_users_disable)
    listing = users_sub.add_parser("list", help="users, roles, and which are disabled")
    listing.set_defaults(admin_handler=cmd_users_list)

    keys = subparsers.add_parser("keys", help="create, revoke and list API keys")
    keys_sub = keys.add_subparsers(dest="keys_action", required=True)
    create = keys_sub.add_parser("create", help="make a key; prints it once")
    create.add_argument("name", help="key name, e.g. the system that uses it")
    create.add_argument("--scopes", required=True, type=_scopes,
                        help=f"comma-separated, from: {','.join(SCOPES)}")  # fmt: skip
    create.set_defaults(admin_handler=cmd_keys_create)
    revoke = keys_sub.add_parser("revoke", help="revoke a key, for good")
    revoke.add_argument("name")
    revoke.set_defaults(admin_handler=cmd_keys_revoke)
    klist = keys_sub.add_parser("list", help="keys and their scopes (never the key itself)")
    klist.set_defaults(admin_handler=cmd_keys_list)

    trail = subparsers.add_parser("audit", help="the audit trail as JSON Lines")
    trail.add_argument("--since", type=_date, default=None,
                       help="only lines from this date on (YYYY-MM-DD, UTC)")  # fmt: skip
    trail.set_defaults(admin_handler=cmd_audit)

    purge = subparsers.add_parser("purge", help="delete referrals older than the retention period")
    purge.add_argument("--before", type=_date, default=None,
                       help="delete referrals made before this date (default: today minus "
                            "$MATCHER_RETENTION_DAYS, 730 unless set)")  # fmt: skip
    purge.set_defaults(admin_handler=cmd_purge)

    for p in (add, disable, listing, create, revoke, klist, trail, purge):
        _database(p)


def run(args: argparse.Namespace, settings: Settings) -> int:
    """Run the command :func:`add_arguments` parsed; a :class:`MatcherError` is one line on
    standard error and exit code 2."""
    handler: Handler = args.admin_handler
    try:
        return handler(args, settings)
    except MatcherError as exc:
        print(f"matcher: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT


def _open(settings: Settings) -> Store:
    url = settings.store_url()
    # As serving does: an SQLite file is this host's own, created and upgraded on first use;
    # a shared PostgreSQL is upgraded only by `matcher db upgrade`.
    return Store(url, create=url.startswith("sqlite"))


def _bad(message: str) -> int:
    print(f"matcher: error: {message}", file=sys.stderr)
    return EXIT_BAD_INPUT


# --- users ----------------------------------------------------------------------------------


def _read_password() -> str:
    if sys.stdin.isatty():
        first = getpass.getpass("Password: ")
        if getpass.getpass("Again: ") != first:
            raise AccountError("password: the two passwords differ")
        return first
    line = sys.stdin.readline()
    return line[:-1] if line.endswith("\n") else line.rstrip("\r")


def cmd_users_add(args: argparse.Namespace, settings: Settings) -> int:
    if not args.password_stdin:
        return _bad("users add: --password-stdin is required (a password is never an argument)")
    password = _read_password().rstrip("\r")
    with _open(settings) as store:
        store.add_user(args.name, args.role, password, actor=actor())
    print(f"added user {args.name} ({args.role})", file=sys.stderr)
    return 0


def cmd_users_disable(args: argparse.Namespace, settings: Settings) -> int:
    with _open(settings) as store:
        store.disable_user(args.name, actor=actor())
    print(f"disabled user {args.name}", file=sys.stderr)
    return 0


def _table(header: Sequence[str], rows: list[Sequence[str]]) -> None:
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows, strict=False)]
    for row in [header, *rows]:
        print("  ".join(str(x).ljust(w) for x, w in zip(row, widths, strict=True)).rstrip())


def cmd_users_list(args: argparse.Namespace, settings: Settings) -> int:
    with _open(settings) as store:
        found = store.users()
    _table(
        ("NAME", "ROLE", "STATE", "CREATED"),
        [(u.name, u.role, "disabled" if u.disabled else "active", u.created_at) for u in found],
    )
    return 0


# --- keys -----------------------------------------------------------------------------------


def cmd_keys_create(args: argparse.Namespace, settings: Settings) -> int:
    with _open(settings) as store:
        key = store.create_key(args.name, args.scopes, actor=actor())
    print(key)
    print(f"key {args.name} made; it is shown only this once", file=sys.stderr)
    return 0


def cmd_keys_revoke(args: argparse.Namespace, settings: Settings) -> int:
    with _open(settings) as store:
        store.revoke_key(args.name, actor=actor())
    print(f"revoked key {args.name}", file=sys.stderr)
    return 0


def cmd_keys_list(args: argparse.Namespace, settings: Settings) -> int:
    with _open(settings) as store:
        found = store.keys()
    _table(
        ("NAME", "SCOPES", "STATE", "CREATED", "LAST USED"),
        [
            (
                k.name,
                ",".join(k.scopes),
                "revoked" if k.revoked else "active",
                k.created_at,
                k.last_used_at or "never",
            )
            for k in found
        ],
    )
    return 0


# --- audit and retention --------------------------------------------------------------------


def cmd_audit(args: argparse.Namespace, settings: Settings) -> int:
    with _open(settings) as store:
        for line in store.audit_lines(args.since):
            sys.stdout.write(json.dumps(line, ensure_ascii=False, separators=(",", ":")) + "\n")
    return 0


def retention_days(settings: Settings) -> int:
    return int(getattr(settings, "retention_days", DEFAULT_RETENTION_DAYS))


def cmd_purge(args: argparse.Namespace, settings: Settings) -> int:
    today = datetime.now(timezone.utc).date()
    before = args.before or today - timedelta(days=retention_days(settings))
    if before > today:
        return _bad("purge: --before: expected a date no later than today")
    with _open(settings) as store:
        count = store.purge(before, actor=actor())
    print(f"purged {count} referrals made before {before.isoformat()}")
    return 0


# --- on its own: python -m matcher.admin ----------------------------------------------------


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # one line, not usage plus error
        self.exit(EXIT_BAD_INPUT, f"{self.prog}: error: {message} (see --help)\n")


def main(argv: Sequence[str] | None = None) -> int:
    """These commands without the rest of the command line (``python -m matcher.admin``)."""
    parser = _Parser(prog="matcher", description="Accounts, keys, audit and retention.")
    add_arguments(parser.add_subparsers(dest="command", required=True, parser_class=_Parser))
    args = parser.parse_args(argv)
    try:
        settings = load_settings(**({"database_url": args.database} if args.database else {}))
    except MatcherError as exc:
        return _bad(str(exc))
    try:
        return run(args, settings)
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    sys.exit(main())
