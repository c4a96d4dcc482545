"""`tradeguard bridge ccxt` as its own process, between the stand-in for Binance USDⓈ-M and a served tradeguard.

One story per storage backend (SQLite with the in-process cache, PostgreSQL with Redis), chained to
keep the process starts few: two exchange accounts in one bridge process, each reporting to its own
device; a drawdown on the first closed by one reduce-only order per position, one of whose answers is
lost on the way back; a drawdown on the second whose bridge is killed while its order is under way,
then restarted. Judged by the orders the exchange received and by tradeguard's read API and audit log.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import signal
import uuid
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path

import pytest

from tests.support import waiting
from tests.support.apps import make_settings, serve_live
from tests.support.bridging import Follower
from tests.support.builders import sign_up
from tests.support.fake_binance import Account, Delay, Drop, FakeBinance
from tests.support.servers import TRADEGUARD
from tests.support.services import embedded_and_production
from tradeguard.bridges.client import BridgeClient

ORDER = "/fapi/v1/order"
WAIT_SECONDS = 30.0
eventually = functools.partial(waiting.eventually, timeout=WAIT_SECONDS)


def write_config(
    tmp_path: Path, url: str, exchange_url: str, accounts: list[tuple[str, Follower, Account]]
) -> Path:
    lines = [
        f'[tradeguard]\nurl = "{url}"\n',
        f'[bridge]\njournal = "{tmp_path / "journal.sqlite3"}"\nread_seconds = 0.2\n'
        "command_poll_seconds = 0.2\nsnapshot_seconds = 1\nmax_backoff_seconds = 0.5\n",
    ]
    for name, follower, account in accounts:
        (tmp_path / f"{name}.device").write_text(follower.secret, encoding="utf-8")
        lines.append(
            f'[[accounts]]\nname = "{name}"\nexchange = "binanceusdm"\n'
            f'api_key = "{account.api_key}"\napi_secret_env = "EXCHANGE_SECRET_{name.upper()}"\n'
            f'device_id = "{follower.device_id}"\nsecret_file = "{name}.device"\n'
            f'api_url = "{exchange_url}"\nwatch = ["SOLUSDT"]\ntimeout_seconds = 20\nrate_limit_ms = 1\n'
        )
    path = tmp_path / "bridge.toml"
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


@contextlib.asynccontextmanager
async def bridge_process(
    config: Path, secrets: dict[str, str], log: Path
) -> AsyncIterator[asyncio.subprocess.Process]:
    environment = {**os.environ, **secrets}
    with log.open("ab") as output:
        process = await asyncio.create_subprocess_exec(
            *TRADEGUARD,
            "bridge",
            "ccxt",
            "--config",
            str(config),
            env=environment,
            stdout=output,
            stderr=output,
        )
    try:
        yield process
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(process.wait(), 15)
            except TimeoutError:
                process.kill()
                await process.wait()


async def follower_of(server, owner, name: str) -> Follower:
    """An account in USDT, the exchange's settlement currency, with its device and a 10 % drawdown limit."""
    account_id = await owner.new_account(name, currency="USDT")
    device = (await owner.post(f"/api/v1/accounts/{account_id}/devices")).json()
    bridge = BridgeClient(server.api.http, device_id=device["device_id"], secret=device["secret"])
    follower = Follower(owner, account_id, bridge, device["device_id"], device["secret"])
    response = await owner.put(
        f"/api/v1/accounts/{follower.account_id}/guard-config",
        json={"drawdown_warning_pct": 5, "drawdown_critical_pct": 10},
    )
    assert response.status_code == 200, response.text
    return follower


async def open_tickets(follower: Follower) -> set[str]:
    answer = await follower.owner.get("/api/v1/positions/open", account_id=follower.account_id)
    return {position["ticket"] for position in answer.json()["positions"]}


async def acknowledged(follower: Follower, count: int) -> dict[str, dict]:
    """The account's close commands acknowledged executed, by ticket, once there are `count` of them."""
    events = await follower.events(event_type="close_command")
    executed = {
        event["ticket"]: event for event in events if event["details"].get("acknowledged") == "executed"
    }
    return executed if len(executed) >= count else {}


async def closed(follower: Follower, count: int) -> dict[str, dict]:
    events = {event["ticket"]: event for event in await follower.events(event_type="position_closed")}
    return events if len(events) >= count else {}


def client_id(command_id: str) -> str:
    return "tg-" + uuid.UUID(command_id).hex


def realized(fake: FakeBinance, account: Account, order: dict) -> Decimal:
    fills = [trade for trade in account.trades if trade["orderId"] == order["orderId"]]
    return sum((Decimal(fill["realizedPnl"]) - Decimal(fill["commission"]) for fill in fills), Decimal(0))


@pytest.fixture
def exchange():
    # The bridge here reads five times a second, five times as often as a production one: past
    # Binance's 2,400 weight a minute for two accounts, which the adapter's own tests keep to.
    fake = FakeBinance(weight_limit=20_000)
    url = fake.start()
    yield fake, url
    fake.stop()


@embedded_and_production
async def test_exchange_accounts_report_close_once_and_survive_a_lost_answer_and_a_kill(
    database_url, redis_url, tmp_path, exchange
):
    fake, exchange_url = exchange
    main = fake.add_account("main-key", "main-secret", "10000")
    hedged = fake.add_account("hedged-key", "hedged-secret", "2000", hedge_mode=True)
    fake.trade_by_hand(main, "BTCUSDT", "BUY", "0.100")
    fake.trade_by_hand(main, "ETHUSDT", "SELL", "1.000")
    fake.trade_by_hand(hedged, "SOLUSDT", "BUY", "10")
    # A command not acknowledged within the time-out is issued again: longer than a restart takes.
    settings = make_settings(tmp_path, database_url, redis_url, command_timeout_seconds=300)
    async with serve_live(settings) as server:
        owner = await sign_up(server.api)
        first = await follower_of(server, owner, "main")
        second = await follower_of(server, owner, "hedged")
        await first.expect("copy-btc", symbol="BTCUSDT", side="buy", volume="0.100", entry_price="60000.10")
        await first.expect("copy-eth", symbol="ETHUSDT", side="sell", volume="1.000", entry_price="3000.00")
        config = write_config(
            tmp_path, server.url, exchange_url, [("main", first, main), ("hedged", second, hedged)]
        )
        secrets = {"EXCHANGE_SECRET_MAIN": "main-secret", "EXCHANGE_SECRET_HEDGED": "hedged-secret"}
        log = tmp_path / "bridge.log"

        async with bridge_process(config, secrets, log) as process:
            status = await eventually(
                lambda: _matched(first, 2), "the main account's two positions matched with the copied trades"
            )
            tickets = (await open_tickets(first), await eventually(lambda: open_tickets(second), "hedged"))
            equity = (await first.owner.get(f"/api/v1/accounts/{first.account_id}/equity")).json()["points"][
                -1
            ]

            fake.script("POST", ORDER, Drop(processed=True))
            fake.set_price("BTCUSDT", bid="49000.00", ask="49000.10")  # -1,100 on 0.1 BTC: equity 11 % down
            await eventually(lambda: acknowledged(first, 2), "both positions' closes acknowledged")
            first_closes = await eventually(lambda: closed(first, 2), "both closes confirmed by a snapshot")

            fake.script("POST", ORDER, Delay(15, processed=True))
            fake.set_price("SOLUSDT", bid="120.0000", ask="120.0100")  # -300.10 on 10 SOL: equity 15 % down
            await eventually(lambda: fake.orders_received(hedged), "the hedged account's close sent")
            process.kill()
            await process.wait()
        orders_before_restart = len(fake.orders_received())

        syncs_at_restart = (await first.status())["total_syncs"]
        async with bridge_process(config, secrets, log):
            await eventually(lambda: acknowledged(second, 1), "the hedged close acknowledged")
            second_closes = await eventually(lambda: closed(second, 1), "the hedged close confirmed")
            await eventually(
                lambda: _synced_after(first, syncs_at_restart + 2), "the main account reported again"
            )
        commands = [await follower.events(event_type="close_command") for follower in (first, second)]

    assert status["open_positions_count"] == 2 and status["divergences_detected"] == 0
    assert tickets == ({"BTCUSDT:long", "ETHUSDT:short"}, {"SOLUSDT:long"})
    assert Decimal(str(equity["balance"])) == Decimal("10000") - sum(
        Decimal(trade["commission"]) for trade in main.trades[:2]
    )
    # Long 0.1 BTC from the ask 60000.10 marked at the bid 60000.00; short 1 ETH at 3000.00 marked there.
    assert Decimal(str(equity["equity"])) - Decimal(str(equity["balance"])) == Decimal("-0.01")

    main_acks, hedged_acks = (_acknowledgements(events) for events in commands)
    assert {event["details"]["acknowledged"] for event in main_acks + hedged_acks} == {"executed"}
    main_orders = fake.orders_received(main)
    assert len(main_orders) == 2
    by_symbol = {order["symbol"]: order for order in main_orders}
    assert (by_symbol["BTCUSDT"]["side"], by_symbol["BTCUSDT"]["quantity"]) == ("SELL", "0.1")
    assert (by_symbol["ETHUSDT"]["side"], by_symbol["ETHUSDT"]["quantity"]) == ("BUY", "1")
    assert {order["reduceOnly"] for order in main_orders} == {"true"}
    # BTC fell 18 %: the market guard asked to close it as well as the drawdown guard. One order per
    # position, carrying its command's id; the other command found the position gone.
    sent = {order["newClientOrderId"] for order in main_orders}
    carried = {client_id(event["details"]["command_id"]): event for event in main_acks}
    assert sent <= set(carried)
    assert sorted(carried[order_id]["ticket"] for order_id in sent) == ["BTCUSDT:long", "ETHUSDT:short"]
    assert all(
        "no longer open on the exchange; no order sent" in carried[other]["message"]
        for other in set(carried) - sent
    )
    assert sum("answer lost" in carried[order_id]["message"] for order_id in sent) == 1
    assert main.positions == {}
    placed = {order["clientOrderId"]: order for order in main.orders}
    by_ticket = {carried[order_id]["ticket"]: placed[order_id] for order_id in sent}
    for ticket, event in first_closes.items():
        assert event["details"]["pnl_source"] == "realized"
        assert Decimal(str(event["details"]["net_profit"])) == realized(fake, main, by_ticket[ticket])

    [hedged_order] = fake.orders_received(hedged)
    assert orders_before_restart == 3 and len(fake.orders_received()) == 3
    assert (hedged_order["side"], hedged_order["positionSide"], hedged_order["quantity"]) == (
        "SELL",
        "LONG",
        "10",
    )
    assert "reduceOnly" not in hedged_order
    [ack] = [
        event
        for event in hedged_acks
        if client_id(event["details"]["command_id"]) == hedged_order["newClientOrderId"]
    ]
    assert ack["ticket"] == "SOLUSDT:long"
    assert "found after a restart by its client id" in ack["message"]
    assert Decimal(str(second_closes["SOLUSDT:long"]["details"]["net_profit"])) == realized(
        fake, hedged, hedged.orders[-1]
    )
    assert {event["ticket"] for event in commands[0]} == {"BTCUSDT:long", "ETHUSDT:short"}
    assert {event["ticket"] for event in commands[1]} == {"SOLUSDT:long"}
    logged = log.read_text()
    for secret in ("main-key", "main-secret", "hedged-key", "hedged-secret", first.secret, second.secret):
        assert secret not in logged


def _acknowledgements(events: list[dict]) -> list[dict]:
    return [event for event in events if "acknowledged" in event["details"]]


async def _matched(follower: Follower, count: int) -> dict:
    status = await follower.status()
    return status if status["matched_positions"] == count else {}


async def _synced_after(follower: Follower, count: int) -> bool:
    return (await follower.status())["total_syncs"] >= count
