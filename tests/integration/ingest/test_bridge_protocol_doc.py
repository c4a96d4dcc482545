"""docs/bridge-protocol.md tells bridge authors the truth: its worked example is what tradeguard computes.

The example's values are read from the page itself (the fenced block after each
`<!-- worked-example:NAME -->` marker), so the page cannot drift from the code unnoticed.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import subprocess
import urllib.request
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import orjson
import pytest

from tests.support.bridging import position, register_follower
from tests.support.builders import sign_up
from tests.support.paths import REPO_ROOT
from tradeguard.ingest.signature import canonical_message, sign
from tradeguard.ingest.validation import parse_snapshot
from tradeguard.values import ServerClock

DOC = REPO_ROOT / "docs" / "bridge-protocol.md"
_EXAMPLE_BLOCK = re.compile(r"<!-- worked-example:([\w-]+) -->\n```\w*\n(.*?)\n```", re.DOTALL)
_CLOSED_DEALS_EXAMPLE = re.compile(r"<!-- example:closed-deals -->\n```json\n(.*?)\n```", re.DOTALL)


def worked_example() -> dict[str, str]:
    blocks = dict(_EXAMPLE_BLOCK.findall(DOC.read_text(encoding="utf-8")))
    values = dict(re.split(r"\s{2,}", line.strip(), maxsplit=1) for line in blocks.pop("values").splitlines())
    return {**blocks, **values}


@pytest.fixture(scope="module")
def example() -> dict[str, str]:
    return worked_example()


@pytest.fixture
def doc_snippet(monkeypatch) -> dict:
    """The page's Python snippet, run as a module would be imported: the part that sends stays unrun."""

    def no_network(*_args, **_kwargs):
        raise AssertionError("the documented snippet must not reach the network when imported")

    monkeypatch.setattr(urllib.request, "urlopen", no_network)
    namespace: dict = {"__name__": "bridge_protocol_example"}
    exec(compile(worked_example()["python"], str(DOC), "exec"), namespace)
    return namespace


def signed(example: dict[str, str], secret: str | None = None) -> str:
    return sign(
        secret or example["secret"],
        example["method"],
        example["path"],
        example["timestamp"],
        example["nonce"],
        example["body"].encode(),
    )


def test_the_page_has_every_part_of_the_worked_example(example):
    for part in ("secret", "device id", "method", "path", "timestamp", "nonce"):
        assert example[part]
    for block in ("body", "body-sha256", "message", "signature", "shell", "python", "empty-sha256"):
        assert example[block]


def test_the_documented_body_digest_is_the_sha256_of_the_body(example):
    assert hashlib.sha256(example["body"].encode()).hexdigest() == example["body-sha256"]


def test_the_documented_digest_of_an_empty_body_is_right(example):
    assert hashlib.sha256(b"").hexdigest() == example["empty-sha256"]


def test_the_documented_canonical_message_is_the_one_tradeguard_signs(example):
    message = canonical_message(
        example["method"], example["path"], example["timestamp"], example["nonce"], example["body"].encode()
    )
    assert message.decode() == example["message"]


def test_the_documented_signature_is_the_one_tradeguard_computes(example):
    assert signed(example) == example["signature"]


def test_the_python_snippet_signs_the_documented_body_into_the_documented_signature(example, doc_snippet):
    assert doc_snippet["example_body"] == example["body"].encode()
    assert doc_snippet["example"]["X-Signature"] == example["signature"]
    assert doc_snippet["DEVICE_ID"] == example["device id"]
    assert doc_snippet["SECRET"] == example["secret"]
    assert doc_snippet["sign"]("secret", "GET", "/p?q=1", "1", "nonce-123", b"") == sign(
        "secret", "GET", "/p?q=1", "1", "nonce-123", b""
    )


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl is not installed")
def test_the_shell_recipe_signs_the_documented_body_into_the_documented_signature(example):
    # curl is replaced by a no-op: the recipe's signature is what is checked, not a server's answer.
    script = "curl() { :; }\n" + example["shell"]
    printed = subprocess.run(["bash", "-c", script], capture_output=True, text=True, check=True).stdout
    assert printed.strip() == example["signature"]
    assert example["body"] in example["shell"]


async def test_a_request_signed_as_the_page_describes_is_accepted(sqlite_api, doc_snippet, example):
    owner = await sign_up(sqlite_api)
    account_id = await owner.new_account("Bridge author's account")
    device = (await owner.post(f"/api/v1/accounts/{account_id}/devices")).json()
    doc_snippet["DEVICE_ID"], doc_snippet["SECRET"] = device["device_id"], device["secret"]
    body = doc_snippet["example_body"]

    # As the snippet's send() does: the current time, a fresh nonce.
    headers = doc_snippet["signed_headers"]("POST", example["path"], body)
    response = await sqlite_api.http.post(example["path"], content=body, headers=headers)

    assert response.status_code == 200, response.text
    assert response.json()["applied"] is True
    assert response.json()["open_positions_count"] == 1

    replay = await sqlite_api.http.post(example["path"], content=body, headers=headers)
    assert replay.status_code == 401


async def test_the_examples_own_timestamp_is_refused_as_outside_the_window(sqlite_api, doc_snippet, example):
    owner = await sign_up(sqlite_api)
    account_id = await owner.new_account("Bridge author's account")
    device = (await owner.post(f"/api/v1/accounts/{account_id}/devices")).json()
    doc_snippet["DEVICE_ID"], doc_snippet["SECRET"] = device["device_id"], device["secret"]
    body = doc_snippet["example_body"]

    headers = doc_snippet["signed_headers"](
        "POST", example["path"], body, timestamp=example["timestamp"], nonce=example["nonce"]
    )
    response = await sqlite_api.http.post(example["path"], content=body, headers=headers)

    assert response.status_code == 401
    assert "300 s" in response.json()["detail"]


async def test_a_poll_signed_as_the_page_describes_is_accepted(sqlite_api, doc_snippet):
    owner = await sign_up(sqlite_api)
    account_id = await owner.new_account("Bridge author's account")
    device = (await owner.post(f"/api/v1/accounts/{account_id}/devices")).json()
    doc_snippet["DEVICE_ID"], doc_snippet["SECRET"] = device["device_id"], device["secret"]

    path = "/api/v1/ingest/commands"
    response = await sqlite_api.http.get(path, headers=doc_snippet["signed_headers"]("GET", path, b""))

    assert response.status_code == 200, response.text
    assert response.json() == {"commands": []}


def closed_deals_example() -> dict:
    return orjson.loads(_CLOSED_DEALS_EXAMPLE.search(DOC.read_text(encoding="utf-8")).group(1))


def test_the_closed_deals_example_is_a_valid_snapshot_whose_deal_realized_the_gap():
    example = closed_deals_example()
    snapshot = parse_snapshot(
        orjson.dumps(example),
        clock=ServerClock(datetime.now(UTC), timedelta(seconds=5)),
        account_currency=example.get("currency", "USD"),
    )

    [deal] = snapshot.closed_deals
    assert deal.to_domain().net_profit == Decimal("-638.74")
    assert snapshot.balance == Decimal(10000) + deal.to_domain().net_profit


async def test_the_closed_deals_example_records_the_close_at_its_realized_pnl(sqlite_api):
    follower = await register_follower(sqlite_api)
    body = closed_deals_example()
    [deal] = body["closed_deals"]
    now = datetime.now(UTC)
    held = position(
        deal["ticket"],
        symbol="XAUUSD",
        volume="0.02",
        open_price="2650.00",
        current_price="2648.31",
        profit="-3.38",
    )
    await follower.bridge.send_snapshot(
        {
            **body,
            "taken_at": (now - timedelta(seconds=5)).isoformat(),
            "positions": [held],
            "closed_deals": [],
        }
    )

    deal["closed_at"] = (now - timedelta(seconds=1)).isoformat()
    summary = await follower.bridge.send_snapshot({**body, "taken_at": now.isoformat()})

    assert summary["closed_on_broker"] == [str(deal["ticket"])]
    [closed] = await follower.events(event_type="closed_on_broker")
    assert (closed["details"]["pnl_source"], Decimal(str(closed["details"]["net_profit"]))) == (
        "realized",
        Decimal("-638.74"),
    )
