"""Simulate a social-prescribing world in the contract's formats: a catalogue around a real
English town, uptake logged by a biased link worker, later held-out patients, and each held-out
patient's true chance of attending every activity.

    python -m training.simulate --out DIR --seed N [--kind KIND] [--activities N] [--referrals N]
                                [--heldout N]

writes into DIR the files listed in :mod:`training.simulate.world`, prints the summary as one
line of JSON and reports progress on stderr. ``--kind`` is one of :data:`.kinds.KINDS`
(``dense``, the default, ``council``, ``vocab``, ``effects``, ``rural``).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from .kinds import KIND_NAMES
from .world import simulate

__all__ = ["main"]


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit 2
        self.exit(2, f"{self.prog}: error: {message}\n")


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError("expected a number of at least 1")
    return value


def main(argv: list[str] | None = None) -> int:
    parser = _Parser(prog="python -m training.simulate", description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", required=True, help="folder to write the world into")
    parser.add_argument("--seed", required=True, type=int, help="random seed (picks the town too)")
    parser.add_argument("--kind", choices=KIND_NAMES, default="dense",
                        help="kind of world (default: dense)")  # fmt: skip
    parser.add_argument("--activities", type=_positive, default=600, help="catalogue size")
    parser.add_argument("--referrals", type=_positive, default=30_000, help="uptake lines")
    parser.add_argument("--heldout", type=_positive, default=300, help="held-out patients")
    args = parser.parse_args(argv)
    if args.activities < 20:
        parser.error("--activities: expected at least 20")
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        parser.error(f"--out: {out} exists and is not a folder")
    try:
        summary = simulate(
            out, args.seed, args.activities, args.referrals, args.heldout, kind=args.kind,
            progress=lambda msg: print(msg, file=sys.stderr, flush=True),
        )  # fmt: skip
    except OSError as exc:
        print(f"python -m training.simulate: error: {out}: {exc.strerror}", file=sys.stderr)
        return 2
    print(json.dumps(summary))
    return 0
