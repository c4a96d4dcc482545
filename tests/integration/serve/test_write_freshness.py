"""Every writer: a view read through the cache before a write shows the write when read again after it.

Each test caches a view first, writes, then reads the view again through the cache. The event
tests read the view at the moment the write's event goes out, as a dashboard refreshing on it does.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

from tests.support.bridging import LOGS, Follower, position, register_follower, snapshot
from tests.support.builders import sign_up
from tradeguard.worker import Worker

GUARDS = "/api/v1/guards/status"


async def cached_logs(follower: Follower) -> list[dict]:
    response = await follower.owner.get(LOGS, account_id=follower.account_id, event_type="close_command")
    return response.json()["events"]


async def guard_status(follower: Follower) -> dict:
    return (await follower.owner.get(GUARDS, account_id=follower.account_id)).json()


def sent_to_the_bridge(events: list[dict], command_id: str) -> bool:
    return any(
        event["details"]["command_id"] == command_id and event["details"]["state"] == "sent"
        for event in events
    )


async def halted_with_one_position(follower: Follower) -> dict:
    """A drawdown breach that halts the account; returns the close command the breach sent."""
    await follower.bridge.send_snapshot(snapshot(position(1), equity="10000"))
    [command] = (await follower.bridge.send_snapshot(snapshot(position(1), equity="7900")))["commands"]
    return command


async def with_a_retry_waiting(api, follower: Follower) -> str:
    """The breach's command expired unacknowledged; the sweep's retry waits to be handed out."""
    await halted_with_one_position(follower)
    later = datetime.now(UTC) + timedelta(seconds=api.services.settings.command_timeout_seconds + 1)
    report = await Worker(api.services, clock=lambda: later).sweep_once()
    assert report.retried_commands >= 1
    [retry] = [
        event["details"]["command_id"]
        for event in await cached_logs(follower)
        if event["details"]["state"] == "pending" and "attempt 2" in event["message"]
    ]
    return retry


async def test_a_poll_that_hands_out_a_command_shows_in_the_cached_log(api):
    follower = await register_follower(api)
    retry = await with_a_retry_waiting(api, follower)
    assert not sent_to_the_bridge(await cached_logs(follower), retry)

    polled = await follower.bridge.poll_commands()

    assert retry in {command["command_id"] for command in polled}
    assert sent_to_the_bridge(await cached_logs(follower), retry)


async def test_a_snapshot_not_applied_that_hands_out_a_command_shows_in_the_cached_log(api):
    follower = await register_follower(api)
    retry = await with_a_retry_waiting(api, follower)
    assert not sent_to_the_bridge(await cached_logs(follower), retry)

    old = datetime.now(UTC) - timedelta(hours=1)
    answer = await follower.bridge.send_snapshot(snapshot(position(1), equity="7900", taken_at=old))

    assert answer["applied"] is False
    assert retry in {command["command_id"] for command in answer["commands"]}
    assert sent_to_the_bridge(await cached_logs(follower), retry)


async def test_an_applied_snapshot_shows_in_the_cached_status(api):
    follower = await register_follower(api)
    before = await follower.status()

    await follower.bridge.send_snapshot(snapshot(position(1)))

    after = await follower.status()
    assert (before["total_syncs"], after["total_syncs"]) == (0, 1)
    assert after["open_positions_count"] == 1


async def test_an_acknowledgement_shows_in_the_cached_log(api):
    follower = await register_follower(api)
    command = await halted_with_one_position(follower)
    assert not any("bridge reports" in event["message"] for event in await cached_logs(follower))

    await follower.bridge.acknowledge(command["command_id"], "executed")

    reports = [event for event in await cached_logs(follower) if "bridge reports" in event["message"]]
    assert [event["details"]["acknowledged"] for event in reports] == ["executed"]


async def test_a_new_account_shows_in_its_owners_cached_guard_status(api):
    owner = await sign_up(api)
    before = (await owner.get(GUARDS)).json()

    account_id = await owner.new_account()

    after = (await owner.get(GUARDS)).json()
    assert before["drawdown_guard"]["account_id"] is None
    assert after["drawdown_guard"]["account_id"] == account_id


async def test_a_guard_config_change_shows_in_the_cached_guard_status(api):
    follower = await register_follower(api)
    before = await guard_status(follower)

    changed = await follower.owner.put(
        f"/api/v1/accounts/{follower.account_id}/guard-config", json={"drawdown_warning_pct": "12"}
    )

    assert changed.status_code == 200, changed.text
    assert before["drawdown_guard"]["warning_threshold_pct"] == 15
    assert (await guard_status(follower))["drawdown_guard"]["warning_threshold_pct"] == 12


async def test_a_rearm_shows_in_the_cached_guard_status(api):
    follower = await register_follower(api)
    await halted_with_one_position(follower)
    assert (await guard_status(follower))["trading_allowed"] is False

    await follower.owner.post(f"/api/v1/accounts/{follower.account_id}/guard/rearm")

    assert (await guard_status(follower))["trading_allowed"] is True


async def test_a_sweep_that_finds_a_quiet_feed_shows_in_the_cached_status(api):
    follower = await register_follower(api)
    await follower.bridge.send_snapshot(snapshot())
    assert (await follower.status())["status"] == "idle"

    much_later = datetime.now(UTC) + timedelta(minutes=5)
    await Worker(api.services, clock=lambda: much_later).sweep_once()

    assert (await follower.status())["status"] == "error"


def read_when_published(api, monkeypatch, read: Callable[[], Awaitable[dict]]) -> list[dict]:
    """What `read` answers at each moment the stream is handed events, as a subscriber would read it."""
    bus = api.services.bus
    publish = bus.publish
    seen: list[dict] = []

    async def reading_first(events):
        if events:
            seen.append(await read())
        await publish(events)

    monkeypatch.setattr(bus, "publish", reading_first)
    return seen


async def test_the_rearm_event_goes_out_after_the_cached_guard_status_shows_it(api, monkeypatch):
    follower = await register_follower(api)
    await halted_with_one_position(follower)
    assert (await guard_status(follower))["trading_allowed"] is False
    seen = read_when_published(api, monkeypatch, lambda: guard_status(follower))

    await follower.owner.post(f"/api/v1/accounts/{follower.account_id}/guard/rearm")

    assert [view["trading_allowed"] for view in seen] == [True]


async def test_the_sweeps_event_goes_out_after_the_cached_status_shows_it(api, monkeypatch):
    follower = await register_follower(api)
    await follower.bridge.send_snapshot(snapshot())
    assert (await follower.status())["status"] == "idle"
    seen = read_when_published(api, monkeypatch, follower.status)

    much_later = datetime.now(UTC) + timedelta(minutes=5)
    await Worker(api.services, clock=lambda: much_later).sweep_once()

    assert seen and {view["status"] for view in seen} == {"error"}
