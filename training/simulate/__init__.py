"""Simulated social-prescribing worlds in the contract's formats: a catalogue around a real
English town, uptake logged by a biased link worker, later held-out patients, and each held-out
patient's true chance of attending every activity.

    python -m training.simulate --out DIR --seed N [--kind KIND] [--activities N] [--referrals N]
                                [--heldout N]

Kinds of world (:mod:`.kinds`; ``--kind``, ``kind=``), each seeded, the seed picking the town:

- ``dense`` (default): rich, tidy listings and the default effects; a seed's files never change.
- ``council``: sparse listings like a council directory feed: about 70% of in-person activities
  without a location, 60% without need codes, half without sessions, 55% without a cost, HTML
  descriptions; the truth still follows the real, hidden attributes.
- ``vocab``: listings and people's interests in other words (synonyms, regional terms, other
  phrasing), mostly outside the matcher's lexicons.
- ``effects``: other hidden effects: under-40s prefer evening sessions and online, over-65s
  mornings and small groups; cost and distance matter more.
- ``rural``: a rural area (market towns and villages up to 40 km apart), homes spread widely,
  few activities within each person's reach.

:func:`make_worlds` writes many worlds (kinds × seeds) for training and benchmarks across kinds.

Modules, by concern:

- :mod:`.catalogue`   synthetic activities (contract §2): :func:`generate_catalogue`, the
  :data:`ARCHETYPES`
- :mod:`.towns`       the real towns and their postcode sectors
- :mod:`.population`  the people referred: what is true of them and what their form says
- :mod:`.truth`       the hidden truth: :class:`WorldParams`, each activity's true attributes,
  hard needs, the true chance of attending
- :mod:`.policy`      the link worker's biased choices and their outcomes
- :mod:`.kinds`       the kinds of world: how each writes its listing, its people's words and
  its effects
- :mod:`.world`       :func:`build_world`, :func:`simulate` (the files, WORLD.md) and
  :func:`make_worlds`
- :mod:`.cli`         the command line

The big tables (archetypes, listing words, towns, people's phrases, needs, ...) are JSON files
in ``data/``, read once at import.
"""

from __future__ import annotations

from .catalogue import ARCHETYPES, LEEDS_CENTRE, Archetype, generate_catalogue
from .cli import main
from .kinds import KIND_NAMES, KINDS, Kind
from .policy import policy_score
from .population import CONCEPT_NAMES, PERSON_PHRASES, Population, draw_population
from .towns import RURAL_AREAS, TOWNS, town_places
from .truth import (
    ARCHETYPE_CONCEPTS,
    Activities,
    WorldParams,
    hard_zero,
    true_distance,
    true_logit,
    true_probability,
    world_activities,
)
from .world import World, build_world, make_worlds, simulate

__all__ = [
    "ARCHETYPES",
    "ARCHETYPE_CONCEPTS",
    "Activities",
    "Archetype",
    "CONCEPT_NAMES",
    "KINDS",
    "KIND_NAMES",
    "Kind",
    "LEEDS_CENTRE",
    "PERSON_PHRASES",
    "RURAL_AREAS",
    "Population",
    "TOWNS",
    "World",
    "WorldParams",
    "build_world",
    "draw_population",
    "generate_catalogue",
    "hard_zero",
    "main",
    "make_worlds",
    "policy_score",
    "simulate",
    "town_places",
    "true_distance",
    "true_logit",
    "true_probability",
    "world_activities",
]
