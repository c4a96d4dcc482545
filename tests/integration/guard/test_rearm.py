"""Re-arming a halted account: what becomes of the drawdown's close commands not yet carried out."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from tests.support.bridging import Follower, position, register_follower, snapshot
from tradeguard.worker import Worker

SPREAD_CRITICAL_ON_EURUSD = [
    {"symbol": "EURUSD", "bid": "1.08000", "ask": "1.10160"},
    {"symbol": "GBPUSD", "bid": "1.25000", "ask": "1.25010"},
]


def positions(*tickets_and_symbols) -> list[dict]:
    return [position(ticket, symbol=symbol) for ticket, symbol in tickets_and_symbols]


async def at_equity(follower: Follower, equity: str, held: list[dict], **fields) -> dict:
    return await follower.bridge.send_snapshot(snapshot(*held, equity=equity, **fields))


async def rearm(follower: Follower) -> None:
    response = await follower.owner.post(f"/api/v1/accounts/{follower.account_id}/guard/rearm")
    assert response.status_code == 200, response.text


async def command_log(follower: Follower) -> list[dict]:
    return await follower.events(event_type="close_command")


def cancellations(events: list[dict]) -> dict[str, dict]:
    """command id → its cancellation entry"""
    return {
        event["details"]["command_id"]: event for event in events if event["details"]["state"] == "cancelled"
    }


def sweep_after_the_time_out(api) -> Worker:
    later = datetime.now(UTC) + timedelta(seconds=api.services.settings.command_timeout_seconds + 1)
    return Worker(api.services, clock=lambda: later)


async def test_rearm_cancels_the_drawdown_commands_not_carried_out_and_bridges_no_longer_receive_them(api):
    follower = await register_follower(api)
    held = positions((1, "EURUSD"), (2, "EURUSD"), (3, "GBPUSD"))
    await at_equity(follower, "10000", held)
    commands = {c["ticket"]: c for c in (await at_equity(follower, "7900", held))["commands"]}
    await follower.bridge.acknowledge(commands["1"]["command_id"], "executed")

    await rearm(follower)
    polled = await follower.bridge.poll_commands()
    await sweep_after_the_time_out(api).sweep_once()
    polled_after_the_time_out = await follower.bridge.poll_commands()

    assert polled == [] and polled_after_the_time_out == []
    cancelled = cancellations(await command_log(follower))
    assert set(cancelled) == {commands["2"]["command_id"], commands["3"]["command_id"]}
    assert {entry["details"]["was_sent"] for entry in cancelled.values()} == {True}
    assert {entry["reason"] for entry in cancelled.values()} == {"drawdown"}
    [rearmed] = await follower.events(event_type="rearmed")
    assert sorted(rearmed["details"]["cancelled_commands"]) == sorted(cancelled)


async def test_a_retry_not_yet_sent_is_cancelled_by_rearm(api):
    follower = await register_follower(api)
    held = positions((1, "EURUSD"))
    await at_equity(follower, "10000", held)
    await at_equity(follower, "7900", held)
    report = await sweep_after_the_time_out(api).sweep_once()
    assert report.retried_commands >= 1

    await rearm(follower)

    [retry] = [
        entry["details"]["command_id"]
        for entry in await command_log(follower)
        if entry["details"]["state"] == "pending" and "attempt 2" in entry["message"]
    ]
    cancelled = cancellations(await command_log(follower))
    assert cancelled[retry]["details"]["was_sent"] is False
    assert await follower.bridge.poll_commands() == []


async def test_rearm_leaves_the_market_guards_commands_live(api):
    follower = await register_follower(api)
    held = positions((1, "EURUSD"), (2, "GBPUSD"))
    await at_equity(follower, "10000", held)
    answer = await at_equity(follower, "7900", held, quotes=SPREAD_CRITICAL_ON_EURUSD)
    assert {c["cause"] for c in answer["commands"]} == {"drawdown", "market"}

    await rearm(follower)

    polled = await follower.bridge.poll_commands()
    assert [(c["ticket"], c["cause"]) for c in polled] == [("1", "market")]


async def test_a_breach_after_rearm_issues_new_commands(api):
    follower = await register_follower(api)
    held = positions((1, "EURUSD"))
    await at_equity(follower, "10000", held)
    [first] = (await at_equity(follower, "7900", held))["commands"]

    await rearm(follower)
    [again] = (await at_equity(follower, "7800", held))["commands"]

    assert again["command_id"] != first["command_id"]
    assert again["attempts"] == 2


async def test_a_cancelled_command_the_bridge_carried_out_anyway_is_recorded_and_the_snapshot_settles_it(api):
    follower = await register_follower(api)
    held = positions((1, "EURUSD"))
    await at_equity(follower, "10000", held)
    [command] = (await at_equity(follower, "7900", held))["commands"]
    await rearm(follower)

    acknowledged = await follower.bridge.acknowledge(command["command_id"], "executed", profit="-30")
    answer = await at_equity(follower, "7900", [])

    assert acknowledged["state"] == "executed"
    assert answer["closed_on_broker"] == ["1"]
    [closed] = await follower.events(event_type="position_closed")
    assert closed["details"]["command_id"] == command["command_id"]
    assert closed["reason"] == "drawdown"


async def test_a_cancelled_command_whose_outcome_the_bridge_lost_is_decided_by_the_next_snapshot(api):
    follower = await register_follower(api)
    held = positions((1, "EURUSD"), (2, "EURUSD"))
    await at_equity(follower, "10000", held)
    commands = {c["ticket"]: c for c in (await at_equity(follower, "7900", held))["commands"]}
    await rearm(follower)

    for command in commands.values():
        unknown = await follower.bridge.acknowledge(command["command_id"], "unknown", detail="timed out")
        assert (unknown["state"], unknown["outcome_unknown"]) == ("cancelled", True)
    await at_equity(follower, "9900", positions((2, "EURUSD")))

    log = await command_log(follower)
    failed = [e["details"]["command_id"] for e in log if e["details"]["state"] == "failed"]
    [closed] = await follower.events(event_type="position_closed")
    assert closed["details"]["command_id"] == commands["1"]["command_id"]
    assert failed == [commands["2"]["command_id"]]


async def test_a_command_whose_outcome_was_already_unknown_is_not_cancelled(api):
    follower = await register_follower(api)
    held = positions((1, "EURUSD"))
    await at_equity(follower, "10000", held)
    [command] = (await at_equity(follower, "7900", held))["commands"]
    await follower.bridge.acknowledge(command["command_id"], "unknown")

    await rearm(follower)
    await at_equity(follower, "9900", [])

    assert cancellations(await command_log(follower)) == {}
    [closed] = await follower.events(event_type="position_closed")
    assert closed["details"]["command_id"] == command["command_id"]


async def test_a_position_gone_after_a_cancelled_unacknowledged_command_is_not_credited_to_it(api):
    follower = await register_follower(api)
    held = positions((1, "EURUSD"))
    await at_equity(follower, "10000", held)
    await at_equity(follower, "7900", held)
    await rearm(follower)

    answer = await at_equity(follower, "9900", [])

    assert answer["closed_on_broker"] == ["1"]
    assert await follower.events(event_type="position_closed") == []
    assert [e["details"]["state"] for e in await command_log(follower)][0] == "cancelled"
