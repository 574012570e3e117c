"""Liveness (``/healthz``), readiness (``/readyz``) and the API description (``/openapi.json``)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, current_app

from .context import service

meta = Blueprint("meta", __name__)


@meta.get("/healthz")
def healthz() -> Any:
    """The process answers: no database, no disk, so a slow store never restarts a worker."""
    svc = service()
    watcher = svc.watcher
    matcher = svc.matcher()  # takes a new model or catalogue, as any request does
    body: dict[str, Any] = {
        "status": "ok",
        "model_version": matcher.model_version,
        "catalogue_size": len(matcher.catalogue),
        "catalogue_version": watcher.catalogue_version,
    }
    notes = [
        n for n in (watcher.note, watcher.unlike, watcher.refused, watcher.catalogue_refused) if n
    ]
    if notes:
        body["note"] = "; ".join(notes)
    return body


@meta.get("/readyz")
def readyz() -> Any:
    """Ready for traffic: the store takes a write (a real round trip), and what is served."""
    svc = service()
    matcher = svc.matcher()
    writable = svc.store.writable()
    body = {
        "status": "ready" if writable else "unavailable",
        "database": "ok" if writable else "unavailable",
        "model_version": matcher.model_version,
        "catalogue_version": svc.watcher.catalogue_version,
        "catalogue_size": len(matcher.catalogue),
    }
    return body, 200 if writable else 503


@meta.get("/openapi.json")
def openapi() -> Any:
    return current_app.extensions["matcher.openapi"]
