"""The provision report for other systems (``GET /v1/reports/provision``, JSON or CSV), and
what the ``/reports`` page shares with it: reading ``since``, building the report from the
store, the CSV answer and the charts' bars. Small numbers are suppressed in
:mod:`matcher.provision`; nothing here sees a count that the report does not show."""

from __future__ import annotations

import re
from datetime import date
from typing import Any

from flask import Blueprint, Response, request

from ..errors import InvalidInput
from ..provision import ALL_DISTRICTS, ProvisionReport, provision_report
from .auth import actor, needs
from .context import Service, service

reports = Blueprint("reports", __name__, url_prefix="/v1/reports")

REPORT_SCOPE = "reports:read"
CHART_DISTRICTS = 15  # bars per need's chart; the table has every district


def read_since(*, empty_ok: bool = False) -> date | None:
    """``?since=YYYY-MM-DD``: only searches and referrals from that day on. Exactly that
    form (Python would also take "20261207" or a week date); empty only from the page's
    form, which sends the field unfilled."""
    text = request.args.get("since")
    if text is None or (empty_ok and not text.strip()):
        return None
    try:
        if not re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", text):
            raise ValueError
        return date.fromisoformat(text)
    except ValueError:
        raise InvalidInput([("since", "expected a date as YYYY-MM-DD")]) from None


def report_for(svc: Service, since: date | None) -> ProvisionReport:
    return provision_report(
        svc.store.demand_rows(since), svc.store.referral_facts(since), since=since
    )


def csv_response(report: ProvisionReport) -> Response:
    return Response(
        report.csv_text(),
        mimetype="text/csv",
        headers={"Content-Disposition": 'attachment; filename="provision.csv"'},
    )


@reports.get("/provision")
@needs(REPORT_SCOPE)
def provision() -> Any:
    """By need and postcode district: searches, searches with fewer than 3 activities within
    reach, referrals and attendance; counts below 5 suppressed (``?format=csv`` for CSV)."""
    fmt = request.args.get("format", "json")
    if fmt not in ("json", "csv"):
        raise InvalidInput([("format", "expected json or csv")])
    report = report_for(service(), read_since())
    service().audit(actor(), "report.read")
    if fmt == "csv":
        return csv_response(report)
    return report.to_dict()


def _bar(label: str, value: int | str) -> dict[str, Any]:
    """A bar for a shown number; a suppressed one gets its mark and no length (a length would
    say more than the mark)."""
    return {"label": label, "value": value if isinstance(value, int) else None, "text": value}


def chart_data(report: ProvisionReport) -> list[dict[str, Any]]:
    """Charts for the page: first every need over all districts, then each need by district
    (the districts with the most searches shown, ordered by the shown numbers only, so a
    suppressed cell's place in the order gives nothing away)."""
    charts = []
    totals = [r for r in report.rows if r.district == ALL_DISTRICTS]
    if totals:
        charts.append({
            "title": "Searches by need, all districts",
            "need": None,
            "rows": [{"label": r.need, "bars": [
                _bar("searched", r.cells["searched"].out()),
                _bar("fewer than 3", r.cells["fewer_than_3"].out())]} for r in totals],
        })  # fmt: skip
    for need in report.needs():
        rows = [r for r in report.rows if r.need == need and r.district != ALL_DISTRICTS]

        def shown(r: Any) -> int:
            out = r.cells["searched"].out()
            return out if isinstance(out, int) else -1

        rows.sort(key=lambda r: (-shown(r), r.district))
        charts.append({
            "title": f"Searches by district: {need}",
            "need": need,
            "rows": [{"label": r.district, "bars": [
                _bar("searched", r.cells["searched"].out()),
                _bar("fewer than 3", r.cells["fewer_than_3"].out())]}
                for r in rows[:CHART_DISTRICTS]],
        })  # fmt: skip
    for chart in charts:
        values = [b["value"] for row in chart["rows"] for b in row["bars"] if b["value"]]
        chart["max"] = max(values, default=1)
    return charts


# --- its entry in the OpenAPI document (openapi.py adds it) -----------------------------------

_COUNT = {"anyOf": [{"type": "integer", "minimum": 0}, {"enum": ["<5", "[c]"]}]}
_RATE = {"anyOf": [{"type": "number", "minimum": 0}, {"const": "[c]"}, {"type": "null"}]}
PROVISION_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["since", "threshold", "few", "suppressed", "columns", "rows"],
    "properties": {
        "since": {"anyOf": [{"type": "string", "format": "date"}, {"type": "null"}]},
        "threshold": {"type": "integer", "description": "counts from 1 to this less 1: <5"},
        "few": {"type": "integer", "description": "fewer than this many activities: short"},
        "suppressed": {"type": "object"},
        "columns": {"type": "array", "items": {"type": "string"}},
        "rows": {"type": "array", "items": {
            "type": "object",
            "required": ["need", "district", "searched", "fewer_than_3", "referrals",
                         "attended", "referral_rate", "attendance_rate"],
            "properties": {
                "need": {"type": "string"},
                "district": {"type": "string", "description": 'a postcode district, "unknown" '
                             'or "All" (the need over all districts)'},
                "searched": _COUNT, "fewer_than_3": _COUNT, "referrals": _COUNT,
                "attended": _COUNT, "referral_rate": _RATE, "attendance_rate": _RATE,
            },
        }},
    },
}  # fmt: skip


def openapi_path(responses: Any, security: list[Any]) -> dict[str, Any]:
    """``GET /v1/reports/provision`` as OpenAPI; ``responses`` is openapi.py's helper."""
    return {"get": {
        "operationId": "provisionReport",
        "summary": "Where provision is missing, by need and postcode district; counts below 5 "
                   "suppressed (scope reports:read)",
        "security": security,
        "parameters": [
            {"name": "since", "in": "query", "required": False,
             "description": "only searches and referrals from this day on",
             "schema": {"type": "string", "format": "date"}},
            {"name": "format", "in": "query", "required": False,
             "schema": {"type": "string", "enum": ["json", "csv"], "default": "json"}},
        ],
        "responses": {
            "200": {"description": "The report (JSON, or CSV with format=csv)",
                    "content": {"application/json": {"schema": PROVISION_SCHEMA},
                                "text/csv": {"schema": {"type": "string"}}}},
            **responses(None, 401, 422, 500),
        },
    }}  # fmt: skip
