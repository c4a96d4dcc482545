"""The operator's platform-wide stream: every follower's events on one connection, resumable; never a follower's."""

from __future__ import annotations

import pytest

from tests.support.apps import make_settings, serve_live, two_api_processes
from tests.support.bridging import position, register_follower, snapshot
from tests.support.builders import sign_up
from tests.support.streams import open_stream
from tradeguard.bridges.client import BridgeClient

PLATFORM_STREAM = "/api/v1/platform/stream"


@pytest.fixture
async def live(tmp_path):
    settings = make_settings(tmp_path, f"sqlite+aiosqlite:///{tmp_path / 'tradeguard.db'}")
    async with serve_live(settings) as server:
        yield server


@pytest.mark.parametrize("role", ["owner", "admin"])
async def test_the_operator_sees_every_followers_events_on_one_connection(live, role):
    operator = await sign_up(live.api, role=role)
    first, second = await register_follower(live.api), await register_follower(live.api)

    async with open_stream(live.api.http, operator.token, PLATFORM_STREAM) as stream:
        hello = await stream.next("hello")
        await first.bridge.send_snapshot(snapshot(position(1)))
        await second.bridge.send_snapshot(snapshot(position(2), equity="10000"))
        synced = {
            (await stream.next("sync")).data["account_id"],
            (await stream.next("sync")).data["account_id"],
        }
        await second.bridge.send_snapshot(snapshot(position(2), equity="7000"))
        alert = await stream.next("alert", matching=lambda event: event.data["kind"] == "drawdown")

    assert (hello.data["platform"], hello.data["accounts"]) == (True, None)
    assert synced == {first.account_id, second.account_id}
    assert alert.data["account_id"] == second.account_id


async def test_a_reconnecting_operator_gets_what_every_account_missed(live):
    operator = await sign_up(live.api, role="owner")
    first, second = await register_follower(live.api), await register_follower(live.api)
    async with open_stream(live.api.http, operator.token, PLATFORM_STREAM) as stream:
        await first.bridge.send_snapshot(snapshot(position(1)))
        last_seen = await stream.next("log")

    await second.bridge.send_snapshot(snapshot(position(2)))
    await first.bridge.send_snapshot(snapshot())

    async with open_stream(
        live.api.http, operator.token, PLATFORM_STREAM, **{"Last-Event-ID": str(last_seen.event_id)}
    ) as stream:
        await stream.next("hello")
        missed = [await stream.next("log"), await stream.next("log")]

    assert [(event.data["account_id"], event.data["event_type"]) for event in missed] == [
        (second.account_id, "divergence"),
        (first.account_id, "closed_on_broker"),
    ]


async def test_a_follower_has_no_platform_stream(live):
    follower = await register_follower(live.api)

    refused = await live.api.http.get(PLATFORM_STREAM, headers=follower.owner.headers)
    anonymous = await live.api.http.get(PLATFORM_STREAM)

    assert refused.status_code == 404
    assert anonymous.status_code == 401


async def test_platform_events_travel_between_api_processes_through_redis(tmp_path):
    async with two_api_processes(tmp_path) as (watching, ingesting):
        operator = await sign_up(watching.api, role="owner")
        follower = await register_follower(watching.api)
        bridge_to_other_process = BridgeClient(
            ingesting.api.http, device_id=follower.device_id, secret=follower.secret
        )
        async with open_stream(watching.api.http, operator.token, PLATFORM_STREAM) as stream:
            await stream.next("hello")
            await bridge_to_other_process.send_snapshot(snapshot(position(1)))
            synced = await stream.next("sync")

    assert synced.data["account_id"] == follower.account_id
