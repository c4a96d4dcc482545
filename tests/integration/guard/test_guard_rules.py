"""An account's risk rules through the HTTP API: reading, setting and refusing them, and how they act."""

from __future__ import annotations

from tests.support.bridging import Follower, position, register_follower, snapshot
from tests.support.builders import sign_up

LOGS = "/api/v1/reconciliation/logs"


def rules_of(account_id: int) -> str:
    return f"/api/v1/accounts/{account_id}/guard-rules"


def floating_loss_rule(**fields) -> dict:
    """Alert at 200 of floating loss, halt at 400, as a money threshold on balance minus equity."""
    return {
        "id": "floating",
        "metric": "floating",
        "steps": [
            {"tier": "alert", "threshold": {"amount": "200"}},
            {"tier": "halt", "threshold": {"amount": "400"}},
        ],
        **fields,
    }


async def at(follower: Follower, equity: str, *positions, balance: str = "10000") -> dict:
    return await follower.bridge.send_snapshot(snapshot(*positions, equity=equity, balance=balance))


async def log_of(follower: Follower, event_type: str) -> list[dict]:
    answer = await follower.owner.get(LOGS, account_id=follower.account_id, event_type=event_type)
    return answer.json()["events"]


async def test_an_account_without_rules_is_judged_by_its_drawdown_settings_rule_set(api):
    follower = await register_follower(api)

    answer = await follower.owner.get(rules_of(follower.account_id))

    assert answer.status_code == 200
    body = answer.json()
    assert body["source"] == "settings"
    assert [rule["id"] for rule in body["rule_set"]["rules"]] == ["drawdown", "min_equity"]
    drawdown = body["rule_set"]["rules"][0]
    assert [(step["tier"], step["threshold"]["percent"]) for step in drawdown["steps"]] == [
        ("alert", 15),
        ("close_all", 20),
    ]
    assert body["standings"] == []


async def test_standings_give_the_headroom_to_every_step_in_money_and_percent(api):
    follower = await register_follower(api)
    await at(follower, "10000")

    await at(follower, "9000")

    [drawdown, minimum] = (await follower.owner.get(rules_of(follower.account_id))).json()["standings"]
    assert (drawdown["rule"], drawdown["loss"], drawdown["loss_pct"], drawdown["step"]) == (
        "drawdown",
        1000,
        10,
        None,
    )
    assert [(s["tier"], s["limit"], s["headroom"], s["headroom_pct"]) for s in drawdown["steps"]] == [
        ("alert", 1500, 500, 5),
        ("close_all", 2000, 1000, 10),
    ]
    assert (minimum["rule"], minimum["steps"][0]["headroom"]) == ("min_equity", 8900)


async def test_a_rule_set_replaces_the_settings_and_acts_from_the_next_snapshot(api):
    follower = await register_follower(api)
    await at(follower, "10000")

    changed = await follower.owner.put(rules_of(follower.account_id), json={"rules": [floating_loss_rule()]})
    warned = await at(follower, "9750", position(1))
    halted = await at(follower, "9550", position(1))

    assert changed.status_code == 200, changed.text
    assert changed.json()["source"] == "rules"
    assert warned["commands"] == [] and halted["commands"] == []
    status = (await follower.owner.get("/api/v1/guards/status", account_id=follower.account_id)).json()
    assert status["trading_allowed"] is False
    assert status["system_status"] == "critical"
    assert (status["drawdown_guard"]["should_close_all"], status["drawdown_guard"]["auto_close"]) == (
        False,
        False,
    )
    [entry] = await log_of(follower, "guard_rules_changed")
    assert entry["details"]["rules"] == ["floating"]
    assert "from the next snapshot on" in entry["message"]
    levels = [event["details"]["level"] for event in await log_of(follower, "guard_level")]
    assert levels == ["critical", "warning"]


async def test_removing_the_rules_returns_to_the_settings(api):
    follower = await register_follower(api)
    await follower.owner.put(rules_of(follower.account_id), json={"rules": [floating_loss_rule()]})

    removed = await follower.owner.delete(rules_of(follower.account_id))

    assert removed.status_code == 200
    assert removed.json()["source"] == "settings"
    assert [entry["details"]["to"] for entry in await log_of(follower, "guard_rules_changed")] == [
        "settings",
        "rules",
    ]


async def test_a_rule_in_shadow_records_what_it_would_do_and_does_nothing(api):
    follower = await register_follower(api)
    await follower.owner.put(
        rules_of(follower.account_id), json={"rules": [floating_loss_rule(shadow=True, shadow_alerts=True)]}
    )
    await at(follower, "10000", position(1))

    answer = await at(follower, "9500", position(1))

    assert answer["commands"] == []
    status = (await follower.owner.get("/api/v1/guards/status", account_id=follower.account_id)).json()
    assert status["trading_allowed"] is True
    [entry] = await log_of(follower, "shadow_decision")
    assert entry["details"]["would_halt"] is True
    assert entry["message"].startswith("rule floating in shadow would halt new trades: floating 500")
    shadow_alerts = (
        await follower.owner.get("/api/v1/alerts", account_id=follower.account_id, kind="shadow")
    ).json()
    assert [alert["level"] for alert in shadow_alerts["alerts"]] == ["critical"]


async def test_a_cool_down_rearms_the_account_once_the_loss_is_back_under_its_level(api):
    follower = await register_follower(api)
    rule = floating_loss_rule(resume={"mode": "cool_down", "below": "0.5", "after_seconds": 0})
    await follower.owner.put(rules_of(follower.account_id), json={"rules": [rule]})
    await at(follower, "9500", position(1))

    await at(follower, "9850", position(1))

    status = (await follower.owner.get("/api/v1/guards/status", account_id=follower.account_id)).json()
    assert status["trading_allowed"] is True
    [rearmed] = await log_of(follower, "rearmed")
    assert rearmed["details"]["automatic"] is True
    assert "rules floating resumed" in rearmed["message"]


async def test_a_rule_set_that_contradicts_itself_is_refused_naming_the_rule_and_field(api):
    follower = await register_follower(api)
    ladder = floating_loss_rule(
        steps=[
            {"tier": "alert", "threshold": {"amount": "500"}},
            {"tier": "halt", "threshold": {"amount": "400"}},
        ]
    )

    refused = await follower.owner.put(rules_of(follower.account_id), json={"rules": [ladder]})

    assert refused.status_code == 422
    [error] = refused.json()["errors"]
    assert error["loc"] == ["body", "rules", 0, "steps", 0, "threshold", "amount"]
    assert "below the next step's amount (400)" in error["msg"]
    assert (await follower.owner.get(rules_of(follower.account_id))).json()["source"] == "settings"
    assert await log_of(follower, "guard_rules_changed") == []


async def test_a_period_in_server_time_needs_the_sets_server_time_zone(api):
    follower = await register_follower(api)
    daily = {
        "id": "daily",
        "metric": "equity",
        "reference": "period_start_balance",
        "period": {"kind": "day", "time_zone": "server"},
        "steps": [{"tier": "close_all", "threshold": {"percent": "5"}}],
    }

    refused = await follower.owner.put(rules_of(follower.account_id), json={"rules": [daily]})
    accepted = await follower.owner.put(
        rules_of(follower.account_id), json={"rules": [daily], "server_time_zone": "Europe/Athens"}
    )

    assert refused.status_code == 422
    assert refused.json()["errors"][0]["loc"] == ["body", "rules", 0, "period", "time_zone"]
    assert accepted.status_code == 200
    assert accepted.json()["rule_set"]["rules"][0]["period"]["time_zone"] == "server"
    assert accepted.json()["rules"][0]["period"]["time_zone"] == "Europe/Athens"


async def test_another_users_account_rules_cannot_be_read_or_changed(api):
    follower = await register_follower(api)
    stranger = await sign_up(api)

    read = await stranger.get(rules_of(follower.account_id))
    changed = await stranger.put(rules_of(follower.account_id), json={"rules": [floating_loss_rule()]})
    removed = await stranger.delete(rules_of(follower.account_id))

    assert (read.status_code, changed.status_code, removed.status_code) == (404, 404, 404)
    assert (await follower.owner.get(rules_of(follower.account_id))).json()["source"] == "settings"


async def test_a_preset_with_a_buffer_closes_before_the_firms_limit(api):
    follower = await register_follower(api)
    body = {"preset": "ftmo-2-step", "initial_balance": "100000", "buffer": "0.9"}

    changed = await follower.owner.put(rules_of(follower.account_id), json=body)
    await at(follower, "100000", position(1), balance="100000")
    inside = await at(follower, "95600", position(1), balance="100000")
    past_the_buffer = await at(follower, "95400", position(1), balance="100000")

    assert changed.status_code == 200, changed.text
    judged = changed.json()["rules"]
    assert [(rule["id"], rule["buffer"]) for rule in judged] == [("daily_loss", 0.9), ("max_loss", 0.9)]
    assert changed.json()["rule_set"]["preset"] == "ftmo-2-step"
    assert inside["commands"] == []
    assert [command["ticket"] for command in past_the_buffer["commands"]] == ["1"]
    daily = (await follower.owner.get(rules_of(follower.account_id))).json()["standings"][0]
    assert (daily["rule"], daily["loss"], daily["steps"][0]["limit"]) == ("daily_loss", 4600, 4500)


async def test_presets_are_refused_naming_what_they_lack(api):
    follower = await register_follower(api)
    cases = [
        ({"preset": "ftmo-3-step", "initial_balance": "100000"}, ["body", "preset"]),
        ({"preset": "ftmo-2-step"}, ["body", "initial_balance"]),
        ({"preset": "fundednext-stellar-2-step", "initial_balance": "100000"}, ["body", "server_time_zone"]),
    ]

    for body, location in cases:
        refused = await follower.owner.put(rules_of(follower.account_id), json=body)
        assert refused.status_code == 422, body
        assert refused.json()["errors"][0]["loc"] == location


async def test_a_signals_rule_closes_only_the_positions_of_its_signal(api):
    follower = await register_follower(api)
    for trade_id, ticket, signal in (("t-a", "1", "sig-a"), ("t-b", "2", "sig-b")):
        trade = {
            "trade_id": trade_id,
            "symbol": "EURUSD",
            "side": "buy",
            "volume": "0.10",
            "entry_price": "1.08500",
            "ticket": ticket,
            "signal_id": signal,
        }
        assert (
            await follower.owner.post(f"/api/v1/accounts/{follower.account_id}/trades", json=trade)
        ).status_code == 201
    rule = {
        "id": "sig-a-stop",
        "metric": "equity",
        "reference": "high_water_mark",
        "scope": {"kind": "strategy", "signals": ["sig-a"]},
        "steps": [{"tier": "close_scope", "threshold": {"amount": "300"}}],
    }
    await follower.owner.put(rules_of(follower.account_id), json={"rules": [rule]})
    held = (position("1"), position("2"), position("3"))
    await at(follower, "10000", *held)

    answer = await at(follower, "9600", *held)

    assert [command["ticket"] for command in answer["commands"]] == ["1"]
    assert {command["cause"] for command in answer["commands"]} == {"drawdown"}


async def test_a_strategys_rule_closes_its_magic_and_a_manual_rule_only_the_followers_own_trades(api):
    follower = await register_follower(api)
    strategy = {
        "id": "ea-42",
        "metric": "floating",
        "scope": {"kind": "strategy", "magics": [42]},
        "steps": [{"tier": "close_scope", "threshold": {"amount": "150"}}],
    }
    manual = {
        "id": "by-hand",
        "metric": "floating",
        "scope": {"kind": "manual"},
        "steps": [{"tier": "close_scope", "threshold": {"amount": "150"}}],
    }
    await follower.owner.put(rules_of(follower.account_id), json={"rules": [strategy, manual]})
    expert = position("1", magic=42, comment="ea 42", profit="-200")
    other_expert = position("2", magic=7, profit="-100")
    by_hand = position("3", magic=0, profit="-20")

    losing_expert = await at(follower, "9680", expert, other_expert, by_hand)
    losing_hand = await at(
        follower, "9580", position("2", magic=7, profit="-100"), position("3", magic=0, profit="-320")
    )

    assert [command["ticket"] for command in losing_expert["commands"]] == ["1"]
    assert [command["ticket"] for command in losing_hand["commands"]] == ["3"]
    [ea, hand] = (await follower.owner.get(rules_of(follower.account_id))).json()["standings"]
    assert (ea["rule"], ea["loss"], hand["rule"], hand["loss"]) == ("ea-42", 0, "by-hand", 320)
