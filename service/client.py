"""The store's HTTP API from Python (httpx): what the command line uses to ask a running store,
and what another Python service can use instead of writing its own client."""

from __future__ import annotations

from typing import Any, TypeVar
from urllib.parse import quote

import httpx
from pydantic import BaseModel, ValidationError

from service.answers import (
    GenerationInfo,
    GenerationsAnswer,
    Health,
    IncompleteAnswer,
    MetricsAnswer,
    SearchAnswer,
    SessionAnswer,
    SessionsAnswer,
    TurnsAnswer,
)

M = TypeVar("M", bound=BaseModel)


class ServiceError(RuntimeError):
    """The store answered with a problem; the message is its detail."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status


class StoreClient:
    def __init__(self, base_url: str, *, token: str | None = None, timeout_s: float = 30.0) -> None:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._http = httpx.Client(base_url=base_url, headers=headers, timeout=timeout_s)
        self.base_url = base_url

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> StoreClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def reachable(self) -> bool:
        """Whether a store process answers here (it may still be opening the store)."""
        return self.health() is not None

    def health(self) -> Health | None:
        """What the store process here says of itself (``queries`` is false for ``tstore
        project``), or None when none answers: nothing listens, or something that is not a
        store's process."""
        try:
            response = self._http.get("/healthz", timeout=2.0)
            return Health.model_validate_json(response.content) if response.is_success else None
        except (httpx.HTTPError, ValidationError):
            return None

    def sessions(self, **params: Any) -> SessionsAnswer:
        return self._get(SessionsAnswer, "/v1/sessions", params)

    def session(self, session_id: str) -> SessionAnswer:
        return self._get(SessionAnswer, f"/v1/sessions/{_quoted(session_id)}", {})

    def turns(self, session_id: str) -> TurnsAnswer:
        return self._get(TurnsAnswer, f"/v1/sessions/{_quoted(session_id)}/turns", {})

    def search(self, q: str, **params: Any) -> SearchAnswer:
        return self._get(SearchAnswer, "/v1/search", {"q": q, **params})

    def incomplete(self, **params: Any) -> IncompleteAnswer:
        return self._get(IncompleteAnswer, "/v1/incomplete", params)

    def metrics(self, **params: Any) -> MetricsAnswer:
        return self._get(MetricsAnswer, "/v1/analytics", params)

    def generations(self) -> list[GenerationInfo]:
        answer = self._call("GET", "/v1/admin/generations")
        return GenerationsAnswer.model_validate(answer).generations

    def drop_generation(self, number: int) -> GenerationInfo:
        return GenerationInfo.model_validate(
            self._call("DELETE", f"/v1/admin/generations/{number}")
        )

    def start_rebuild(self, body: dict[str, Any]) -> dict[str, Any]:
        answer: dict[str, Any] = self._call("POST", "/v1/admin/rebuild", json=body)
        return answer

    def rebuild_status(self) -> dict[str, Any]:
        answer: dict[str, Any] = self._call("GET", "/v1/admin/rebuild")
        return answer

    def cancel_rebuild(self) -> dict[str, Any]:
        answer: dict[str, Any] = self._call("DELETE", "/v1/admin/rebuild")
        return answer

    def _get(self, model: type[M], path: str, params: dict[str, Any]) -> M:
        given = {k: _param(v) for k, v in params.items() if v is not None}
        return model.model_validate(self._call("GET", path, params=given))

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise ServiceError(0, f"the store at {self.base_url} did not answer: {exc}") from None
        if response.is_success:
            return response.json()
        try:
            detail = str(response.json().get("detail", response.text))
        except ValueError:
            detail = response.text
        raise ServiceError(response.status_code, detail)


def _quoted(segment: str) -> str:
    """``segment`` encoded whole as one path segment, its dots too: httpx removes a bare
    ``.`` or ``..`` segment (RFC 3986 dot segments), so ``/v1/sessions/..`` would ask for
    ``/``; the service decodes ``%2E`` back."""
    return quote(segment, safe="").replace(".", "%2E")


def _param(value: Any) -> Any:
    if isinstance(value, bool):
        return str(value).lower()
    return value.isoformat() if hasattr(value, "isoformat") else value
