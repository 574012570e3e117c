"""The provision report for other systems (``GET /v1/reports/provision``, JSON or CSV), and
what the ``/reports`` page shares with it: reading ``since``, building the report from the
store, the CSV answer and the charts' bars. Small numbers are suppressed in
:mod:`matcher.provision`; nothing here sees a count that the report does not show."""

from __future__ import annotations

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


def read_since() -> date | None:
    """``?since=YYYY-MM-DD``: only searches and referrals from that day on."""
    text = request.args.get("since", "").strip()
    if not text:
        return None
    try:
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
