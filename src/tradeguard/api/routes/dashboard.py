"""The dashboard at `/` and its assets under `/static/`, all from inside the package.

A strict Content-Security-Policy goes with every dashboard response: the page may load and connect to
its own origin only, runs no inline script or style, and cannot be framed.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from tradeguard.dashboard import INDEX, Asset, asset

router = APIRouter(include_in_schema=False)

CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "font-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    )
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}
# Linked from index.html with their content hash, so a versioned URL never changes meaning.
FOREVER = "public, max-age=31536000, immutable"
REVALIDATE = "no-cache"


def _serve(request: Request, item: Asset, cache_control: str) -> Response:
    packed = item.gzipped if _accepts_gzip(request.headers.get("accept-encoding", "")) else None
    etag = item.gzip_etag if packed is not None else item.etag
    headers = {**SECURITY_HEADERS, "Cache-Control": cache_control, "ETag": etag, "Vary": "Accept-Encoding"}
    if _etags(request.headers.get("if-none-match", "")) & {etag, "*"}:
        return Response(status_code=304, headers=headers)
    body = packed if packed is not None else item.body
    if packed is not None:
        headers["Content-Encoding"] = "gzip"
    response = Response(
        b"" if request.method == "HEAD" else body, media_type=item.content_type, headers=headers
    )
    if request.method == "HEAD":
        response.headers["Content-Length"] = str(len(body))
    return response


def _accepts_gzip(header: str) -> bool:
    for part in header.lower().split(","):
        coding, _, params = part.strip().partition(";")
        if coding.strip() == "gzip":
            return params.replace(" ", "") not in ("q=0", "q=0.0", "q=0.00", "q=0.000")
    return False


def _etags(header: str) -> set[str]:
    return {tag.strip().removeprefix("W/") for tag in header.split(",") if tag.strip()}


@router.api_route("/", methods=["GET", "HEAD"])
async def index(request: Request) -> Response:
    return _serve(request, asset(INDEX), REVALIDATE)


@router.api_route("/static/{name}", methods=["GET", "HEAD"])
async def static(name: str, request: Request) -> Response:
    item = asset(name)
    if item is None or name == INDEX:
        return Response(
            b'{"detail":"not found"}',
            status_code=404,
            media_type="application/json",
            headers=SECURITY_HEADERS,
        )
    versioned = request.query_params.get("v") == item.digest
    return _serve(request, item, FOREVER if versioned else REVALIDATE)
