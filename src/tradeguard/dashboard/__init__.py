"""The dashboard: a static, dependency-free single page that ships inside the package.

Its assets are read once through importlib.resources, so they are found the same way from a source
tree and from an installed wheel, and served by `tradeguard.api.routes.dashboard`.
"""

from __future__ import annotations

import gzip
import hashlib
from dataclasses import dataclass
from functools import cache, cached_property
from importlib import resources

INDEX = "index.html"

CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
    ".txt": "text/plain; charset=utf-8",
}


@dataclass(frozen=True)
class Asset:
    name: str
    body: bytes
    content_type: str
    digest: str  # short content hash: the ETag, and the ?v= that index.html links assets with

    @property
    def etag(self) -> str:
        return f'"{self.digest}"'

    @property
    def gzip_etag(self) -> str:
        return f'"{self.digest}-gz"'

    @cached_property
    def gzipped(self) -> bytes | None:
        """The body compressed once, when that is worth it (text of some size); None otherwise."""
        if len(self.body) < 1024 or not self.content_type.startswith(("text/", "image/svg")):
            return None
        packed = gzip.compress(self.body, compresslevel=9, mtime=0)
        return packed if len(packed) < len(self.body) else None


def _asset(name: str, body: bytes) -> Asset:
    suffix = name[name.rfind(".") :] if "." in name else ""
    content_type = CONTENT_TYPES.get(suffix, "application/octet-stream")
    return Asset(name, body, content_type, hashlib.sha256(body).hexdigest()[:16])


@cache
def assets() -> dict[str, Asset]:
    """Every file of the static folder by name (one level: no paths, so nothing outside is reachable).

    index.html links the other assets with their content hash, so they can be cached for good.
    """
    folder = resources.files(__name__).joinpath("static")
    found = {
        entry.name: _asset(entry.name, entry.read_bytes())
        for entry in folder.iterdir()
        if entry.is_file() and not entry.name.startswith(".")
    }
    index = found.pop(INDEX)
    html = index.body.decode()
    for asset in found.values():
        html = html.replace(f'"/static/{asset.name}"', f'"/static/{asset.name}?v={asset.digest}"')
    found[INDEX] = _asset(INDEX, html.encode())
    return found


def asset(name: str) -> Asset | None:
    return assets().get(name)
