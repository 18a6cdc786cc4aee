"""An Azure Blob Storage API server (Azurite, Microsoft's emulator) for tests and development,
without Docker.

Azurite checks every request's Shared Key signature and answers range reads, 404s and 416s as
Azure does, so ``az://`` chunk stores are tested on the real protocol, credentials included.
obstore reaches it in its emulator mode (``AZURE_STORAGE_USE_EMULATOR``) with the emulator's
published account and key, at the URL ``AZURITE_BLOB_STORAGE_URL`` names (default port 10000,
which a test run cannot count on being free).

It is installed from the npm registry once, into the user cache. 3.35.0 is the newest release
that still declares Node.js 20 (the machines' Node; Debian's is 18): 3.36 asks for 21, 3.37 for
22. Containers are made, and objects uploaded as another writer's would be, by signed REST
calls: no Azure SDK is a dependency of this project, and obstore cannot make containers.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from email.utils import formatdate
from pathlib import Path
from urllib.parse import quote

from tstore.devserver import (
    ObjectServer,
    Tool,
    cache_dir,
    expect,
    loopback_request,
    require_tool,
    resolve_once,
    run_tool,
)

AZURITE_VERSION = "3.35.0"
ACCOUNT = "devstoreaccount1"
ACCOUNT_KEY = (
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)
"""The emulator's well-known account key, published by Microsoft: no secret."""
_API_VERSION = "2021-08-06"


def resolve_azurite(cache: Path | None = None) -> Path:
    """The ``azurite-blob`` program, installed on first use (``resolve_once``)."""
    npm = Tool("npm", "Azurite is installed from the npm registry once", "npm")
    folder = (cache or cache_dir()) / f"azurite-{AZURITE_VERSION}"
    return resolve_once(folder, npm, _install, what="Azurite") / "node_modules/.bin/azurite-blob"


def _install(npm: str, staged: Path) -> None:
    """``npm install`` into ``staged``, with an npm cache that goes with the staging folder."""
    run_tool(
        [
            npm,
            "install",
            "--prefix",
            str(staged),
            "--cache",
            str(staged.parent / "npm-cache"),
            "--no-audit",
            "--no-fund",
            "--loglevel=error",
            f"azurite@{AZURITE_VERSION}",
        ],
        f"Azurite {AZURITE_VERSION} with npm",
    )


def shared_key(method: str, path: str, headers: dict[str, str], key: str = ACCOUNT_KEY) -> str:
    """The ``Authorization`` header of a Blob service request: an HMAC of its canonical form
    (Shared Key, version 2015-02-21 on). ``path`` is the request's encoded path after the
    account, with its query; ``headers`` must hold every ``x-ms-*`` header sent."""
    resource, _, query = path.partition("?")
    parameters = sorted(tuple(p.split("=", 1)) for p in query.split("&") if p)
    standard = [
        headers.get(name, "")
        for name in (
            "Content-Encoding",
            "Content-Language",
            "Content-Length",
            "Content-MD5",
            "Content-Type",
            "Date",
            "If-Modified-Since",
            "If-Match",
            "If-None-Match",
            "If-Unmodified-Since",
            "Range",
        )
    ]
    if standard[2] == "0":
        standard[2] = ""
    canonical = "".join(
        f"{name.lower()}:{value}\n"
        for name, value in sorted(headers.items(), key=lambda item: item[0].lower())
        if name.lower().startswith("x-ms-")
    )
    canonical += f"/{ACCOUNT}/{ACCOUNT}{resource}"
    canonical += "".join(f"\n{name.lower()}:{value}" for name, value in parameters)
    signed = "\n".join([method, *standard, canonical])
    digest = hmac.new(base64.b64decode(key), signed.encode(), hashlib.sha256).digest()
    return f"SharedKey {ACCOUNT}:{base64.b64encode(digest).decode()}"


class DevAzure(ObjectServer):
    """A local Azure Blob API server (Azurite's blob service alone); ``start`` after ``stop``
    serves the same containers on the same port. Without ``data_dir`` a temporary folder holds
    them and is removed by ``close``."""

    name = "Azurite"
    scheme = "az"
    endpoint_variable = "AZURITE_BLOB_STORAGE_URL"

    def __init__(
        self, data_dir: Path | None = None, *, port: int | None = None, program: Path | None = None
    ) -> None:
        self._node = require_tool("node", "Azurite is a Node.js program", "nodejs")
        self._program = program or resolve_azurite()
        super().__init__(data_dir, "tstore-azure-", port)

    @property
    def blobs_dir(self) -> Path:
        return self.data_dir / "blobs"

    def client_env(self) -> dict[str, str]:
        return {
            "AZURE_STORAGE_USE_EMULATOR": "true",
            "AZURITE_BLOB_STORAGE_URL": self.endpoint,
            "AZURE_STORAGE_ACCOUNT_NAME": ACCOUNT,
            "AZURE_STORAGE_ACCOUNT_KEY": ACCOUNT_KEY,
        }

    def create_bucket(self, name: str) -> str:
        """A container; Azure's names are 3 to 63 lowercase letters, digits and hyphens."""
        answer = self._signed("PUT", f"/{quote(name)}?restype=container")
        expect(answer, (201, 409), f"Azurite: creating container {name!r}")
        return name

    def upload(self, bucket: str, key: str, data: bytes) -> None:
        answer = self._signed(
            "PUT",
            f"/{quote(bucket)}/{quote(key)}",
            data,
            {"x-ms-blob-type": "BlockBlob", "Content-Type": "application/octet-stream"},
        )
        expect(answer, (201,), f"Azurite: uploading az://{bucket}/{key}")

    def _signed(
        self, method: str, path: str, body: bytes = b"", extra: dict[str, str] | None = None
    ) -> tuple[int, bytes] | None:
        headers = {
            "x-ms-date": formatdate(usegmt=True),
            "x-ms-version": _API_VERSION,
            "Content-Length": str(len(body)),
            **(extra or {}),
        }
        headers["Authorization"] = shared_key(method, path, headers)
        return loopback_request(self.port, method, f"/{ACCOUNT}{path}", body=body, headers=headers)

    def _command(self) -> list[str]:
        self.blobs_dir.mkdir(parents=True, exist_ok=True)
        return [
            self._node,
            str(self._program),
            "--blobHost=127.0.0.1",
            f"--blobPort={self.port}",
            f"--location={self.blobs_dir}",
            "--skipApiVersionCheck",  # obstore may sign with a newer API version
            "--loose",  # ignore headers Azurite lacks, as Azure would not refuse them
            "--disableTelemetry",
            "--silent",
        ]

    def _answering(self) -> bool:
        """Any HTTP answer will do (an unsigned request gets 403): the server is serving."""
        return loopback_request(self.port, "GET", f"/{ACCOUNT}?comp=list", timeout=2) is not None
