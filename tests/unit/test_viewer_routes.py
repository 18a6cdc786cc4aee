"""The viewer's routes on the service's app: its page at ``/`` and its files load without the
bearer token, and none of them shadows the API, its docs or the probes."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from service.app import create_app
from service.problems import PROBLEM_JSON
from service.state import StoreState
from viewer.mount import NODE_MODULES


@pytest.fixture
def client() -> TestClient:
    return TestClient(create_app(StoreState(token="secret")))


def test_the_page_and_its_files_need_no_token(client: TestClient) -> None:
    page = client.get("/")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert '<script type="module" src="/viewer/app/app.js">' in page.text
    script = client.get("/viewer/app/app.js")
    assert script.status_code == 200
    assert "javascript" in script.headers["content-type"]


@pytest.mark.skipif(not NODE_MODULES.is_dir(), reason="npm ci has not run in viewer/")
def test_the_libraries_are_served_from_node_modules(client: TestClient) -> None:
    for path in (
        "/viewer/lib/wavesurfer.js/wavesurfer.esm.js",
        "/viewer/lib/wavesurfer.js/plugins/regions.esm.js",
        "/viewer/lib/wavesurfer.js/plugins/timeline.esm.js",
        "/viewer/lib/uplot/uPlot.esm.js",
        "/viewer/lib/uplot/uPlot.min.css",
    ):
        assert client.get(path).status_code == 200, path


def test_the_viewer_shadows_neither_the_api_nor_the_probes(client: TestClient) -> None:
    unknown = client.get("/v1/no-such-route")
    assert unknown.status_code == 404
    assert unknown.headers["content-type"] == PROBLEM_JSON
    assert client.get("/v1/sessions").status_code == 401  # the API still wants its token
    assert client.get("/healthz").json()["status"] == "ok"
    assert client.get("/docs").status_code == 200
    assert "/v1/sessions" in client.get("/openapi.json").json()["paths"]
    assert "/" not in client.get("/openapi.json").json()["paths"]
    assert client.get("/metrics").status_code == 200
