"""Closed deals in snapshots: a close is recorded at the P&L it realized, through the real HTTP path."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import orjson
import pytest

from tests.support.apps import make_settings, serve_live
from tests.support.bridging import Follower, position, register_follower, snapshot, stop_loss_through_the_gap
from tests.support.streams import open_stream
from tradeguard.bridges.client import BridgeError


@pytest.fixture
async def follower(api) -> Follower:
    return await register_follower(api)


def gold(ticket=7, **fields) -> dict:
    """A 0.02-lot gold buy two minutes old, 3.38 down: the last floating P&L before a 12 % gap."""
    held = {
        "symbol": "XAUUSD",
        "volume": "0.02",
        "open_price": "2650.00",
        "current_price": "2648.31",
        "stop_loss": "2640.00",
        "profit": "-3.38",
    }
    return position(ticket, **{**held, **fields})


async def closes(follower: Follower, event_type: str = "closed_on_broker") -> list[dict]:
    return await follower.events(event_type=event_type)


async def test_a_stop_loss_filled_through_a_gap_is_recorded_at_the_pnl_it_realized(follower):
    await follower.expect("G1", symbol="XAUUSD", volume="0.02", entry_price="2650.00", stop_loss="2640.00")
    await follower.bridge.send_snapshot(snapshot(gold()))

    summary = await follower.bridge.send_snapshot(snapshot(closed_deals=[stop_loss_through_the_gap()]))

    assert summary["closed_on_broker"] == ["7"]
    [closed] = await closes(follower)
    assert (closed["ticket"], closed["trade_id"], closed["reason"]) == ("7", "G1", "stop_loss")
    details = closed["details"]
    assert Decimal(str(details["net_profit"])) == Decimal("-638.74")
    assert details["pnl_source"] == "realized"
    assert Decimal(str(details["close_price"])) == Decimal("2331.43")
    assert (Decimal(str(details["profit"])), Decimal(str(details["commission"]))) == (
        Decimal("-637.14"),
        Decimal("-1.60"),
    )
    assert Decimal(str(details["last_floating_pnl"])) == Decimal("-3.38")
    assert "realized P&L -638.74" in closed["message"] and "stop loss" in closed["message"]


async def test_without_deals_the_close_keeps_the_last_floating_pnl_and_says_so(follower):
    await follower.bridge.send_snapshot(snapshot(gold()))

    await follower.bridge.send_snapshot(snapshot())

    [closed] = await closes(follower)
    assert closed["details"]["pnl_source"] == "last_floating"
    assert Decimal(str(closed["details"]["net_profit"])) == Decimal("-3.38")
    assert closed["reason"] is None
    assert "last floating" in closed["message"]


async def test_a_deal_seen_late_amends_the_close_once_however_often_it_is_sent(follower):
    await follower.bridge.send_snapshot(snapshot(gold()))
    await follower.bridge.send_snapshot(snapshot())
    deal = stop_loss_through_the_gap()

    await follower.bridge.send_snapshot(snapshot(closed_deals=[deal]))
    await follower.bridge.send_snapshot(snapshot(closed_deals=[deal]))

    [amended] = await closes(follower, "close_realized")
    assert amended["ticket"] == "7"
    assert Decimal(str(amended["details"]["net_profit"])) == Decimal("-638.74")
    assert amended["details"]["pnl_source"] == "realized"
    replaced = amended["details"]["replaces"]
    assert (Decimal(str(replaced["net_profit"])), replaced["pnl_source"]) == (
        Decimal("-3.38"),
        "last_floating",
    )
    assert "recorded as -3.38 (last floating)" in amended["message"]
    assert await closes(follower, "unmatched_deal") == []


async def test_a_deal_sent_again_after_its_close_was_realized_records_nothing_more(follower):
    await follower.bridge.send_snapshot(snapshot(gold()))
    deal = stop_loss_through_the_gap()
    await follower.bridge.send_snapshot(snapshot(closed_deals=[deal]))
    before = await follower.events()

    await follower.bridge.send_snapshot(snapshot(closed_deals=[deal]))

    assert await follower.events() == before


async def test_a_deal_for_a_position_still_held_is_a_partial_close(follower):
    await follower.bridge.send_snapshot(snapshot(gold(volume="0.04")))

    summary = await follower.bridge.send_snapshot(
        snapshot(gold(), closed_deals=[stop_loss_through_the_gap(profit="-318.57", reason="manual")])
    )

    assert summary["closed_on_broker"] == []
    [partial] = await closes(follower, "partial_close")
    assert partial["reason"] == "manual"
    assert Decimal(str(partial["details"]["net_profit"])) == Decimal("-320.17")
    assert Decimal(str(partial["details"]["volume"])) == Decimal("0.02")
    assert await closes(follower) == []


async def test_a_deal_for_a_ticket_the_account_never_held_is_logged_as_unmatched_not_refused(follower):
    summary = await follower.bridge.send_snapshot(
        snapshot(position(1), closed_deals=[stop_loss_through_the_gap(ticket=424242)])
    )

    assert summary["applied"] is True
    [unmatched] = await closes(follower, "unmatched_deal")
    assert unmatched["ticket"] == "424242"
    assert Decimal(str(unmatched["details"]["net_profit"])) == Decimal("-638.74")
    assert (await follower.status())["open_positions_count"] == 1


async def test_a_command_close_with_a_deal_is_logged_at_the_realized_pnl(follower):
    positions = [position(1, profit="-1000")]
    await follower.bridge.send_snapshot(snapshot(*positions, equity="10000"))
    answer = await follower.bridge.send_snapshot(snapshot(*positions, equity="7900"))
    [command] = answer["commands"]
    await follower.bridge.acknowledge(command["command_id"], "executed", profit="-1100")

    deal = {
        "ticket": 1,
        "close_price": "1.07500",
        "profit": "-1100",
        "swap": "-2.50",
        "closed_at": datetime.now(UTC).isoformat(),
        "reason": "close_command",
    }
    await follower.bridge.send_snapshot(snapshot(equity="7800", closed_deals=[deal]))

    [closed] = await closes(follower, "position_closed")
    assert Decimal(str(closed["details"]["net_profit"])) == Decimal("-1102.50")
    assert closed["details"]["pnl_source"] == "realized"


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (lambda deal: deal.update(reason="sl"), "closed_deals.0.reason"),
        (lambda deal: deal.update(profit="NaN"), "closed_deals.0.profit"),
        (lambda deal: deal.update(close_price="0"), "closed_deals.0.close_price"),
        (lambda deal: deal.update(closed_at="2026-11-25T12:00:00"), "closed_deals.0.closed_at"),
        (lambda deal: deal.pop("ticket"), "closed_deals.0.ticket"),
        (lambda deal: deal.update(volume="0.02"), "closed_deals.0.volume"),
    ],
)
async def test_an_invalid_deal_answers_422_naming_the_field_and_stores_nothing(sqlite_api, change, field):
    follower = await register_follower(sqlite_api)
    deal = stop_loss_through_the_gap()
    change(deal)

    with pytest.raises(BridgeError) as refused:
        await follower.bridge.send_snapshot(snapshot(gold(), closed_deals=[deal]))

    assert refused.value.status_code == 422
    assert field in refused.value.detail
    assert (await follower.status())["total_syncs"] == 0


async def test_a_deal_given_as_a_json_number_is_read_digit_for_digit(sqlite_api):
    follower = await register_follower(sqlite_api)
    await follower.bridge.send_snapshot(snapshot(gold()))
    body = snapshot()
    body["closed_deals"] = [{**stop_loss_through_the_gap(), "profit": "__PROFIT__"}]
    raw = orjson.dumps(body).replace(b'"__PROFIT__"', b"-637.1400000001")

    response = await follower.bridge._http.post(
        "/api/v1/ingest/snapshots",
        content=raw,
        headers=follower.bridge.signed_headers("POST", "/api/v1/ingest/snapshots", raw),
    )

    assert response.status_code == 200, response.text
    [closed] = await closes(follower)
    assert Decimal(str(closed["details"]["profit"])) == Decimal("-637.1400000001")


async def test_the_stream_sends_the_close_with_its_realized_pnl_and_then_the_late_amendment(tmp_path):
    settings = make_settings(tmp_path, f"sqlite+aiosqlite:///{tmp_path / 'tradeguard.db'}")
    async with serve_live(settings) as live:
        follower = await register_follower(live.api)
        await follower.bridge.send_snapshot(snapshot(gold(), gold(8)))
        async with open_stream(live.api.http, follower.owner.token) as stream:
            await stream.next("hello")
            await follower.bridge.send_snapshot(snapshot(closed_deals=[stop_loss_through_the_gap()]))
            closes = [
                await stream.next(
                    "log", matching=lambda event: event.data["event_type"] == "closed_on_broker"
                )
                for _ in range(2)
            ]
            await follower.bridge.send_snapshot(
                snapshot(closed_deals=[stop_loss_through_the_gap(8, deal_id=90000002)])
            )
            amended = await stream.next(
                "log", matching=lambda event: event.data["event_type"] == "close_realized"
            )

    by_ticket = {event.data["ticket"]: event.data["details"] for event in closes}
    assert (by_ticket["7"]["pnl_source"], Decimal(str(by_ticket["7"]["net_profit"]))) == (
        "realized",
        Decimal("-638.74"),
    )
    assert (by_ticket["8"]["pnl_source"], Decimal(str(by_ticket["8"]["net_profit"]))) == (
        "last_floating",
        Decimal("-3.38"),
    )
    assert (amended.data["ticket"], Decimal(str(amended.data["details"]["net_profit"]))) == (
        "8",
        Decimal("-638.74"),
    )
