"""The FastAPI application: routers, problem handlers, and the state they share."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi_offline import FastAPIOffline

from service import problems
from service.paths import SentPath
from service.routes import (
    admin,
    analytics,
    audio,
    freshness,
    health,
    incomplete,
    search,
    sessions,
)
from service.state import StoreState
from viewer.mount import install as install_viewer


def create_app(state: StoreState, *, queries: bool = True) -> FastAPI:
    """The store's HTTP face. Without ``queries`` (``tstore project``) it keeps health,
    metrics and the admin routes: the process still owns the store and runs its rebuilds."""
    app: FastAPI = FastAPIOffline(  # /docs from files in the package: no CDN at run time
        title="transcript-store",
        version="1",
        summary="Voice-bot conversations, projected from Kafka events into ClickHouse.",
    )
    app.state.store = state
    app.state.queries = queries  # told by /healthz and /readyz
    app.add_middleware(SentPath)
    problems.install(app)
    app.include_router(health.router)
    app.include_router(admin.router)
    if queries:
        for module in (audio, sessions, search, incomplete, analytics, freshness):
            app.include_router(module.router)
        install_viewer(app)  # the page at / and its files: no token needed to load them
    document = app.openapi
    app.openapi = lambda: problems.problem_media_type(document())  # type: ignore[method-assign]
    return app
