"""The bridge client's part of the protocol: closed deals go out at least once, and a refused one is let go."""

from __future__ import annotations

import httpx
import orjson
import pytest

from tests.support.bridging import snapshot, stop_loss_through_the_gap
from tradeguard.bridges.client import BridgeClient, BridgeError


async def test_the_bridge_client_sends_a_deal_with_every_snapshot_until_one_is_applied():
    sent: list[list] = []
    answers = iter([{"applied": False}, {"applied": True}, {"applied": True}])

    def tradeguard(request: httpx.Request) -> httpx.Response:
        sent.append(orjson.loads(request.content).get("closed_deals", []))
        return httpx.Response(200, json=next(answers))

    http = httpx.AsyncClient(transport=httpx.MockTransport(tradeguard), base_url="http://fake.test")
    client = BridgeClient(http, device_id="dev_test", secret="s" * 32)
    deal = stop_loss_through_the_gap()
    client.report_closed_deals([deal])

    for _ in range(3):
        await client.send_snapshot(snapshot())

    assert sent == [[deal], [deal], []]


async def test_the_bridge_client_drops_deals_tradeguard_refuses_so_later_snapshots_get_through():
    sent: list[list] = []

    def tradeguard(request: httpx.Request) -> httpx.Response:
        deals = orjson.loads(request.content).get("closed_deals", [])
        sent.append(deals)
        if deals:
            return httpx.Response(422, json={"detail": "closed_deals.0.reason: Input should be ..."})
        return httpx.Response(200, json={"applied": True})

    http = httpx.AsyncClient(transport=httpx.MockTransport(tradeguard), base_url="http://fake.test")
    client = BridgeClient(http, device_id="dev_test", secret="s" * 32)
    client.report_closed_deals([stop_loss_through_the_gap(reason="sl")])

    with pytest.raises(BridgeError):
        await client.send_snapshot(snapshot())
    await client.send_snapshot(snapshot())

    assert [len(deals) for deals in sent] == [1, 0]
