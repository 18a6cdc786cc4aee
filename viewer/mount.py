"""Mounts the viewer on the service's app: its page at ``/``, its own files under
``/viewer/app`` and the browser libraries npm installed under ``/viewer/lib``.

The page is one HTML file whose routes live in the URL's fragment, so ``/`` is the only path
the viewer claims at the root and it can never shadow ``/v1``, ``/docs`` or the probes. None
of it needs the bearer token: the files hold no data, and the page sends the token the user
entered with every API call it makes. The libraries are served from ``viewer/node_modules``
(``npm ci`` in ``make setup``); without Node.js they are absent, their paths answer 404, and
the page says what to install.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import FileResponse
from starlette.staticfiles import StaticFiles

HERE = Path(__file__).parent
STATIC = HERE / "static"
NODE_MODULES = HERE / "node_modules"
LIBRARIES = {"wavesurfer.js": "dist", "uplot": "dist"}
"""npm package → its folder of built files, each served at ``/viewer/lib/<package>``."""


def install(app: FastAPI) -> None:
    """Adds the viewer's routes to ``app``, outside the API's schema."""

    @app.get("/", include_in_schema=False)
    def page() -> FileResponse:
        return FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-cache"})

    app.mount("/viewer/app", StaticFiles(directory=STATIC), name="viewer-app")
    for package, folder in LIBRARIES.items():
        built = NODE_MODULES / package / folder
        if built.is_dir():
            app.mount(f"/viewer/lib/{package}", StaticFiles(directory=built), name=package)
