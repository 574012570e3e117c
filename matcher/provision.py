"""Where provision is missing: the provision report, by need and postcode district, from the
demand record and the referrals' facts, with small numbers suppressed. Pure: rows in, a table
out (JSON-ready dicts, CSV text, bars for a chart).

What a row counts (one row per need and district, and one per need over all districts):

- ``searched``: match requests that stated the need (one demand line each);
- ``fewer_than_3``: of those, how many had fewer than :data:`FEW` activities serving the need
  within reach;
- ``referrals``: referrals made for people who stated the need (a plan of three activities is
  three referrals), and ``attended``: how many of them the person went to;
- ``referral_rate`` = referrals / searched (referrals per search; above 1 when plans hold
  several activities) and ``attendance_rate`` = attended / referrals.

Statistical disclosure control (NHS practice: no small number that could point at a person):

- *primary*: every count from 1 to 4 is shown as ``"<5"``, never as the number;
- zero is shown: it counts nobody, so names nobody, and hiding it would hide exactly the gaps
  (no searches, no referrals, nobody went) that the report exists to show;
- *rates*: a rate is shown only when both of its counts are shown (a rate and its denominator
  give back its numerator), else it is ``"[c]"``; with a zero denominator it is None;
- *secondary*: a number that is shown can still give a suppressed one away through the sums
  the table implies: a need's "All" row is the sum of its district rows, column by column, and
  within a row ``searched = fewer_than_3 + (searched - fewer_than_3)`` and ``referrals =
  attended + (referrals - attended)``, whose second terms are not shown but are small numbers
  too. So the report reasons as a reader would: it narrows every cell it does not show to
  the range of values the shown cells and those sums leave it (a ``"<5"`` cell is 1-4, a
  ``"[c]"`` cell is 0 or at least 5 — readers know the rules — and a hidden difference is at
  least 0), and while any small number (1-4) is narrowed to one value it hides one more
  number of a sum that gave it away: the smallest non-zero shown part of the sum, else the
  sum itself, shown as ``"[c]"``. The textbook case, a total shown with exactly one of its
  cells suppressed, is the first thing this catches; it also catches the subtler ones (a
  total of 6 over a ``"<5"`` and a ``"[c]"`` cell means 1 and 5). When no shown number is
  left to hide and the marks alone give a number away (four ``"<5"`` districts under a
  ``"<5"`` total: each is 1), a ``"<5"`` becomes ``"[c]"`` (the total first): so ``"[c]"``
  means "hidden", small or not. Each round hides a number or turns a mark, so it ends.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from .contract import NEEDS

__all__ = [
    "COLUMNS",
    "COUNTS",
    "FEW",
    "PRIMARY",
    "SECONDARY",
    "THRESHOLD",
    "ALL_DISTRICTS",
    "Cell",
    "ProvisionReport",
    "Row",
    "provision_report",
]

THRESHOLD = 5  # counts below this (and above 0) are never shown
FEW = 3  # "fewer than 3 activities within reach": too little to choose from
PRIMARY = "<5"
SECONDARY = "[c]"  # hidden so that a "<5" cannot be worked out (ONS's mark for confidential)
ALL_DISTRICTS = "All"
UNKNOWN_DISTRICT = "unknown"  # searches by coordinates, or referrals without a postcode
COUNTS = ("searched", "fewer_than_3", "referrals", "attended")
RATES = ("referral_rate", "attendance_rate")
COLUMNS = ("need", "district", *COUNTS, *RATES)
_INFINITY = 10**12


@dataclass(eq=False)
class Cell:
    """One number of the table: its true value and how it is shown (``shown``, ``primary``,
    ``secondary``, or ``hidden`` for the differences the table implies but never prints)."""

    value: int
    status: str = "shown"

    @property
    def small(self) -> bool:
        return 0 < self.value < THRESHOLD

    def out(self) -> int | str:
        if self.status == "shown":
            return self.value
        if self.status == "primary":
            return PRIMARY
        if self.status == "secondary":
            return SECONDARY
        raise ValueError("a hidden cell is never shown")


@dataclass
class Row:
    need: str
    district: str
    cells: dict[str, Cell]
    hidden: dict[str, Cell] = field(default_factory=dict)

    @property
    def total(self) -> bool:
        return self.district == ALL_DISTRICTS

    def rate(self, numerator: str, denominator: str) -> float | str | None:
        top, bottom = self.cells[numerator], self.cells[denominator]
        if top.status != "shown" or bottom.status != "shown":
            return SECONDARY
        if bottom.value == 0:
            return None
        return round(top.value / bottom.value, 3)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"need": self.need, "district": self.district}
        out.update({name: self.cells[name].out() for name in COUNTS})
        out["referral_rate"] = self.rate("referrals", "searched")
        out["attendance_rate"] = self.rate("attended", "referrals")
        return out


@dataclass
class ProvisionReport:
    """The suppressed table: rows by need (vocabulary order), districts alphabetically, each
    need's ``"All"`` row after its districts."""

    rows: list[Row]
    since: str | None
    searches: int  # demand lines read (never shown: a count of everything, for the header)

    def to_dict(self) -> dict[str, Any]:
        return {
            "since": self.since,
            "threshold": THRESHOLD,
            "few": FEW,
            "suppressed": {"primary": PRIMARY, "secondary": SECONDARY},
            "columns": list(COLUMNS),
            "rows": [r.to_dict() for r in self.rows],
        }

    def csv_text(self) -> str:
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(COLUMNS)
        for r in self.rows:
            d = r.to_dict()
            writer.writerow(["" if d[c] is None else d[c] for c in COLUMNS])
        return buffer.getvalue()

    def needs(self) -> list[str]:
        return list(dict.fromkeys(r.need for r in self.rows))


def _get(item: Any, name: str, default: Any = None) -> Any:
    if isinstance(item, Mapping):
        return item.get(name, default)
    return getattr(item, name, default)


def provision_report(
    demand: Iterable[Any], facts: Iterable[Any] = (), *, since: date | None = None
) -> ProvisionReport:
    """The report from demand lines (``district``, ``within_reach``: need -> count, as
    ``Store.demand_rows`` yields them) and referral facts (``district``, ``needs`` and
    ``outcome`` ("attended", ...) as ``Store.referral_facts`` yields them, or ``attended``:
    bool), mappings or objects alike."""
    counts: dict[tuple[str, str], dict[str, int]] = {}

    def slot(need: str, district: str | None) -> dict[str, int]:
        key = (need, district or UNKNOWN_DISTRICT)
        return counts.setdefault(key, dict.fromkeys(COUNTS, 0))

    searches = 0
    for line in demand:
        searches += 1
        district = _get(line, "district")
        for need, n in (_get(line, "within_reach") or {}).items():
            if need not in NEEDS:
                continue
            c = slot(need, district)
            c["searched"] += 1
            c["fewer_than_3"] += int(n < FEW)
    for fact in facts:
        district = _get(fact, "district")
        for need in dict.fromkeys(_get(fact, "needs") or ()):
            if need not in NEEDS:
                continue
            c = slot(need, district)
            c["referrals"] += 1
            went = _get(fact, "outcome") == "attended" or _get(fact, "attended") is True
            c["attended"] += int(went)

    rows: list[Row] = []
    for need in NEEDS:
        districts = sorted(d for (n, d) in counts if n == need)
        if not districts:
            continue
        # One need's sums share no cell with another's: each need is suppressed on its own.
        relations: list[tuple[Cell, list[Cell]]] = []
        parts = [_row(need, d, counts[(need, d)], relations) for d in districts]
        total = _row(
            need, ALL_DISTRICTS,
            {name: sum(counts[(need, d)][name] for d in districts) for name in COUNTS},
            relations,
        )  # fmt: skip
        for name in COUNTS:
            relations.append((total.cells[name], [p.cells[name] for p in parts]))
        rows.extend([*parts, total])
        suppress(relations)
    return ProvisionReport(rows, None if since is None else since.isoformat(), searches)


def _row(
    need: str, district: str, values: dict[str, int], relations: list[tuple[Cell, list[Cell]]]
) -> Row:
    cells = {name: Cell(values[name]) for name in COUNTS}
    hidden = {
        "not_few": Cell(values["searched"] - values["fewer_than_3"], "hidden"),
        "not_attended": Cell(values["referrals"] - values["attended"], "hidden"),
    }
    relations.append((cells["searched"], [cells["fewer_than_3"], hidden["not_few"]]))
    relations.append((cells["referrals"], [cells["attended"], hidden["not_attended"]]))
    return Row(need, district, cells, hidden)


# --- suppression ----------------------------------------------------------------------------


def suppress(relations: list[tuple[Cell, list[Cell]]]) -> None:
    """Primary, then secondary suppression over ``relations`` (total, parts), in place (see
    the module's docstring)."""
    cells = {id(c): c for total, parts in relations for c in (total, *parts)}
    for c in cells.values():
        if c.status == "shown" and c.small:
            c.status = "primary"
    while True:
        bounds = narrowed(relations)
        exposed = [
            c for c in cells.values()
            if c.status != "shown" and c.small and bounds[id(c)][0] == bounds[id(c)][1]
        ]  # fmt: skip
        if not exposed:
            return
        # A printed "<5" first: a hidden difference is often exposed through it.
        exposed.sort(key=lambda c: c.status != "primary")
        _hide_one_more(exposed[0], relations)


def _hide_one_more(exposed: Cell, relations: list[tuple[Cell, list[Cell]]]) -> None:
    """Hide the smallest non-zero shown part of a sum that holds ``exposed``, else the smallest
    such total (hiding a zero would not help: a reader bounds it to 0 again); when no sum that
    holds it shows a non-zero number, look one sum further out."""
    seen: set[int] = set()
    frontier = [exposed]
    while frontier:
        holding = [
            (total, parts) for total, parts in relations
            if any(m is c for c in frontier for m in (total, *parts))
        ]  # fmt: skip
        seen.update(id(c) for c in frontier)
        parts = [p for _, ps in holding for p in ps if p.status == "shown" and p.value > 0]
        totals = [t for t, _ in holding if t.status == "shown" and t.value > 0]
        choice = min(parts or totals, key=lambda c: c.value, default=None)
        if choice is not None:
            choice.status = "secondary"
            return
        frontier = [
            m for total, ps in holding for m in (total, *ps) if id(m) not in seen
        ]  # fmt: skip
    # Nothing shown is left to hide: the marks alone give it away (four "<5" districts under a
    # "<5" total: each is 1). A "<5" then becomes "[c]", the total first, so the marks no
    # longer bound it.
    holding = [(t, ps) for t, ps in relations if any(m is exposed for m in (t, *ps))]
    marked = [t for t, _ in holding if t.status == "primary"]
    marked += sorted((p for _, ps in holding for p in ps if p.status == "primary"),
                     key=lambda c: -c.value)  # fmt: skip
    if not marked:
        raise AssertionError("a small number is exposed by no number or mark")  # cannot happen
    marked[0].status = "secondary"


def _fit(lo: int, hi: int, status: str) -> tuple[int, int]:
    """Bounds a reader can give an unshown cell from its mark alone, tightened by ``lo, hi``:
    "<5" is 1-4; "[c]" is 0 or at least 5; a hidden difference is anything from 0."""
    if status == "primary":
        return max(lo, 1), min(hi, THRESHOLD - 1)
    if status == "secondary":
        if 0 < lo < THRESHOLD:
            lo = THRESHOLD
        if 0 < hi < THRESHOLD:
            hi = 0
    return max(lo, 0), hi


def narrowed(relations: list[tuple[Cell, list[Cell]]]) -> dict[int, tuple[int, int]]:
    """The range of values each cell can have, for a reader who sees only what is shown and
    knows the sums and the marks (bounds propagation to a fixed point)."""
    bounds: dict[int, tuple[int, int]] = {}
    for total, parts in relations:
        for c in (total, *parts):
            if c.status == "shown":
                bounds[id(c)] = (c.value, c.value)
            elif id(c) not in bounds:
                bounds[id(c)] = _fit(0, _INFINITY, c.status)
    by_id = {id(c): c for total, parts in relations for c in (total, *parts)}
    for _ in range(100):  # bounds only narrow; a few rounds reach the fixed point
        changed = False
        for total, parts in relations:
            lo_sum = sum(bounds[id(p)][0] for p in parts)
            hi_sum = sum(bounds[id(p)][1] for p in parts)
            t_lo, t_hi = bounds[id(total)]
            new = _fit(max(t_lo, lo_sum), min(t_hi, hi_sum), by_id[id(total)].status)
            if new != bounds[id(total)]:
                bounds[id(total)], changed = new, True
            t_lo, t_hi = bounds[id(total)]
            for p in parts:
                p_lo, p_hi = bounds[id(p)]
                others_lo, others_hi = lo_sum - p_lo, hi_sum - p_hi
                new = _fit(max(p_lo, t_lo - others_hi), min(p_hi, t_hi - others_lo), p.status)
                if new != bounds[id(p)]:
                    bounds[id(p)], changed = new, True
        if not changed:
            break
    return bounds
