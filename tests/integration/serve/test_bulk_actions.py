"""The operator's bulk actions: halt and re-arm by signal or broker, close a symbol across the platform.

The service is shared by the whole session, so each test names its own signals, brokers and symbols.
"""

from __future__ import annotations

import uuid

from tests.support.bridging import Follower, position, register_follower, snapshot
from tests.support.builders import Caller, sign_up
from tradeguard.auth.users import set_role

HALT = "/api/v1/platform/halt"
REARM = "/api/v1/platform/rearm"
CLOSE_SYMBOL = "/api/v1/platform/close-symbol"


def unique(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:8]}".upper()


async def follower_of(api, signal: str, trade_id: str | None = None) -> Follower:
    follower = await register_follower(api)
    await follower.expect(trade_id or unique("t-"), signal_id=signal)
    return follower


async def trading_allowed(follower: Follower) -> bool:
    response = await follower.owner.get("/api/v1/guards/status", account_id=follower.account_id)
    assert response.status_code == 200, response.text
    return response.json()["trading_allowed"]


def outcomes(answer: dict) -> dict[int, str]:
    return {entry["account_id"]: entry["outcome"] for entry in answer["accounts"]}


async def acted(operator: Caller, path: str, body: dict) -> dict:
    response = await operator.post(path, json=body)
    assert response.status_code == 200, response.text
    return response.json()


async def test_halt_by_signal_halts_its_followers_only_names_the_operator_and_keeps_the_first_reason(api):
    operator = await sign_up(api, role="admin")
    signal = unique("sig-")
    first, second = await follower_of(api, signal), await follower_of(api, signal)
    other = await follower_of(api, unique("sig-"))
    closed = await follower_of(api, signal, trade_id="closed-1")
    await closed.owner.post(f"/api/v1/accounts/{closed.account_id}/trades/closed-1/close")
    assert await trading_allowed(first)  # read once, so a stale cached view would show

    answer = await acted(operator, HALT, {"signal": signal, "reason": "bad signal"})
    again = await acted(operator, HALT, {"signal": signal, "reason": "second thoughts"})

    assert outcomes(answer) == {first.account_id: "halted", second.account_id: "halted"}
    assert outcomes(again) == {first.account_id: "already_halted", second.account_id: "already_halted"}
    assert not await trading_allowed(first) and not await trading_allowed(second)
    assert await trading_allowed(other) and await trading_allowed(closed)
    for follower in (first, second):
        [halted] = await follower.events(event_type="halted")
        assert halted["reason"] == "operator"
        assert "bad signal" in halted["message"]
        assert halted["details"]["user_id"] == operator.user_id
        assert halted["details"]["bulk_action_id"] == answer["bulk_action_id"]
        alerts = await follower.owner.get("/api/v1/alerts", account_id=follower.account_id)
        assert [alert["kind"] for alert in alerts.json()["alerts"]] == ["halt"]
    assert await other.events(event_type="halted") == []


async def test_halt_and_rearm_by_broker_touch_that_brokers_accounts_only(api):
    operator = await sign_up(api, role="owner")
    broker, elsewhere = unique("Broker-"), unique("Broker-")
    owner = await sign_up(api)
    at_broker = [await owner.new_account("A", broker=broker, login=unique("")) for _ in range(2)]
    other_owners = await sign_up(api)
    at_broker.append(await other_owners.new_account("B", broker=broker))
    not_at_broker = await owner.new_account("C", broker=elsewhere)
    halted_elsewhere = await acted(operator, HALT, {"broker": elsewhere})

    halted = await acted(operator, HALT, {"broker": broker})
    joined_after = await owner.new_account("D", broker=broker, login=unique(""))
    rearmed = await acted(operator, REARM, {"broker": broker})

    assert outcomes(halted_elsewhere) == {not_at_broker: "halted"}
    assert outcomes(halted) == dict.fromkeys(at_broker, "halted")
    assert outcomes(rearmed) == {**dict.fromkeys(at_broker, "rearmed"), joined_after: "not_halted"}
    status = await owner.get("/api/v1/guards/status", account_id=not_at_broker)
    assert status.json()["trading_allowed"] is False
    logs = await owner.get("/api/v1/reconciliation/logs", account_id=at_broker[0], event_type="rearmed")
    [entry] = logs.json()["events"]
    assert entry["details"]["user_id"] == operator.user_id
    assert entry["details"]["bulk_action_id"] == rearmed["bulk_action_id"] != halted["bulk_action_id"]
    status = await owner.get("/api/v1/guards/status", account_id=at_broker[0])
    assert status.json()["trading_allowed"] is True


async def test_rearm_by_signal_rearms_its_halted_followers_only(api):
    operator = await sign_up(api, role="admin")
    signal, other_signal = unique("sig-"), unique("sig-")
    follower, other = await follower_of(api, signal), await follower_of(api, other_signal)
    await acted(operator, HALT, {"signal": signal})
    await acted(operator, HALT, {"signal": other_signal})

    answer = await acted(operator, REARM, {"signal": signal})

    assert outcomes(answer) == {follower.account_id: "rearmed"}
    assert await trading_allowed(follower)
    assert not await trading_allowed(other)


async def test_close_symbol_issues_operator_commands_for_that_symbol_delivered_on_poll_and_settled(api):
    operator = await sign_up(api, role="admin")
    symbol = unique("X")
    first, second = await register_follower(api), await register_follower(api)
    await first.bridge.send_snapshot(snapshot(position(1, symbol=symbol), position(2, symbol="EURUSD")))
    await second.bridge.send_snapshot(snapshot(position(3, symbol=symbol.lower())))

    answer = await acted(operator, CLOSE_SYMBOL, {"symbol": symbol.lower()})
    retried = await acted(operator, CLOSE_SYMBOL, {"symbol": symbol})

    issued = {entry["account_id"]: entry["commands"] for entry in answer["accounts"]}
    assert set(issued) == {first.account_id, second.account_id}
    assert [(c["ticket"], c["cause"], c["state"]) for c in issued[first.account_id]] == [
        ("1", "operator", "pending")
    ]
    assert [entry["commands"] for entry in retried["accounts"]] == [[], []]
    assert {entry["account_id"]: entry["not_issued"] for entry in retried["accounts"]} == {
        first.account_id: ["1"],
        second.account_id: ["3"],
    }
    [polled] = await first.bridge.poll_commands()
    assert polled["command_id"] == issued[first.account_id][0]["command_id"]
    assert polled["cause"] == "operator"
    await first.bridge.acknowledge(polled["command_id"], "executed")
    await first.bridge.send_snapshot(snapshot(position(2, symbol="EURUSD")))
    [closed] = await first.events(event_type="position_closed")
    assert closed["ticket"] == "1" and closed["reason"] == "operator"
    assert await first.bridge.poll_commands() == []
    [pending] = [
        entry
        for entry in await first.events(event_type="close_command")
        if entry["details"]["state"] == "pending"
    ]
    assert pending["details"]["user_id"] == operator.user_id
    assert pending["details"]["bulk_action_id"] == answer["bulk_action_id"]


async def test_close_symbol_with_a_signal_closes_only_the_positions_of_that_signals_trades(api):
    operator = await sign_up(api, role="admin")
    symbol, signal = unique("X"), unique("sig-")
    follower = await register_follower(api)
    await follower.expect("of-signal", symbol=symbol, ticket="10", signal_id=signal)
    await follower.expect("of-another", symbol=symbol, ticket="11", signal_id=unique("sig-"))
    await follower.bridge.send_snapshot(
        snapshot(position(10, symbol=symbol), position(11, symbol=symbol), position(12, symbol=symbol))
    )

    answer = await acted(operator, CLOSE_SYMBOL, {"symbol": symbol, "signal": signal})

    [entry] = answer["accounts"]
    assert [command["ticket"] for command in entry["commands"]] == ["10"]
    assert [command["ticket"] for command in await follower.bridge.poll_commands()] == ["10"]


async def test_a_follower_gets_404_from_each_bulk_action_and_nothing_is_done(api):
    signal, symbol = unique("sig-"), unique("X")
    follower = await follower_of(api, signal)
    await follower.bridge.send_snapshot(snapshot(position(1, symbol=symbol)))

    for path, body in (
        (HALT, {"signal": signal}),
        (REARM, {"signal": signal}),
        (CLOSE_SYMBOL, {"symbol": symbol}),
    ):
        response = await follower.owner.post(path, json=body)
        assert response.status_code == 404, (path, response.text)

    assert await trading_allowed(follower)
    assert await follower.bridge.poll_commands() == []


async def test_a_body_that_is_wrong_is_refused_at_its_field_and_nothing_is_done(api):
    operator = await sign_up(api, role="admin")
    signal = unique("sig-")
    follower = await follower_of(api, signal)
    refused = {
        "both": (HALT, {"signal": signal, "broker": "ICMarkets"}),
        "none": (REARM, {}),
        "symbol": (CLOSE_SYMBOL, {"symbol": "EUR USD"}),
        "no symbol": (CLOSE_SYMBOL, {"signal": signal}),
    }
    fields = {}
    for name, (path, body) in refused.items():
        response = await operator.post(path, json=body)
        assert response.status_code == 422, (name, response.text)
        fields[name] = {tuple(error["loc"]) for error in response.json()["errors"]}

    assert fields == {
        "both": {("body", "signal"), ("body", "broker")},
        "none": {("body", "signal"), ("body", "broker")},
        "symbol": {("body", "symbol")},
        "no symbol": {("body", "symbol")},
    }
    assert await trading_allowed(follower)


async def test_an_operator_whose_role_is_taken_away_is_refused_from_the_next_request_on(api):
    operator = await sign_up(api, role="admin")
    signal = unique("sig-")
    follower = await follower_of(api, signal)
    async with api.session() as session:
        await set_role(session, api.services.cache, operator.email, "user")

    response = await operator.post(HALT, json={"signal": signal})

    assert response.status_code == 401, response.text
    assert await trading_allowed(follower)
