"""Schemathesis, in-process against ``/openapi.json``: generated requests to every operation get
no 500, and every response (status, content type, body) matches the document."""

from __future__ import annotations

import atexit
import shutil
import tempfile
from pathlib import Path

import pytest
from api_support import make_app
from hypothesis import HealthCheck, settings

from matcher.catalogue import Catalogue
from matcher.settings import demo_catalogue_path

schemathesis = pytest.importorskip("schemathesis")
from schemathesis.config import SchemathesisConfig  # noqa: E402

# Built at import: schemathesis parametrizes tests at collection time. (Its lazy
# ``from_fixture`` loader relies on a pytest internal that pytest 9.2 no longer has.)
_TMP = Path(tempfile.mkdtemp(prefix="matcher-openapi-"))
atexit.register(shutil.rmtree, _TMP, ignore_errors=True)
APP = make_app(_TMP, Catalogue.load(demo_catalogue_path()))
CONFIG = SchemathesisConfig.from_dict(
    {
        "checks": {
            # Some rules are beyond JSON Schema (a postcode in the postcode table, an activity in
            # the catalogue, no sessions for someone who did not go): a schema-valid request may
            # rightly get 422, which the document lists.
            "positive_data_acceptance": {"enabled": False},
            # A request too large for MATCHER_MAX_BODY is refused with 413 before validation.
            "negative_data_rejection": {
                "expected-statuses": [400, 401, 404, 405, 413, 415, 422],
            },
        }
    }
)
schema = schemathesis.openapi.from_wsgi("/openapi.json", APP, config=CONFIG)


@schema.parametrize()
@settings(
    max_examples=25,
    deadline=None,
    derandomize=True,
    suppress_health_check=list(HealthCheck),
)
def test_every_response_matches_the_document(case):
    case.call_and_validate()


def test_the_document_is_openapi_3_1():
    doc = APP.test_client().get("/openapi.json").get_json()
    assert doc["openapi"].startswith("3.1")
    for item in doc["paths"].values():
        for op in item.values():
            for status, response in op["responses"].items():
                assert status.isdigit()
                if int(status) >= 400 and status != "503":  # 503: /healthz's own report
                    assert "application/problem+json" in response["content"]
