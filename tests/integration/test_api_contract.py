"""/api/v1 against its own OpenAPI document: real responses validate, and a contract fuzzer passes.

The document is generated from the pydantic models the API validates with; these tests check
that what the running service answers is what the document says, both for hand-picked calls and
for thousands of calls Schemathesis generates from the document (all of its checks: schema-valid
requests accepted, schema-violating ones rejected, no 5xx, documented status codes and headers).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import requests
from jsonschema import Draft202012Validator

pytestmark = pytest.mark.integration

API = "/api/v1"


def _validate(doc: dict[str, Any], path: str, method: str, response: requests.Response) -> None:
    """The body of ``response`` against the document's schema for this operation and status code."""
    operation = doc["paths"][path][method]
    documented = operation["responses"]
    assert str(response.status_code) in documented, f"{method.upper()} {path}: undocumented {response.status_code}"
    schema = documented[str(response.status_code)]["content"]["application/json"]["schema"]
    validator = Draft202012Validator({**schema, "components": doc["components"]})
    errors = sorted(validator.iter_errors(response.json()), key=str)
    assert errors == [], f"{method.upper()} {path} {response.status_code}: {errors[0].message}"


def test_real_responses_validate_against_the_document(reply_server, make_tweet) -> None:
    base, settings = reply_server
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {settings.secret('api_token')}"
    doc = session.get(f"{base}{API}/openapi.json").json()
    calls = [
        ("/replies", "post", session.post(f"{base}{API}/replies", json=make_tweet(tweet_id="71"))),
        ("/replies", "post", session.post(f"{base}{API}/replies", json={"tweets": [make_tweet(tweet_id="72"),
                                                                                   make_tweet(tweet_id="71")]})),
        ("/replies", "post", session.post(f"{base}{API}/replies", json={"tweets": [{"tweet_id": "x"}]})),
        ("/tickets", "get", session.get(f"{base}{API}/tickets", params={"topic": "BAG", "per_page": 5})),
        ("/tickets", "get", session.get(f"{base}{API}/tickets", params={"sentiment": "angry"})),
        ("/tickets", "get", requests.get(f"{base}{API}/tickets")),
        ("/stats", "get", session.get(f"{base}{API}/stats")),
        ("/health", "get", requests.get(f"{base}{API}/health")),
    ]
    ticket_id = calls[0][2].json()["ticket_id"]
    calls += [
        ("/tickets/{ticket_id}", "get", session.get(f"{base}{API}/tickets/{ticket_id}")),
        ("/tickets/{ticket_id}", "get", session.get(f"{base}{API}/tickets/NOPE-1")),
        ("/tickets/{ticket_id}", "patch", session.patch(f"{base}{API}/tickets/{ticket_id}", json={"status": "pending"})),
        ("/tickets/{ticket_id}", "patch", session.patch(f"{base}{API}/tickets/{ticket_id}", json={"status": "gone"})),
    ]
    assert [c[2].status_code for c in calls] == [200, 200, 400, 200, 400, 401, 200, 200, 200, 404, 200, 400]
    for path, method, response in calls:
        _validate(doc, path, method, response)
    not_allowed = session.delete(f"{base}{API}/replies")
    assert not_allowed.status_code == 405 and set(not_allowed.headers["Allow"].split(", ")) == {"OPTIONS", "POST"}
    _validate(doc, "/replies", "post", not_allowed)


@pytest.mark.slow
def test_schemathesis_finds_no_contract_violation(reply_server, tmp_path: Path) -> None:
    """Schemathesis 4 with every check against the live service (fixed seed: the same cases each run)."""
    base, settings = reply_server
    st = Path(sys.executable).with_name("st")
    result = subprocess.run(
        [str(st), "run", f"{base}{API}/openapi.json", "--checks", "all", "--max-examples", "40",
         "--seed", "20261130", "--workers", "1", "--no-color", "--generation-database", "none",
         "-H", f"Authorization: Bearer {settings.secret('api_token')}"],
        capture_output=True, text=True, cwd=tmp_path, timeout=600, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    assert "generated" in result.stdout and " failed" not in result.stdout.split("SUMMARY")[-1]
