"""The read API on every database and cache: the older platform's cases, now over real rows."""

from __future__ import annotations

from decimal import Decimal

import pytest

from tests.support.builders import account_without_api, sign_up, write_state
from tradeguard.metrics import REQUEST_LATENCY

STATUS = "/api/v1/reconciliation/status"
LOGS = "/api/v1/reconciliation/logs"
OPEN_POSITIONS = "/api/v1/positions/open"
GUARDS = "/api/v1/guards/status"
ALERTS = "/api/v1/alerts"


async def test_reconciliation_status_without_any_data_is_idle(api):
    caller = await sign_up(api)
    await caller.new_account()

    body = (await caller.get(STATUS)).json()

    assert body["user_id"] == caller.user_id
    assert body["status"] == "idle"
    assert body["total_syncs"] == 0
    assert body["open_positions_count"] == 0
    assert body["matched_positions"] == 0
    assert body["divergences_detected"] == 0
    assert body["recent_events"] == []
    assert body["last_sync_at"] is None
    assert body["error_message"] is None


async def test_reconciliation_status_with_matched_positions_is_healthy(api):
    caller = await sign_up(api)
    account_id = await caller.new_account()
    await write_state(
        api,
        account_id,
        positions=[{"matched_trade_id": "T1"}, {"matched_trade_id": "T2"}],
        events=[{"event_type": "matched", "trade_id": "T1", "message": "trade T1 matched ticket 1"}],
        status="healthy",
        total_syncs=3,
        open_positions_count=2,
        matched_positions=2,
        divergences_detected=0,
        last_sync_duration_ms=Decimal("1.25"),
    )

    body = (await caller.get(STATUS, account_id=account_id)).json()

    assert body["account_id"] == account_id
    assert body["status"] == "healthy"
    assert (body["open_positions_count"], body["matched_positions"], body["divergences_detected"]) == (
        2,
        2,
        0,
    )
    assert body["total_syncs"] == 3
    assert body["last_sync_duration_ms"] == 1.25
    assert [event["trade_id"] for event in body["recent_events"]] == ["T1"]


async def test_reconciliation_status_with_divergences_is_warning_with_the_message(api):
    caller = await sign_up(api)
    account_id = await caller.new_account()
    message = "EURUSD buy 0.10 expected (trade T9) not on broker"
    await write_state(
        api,
        account_id,
        events=[
            {
                "event_type": "divergence",
                "reason": "missing_on_broker",
                "trade_id": "T9",
                "symbol": "EURUSD",
                "message": message,
                "details": {"volume": "0.10"},
            }
        ],
        status="warning",
        total_syncs=1,
        divergences_detected=1,
    )

    body = (await caller.get(STATUS)).json()

    assert body["status"] == "warning"
    assert body["divergences_detected"] == 1
    event = body["recent_events"][0]
    assert (event["reason"], event["message"], event["details"]) == (
        "missing_on_broker",
        message,
        {"volume": "0.10"},
    )


async def test_status_over_several_accounts_reports_the_worst_and_sums_counts(api):
    caller = await sign_up(api)
    calm = await caller.new_account("calm")
    troubled = await caller.new_account("troubled")
    await write_state(api, calm, status="healthy", total_syncs=2, open_positions_count=1, matched_positions=1)
    await write_state(
        api, troubled, status="warning", total_syncs=5, open_positions_count=2, divergences_detected=2
    )

    body = (await caller.get(STATUS)).json()

    assert body["account_id"] is None
    assert body["status"] == "warning"
    assert body["total_syncs"] == 7
    assert body["open_positions_count"] == 3
    assert body["divergences_detected"] == 2


async def test_open_positions_empty(api):
    caller = await sign_up(api)
    await caller.new_account()

    body = (await caller.get(OPEN_POSITIONS)).json()

    assert body["total_positions"] == 0
    assert body["positions"] == []
    assert body["total_unrealized_pnl"] == 0
    assert body["last_updated_at"] is None


async def test_open_positions_with_data_carry_exact_prices_and_pnl(api):
    caller = await sign_up(api)
    account_id = await caller.new_account()
    await write_state(
        api,
        account_id,
        balance=Decimal("10000"),
        positions=[
            {
                "symbol": "EURUSD",
                "side": "buy",
                "open_price": Decimal("1.08500"),
                "current_price": Decimal("1.08717"),
                "profit": Decimal("21.70"),
                "swap": Decimal("-0.70"),
                "matched_trade_id": "T1",
                "stop_loss": Decimal("1.08000"),
            },
            {
                "symbol": "XAUUSD",
                "side": "sell",
                "volume": Decimal("0.01"),
                "open_price": Decimal("2400.00"),
                "current_price": Decimal("2376.00"),
                "profit": Decimal("24.00"),
            },
        ],
    )

    body = (await caller.get(OPEN_POSITIONS, account_id=account_id)).json()

    assert body["total_positions"] == 2
    assert body["total_unrealized_pnl"] == 45.0
    assert body["total_unrealized_pnl_pct"] == 0.45
    euro, gold = body["positions"]
    assert euro["symbol"] == "EURUSD" and euro["direction"] == "buy"
    assert euro["entry_price"] == 1.085 and euro["current_price"] == 1.08717
    assert euro["unrealized_pnl"] == 21.0
    assert euro["unrealized_pnl_pct"] == 0.2
    assert euro["matched_with_bot"] is True and euro["stop_loss"] == 1.08
    assert gold["direction"] == "sell" and gold["unrealized_pnl_pct"] == 1.0
    assert gold["matched_with_bot"] is False
    assert {position["status"] for position in body["positions"]} == {"open"}


async def test_open_positions_symbol_filter(api):
    caller = await sign_up(api)
    account_id = await caller.new_account()
    await write_state(
        api, account_id, positions=[{"symbol": "EURUSD"}, {"symbol": "USDJPY"}, {"symbol": "EURUSD"}]
    )

    body = (await caller.get(OPEN_POSITIONS, symbol="eurusd")).json()

    assert body["total_positions"] == 2
    assert {position["symbol"] for position in body["positions"]} == {"EURUSD"}


async def test_position_by_id(api):
    caller = await sign_up(api)
    account_id = await caller.new_account()
    [position_id] = await write_state(api, account_id, positions=[{"symbol": "GBPUSD", "ticket": "555"}])

    response = await caller.get(f"/api/v1/positions/{position_id}")

    assert response.status_code == 200
    assert response.json()["ticket"] == "555"
    assert response.json()["position_id"] == position_id


@pytest.mark.parametrize(
    ("equity", "level", "should_close"),
    [
        (Decimal("9000"), "normal", False),
        (Decimal("8400"), "warning", False),
        (Decimal("7900"), "critical", True),
    ],
)
async def test_drawdown_guard_status_follows_the_stored_level(api, equity, level, should_close):
    caller = await sign_up(api)
    account_id = await caller.new_account()
    peak = Decimal("10000")
    await write_state(
        api,
        account_id,
        equity=equity,
        balance=peak,
        peak_equity=peak,
        drawdown_pct=(peak - equity) / peak * 100,
        drawdown_level=level,
        trading_allowed=level != "critical",
    )

    body = (await caller.get(GUARDS, account_id=account_id)).json()

    guard = body["drawdown_guard"]
    assert guard["current_equity"] == float(equity)
    assert guard["peak_equity"] == 10000
    assert guard["current_drawdown_pct"] == float((peak - equity) / peak * 100)
    assert guard["alert_type"] == level
    assert guard["alert_threshold_pct"] == (20 if level == "critical" else 15)
    assert guard["should_close_all"] is should_close
    assert body["system_status"] == level
    assert body["any_positions_should_close"] is should_close
    assert body["trading_allowed"] is (level != "critical")


async def test_guard_status_lists_market_alerts_per_symbol(api):
    caller = await sign_up(api)
    account_id = await caller.new_account()
    await write_state(
        api,
        account_id,
        market_levels='{"EURUSD": {"level": "critical", "spread_pct": "2.0"}, "USDJPY": {"level": "normal"}}',
    )

    body = (await caller.get(GUARDS)).json()

    assert body["market_guard_alerts"] == [
        {
            "account_id": account_id,
            "symbol": "EURUSD",
            "alert_type": "critical",
            "gap_pct": None,
            "spread_pct": 2.0,
            "should_close_positions": True,
            # A state stored before the older platform's names were kept: only the mirrored ones are known.
            "condition_type": None,
            "price_gap_pct": None,
            "bid_ask_spread_pct": 2.0,
            "bid": None,
            "ask": None,
        }
    ]
    assert body["system_status"] == "critical"
    assert body["any_positions_should_close"] is True


async def test_logs_filter_and_cursor_paging(api):
    caller = await sign_up(api)
    account_id = await caller.new_account()
    events = [
        {"event_type": "divergence", "reason": "missing_on_broker", "trade_id": f"T{i}", "message": f"m{i}"}
        for i in range(5)
    ] + [{"event_type": "matched", "trade_id": "M", "message": "matched"}]
    await write_state(api, account_id, events=events)

    first = (await caller.get(LOGS, event_type="divergence", limit=3)).json()
    second = (await caller.get(LOGS, event_type="divergence", limit=3, cursor=first["next_cursor"])).json()

    assert [event["trade_id"] for event in first["events"]] == ["T4", "T3", "T2"]
    assert [event["trade_id"] for event in second["events"]] == ["T1", "T0"]
    assert second["next_cursor"] is None
    only_reason = (await caller.get(LOGS, reason="missing_on_broker", limit=50)).json()
    assert len(only_reason["events"]) == 5


async def test_alerts_and_equity_series(api):
    caller = await sign_up(api)
    account_id = await caller.new_account()
    await write_state(
        api,
        account_id,
        alerts=[
            {"kind": "drawdown", "level": "warning", "message": "drawdown 16%"},
            {"kind": "drawdown", "level": "critical", "message": "drawdown 21%"},
        ],
        equity_history=[(Decimal("10000"), Decimal("10000")), (Decimal("8400"), Decimal("10000"))],
    )

    alerts = (await caller.get(ALERTS, level="critical")).json()["alerts"]
    series = (await caller.get(f"/api/v1/accounts/{account_id}/equity")).json()

    assert [alert["message"] for alert in alerts] == ["drawdown 21%"]
    assert [point["equity"] for point in series["points"]] == [10000, 8400]
    assert series["points"][1]["drawdown_pct"] == 16
    assert (series["warning_threshold_pct"], series["critical_threshold_pct"]) == (15, 20)


async def test_full_flow_from_login_to_every_read_endpoint(api):
    caller = await sign_up(api)
    account_id = await caller.new_account("Flow", broker="DemoBroker", login="42", currency="EUR")
    [position_id] = await write_state(api, account_id, positions=[{}], status="healthy", total_syncs=1)

    me = await caller.get("/api/v1/me")
    assert me.json()["email"] == caller.email
    for path in (
        STATUS,
        LOGS,
        OPEN_POSITIONS,
        GUARDS,
        ALERTS,
        f"/api/v1/positions/{position_id}",
        f"/api/v1/accounts/{account_id}/equity",
        f"/api/v1/accounts/{account_id}/guard-config",
        "/api/v1/accounts",
    ):
        response = await caller.get(path)
        assert response.status_code == 200, (path, response.text)
        assert response.headers["content-type"].startswith("application/json")


PROTECTED = [
    ("GET", "/api/v1/me"),
    ("GET", "/api/v1/accounts"),
    ("POST", "/api/v1/accounts"),
    ("GET", "/api/v1/accounts/1/guard-config"),
    ("PUT", "/api/v1/accounts/1/guard-config"),
    ("GET", STATUS),
    ("GET", LOGS),
    ("GET", OPEN_POSITIONS),
    ("GET", "/api/v1/positions/1"),
    ("GET", GUARDS),
    ("GET", ALERTS),
    ("GET", "/api/v1/accounts/1/equity"),
]


@pytest.mark.parametrize(("method", "path"), PROTECTED)
async def test_every_protected_endpoint_refuses_a_missing_token(sqlite_api, method, path):
    response = await sqlite_api.http.request(method, path, json={} if method != "GET" else None)

    assert response.status_code == 401
    assert response.json()["detail"] == "not authenticated"


async def test_another_users_account_position_logs_and_alerts_answer_404(api):
    owner = await sign_up(api)
    stranger = await sign_up(api)
    account_id = await owner.new_account()
    [position_id] = await write_state(
        api,
        account_id,
        positions=[{}],
        events=[{"event_type": "matched", "message": "secret"}],
        alerts=[{"kind": "drawdown", "level": "warning", "message": "secret"}],
    )

    for path, params in (
        (STATUS, {"account_id": account_id}),
        (LOGS, {"account_id": account_id}),
        (OPEN_POSITIONS, {"account_id": account_id}),
        (GUARDS, {"account_id": account_id}),
        (ALERTS, {"account_id": account_id}),
        (f"/api/v1/positions/{position_id}", {}),
        (f"/api/v1/accounts/{account_id}/equity", {}),
        (f"/api/v1/accounts/{account_id}/guard-config", {}),
    ):
        response = await stranger.get(path, **params)
        assert response.status_code == 404, path
        assert "secret" not in response.text
    own_view = (await stranger.get(LOGS)).json()
    assert own_view["events"] == []


async def test_an_admin_reads_any_account_by_id(api):
    owner = await sign_up(api)
    admin = await sign_up(api, role="admin")
    account_id = await account_without_api(api, owner)
    await write_state(api, account_id, status="warning", divergences_detected=1)

    body = (await admin.get(STATUS, account_id=account_id)).json()

    assert body["status"] == "warning"
    assert body["user_id"] == admin.user_id


async def test_unknown_account_and_bad_parameters_answer_clear_errors(api):
    caller = await sign_up(api)

    assert (await caller.get(STATUS, account_id=999_999)).status_code == 404
    bad = await caller.get(LOGS, limit=0)
    assert bad.status_code == 422
    assert "limit" in bad.json()["detail"]


async def test_health_needs_no_token_and_checks_database_and_cache(api):
    response = await api.http.get("/api/v1/trading/health")

    body = response.json()
    assert response.status_code == 200
    assert body["status"] == "healthy"
    assert body["service"] == "trading-api"
    assert body["checks"]["database"]["status"] == "ok"
    assert body["checks"]["cache"]["status"] == "ok"
    assert body["checks"]["cache"]["backend"] == api.services.cache.backend


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/positions/99999999999999999999999",
        "/api/v1/accounts/99999999999999999999999/equity",
        "/api/v1/reconciliation/status?account_id=99999999999999999999999",
        "/api/v1/alerts?cursor=99999999999999999999999",
    ],
)
async def test_ids_beyond_any_database_integer_are_refused_with_422(sqlite_api, path):
    caller = await sign_up(sqlite_api)

    response = await sqlite_api.http.get(path, headers=caller.headers)

    assert response.status_code == 422
    assert "less than or equal" in response.json()["detail"]


async def test_request_latency_is_labelled_by_the_full_route_template(sqlite_api):
    caller = await sign_up(sqlite_api)
    template = "/api/v1/positions/{position_id}"
    before = REQUEST_LATENCY.labels("GET", template, "404")._sum.get()

    missing = await caller.api.http.get("/api/v1/positions/999999", headers=caller.headers)

    assert missing.status_code == 404
    assert REQUEST_LATENCY.labels("GET", template, "404")._sum.get() > before
    assert ("GET", "/positions/{position_id}", "404") not in REQUEST_LATENCY._metrics
