"""Simulated social-prescribing worlds in the contract's formats: a catalogue around a real
English town, uptake logged by a biased link worker, later held-out patients, and each held-out
patient's true chance of attending every activity.

    python -m training.simulate --out DIR --seed N [--activities N] [--referrals N] [--heldout N]

Modules, by concern:

- :mod:`.catalogue`   synthetic activities (contract §2): :func:`generate_catalogue`, the
  :data:`ARCHETYPES`
- :mod:`.towns`       the real towns and their postcode sectors
- :mod:`.population`  the people referred: what is true of them and what their form says
- :mod:`.truth`       the hidden truth: :class:`WorldParams`, each activity's true attributes,
  hard needs, the true chance of attending
- :mod:`.policy`      the link worker's biased choices and their outcomes
- :mod:`.world`       :func:`build_world` and :func:`simulate` (the files, WORLD.md)
- :mod:`.cli`         the command line

The big tables (archetypes, listing words, towns, people's phrases, needs, ...) are JSON files
in ``data/``, read once at import.
"""

from __future__ import annotations

from .catalogue import ARCHETYPES, LEEDS_CENTRE, Archetype, generate_catalogue
from .cli import main
from .policy import policy_score
from .population import CONCEPT_NAMES, PERSON_PHRASES, Population, draw_population
from .towns import TOWNS, town_places
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
from .world import World, build_world, simulate

__all__ = [
    "ARCHETYPES",
    "ARCHETYPE_CONCEPTS",
    "Activities",
    "Archetype",
    "CONCEPT_NAMES",
    "LEEDS_CENTRE",
    "PERSON_PHRASES",
    "Population",
    "TOWNS",
    "World",
    "WorldParams",
    "build_world",
    "draw_population",
    "generate_catalogue",
    "hard_zero",
    "main",
    "policy_score",
    "simulate",
    "town_places",
    "true_distance",
    "true_logit",
    "true_probability",
    "world_activities",
]
