"""A stand-in Open Referral UK API on loopback for the pull tests.

:class:`FeedServer` serves a list of service records at ``GET /api/services`` page by page, in
the HSDS 3.0 / ORUK 3.0 shape (``{"total_pages", "page_number", "contents"}``) or the ORUK v1
shape (``{"totalPages", "number", "content"}``, ``number`` counting from 0 or 1), honouring
``page``, ``per_page`` and ``modified_after`` (against a time per record that the test sets),
with switches for the faults a real API shows. It listens on 127.0.0.1, port 0, in a thread;
nothing leaves the machine.
"""

from __future__ import annotations

import contextlib
import copy
import json
import math
import threading
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

V1 = "v1"
V3 = "v3"
EPOCH = datetime(2020, 1, 1, tzinfo=timezone.utc)


def to_v3(record: dict, modified: datetime) -> dict:
    """One ORUK v1 service record in the HSDS 3.0 / ORUK 3.0 shape, as a 3.0 API lists it.

    Only what 3.0 renamed or moved changes: ``fees`` becomes ``fees_description``,
    ``regular_schedules`` becomes ``schedules``, the organisation's ``url`` becomes
    ``website``, v1's ``pc_metadata`` (provenance; 3.0 keeps that in ``metadata``) goes, and
    ``last_modified`` is added. ORUK v1's own fields that 3.0 has no place for
    (``attending_type``, ``deliverable_type``, ``attending_access``, ``pc_targetAudience``…)
    stay as extension fields, as a publisher part-way through moving to 3.0 sends them.
    """
    service = copy.deepcopy(record)
    if "fees" in service:
        service["fees_description"] = service.pop("fees")
    if "regular_schedules" in service:
        service["schedules"] = service.pop("regular_schedules")
    organisation = service.get("organization")
    if isinstance(organisation, dict) and "url" in organisation:
        organisation["website"] = organisation.pop("url")
    service.pop("pc_metadata", None)
    service["last_modified"] = modified.strftime("%Y-%m-%dT%H:%M:%S.000Z")
    return service


def _when(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


class FeedServer:
    """A feed served page by page; every switch is a plain attribute the test sets.

    Pages are named as the client asks for them (``page=1`` is the first).
    """

    def __init__(self, records: list[dict], *, shape: str = V3, first_number: int = 1):
        self.records = [copy.deepcopy(r) for r in records]
        self.shape = shape
        self.first_number = first_number  # what the first page calls itself (v1: 0 or 1)
        self.modified: dict[str, datetime] = {}  # id -> when it last changed (EPOCH if unset)
        self.requests: list[dict[str, str]] = []  # the query of every /services request
        # faults
        self.status: dict[int, int] = {}  # page -> HTTP status to answer with
        self.junk_page: int | None = None  # answers HTML instead of JSON
        self.bare_page: int | None = None  # answers a bare JSON array, not a page
        self.deep_page: int | None = None  # answers JSON nested 100 000 deep
        self.slow_page: int | None = None  # answers only when released (or after 10 s)
        self.grow_from_page: int | None = None  # total_pages is one more from this page on
        self.skip_page: int | None = None  # answers this page with the next one
        self.send_length = True  # False: no Content-Length, the body ends when the line closes
        self._release = threading.Event()
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    # --- the test's controls --------------------------------------------------------------

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/api"

    def add(self, record: dict, when: datetime) -> None:
        self.records.append(copy.deepcopy(record))
        self.modified[str(record["id"])] = when

    def change(self, service_id: str, when: datetime, **fields: Any) -> None:
        record = next(r for r in self.records if str(r["id"]) == service_id)
        record.update(fields)
        self.modified[service_id] = when

    def pages_asked(self) -> list[int]:
        return [int(q.get("page", "1")) for q in self.requests]

    def start(self) -> FeedServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._release.set()
        self._server.shutdown()
        self._server.server_close()

    # --- answering ------------------------------------------------------------------------

    def _page(self, query: dict[str, str]) -> tuple[int, str, bytes]:
        page = int(query.get("page", "1"))
        per_page = int(query.get("per_page", "50"))
        if page in self.status:
            return self.status[page], "text/plain", b"error"
        if page == self.junk_page:
            return 200, "text/html", b"<html><body>Service unavailable</body></html>"
        if page == self.slow_page:
            self._release.wait(10)
        records = self.records
        if "modified_after" in query:
            since = _when(query["modified_after"])
            records = [r for r in records if self.modified.get(str(r["id"]), EPOCH) >= since]
        total_pages = math.ceil(len(records) / per_page)
        served = page + 1 if page == self.skip_page else page
        contents = records[(served - 1) * per_page : served * per_page]
        if self.grow_from_page is not None and page >= self.grow_from_page:
            total_pages += 1
        number = served - 1 + self.first_number
        if self.shape == V3:
            body: dict[str, Any] = {
                "total_items": len(records),
                "total_pages": total_pages,
                "page_number": number,
                "size": len(contents),
                "first_page": served == 1,
                "last_page": served >= total_pages,
                "empty": not contents,
                "contents": [to_v3(r, self.modified.get(str(r["id"]), EPOCH)) for r in contents],
            }
        else:
            body = {
                "totalElements": len(records),
                "totalPages": total_pages,
                "number": number,
                "size": per_page,
                "numberOfElements": len(contents),
                "first": served == 1,
                "last": served >= total_pages,
                "content": contents,
            }
        if page == self.bare_page:
            return 200, "application/json", json.dumps(contents).encode()
        if page == self.deep_page:
            key = "contents" if self.shape == V3 else "content"
            text = json.dumps({**body, key: []})
            deep = "[" * 100_000 + "]" * 100_000
            return 200, "application/json", text.replace("[]", f"[{deep}]").encode()
        return 200, "application/json", json.dumps(body).encode()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        feed = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (the http.server spelling)
                parts = urlsplit(self.path)
                if parts.path.rstrip("/") != "/api/services":
                    self._send(404, "text/plain", b"not found")
                    return
                query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
                with feed._lock:
                    feed.requests.append(query)
                self._send(*feed._page(query))

            def _send(self, status: int, kind: str, body: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Type", kind)
                if feed.send_length:
                    self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                with contextlib.suppress(OSError):  # the client gave up (a timeout test)
                    self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                pass

        return Handler


def later(seconds: float = 1.0) -> datetime:
    """A time after now: when a record changed after a pull started."""
    return datetime.now(timezone.utc) + timedelta(seconds=seconds)
