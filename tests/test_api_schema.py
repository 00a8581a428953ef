"""Schemathesis against /openapi.json: every operation of the API gets
generated requests, valid and invalid, through the app in process (lifespan
included) with a token configured. Each response must not be a 5xx, must
have a status the document lists for the operation, a body and headers
that match the document, and writes without the token must be refused.

Findings so far (fixed): undocumented 400/413/503 answers; /playbooks/check
answering 422 in the error shape its schema did not allow; lax coercions
that let `true` count as one unit, 0/"no" as a flag, 0 as a date in 1970,
and `"zip": false` become the text "False" (engine.models.json_kinds).

Bounded: EXAMPLES per operation, derandomized, no example database, so the
run takes the same (well under two minutes) every time.
"""

from __future__ import annotations

import shutil
import tempfile
from collections import Counter
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.config import SchemathesisConfig

from server.app import create_app
from server.demo import load_demo
from server.schemas import openapi_document
from server.store import Store

pytestmark = pytest.mark.slow

EXAMPLES = 100
TOKEN = "schemathesis-token"
RUN: Counter = Counter()        # cases run per operation, for the report and the coverage check


CONFIG = SchemathesisConfig.from_dict({
    "headers": {"Authorization": f"Bearer {TOKEN}"},
    "checks": {
        # a body that breaks the schema must get a 4xx; 409 and 413 are refusals too
        "negative_data_rejection": {"expected-statuses": [400, 401, 403, 404, 405, 409, 413, 422]},
        # schema-valid is not the same as acceptable: an order for an unknown item is
        # a 422 with the decision's errors, a playbook that does not check clean a 422
        "positive_data_acceptance": {"enabled": False},
    },
})

# The schema is loaded when the module is collected (schemathesis' lazy
# fixture loader does not work with pytest 9), so the demo database is made
# here, in a folder of its own that the module's last fixture removes.
FOLDER = Path(tempfile.mkdtemp(prefix="steve-schemathesis-"))


def _app():
    path = FOLDER / "steve.db"
    store = Store(path)
    try:
        load_demo(store)
    finally:
        store.close()
    return create_app(db=str(path), token=TOKEN)


schema = schemathesis.openapi.from_asgi("/openapi.json", _app(), config=CONFIG)


@pytest.fixture(scope="module", autouse=True)
def _remove_the_database():
    yield
    shutil.rmtree(FOLDER, ignore_errors=True)


@schema.parametrize()
@settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
          suppress_health_check=list(HealthCheck))
def test_every_operation_answers_as_documented(case):
    RUN[(case.operation.method.upper(), case.operation.path)] += 1
    case.call_and_validate()


def test_every_documented_operation_was_exercised():
    """Every operation of the OpenAPI document is one schemathesis generates
    cases for, and (when the generated cases ran first, in file order) was
    called."""
    documented = {(method.upper(), path) for path, operations in openapi_document()["paths"].items()
                  for method in operations}
    generated = {(result.ok().method.upper(), result.ok().path) for result in schema.get_all_operations()}
    assert documented == generated
    if RUN:
        missing = documented - set(RUN)
        assert not missing, f"operations schemathesis never called: {sorted(missing)}"
        print(f"\nschemathesis: {sum(RUN.values())} cases over {len(RUN)} operations")
