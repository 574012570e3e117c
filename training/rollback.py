"""Put the model that served before back in service: ``python -m training.rollback``."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from matcher.errors import MatcherError
from matcher.scoring import current_version, rollback

EXIT_ERROR = 2
# Relative to the working folder, where `python -m training.train --out models` writes: an
# installed package has no models folder beside its code.
DEFAULT_MODELS = Path("models")


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line and exit 2, as everywhere else
        self.exit(EXIT_ERROR, f"{self.prog}: error: {message} (see --help)\n")


def main(argv: Sequence[str] | None = None) -> int:
    parser = _Parser(
        prog="python -m training.rollback",
        description="Point models/current back at the version that served before it, as "
        "recorded in models/history.json. The version is checked to load before the switch.",
    )
    parser.add_argument(
        "--models",
        type=Path,
        default=DEFAULT_MODELS,
        metavar="DIR",
        help=f"the models folder (default: {DEFAULT_MODELS}/ in the working folder, where "
        "training.train --out models writes)",
    )
    args = parser.parse_args(argv)
    try:
        before = current_version(args.models)
        after = rollback(args.models)
    except (MatcherError, OSError) as exc:
        print(f"rollback: error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    print(f"rolled back {args.models / 'current'}: {before or 'none'} -> {after}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
