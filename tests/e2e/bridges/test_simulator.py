"""The simulated broker world: its maths on its own, then a scripted run against the real service.

The run goes through the public API only (expected trades with a user's JWT, signed snapshots, close
commands and acknowledgements), on every database and cache variant, and is judged through the read API.
"""

from __future__ import annotations

import itertools
import os
import random
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import httpx
import orjson
import pytest

from tests.support.builders import Caller, sign_up
from tests.support.markets import quiet_market
from tests.support.net import free_port
from tradeguard.bridges.client import BridgeClient
from tradeguard.bridges.simulator.bridge import SimulatedBridge
from tradeguard.bridges.simulator.broker import COPIER_MAGIC, Fill, Order, SimulatedBroker
from tradeguard.bridges.simulator.clock import BrokerClock
from tradeguard.bridges.simulator.market import SYMBOLS, Market
from tradeguard.bridges.simulator.scenario import DEMO_SCENARIO, Gap, Role, Scenario
from tradeguard.bridges.simulator.simulation import SimulationResult, build_simulation, run_demo_simulation
from tradeguard.domain.model import Side

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
SEED = 20261125


def broker_on(market: Market, balance: str = "10000") -> SimulatedBroker:
    return SimulatedBroker(market, random.Random(0), itertools.count(1), balance=Decimal(balance))


def test_the_same_seed_walks_the_same_prices_and_another_seed_does_not():
    def walk(seed: int) -> list[list]:
        market = Market(random.Random(seed))
        prices = []
        for _ in range(50):
            market.walk()
            prices.append(market.prices())
        return prices

    assert walk(1) == walk(1)
    assert walk(1) != walk(2)


def test_prices_keep_the_symbols_precision_and_the_ask_stays_above_the_bid():
    market = Market(random.Random(SEED))
    for _ in range(200):
        market.walk()
        for price in market.prices():
            digits = SYMBOLS[price.symbol].digits
            assert -price.bid.as_tuple().exponent == digits
            assert -price.ask.as_tuple().exponent == digits
            assert price.ask > price.bid > 0


def test_profit_is_price_move_times_volume_times_contract_size_in_dollars():
    market = quiet_market(EURUSD="1.08500", XAUUSD="2650.00", USDJPY="150.000")
    broker = broker_on(market)
    eur = broker.open_by_hand("EURUSD", Side.BUY, Decimal("0.50"), NOW)
    gold = broker.open_by_hand("XAUUSD", Side.SELL, Decimal("0.10"), NOW)
    yen = broker.open_by_hand("USDJPY", Side.BUY, Decimal("1.00"), NOW)

    market.set_bid("EURUSD", Decimal("1.08600"))  # +10 pips on 0.5 lot of 100,000
    market.set_bid("XAUUSD", Decimal("2640.00"))  # $10 in favour of a sell, 0.1 lot of 100 oz
    market.set_bid("USDJPY", Decimal("150.300"))  # 30 pips of yen, converted at 150.300

    assert broker.profit(eur) == Decimal("50.00")
    assert broker.profit(gold) == Decimal("100.00")
    assert broker.profit(yen) == (Decimal("0.300") * 100_000 / Decimal("150.300")).quantize(Decimal("0.01"))
    assert broker.equity() == Decimal("10000") + Decimal("50.00") + Decimal("100.00") + broker.profit(yen)


def test_a_stop_loss_hit_closes_the_position_and_books_its_loss_into_the_balance():
    market = quiet_market(GBPUSD="1.27000")
    broker = broker_on(market)
    order = Order(
        "t-1", "GBPUSD", Side.BUY, Decimal("1.00"), Decimal("1.27000"), stop_loss=Decimal("1.26800")
    )
    broker.place(order, Fill.CLEAN, due_step=1)
    [(position, _, _)] = broker.fill_due_orders(1, NOW)
    market.set_bid("GBPUSD", Decimal("1.26750"))  # through the stop: the fill is at the market, worse

    [closed] = broker.trigger_stops(NOW)

    assert closed.why == "stop loss"
    assert broker.history == [closed]
    assert closed.as_closed_deal() == {
        "ticket": position.ticket,
        "deal_id": 1,
        "close_price": Decimal("1.26750"),
        "profit": Decimal("-250.00"),
        "closed_at": NOW,
        "reason": "stop_loss",
    }
    assert closed.close_price == Decimal("1.26750")
    assert closed.profit == Decimal("-250.00")
    assert broker.balance == Decimal("9750.00")
    assert broker.positions == {}
    assert broker.equity() == broker.balance


@pytest.mark.parametrize(
    ("fill", "volume", "pips_off"),
    [(Fill.CLEAN, "0.40", (0, 0)), (Fill.SLIPPED, "0.40", (3, 6)), (Fill.PARTIAL, "0.20", (0, 0))],
)
def test_a_fill_is_clean_slipped_by_a_few_pips_against_the_trader_or_partial(fill, volume, pips_off):
    market = quiet_market(EURUSD="1.08500")
    broker = broker_on(market)
    broker.place(Order("t-1", "EURUSD", Side.BUY, Decimal("0.40"), Decimal("1.08500")), fill, due_step=2)

    assert broker.fill_due_orders(1, NOW) == []
    [(position, _, _)] = broker.fill_due_orders(2, NOW)

    assert position.volume == Decimal(volume)
    slippage_pips = (position.open_price - Decimal("1.08500")) / SYMBOLS["EURUSD"].pip_size
    assert pips_off[0] <= slippage_pips <= pips_off[1]


def test_a_lost_order_is_never_filled():
    broker = broker_on(quiet_market())
    broker.place(
        Order("t-1", "EURUSD", Side.SELL, Decimal("0.10"), Decimal("1.08500")), Fill.LOST, due_step=1
    )
    assert broker.fill_due_orders(100, NOW) == []
    assert broker.positions == {}


def test_a_snapshot_reports_tickets_and_missing_stops_as_metatrader_does():
    market = quiet_market()
    broker = broker_on(market)
    broker.open_by_hand("EURUSD", Side.BUY, Decimal("0.10"), NOW - timedelta(minutes=1))
    snapshot = broker.snapshot(NOW)

    [position] = snapshot["positions"]
    assert isinstance(position["ticket"], int)
    assert position["stop_loss"] == 0 and position["take_profit"] == 0
    assert snapshot["equity"] == snapshot["balance"] + position["profit"]
    assert {quote["symbol"] for quote in snapshot["quotes"]} == set(SYMBOLS)


def test_a_snapshot_reports_the_copiers_magic_and_trade_id_and_a_trade_by_hand_as_magic_0():
    broker = broker_on(quiet_market())
    broker.place(
        Order("t-7", "EURUSD", Side.BUY, Decimal("0.10"), Decimal("1.08500")), Fill.CLEAN, due_step=1
    )
    [(copied, _, _)] = broker.fill_due_orders(1, NOW)
    by_hand = broker.open_by_hand("EURUSD", Side.SELL, Decimal("0.10"), NOW)

    sent = {item["ticket"]: item for item in broker.snapshot(NOW)["positions"]}

    assert (sent[copied.ticket]["magic"], sent[copied.ticket]["comment"]) == (COPIER_MAGIC, "t-7")
    assert (sent[by_hand.ticket]["magic"], sent[by_hand.ticket]["comment"]) == (0, "")


def test_the_broker_clock_steps_in_broker_time_but_never_ahead_of_the_real_clock():
    wall = NOW
    clock = BrokerClock.starting_back(3, 5.0, wall=lambda: wall)

    times = [clock.tick() for _ in range(5)]

    assert times[:3] == [NOW - timedelta(seconds=10), NOW - timedelta(seconds=5), NOW]
    assert all(later > earlier for earlier, later in zip(times, times[1:], strict=False))
    assert times[-1] - NOW < timedelta(seconds=1)


class FakeTradeguard:
    """Answers snapshots with a close command every time (at-least-once delivery); has no ack endpoint."""

    def __init__(self, ticket: str, ack_status: int = 404) -> None:
        self.ticket = ticket
        self.ack_status = ack_status
        self.acks: list[dict] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.url.path == "/api/v1/ingest/snapshots":
            command = {"command_id": "cmd-1", "ticket": self.ticket, "symbol": "EURUSD", "volume": 0.5}
            return httpx.Response(200, json={"applied": True, "divergences": [], "commands": [command]})
        if request.url.path.endswith("/ack"):
            self.acks.append(orjson.loads(request.content))
            return httpx.Response(self.ack_status, json={"detail": "nope"})
        return httpx.Response(405, json={"detail": "Method Not Allowed"})


async def bridge_against(fake: FakeTradeguard, broker: SimulatedBroker) -> SimulatedBridge:
    http = httpx.AsyncClient(transport=httpx.MockTransport(fake), base_url="http://fake.test")
    client = BridgeClient(http, device_id="dev_test", secret="s" * 32)
    return SimulatedBridge(1, broker, client, note=lambda *_: None)


async def test_a_command_delivered_again_is_carried_out_once_and_only_its_ack_repeated():
    market = quiet_market(EURUSD="1.08500")
    broker = broker_on(market)
    position = broker.open_by_hand("EURUSD", Side.BUY, Decimal("0.50"), NOW)
    market.set_bid("EURUSD", Decimal("1.08400"))
    fake = FakeTradeguard(str(position.ticket))
    bridge = await bridge_against(fake, broker)

    await bridge.sync(NOW)
    await bridge.sync(NOW + timedelta(seconds=5))
    await bridge.poll()

    assert broker.positions == {}
    assert broker.balance == Decimal("9950.00")
    assert bridge.commands_executed == 1
    assert fake.acks == [{"status": "executed", "close_price": "1.08400", "profit": "-50.00"}] * 2


async def test_a_command_acknowledged_once_is_not_acknowledged_again():
    broker = broker_on(quiet_market())
    position = broker.open_by_hand("EURUSD", Side.BUY, Decimal("0.50"), NOW)
    fake = FakeTradeguard(str(position.ticket), ack_status=200)
    bridge = await bridge_against(fake, broker)

    await bridge.sync(NOW)
    await bridge.sync(NOW + timedelta(seconds=5))

    assert len(fake.acks) == 1


async def test_a_command_for_a_position_already_gone_is_acknowledged_as_failed():
    broker = broker_on(quiet_market())
    fake = FakeTradeguard("424242", ack_status=200)
    bridge = await bridge_against(fake, broker)

    await bridge.sync(NOW)

    assert fake.acks[0]["status"] == "failed"
    assert "424242" in fake.acks[0]["detail"]


async def test_the_same_seed_replays_the_same_run():
    async def run(seed: int) -> list:
        def tradeguard(request: httpx.Request) -> httpx.Response:
            if request.url.path == "/api/v1/guards/status":
                return httpx.Response(200, json={"trading_allowed": True})
            if request.url.path == "/api/v1/ingest/snapshots":
                return httpx.Response(200, json={"applied": True, "divergences": [], "commands": []})
            if request.url.path == "/api/v1/ingest/commands":
                return httpx.Response(200, json={"commands": []})
            return httpx.Response(201, json={})

        http = httpx.AsyncClient(transport=httpx.MockTransport(tradeguard), base_url="http://fake.test")
        simulation = build_simulation(
            http,
            user_token="token",
            accounts=[1, 2, 3],
            device_credentials={n: (f"dev_{n}", "s" * 32) for n in (1, 2, 3)},
            seed=seed,
            steps=40,
        )
        reports = [await simulation.step() for _ in range(40)]
        return [(view.balance, view.equity, view.open_positions) for r in reports for view in r.accounts]

    assert await run(SEED) == await run(SEED)
    assert await run(SEED) != await run(SEED + 1)


async def demo_accounts(caller: Caller, count: int = 3) -> tuple[list[int], dict[int, tuple[str, str]]]:
    accounts, devices = [], {}
    for role in DEMO_SCENARIO.roles[:count]:
        account_id = await caller.new_account(f"Simulated {role.value}")
        response = await caller.post(f"/api/v1/accounts/{account_id}/devices")
        assert response.status_code == 201, response.text
        accounts.append(account_id)
        devices[account_id] = (response.json()["device_id"], response.json()["secret"])
    return accounts, devices


async def reasons_logged(caller: Caller, account_id: int) -> set[str]:
    response = await caller.get("/api/v1/reconciliation/logs", account_id=account_id, limit=500)
    assert response.status_code == 200, response.text
    return {event["reason"] for event in response.json()["events"] if event["event_type"] == "divergence"}


@dataclass(frozen=True)
class ScriptedRun:
    caller: Caller
    account_of: dict[Role, int]
    result: SimulationResult


@pytest.fixture(scope="module")
async def scripted_run(api) -> ScriptedRun:
    """The demo scenario to its end, once per database and cache, with no time spent between steps."""
    caller = await sign_up(api)
    accounts, devices = await demo_accounts(caller)
    result = await run_demo_simulation(
        "http://unused",
        user_token=caller.token,
        accounts=accounts,
        device_credentials=devices,
        cadence_seconds=0,
        steps=DEMO_SCENARIO.scripted_steps,
        seed=SEED,
        http=api.http,
    )
    return ScriptedRun(caller, dict(zip(DEMO_SCENARIO.roles, accounts, strict=True)), result)


async def test_every_step_of_the_scripted_run_is_a_snapshot_tradeguard_applied(scripted_run):
    assert scripted_run.result.problems == ()
    for account_id in scripted_run.account_of.values():
        response = await scripted_run.caller.get("/api/v1/reconciliation/status", account_id=account_id)
        assert response.json()["total_syncs"] == DEMO_SCENARIO.scripted_steps


async def test_the_steady_account_has_its_trades_matched_and_nothing_diverging(scripted_run):
    caller, accounts = scripted_run.caller, scripted_run.account_of
    status = (await caller.get("/api/v1/reconciliation/status", account_id=accounts[Role.STEADY])).json()
    assert status["matched_positions"] >= 1
    assert status["divergences_detected"] == 0
    positions = (await caller.get("/api/v1/positions/open", account_id=accounts[Role.STEADY])).json()
    assert positions["positions"] and all(p["matched_with_bot"] for p in positions["positions"])
    assert await reasons_logged(caller, accounts[Role.STEADY]) == set()


async def test_the_unreliable_brokers_divergences_are_logged_with_their_reasons(scripted_run):
    caller, accounts = scripted_run.caller, scripted_run.account_of
    reasons = await reasons_logged(caller, accounts[Role.DIVERGENT])
    assert {"unexpected_on_broker", "partial_fill", "entry_slippage", "missing_on_broker"} <= reasons


async def test_the_crash_shows_in_the_equity_history_and_the_guard_closes_the_account(scripted_run):
    caller, accounts, result = scripted_run.caller, scripted_run.account_of, scripted_run.result
    reckless = accounts[Role.RECKLESS]
    series = (await caller.get(f"/api/v1/accounts/{reckless}/equity")).json()
    assert len(series["points"]) == DEMO_SCENARIO.scripted_steps
    assert max(Decimal(str(point["drawdown_pct"])) for point in series["points"]) > 20

    [view] = [view for view in result.accounts if view.account_id == reckless]
    assert view.commands_executed >= 1 and view.open_positions == 0
    guards = (await caller.get("/api/v1/guards/status", account_id=reckless)).json()
    assert guards["trading_allowed"] is False


async def test_the_gap_in_gold_is_seen_by_the_market_guard(scripted_run):
    caller, accounts = scripted_run.caller, scripted_run.account_of
    [gap] = [event for event in DEMO_SCENARIO.script if isinstance(event, Gap)]
    response = await caller.get("/api/v1/alerts", account_id=accounts[Role.DIVERGENT], limit=200)
    assert response.status_code == 200, response.text
    assert any(alert["symbol"] == gap.symbol for alert in response.json()["alerts"])


async def test_every_close_in_the_scripted_run_is_recorded_at_the_pnl_its_deal_realized(scripted_run):
    caller, accounts = scripted_run.caller, scripted_run.account_of
    closes = []
    for account_id in accounts.values():
        response = await caller.get(
            "/api/v1/reconciliation/logs", account_id=account_id, event_type="closed_on_broker", limit=500
        )
        closes += response.json()["events"]

    assert {event["details"]["pnl_source"] for event in closes} == {"realized"}
    [gold] = [e for e in closes if e["account_id"] == accounts[Role.STEADY] and e["symbol"] == "XAUUSD"]
    assert gold["reason"] == "stop_loss"
    # Filled through the gap: the loss is far beyond the stop, and beyond the last floating P&L.
    assert (
        Decimal(str(gold["details"]["net_profit"])) < Decimal(str(gold["details"]["last_floating_pnl"])) - 500
    )


def test_the_demo_scenario_fits_in_the_steps_it_promises():
    scenario: Scenario = DEMO_SCENARIO
    assert {event.step for event in scenario.script} <= set(range(1, scenario.scripted_steps + 1))
    assert set(scenario.roles) == set(Role)


def test_the_demo_serves_simulates_and_stops_on_ctrl_c(tmp_path):
    """`tradeguard demo` with no settings at all: its own SQLite file under var/, the in-process cache."""
    port = free_port()
    environment = {name: value for name, value in os.environ.items() if not name.startswith("TRADEGUARD_")}
    demo = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tradeguard.cli",
            "demo",
            "--port",
            str(port),
            "--steps",
            "3",
            "--cadence",
            "0",
        ],
        cwd=tmp_path,
        env={**environment, "COLUMNS": "200"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    said = []
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            line = demo.stderr.readline()
            said.append(line)
            if "simulation finished" in line or not line:
                break
        output = "".join(said)
        assert "simulation finished after 3 steps;" in output, output
        assert f"http://127.0.0.1:{port}/docs" in output
        assert f"database: sqlite {(tmp_path / 'var' / 'demo.db').resolve()} (new every run)" in output
        password = re.search(r"password: (\S+)", output).group(1)

        base = f"http://127.0.0.1:{port}"
        token = httpx.post(
            f"{base}/api/v1/auth/token", data={"username": "demo@tradeguard.local", "password": password}
        ).json()["access_token"]
        status = httpx.get(
            f"{base}/api/v1/reconciliation/status", headers={"Authorization": f"Bearer {token}"}
        )
        assert status.json()["total_syncs"] == 3 * len(DEMO_SCENARIO.roles)
        assert (tmp_path / "var" / "demo.db").exists()
    finally:
        demo.send_signal(signal.SIGINT)
        _, remaining = demo.communicate(timeout=30)
    assert demo.returncode == 0, "".join(said) + remaining
    assert "demo stopped" in remaining
