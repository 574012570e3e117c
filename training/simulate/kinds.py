"""Kinds of world: the same town, people and link worker, with the catalogue written differently
or other hidden effects, so a model trained across kinds has to hold on any catalogue.

- ``dense``   the default world: rich, tidy listings in the default vocabulary and the effects of
  :class:`~.truth.WorldParams`. A seed writes the same files it always did.
- ``council`` sparse listings, as a council directory feed gives them (ORUK feeds carry no
  locations, sessions or need codes at all): about 70% of in-person activities without a
  location, 60% without need codes, half without sessions, 55% without a cost, 60% without a
  capacity, 40% without a format, and descriptions in HTML (paragraphs, line breaks, entities,
  bold, lists, links). The truth still follows what is really true of each activity (where it
  happens, when, what it costs, what it helps with): a model has to cope with what is missing.
- ``vocab``   other words: names, descriptions, tags and organisations use synonyms, regional
  terms and other phrasing (``data/vocab.json``: "amble" for walk, "blether" for natter,
  "croft" for allotment, ...), and people describe their interests in other words too, mostly
  outside the matcher's lexicons. A model that memorised the default tables' words does not
  transfer.
- ``effects`` other hidden effects (:data:`EFFECTS_PARAMS`): people under 40 prefer evening
  sessions and over-65s mornings (a weaker evening penalty), over-65s prefer small groups, people
  under 40 take to online activities, cost matters three times as much and distance more.
- ``rural``   a rural area instead of a town (:data:`~.towns.RURAL_AREAS`: market towns and
  villages over up to 40 km): activities cluster in the settlements, homes spread 2.5 km around
  their sector's centroid, so most people have few activities within reach; people used to
  travel mind each kilometre less (:data:`RURAL_PARAMS`).

Every kind but ``dense`` seeds its streams from ``(seed, kind code)`` and prefixes its ids with
the kind, so the worlds of one seed differ and never share activity ids; the seed still picks
the town.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np

from matcher.catalogue import Catalogue

from .catalogue import ARCHETYPES
from .population import _N, CONCEPT_NAMES
from .tables import read_table, tuples
from .truth import WorldParams

__all__ = [
    "COUNCIL_MISSING",
    "EFFECTS_PARAMS",
    "KINDS",
    "KIND_NAMES",
    "Kind",
    "RURAL_PARAMS",
    "directory_needs",
]

# --- council: a sparse feed ---------------------------------------------------------------------

# Target share of activities whose listing lacks each field (location: of in-person activities).
COUNCIL_MISSING = {"location": 0.70, "needs": 0.60, "sessions": 0.50, "cost": 0.55,
                   "capacity": 0.60, "format": 0.40, "tags": 0.50}  # fmt: skip
# How often the default generator already leaves each out, so the drop rate tops it up to the
# target rather than overshooting (measured over 20,000 listings of the default tables).
_ALREADY_MISSING = {"location": 0.03, "needs": 0.15, "sessions": 0.10, "cost": 0.06,
                    "capacity": 0.35, "format": 0.05, "tags": 0.12}  # fmt: skip
_HTML_SHARE = 0.9  # descriptions written as HTML; the rest plain text
_SENTENCE = re.compile(r"(?<=[.!?])\s+")


def _as_html(text: str, url: str | None, u: np.ndarray) -> str:
    """A description as a directory's rich-text editor stores it: paragraphs or line breaks,
    entities (``&amp;``, ``&#39;``, ``&nbsp;``), sometimes bold, a list, a link, an empty
    paragraph."""
    sentences = [html.escape(s, quote=False) for s in _SENTENCE.split(text) if s]
    if u[0] < 0.5:
        sentences = [s.replace("'", "&#39;") for s in sentences]
    if u[1] < 0.4:
        sentences = [s.replace(". ", ".&nbsp; ") + "&nbsp;" for s in sentences]
    if u[2] < 0.3 and sentences:
        first = sentences[0].split(" ", 2)
        if len(first) == 3:
            sentences[0] = f"<strong>{first[0]} {first[1]}</strong> {first[2]}"
    style = u[3]
    if style < 0.45 or len(sentences) < 3:
        body = "".join(f"<p>{s}</p>" for s in sentences)
    elif style < 0.75:
        body = "<p>" + "<br>".join(sentences) + "</p>"
    else:
        items = "".join(f"<li>{s}</li>" for s in sentences[1:])
        body = f"<p>{sentences[0]}</p><ul>{items}</ul>"
    if url and u[4] < 0.4:
        body += f'<p>More information: <a href="{html.escape(url)}" target="_blank">{url}</a></p>'
    if u[5] < 0.15:
        body += "<p><br></p>"
    return body


def council_listing(
    records: list[dict], rng: np.random.Generator, places: list[tuple[str, float, float, str]]
) -> list[dict]:
    """The records as a sparse council feed lists them (see :data:`COUNCIL_MISSING`);
    ``places`` are unused (every listing function takes them)."""
    fields = list(COUNCIL_MISSING)
    drop_p = np.array([
        (COUNCIL_MISSING[f] - _ALREADY_MISSING[f]) / (1.0 - _ALREADY_MISSING[f]) for f in fields
    ])  # fmt: skip
    drop = rng.random((len(records), len(fields))) < drop_p
    as_html = rng.random(len(records)) < _HTML_SHARE
    style = rng.random((len(records), 6))
    out = []
    for i, record in enumerate(records):
        r = dict(record)
        for j, field in enumerate(fields):
            if not drop[i, j] or (field == "location" and r.get("online")):
                continue
            if field == "location":
                r["location"] = None  # the feed names no place (the real one is hidden)
            else:
                r.pop(field, None)
        if as_html[i] and r.get("description"):
            url = (r.get("contact") or {}).get("url")
            r["description"] = _as_html(r["description"], url, style[i])
        out.append(r)
    return out


# --- vocab: other words ---------------------------------------------------------------------------

_VOCAB = read_table("vocab")
_LISTING_WORDS: dict[str, tuple[str, ...]] = tuples(_VOCAB["listing"])
VOCAB_PHRASES: dict[str, tuple[str, ...]] = tuples(_VOCAB["phrases"])
del _VOCAB
# Longest first, so "health walk" wins over "walk"; whole words only, any case.
_WORD_RE = re.compile(
    r"(?<![\w'])("
    + "|".join(re.escape(w) for w in sorted(_LISTING_WORDS, key=len, reverse=True))
    + r")(?![\w])",
    re.IGNORECASE,
)


def _reword(text: str, salt: int, keep: re.Pattern | None = None) -> str:
    """``text`` in other words; the spans ``keep`` matches (place names) stay as they are."""

    def swap(match: re.Match) -> str:
        said = match.group(0)
        options = _LISTING_WORDS[said.lower()]
        word = options[(salt + match.start()) % len(options)]
        return word[:1].upper() + word[1:] if said[:1].isupper() else word

    if keep is None:
        return _WORD_RE.sub(swap, text)
    # Odd pieces of the split are the kept place names.
    pieces = keep.split(text)
    return "".join(p if k % 2 else _WORD_RE.sub(swap, p) for k, p in enumerate(pieces))


def vocab_listing(
    records: list[dict], rng: np.random.Generator, places: list[tuple[str, float, float, str]]
) -> list[dict]:
    """The records in other words (``data/vocab.json``); place names and every other field
    as they were."""
    names = sorted({p[0] for p in places}, key=len, reverse=True)
    keep = re.compile("(" + "|".join(re.escape(n) for n in names) + ")") if names else None
    salt = rng.integers(0, 1 << 16, size=len(records)).tolist()
    out = []
    for i, record in enumerate(records):
        r = dict(record)
        for field in ("name", "description", "organisation"):
            if isinstance(r.get(field), str):
                r[field] = _reword(r[field], salt[i], keep)
        if r.get("tags"):
            r["tags"] = list(dict.fromkeys(_reword(t, salt[i], keep) for t in r["tags"]))
        out.append(r)
    return out


# --- effects: other hidden effects ----------------------------------------------------------------

EFFECTS_PARAMS = replace(
    WorldParams(),
    evening_old=-1.0,  # over-65s still avoid evenings, less so ...
    morning_old=1.2,  # ... and prefer mornings
    evening_young=1.4,  # under-40s prefer evenings (after work)
    small_group=0.8,  # over-65s prefer groups of at most 12
    online_young=0.9,  # under-40s take to online activities
    price=-0.25,  # cost matters about three times as much
    over_budget=-1.5,
    distance_scale_km=(0.7, 2.0, 4.5),  # and distance more
)


RURAL_PARAMS = replace(WorldParams(), distance_scale_km=(1.5, 5.0, 10.0))


# --- the kinds ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Kind:
    """One kind of world: its seed code, the truth's effects, how the listing is written and how
    people word their interests."""

    name: str
    code: int  # mixed into the seed (0: the dense world's own streams)
    summary: str  # one line for WORLD.md
    params: WorldParams
    # (records, rng, places) -> the records as the world's catalogue lists them
    listing: Callable[[list[dict], np.random.Generator, list], list[dict]] | None = None
    phrases: dict[str, tuple[str, ...]] | None = None
    rural: bool = False  # set in a rural area of RURAL_AREAS rather than a town
    home_spread_km: float = 0.5  # sd of homes around their sector's centroid

    def entropy(self, seed: int) -> int | list[int]:
        return seed if self.code == 0 else [seed, self.code]

    def id_prefix(self, seed: int) -> str:
        return f"w{seed}-act-" if self.code == 0 else f"w{seed}-{self.name}-act-"


KINDS: dict[str, Kind] = {
    k.name: k
    for k in (
        Kind("dense", 0, "rich, tidy listings; the default effects", WorldParams()),
        Kind("council", 1, "sparse listings as a council directory feed gives them: most without "
             "a location, need codes, sessions or cost; descriptions in HTML", WorldParams(),
             council_listing),
        Kind("vocab", 2, "listings and people's interests in other words (synonyms, regional "
             "terms, other phrasing)", WorldParams(), vocab_listing, VOCAB_PHRASES),
        Kind("effects", 3, "other hidden effects: under-40s prefer evenings and online, over-65s "
             "mornings and small groups; cost and distance matter more", EFFECTS_PARAMS),
        Kind("rural", 4, "a rural area: settlements far apart, long distances, few activities "
             "within reach of each person", RURAL_PARAMS, rural=True, home_spread_km=2.5),
    )
}  # fmt: skip
KIND_NAMES: tuple[str, ...] = tuple(KINDS)

if set(VOCAB_PHRASES) != set(CONCEPT_NAMES):  # a vocab world's people need words for them all
    raise RuntimeError("data/vocab.json: 'phrases' must name every interest concept")


def directory_needs(catalogue: Catalogue, kind: np.ndarray) -> np.ndarray:
    """A × 14: the needs a link worker sees in a published catalogue: those listed; where none
    are, 0.6 on the main need of the activity's kind (guessed from the name), or else 0.6 × the
    needs its text suggests."""
    directory = catalogue.needs_listed.copy()
    for i in np.flatnonzero(~directory.any(axis=1)):
        if kind[i] >= 0:
            directory[i, _N[ARCHETYPES[kind[i]].needs[0]]] = 0.6
        else:
            directory[i] = 0.6 * catalogue.needs_inferred[i]
    return directory
