"""A catalogue's shape (how much of what a model reads it actually has), and whether a model
trained on catalogues of other shapes should rank it.

A model learns how much a distance, a listed need or a timetable is worth from catalogues
that had them; on a catalogue where most activities have none, it meets rows unlike any it
was trained on. The shapes compared are shares of the active activities: with a location
(of those not online), with need codes listed (not inferred from text), with a timetable,
with a cost. A model card records the range of each share over the catalogues it was
trained on (``catalogue_shapes``); a catalogue further than :data:`SLACK` outside a range
is "unlike anything the model was trained on", and the cold-start scorer, whose hand-set
weights assume nothing about a catalogue, ranks it instead.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from ..catalogue import Catalogue

SLACK = 0.10
SHAPES = {
    "located": "have a location (of those not online)",
    "needs_listed": "list the needs they serve",
    "timetabled": "have a timetable",
    "costed": "state a cost",
}

__all__ = ["SHAPES", "SLACK", "catalogue_shape", "shape_range", "suited", "unlike"]


def catalogue_shape(catalogue: Catalogue) -> dict[str, float]:
    """The shares of the catalogue's active activities that have each thing a model reads."""
    active = catalogue.active if len(catalogue) else np.zeros(0, bool)
    n = max(int(active.sum()), 1)
    in_person = active & ~catalogue.online
    return {
        "located": float((catalogue.located & in_person).sum() / max(int(in_person.sum()), 1)),
        "needs_listed": float((active & ~catalogue.needs_were_inferred).sum() / n),
        "timetabled": float((active & catalogue.slots.any(axis=1)).sum() / n),
        "costed": float((active & ~np.isnan(catalogue.cost)).sum() / n),
    }


def shape_range(shapes: Iterable[Mapping[str, float]]) -> dict[str, list[float]]:
    """Per share, ``[lowest, highest]`` over the given catalogues' shapes."""
    shapes = list(shapes)
    return {key: [min(s[key] for s in shapes), max(s[key] for s in shapes)] for key in SHAPES}


def unlike(shape: Mapping[str, float], ranges: Mapping[str, list[float]] | None) -> list[str]:
    """Why a catalogue of ``shape`` is unlike those a model was trained on (empty if it is
    not, or if the model recorded no ranges)."""
    reasons = []
    for key, words in SHAPES.items():
        if not ranges or key not in ranges:
            continue
        low, high = ranges[key]
        share = shape[key]
        if share < low - SLACK or share > high + SLACK:
            reasons.append(f"{share:.0%} of its activities {words}; the model was trained on "
                           f"catalogues with {low:.0%} to {high:.0%}")  # fmt: skip
    return reasons


def suited(scorer: Any, catalogue: Catalogue) -> tuple[Any, str | None]:
    """The scorer to rank ``catalogue`` with, and a note when it is not the one given: a
    trained model whose card records the catalogue shapes it was trained on gives way to the
    cold-start scorer on a catalogue unlike all of them."""
    card = getattr(scorer, "card", None)
    ranges = card.get("catalogue_shapes") if isinstance(card, dict) else None
    reasons = unlike(catalogue_shape(catalogue), ranges)
    if not reasons:
        return scorer, None
    from .cold_start import ColdStartScorer

    return ColdStartScorer(), (
        f"the catalogue is unlike those model {scorer.version} was trained on ("
        + "; ".join(reasons)
        + "), so the cold-start scorer ranks it"
    )
