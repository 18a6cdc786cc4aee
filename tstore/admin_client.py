"""``tstore rebuild``'s side of the admin endpoint (``consumers.admin``): JSON over HTTP."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any, cast


class AdminError(RuntimeError):
    """The store owner refused the request; the message is its reason."""


class AdminClient:
    def __init__(self, host: str, port: int, timeout_s: float = 30.0) -> None:
        self._url = f"http://{host}:{port}/rebuild"
        self._timeout_s = timeout_s

    def reachable(self) -> bool:
        """Whether a store-owning process answers: if not, the rebuild runs here."""
        try:
            self.status()
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            return False
        return True

    def status(self) -> dict[str, Any]:
        return self._call(urllib.request.Request(self._url))

    def start(self, body: dict[str, Any]) -> dict[str, Any]:
        request = urllib.request.Request(
            self._url,
            data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        return self._call(request)

    def _call(self, request: urllib.request.Request) -> dict[str, Any]:
        try:
            with urllib.request.urlopen(request, timeout=self._timeout_s) as response:
                return cast(dict[str, Any], json.loads(response.read()))
        except urllib.error.HTTPError as exc:
            raise AdminError(json.loads(exc.read()).get("error", str(exc))) from None
