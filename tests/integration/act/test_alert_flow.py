"""Alerts from a snapshot to a notifier, with the worker running inside the API as in embedded mode."""

from __future__ import annotations

import pytest

from tests.support.apps import make_settings, start_api, stop_api
from tests.support.bridging import position, register_follower, snapshot
from tests.support.http_receiver import Reply
from tests.support.waiting import eventually


@pytest.fixture
async def api_with_webhook(tmp_path, receiver):
    settings = make_settings(
        tmp_path,
        f"sqlite+aiosqlite:///{tmp_path / 'tradeguard.db'}",
        run_worker_in_api=True,
        webhook_url=f"{receiver.url}/hook",
        webhook_secret="whsec-flow",
        sweep_interval_seconds=0.05,
    )
    running, lifespan = await start_api(settings)
    yield running
    await stop_api(running, lifespan)


async def test_a_critical_drawdown_reaches_the_webhook_with_the_halt(api_with_webhook, receiver):
    follower = await register_follower(api_with_webhook)
    await follower.bridge.send_snapshot(snapshot(position(1), equity="10000"))

    await follower.bridge.send_snapshot(snapshot(position(1), equity="7900"))
    await eventually(lambda: len(receiver.requests) >= 2, "two deliveries")

    bodies = {request.json()["kind"]: request.json() for request in receiver.requests}
    assert bodies["drawdown"]["level"] == "critical"
    assert bodies["halt"]["details"]["trading_allowed"] is False
    assert bodies["halt"]["account_id"] == follower.account_id
    assert all(
        request.headers["x-tradeguard-signature"].startswith("sha256=") for request in receiver.requests
    )


async def test_a_hanging_notifier_delays_no_ingest(api_with_webhook, receiver):
    receiver.default = Reply(hang_seconds=60)
    follower = await register_follower(api_with_webhook)
    await follower.bridge.send_snapshot(snapshot(position(1), equity="10000"))
    await follower.bridge.send_snapshot(snapshot(position(1), equity="7900"))
    await eventually(lambda: len(receiver.requests) >= 1, "a delivery")

    answer = await follower.bridge.send_snapshot(snapshot(position(1), equity="7800"))

    assert not receiver.released.is_set()
    assert answer["applied"] is True
    assert len(answer["commands"]) == 1
    alerts = (await follower.owner.get("/api/v1/alerts")).json()["alerts"]
    assert {alert["kind"] for alert in alerts} == {"drawdown", "halt"}
