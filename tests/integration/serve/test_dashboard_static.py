"""The dashboard's page and assets as served: types, caching, CSP, and nothing fetched from elsewhere."""

from __future__ import annotations

import re
from importlib import resources

import pytest

from tradeguard.dashboard import assets

ASSETS = ("app.js", "app.css", "favicon.svg")
# Names, not addresses: XML namespaces are never fetched.
NAMESPACES = {"http://www.w3.org/2000/svg", "http://www.w3.org/1999/xlink"}
URL = re.compile(r"""(?:https?:)?//[A-Za-z0-9.-]+\.[A-Za-z]{2,}[^\s"'`)<>]*""")


@pytest.fixture
def http(sqlite_api):
    return sqlite_api.http


def _asset_links(html: str) -> list[str]:
    return re.findall(r"""(?:src|href)="(/static/[^"]+)\"""", html)


async def test_root_serves_the_page_with_a_strict_policy(http):
    response = await http.get("/")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    assert "<title>tradeguard</title>" in response.text
    policy = response.headers["content-security-policy"]
    directives = {part.split()[0]: part.split()[1:] for part in policy.split("; ")}
    assert directives["default-src"] == ["'self'"]
    for directive in ("script-src", "style-src", "connect-src"):
        assert directives[directive] == ["'self'"], directive
    assert directives["frame-ancestors"] == ["'none'"]
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["cache-control"] == "no-cache"
    # No inline script or style for the policy to forbid.
    assert not re.search(r"<script(?![^>]*\bsrc=)", response.text)
    assert "<style" not in response.text and " style=" not in response.text


async def test_every_linked_asset_loads_with_its_type_and_is_cached_for_good(http):
    html = (await http.get("/")).text
    links = _asset_links(html)
    assert {link.split("?")[0] for link in links} == {f"/static/{name}" for name in ASSETS}
    types = {".js": "text/javascript", ".css": "text/css", ".svg": "image/svg+xml"}
    for link in links:
        assert "?v=" in link, link
        response = await http.get(link)
        assert response.status_code == 200, link
        path = link.split("?")[0]
        assert response.headers["content-type"].startswith(types[path[path.rfind(".") :]]), link
        assert response.headers["cache-control"] == "public, max-age=31536000, immutable"
        assert "default-src 'self'" in response.headers["content-security-policy"]
        assert (
            response.content == (resources.files("tradeguard.dashboard") / "static" / path[8:]).read_bytes()
        )


async def test_unversioned_assets_revalidate_and_answer_not_modified(http):
    response = await http.get("/static/app.js")
    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-cache"
    again = await http.get("/static/app.js", headers={"If-None-Match": response.headers["etag"]})
    assert again.status_code == 304
    assert again.content == b""
    head = await http.head("/static/app.css", headers={"Accept-Encoding": "identity"})
    assert head.status_code == 200
    assert head.content == b""
    assert int(head.headers["content-length"]) == len(assets()["app.css"].body)


async def test_text_assets_are_sent_compressed_to_who_accepts_it(http):
    raw = assets()["app.js"].body
    plain = await http.get("/static/app.js", headers={"Accept-Encoding": "identity"})
    assert "content-encoding" not in plain.headers
    assert plain.content == raw
    packed = await http.get("/static/app.js", headers={"Accept-Encoding": "gzip, br"})
    assert packed.headers["content-encoding"] == "gzip"
    assert packed.headers["vary"] == "Accept-Encoding"
    assert int(packed.headers["content-length"]) < len(raw) / 2
    assert packed.content == raw  # decoded by the client
    # Each encoding has its own validator, so a cache never answers one with the other.
    assert packed.headers["etag"] != plain.headers["etag"]
    refused = await http.get("/static/app.js", headers={"Accept-Encoding": "gzip;q=0"})
    assert "content-encoding" not in refused.headers


@pytest.mark.parametrize("name", ["missing.js", "..%2Fapp.py", "%2E%2E%2F__init__.py", "index.html"])
async def test_only_the_static_files_are_served(http, name):
    response = await http.get(f"/static/{name}")
    assert response.status_code == 404


async def test_assets_name_no_other_host():
    for name, asset in assets().items():
        text = asset.body.decode()
        foreign = [url for url in URL.findall(text) if url not in NAMESPACES]
        assert not foreign, f"{name} refers to {foreign}"
        assert "@import" not in text, name


async def test_the_script_talks_only_to_this_origin():
    script = assets()["app.js"].body.decode()
    assert "new EventSource" not in script  # the stream is read through fetch, with the token in a header
    assert "/api/v1/stream" in script or "${API}/stream" in script
    assert "Last-Event-ID" in script
    assert "innerHTML" not in script  # content from the API is never parsed as markup


async def test_the_dashboard_is_not_part_of_the_api_schema(http):
    schema = (await http.get("/openapi.json")).json()
    assert "/" not in schema["paths"]
    assert not any(path.startswith("/static") for path in schema["paths"])
