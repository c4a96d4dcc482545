"""Guards that act, through the HTTP API alone: warnings, close commands, halts, market closes, the sweep."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from tests.support.bridging import Follower, position, register_follower, snapshot
from tests.support.builders import sign_up
from tradeguard.actions.commands import CloseTarget, issue_close_commands
from tradeguard.bridges.client import BridgeClient, BridgeError
from tradeguard.worker import Worker

GUARDS = "/api/v1/guards/status"
ALERTS = "/api/v1/alerts"


def book(*tickets_and_symbols) -> list[dict]:
    return [position(ticket, symbol=symbol) for ticket, symbol in tickets_and_symbols]


THREE_POSITIONS = [(1, "EURUSD"), (2, "EURUSD"), (3, "GBPUSD")]


async def at_equity(follower: Follower, equity: str, positions=None, **fields) -> dict:
    positions = book(*THREE_POSITIONS) if positions is None else positions
    return await follower.bridge.send_snapshot(snapshot(*positions, equity=equity, **fields))


async def guard_status(follower: Follower) -> dict:
    return (await follower.owner.get(GUARDS, account_id=follower.account_id)).json()


async def alerts(follower: Follower, **filters) -> list[dict]:
    return (await follower.owner.get(ALERTS, account_id=follower.account_id, **filters)).json()["alerts"]


async def test_sixteen_percent_drawdown_warns_without_closing(api):
    follower = await register_follower(api)
    await at_equity(follower, "10000")

    answer = await at_equity(follower, "8400")

    assert answer["commands"] == []
    status = await guard_status(follower)
    assert status["drawdown_guard"]["alert_type"] == "warning"
    assert status["drawdown_guard"]["current_drawdown_pct"] == 16
    assert status["drawdown_guard"]["peak_equity"] == 10000
    assert status["any_positions_should_close"] is False
    assert status["trading_allowed"] is True
    assert [alert["level"] for alert in await alerts(follower, kind="drawdown")] == ["warning"]


async def test_numbers_in_alert_details_are_json_numbers(api):
    follower = await register_follower(api)
    await at_equity(follower, "10000")

    await at_equity(follower, "8400")

    [alert] = await alerts(follower, kind="drawdown")
    assert alert["details"] == {"drawdown_pct": 16, "equity": 8400, "peak_equity": 10000}
    [entry] = (
        await follower.owner.get(
            "/api/v1/reconciliation/logs", account_id=follower.account_id, event_type="guard_level"
        )
    ).json()["events"]
    assert entry["details"] == {"level": "warning", "drawdown_pct": 16, "equity": 8400, "peak_equity": 10000}


async def test_twenty_one_percent_closes_every_position_once_and_halts(api):
    follower = await register_follower(api)
    await at_equity(follower, "10000")

    critical = await at_equity(follower, "7900")
    again = await at_equity(follower, "7800")

    assert sorted(command["ticket"] for command in critical["commands"]) == ["1", "2", "3"]
    assert {command["cause"] for command in critical["commands"]} == {"drawdown"}
    assert {command["state"] for command in critical["commands"]} == {"sent"}
    assert sorted(command["command_id"] for command in again["commands"]) == sorted(
        command["command_id"] for command in critical["commands"]
    )
    status = await guard_status(follower)
    assert status["system_status"] == "critical"
    assert status["drawdown_guard"]["should_close_all"] is True
    assert status["trading_allowed"] is False
    assert status["drawdown_guard"]["halted_at"] is not None
    assert [alert["kind"] for alert in await alerts(follower, level="critical")] == ["halt", "drawdown"]


async def test_acknowledged_closes_are_confirmed_by_the_next_snapshot_with_the_reason_logged(api):
    follower = await register_follower(api)
    await at_equity(follower, "10000")
    commands = (await at_equity(follower, "7900"))["commands"]

    for command in commands:
        await follower.bridge.acknowledge(command["command_id"], "executed", close_price="1.07", profit="-50")
    after = await at_equity(follower, "7700", positions=[])

    assert after["commands"] == []
    assert sorted(after["closed_on_broker"]) == ["1", "2", "3"]
    closed = (
        await follower.owner.get(
            "/api/v1/reconciliation/logs", account_id=follower.account_id, event_type="position_closed"
        )
    ).json()["events"]
    assert sorted(event["ticket"] for event in closed) == ["1", "2", "3"]
    assert {event["reason"] for event in closed} == {"drawdown"}
    # Without deals, the profit the acknowledgement reported is the better word than the last floating one.
    assert {Decimal(event["details"]["net_profit"]) for event in closed} == {Decimal("-50")}
    assert {event["details"]["pnl_source"] for event in closed} == {"acknowledged"}
    positions = (await follower.owner.get("/api/v1/positions/open", account_id=follower.account_id)).json()
    assert positions["total_positions"] == 0


async def test_a_critical_spread_closes_only_that_symbols_positions(api):
    follower = await register_follower(api)
    quotes = [
        {"symbol": "EURUSD", "bid": "1.08000", "ask": "1.10160"},
        {"symbol": "GBPUSD", "bid": "1.25000", "ask": "1.25010"},
    ]

    answer = await at_equity(follower, "10000", quotes=quotes)

    assert sorted(command["ticket"] for command in answer["commands"]) == ["1", "2"]
    assert {command["cause"] for command in answer["commands"]} == {"market"}
    status = await guard_status(follower)
    [market] = status["market_guard_alerts"]
    assert (market["symbol"], market["alert_type"], market["should_close_positions"]) == (
        "EURUSD",
        "critical",
        True,
    )
    assert status["trading_allowed"] is True


async def test_a_price_gap_of_ten_percent_is_critical(api):
    follower = await register_follower(api)
    await at_equity(follower, "10000", quotes=[{"symbol": "GBPUSD", "bid": "1.25000", "ask": "1.25010"}])

    answer = await at_equity(
        follower, "10000", quotes=[{"symbol": "GBPUSD", "bid": "1.40000", "ask": "1.40010"}]
    )

    assert [command["ticket"] for command in answer["commands"]] == ["3"]
    [alert] = await alerts(follower, kind="market")
    assert alert["symbol"] == "GBPUSD" and alert["level"] == "critical"


async def test_market_alerts_also_carry_the_older_platforms_names(api):
    follower = await register_follower(api)
    before = [
        {"symbol": "EURUSD", "bid": "1.09995", "ask": "1.10005"},
        {"symbol": "GBPUSD", "bid": "1.24995", "ask": "1.25005"},
    ]
    after = [
        {"symbol": "EURUSD", "bid": "1.03395", "ask": "1.03405"},
        {"symbol": "GBPUSD", "bid": "1.39995", "ask": "1.40005"},
        {"symbol": "USDJPY", "bid": "150.00", "ask": "150.90"},
    ]
    await at_equity(follower, "10000", quotes=before)

    await at_equity(follower, "10000", quotes=after)

    def market(symbol, level, gap, spread, closing, condition, bid, ask):
        return {
            "account_id": follower.account_id,
            "symbol": symbol,
            "alert_type": level,
            "gap_pct": gap,
            "spread_pct": spread,
            "should_close_positions": closing,
            "condition_type": condition,
            "price_gap_pct": gap,
            "bid_ask_spread_pct": spread,
            "bid": bid,
            "ask": ask,
        }

    assert (await guard_status(follower))["market_guard_alerts"] == [
        market("EURUSD", "warning", 6, 0.0097, False, "gap_down", 1.03395, 1.03405),
        market("GBPUSD", "critical", 12, 0.0071, True, "gap_up", 1.39995, 1.40005),
        market("USDJPY", "warning", None, 0.6, False, "liquidity_crisis", 150, 150.9),
    ]
    [gbpusd] = [alert for alert in await alerts(follower, kind="market") if alert["symbol"] == "GBPUSD"]
    assert gbpusd["details"] == {
        "gap_pct": 12,
        "spread_pct": 0.0071,
        "condition_type": "gap_up",
        "price_gap_pct": 12,
        "bid_ask_spread_pct": 0.0071,
        "bid": 1.39995,
        "ask": 1.40005,
    }


async def test_with_auto_close_off_a_critical_drawdown_only_alerts(api):
    follower = await register_follower(api)
    await follower.owner.put(
        f"/api/v1/accounts/{follower.account_id}/guard-config", json={"auto_close_drawdown": False}
    )
    await at_equity(follower, "10000")

    answer = await at_equity(follower, "7000")

    assert answer["commands"] == []
    status = await guard_status(follower)
    assert status["drawdown_guard"]["alert_type"] == "critical"
    assert status["any_positions_should_close"] is False


async def test_a_halted_account_stays_halted_until_its_owner_rearms_it(api):
    follower = await register_follower(api)
    await at_equity(follower, "10000")
    await at_equity(follower, "7900", positions=[])
    await at_equity(follower, "9900", positions=[])
    halted_before = (await guard_status(follower))["trading_allowed"]
    stranger = await sign_up(api)

    refused = await stranger.post(f"/api/v1/accounts/{follower.account_id}/guard/rearm")
    rearmed = await follower.owner.post(f"/api/v1/accounts/{follower.account_id}/guard/rearm")

    assert halted_before is False
    assert refused.status_code == 404
    assert rearmed.status_code == 200
    assert rearmed.json()["trading_allowed"] is True
    events = (
        await follower.owner.get(
            "/api/v1/reconciliation/logs", account_id=follower.account_id, event_type="rearmed"
        )
    ).json()["events"]
    assert len(events) == 1 and str(follower.owner.user_id) in events[0]["message"]


async def test_recovery_keeps_the_halt_latched(api):
    follower = await register_follower(api)
    await at_equity(follower, "10000", positions=[])
    await at_equity(follower, "7900", positions=[])

    await at_equity(follower, "9900", positions=[])

    status = await guard_status(follower)
    assert status["trading_allowed"] is False
    assert status["drawdown_guard"]["alert_type"] == "normal"
    levels = [alert["level"] for alert in await alerts(follower, kind="drawdown")]
    assert levels == ["info", "critical"]


async def test_commands_are_polled_until_acknowledged_and_only_the_accounts_device_may_acknowledge(api):
    follower = await register_follower(api)
    other = await register_follower(api)
    await at_equity(follower, "10000")
    await at_equity(follower, "7900")

    polled = await follower.bridge.poll_commands()
    with pytest.raises(BridgeError) as foreign:
        await other.bridge.acknowledge(polled[0]["command_id"], "executed")
    await follower.bridge.acknowledge(polled[0]["command_id"], "executed")
    repeated = await follower.bridge.acknowledge(polled[0]["command_id"], "executed")
    with pytest.raises(BridgeError) as contradicting:
        await follower.bridge.acknowledge(polled[0]["command_id"], "failed")
    polled_again = await follower.bridge.poll_commands()

    assert len(polled) == 3
    assert foreign.value.status_code == 404
    assert repeated["state"] == "executed"
    assert contradicting.value.status_code == 409
    assert len(polled_again) == 2
    assert polled[0]["command_id"] not in {command["command_id"] for command in polled_again}


async def test_an_executed_ack_that_the_broker_contradicts_fails_and_is_issued_again(api):
    follower = await register_follower(api)
    await at_equity(follower, "10000")
    [first, *_] = (await at_equity(follower, "7900"))["commands"]

    await follower.bridge.acknowledge(first["command_id"], "executed")
    answer = await at_equity(follower, "7800")

    reissued = [command for command in answer["commands"] if command["ticket"] == first["ticket"]]
    assert len(reissued) == 1
    assert reissued[0]["command_id"] != first["command_id"]
    assert reissued[0]["attempts"] == 2


async def test_an_unknown_outcome_is_not_retried_by_the_sweep_and_the_next_snapshot_decides(api):
    follower = await register_follower(api)
    await at_equity(follower, "10000")
    commands = (await at_equity(follower, "7900"))["commands"]
    [unknown] = [command for command in commands if command["ticket"] == "1"]
    await follower.bridge.acknowledge(unknown["command_id"], "unknown", detail="connection lost")
    later = datetime.now(UTC) + timedelta(seconds=api.services.settings.command_timeout_seconds + 1)

    await Worker(api.services, clock=lambda: later).sweep_once()
    polled = await follower.bridge.poll_commands()
    settled = await at_equity(follower, "7800", positions=book((2, "EURUSD"), (3, "GBPUSD")))

    assert sorted(command["attempts"] for command in polled) == [2, 2]
    assert unknown["ticket"] not in {command["ticket"] for command in polled}
    assert unknown["ticket"] not in {command["ticket"] for command in settled["commands"]}
    closed = (
        await follower.owner.get(
            "/api/v1/reconciliation/logs", account_id=follower.account_id, event_type="position_closed"
        )
    ).json()["events"]
    assert [event["ticket"] for event in closed] == [unknown["ticket"]]


async def test_unacknowledged_commands_expire_and_are_retried_a_bounded_number_of_times(api):
    follower = await register_follower(api)
    await at_equity(follower, "10000", positions=book((1, "EURUSD")))
    await at_equity(follower, "7900", positions=book((1, "EURUSD")))
    max_attempts = api.services.settings.command_max_attempts
    worker_now = datetime.now(UTC)

    attempts = []
    for _ in range(max_attempts + 1):
        worker_now += timedelta(seconds=api.services.settings.command_timeout_seconds + 1)
        await Worker(api.services, clock=lambda moment=worker_now: moment).sweep_once()
        polled = await follower.bridge.poll_commands()
        attempts.append([command["attempts"] for command in polled])

    assert attempts[: max_attempts - 1] == [[attempt] for attempt in range(2, max_attempts + 1)]
    assert attempts[-1] == []


async def test_the_expired_commands_of_several_accounts_are_each_retried_in_one_sweep(api):
    followers = [await register_follower(api) for _ in range(3)]
    for follower in followers:
        await at_equity(follower, "10000")
        await at_equity(follower, "7900")
    after_timeout = datetime.now(UTC) + timedelta(seconds=api.services.settings.command_timeout_seconds + 1)

    report = await Worker(api.services, clock=lambda: after_timeout).sweep_once()
    polled = [await follower.bridge.poll_commands() for follower in followers]

    assert report.retried_commands >= len(followers) * len(THREE_POSITIONS)
    for commands in polled:
        assert sorted((command["ticket"], command["attempts"]) for command in commands) == [
            (str(ticket), 2) for ticket, _ in THREE_POSITIONS
        ]


async def test_a_quiet_feed_turns_the_account_to_error_once_and_recovers_on_the_next_snapshot(api):
    follower = await register_follower(api)
    await at_equity(follower, "10000", positions=[])
    stale_after = 60
    much_later = datetime.now(UTC) + timedelta(seconds=stale_after + 5)

    first = await Worker(api.services, clock=lambda: much_later).sweep_once()
    second = await Worker(api.services, clock=lambda: much_later).sweep_once()
    stale_status = (
        await follower.owner.get("/api/v1/reconciliation/status", account_id=follower.account_id)
    ).json()
    await at_equity(follower, "10000", positions=[])
    resumed = (
        await follower.owner.get("/api/v1/reconciliation/status", account_id=follower.account_id)
    ).json()

    assert follower.account_id in first.stale_accounts
    assert follower.account_id not in second.stale_accounts
    assert stale_status["status"] == "error" and "no snapshot" in stale_status["error_message"].lower()
    assert resumed["status"] == "idle" and resumed["error_message"] is None
    assert [alert["kind"] for alert in await alerts(follower, kind="stale_feed")] == ["stale_feed"]


async def test_two_workers_sweeping_at_once_act_once(api):
    followers = [await register_follower(api) for _ in range(6)]
    for follower in followers:
        await at_equity(follower, "10000", positions=[])
    much_later = datetime.now(UTC) + timedelta(minutes=5)
    workers = [Worker(api.services, clock=lambda: much_later) for _ in range(2)]

    reports = await asyncio.gather(*(worker.sweep_once() for worker in workers))

    marked = [account for report in reports for account in report.stale_accounts]
    ours = [account for account in marked if account in {f.account_id for f in followers}]
    assert sorted(ours) == sorted(follower.account_id for follower in followers)
    for follower in followers:
        assert len(await alerts(follower, kind="stale_feed")) == 1


async def test_concurrent_critical_snapshots_leave_one_live_command_per_position(api):
    follower = await register_follower(api)
    await at_equity(follower, "10000")
    second_bridge = BridgeClient(api.http, device_id=follower.device_id, secret=follower.secret)

    answers = await asyncio.gather(
        *(
            bridge.send_snapshot(snapshot(*book(*THREE_POSITIONS), equity=equity))
            for bridge, equity in (
                (follower.bridge, "7900"),
                (second_bridge, "7850"),
                (follower.bridge, "7800"),
            )
        )
    )

    ids_by_ticket: dict[str, set[str]] = {}
    for answer in answers:
        for command in answer["commands"]:
            ids_by_ticket.setdefault(command["ticket"], set()).add(command["command_id"])
    assert sorted(ids_by_ticket) == ["1", "2", "3"]
    assert all(len(ids) == 1 for ids in ids_by_ticket.values())


async def test_the_database_refuses_a_second_live_command_for_a_position_and_cause(api):
    follower = await register_follower(api)
    target = CloseTarget(ticket="77", symbol="EURUSD", volume=Decimal("0.10"))
    now = datetime.now(UTC)

    async def issue_in_own_transaction() -> int:
        async with api.services.write_session() as session:
            issued = await issue_close_commands(
                session, follower.account_id, [target], cause="drawdown", now=now, max_attempts=3
            )
            await asyncio.sleep(0.05)
            await session.commit()
            return len(issued)

    issued = await asyncio.gather(*(issue_in_own_transaction() for _ in range(4)))

    assert sum(issued) == 1
    polled = await follower.bridge.poll_commands()
    assert [command["ticket"] for command in polled] == ["77"]
