"""A problem answer keeps the headers its status needs: ``Allow`` on a 405 (RFC 9110 15.5.6),
``WWW-Authenticate`` on a 401, and whatever else the refusal was raised with."""

from __future__ import annotations

from fastapi.testclient import TestClient
from starlette.exceptions import HTTPException

from service.app import create_app
from service.problems import PROBLEM_JSON
from service.state import StoreState


def test_a_method_not_allowed_names_the_allowed_ones() -> None:
    client = TestClient(create_app(StoreState()))
    for method, path in (
        ("DELETE", "/v1/sessions/x"),
        ("POST", "/v1/sessions"),
        ("PUT", "/healthz"),
    ):
        answer = client.request(method, path)
        assert answer.status_code == 405, (method, path)
        assert answer.headers["content-type"] == PROBLEM_JSON
        assert answer.json()["status"] == 405
        assert "GET" in {m.strip() for m in answer.headers["allow"].split(",")}, (method, path)


def test_a_refusal_keeps_the_headers_it_was_raised_with() -> None:
    app = create_app(StoreState(token="secret"))

    @app.get("/slow-down")
    def slow_down() -> None:
        raise HTTPException(429, "too many", headers={"Retry-After": "3"})

    client = TestClient(app)
    limited = client.get("/slow-down")
    assert limited.status_code == 429
    assert limited.headers["retry-after"] == "3"
    assert limited.headers["content-type"] == PROBLEM_JSON
    refused = client.get("/v1/sessions")
    assert refused.status_code == 401
    assert refused.headers["www-authenticate"] == "Bearer"
