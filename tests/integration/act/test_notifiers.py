"""Alert delivery against real HTTP endpoints on localhost: signed webhooks, Telegram, retries, claims."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import logging
import time
from datetime import timedelta
from decimal import Decimal

import httpx
import pytest
from sqlalchemy import select, update

from tests.support.builders import NOW, sign_up
from tests.support.http_receiver import Receiver, Reply
from tests.support.net import free_port
from tests.support.waiting import eventually
from tradeguard.actions.alerts import raise_alert
from tradeguard.actions.delivery import DeliveryLoop, DeliveryPolicy, deliver_due
from tradeguard.actions.notifiers import TelegramNotifier, WebhookNotifier
from tradeguard.store.models import AlertDelivery

BOT_TOKEN = "123456789:AAH-secret-bot-token_for_tests"
CHAT_ID = "-1002003004"
WEBHOOK_SECRET = "whsec-for-tests"
POLICY = DeliveryPolicy(max_attempts=3, backoff_seconds=1, timeout_seconds=2)


@pytest.fixture
async def http():
    async with httpx.AsyncClient(timeout=10) as client:
        yield client


@pytest.fixture
async def services(api):
    """The api's services with nothing left pending by earlier tests, so a round sees this test's rows only."""
    async with api.services.write_session() as session:
        await session.execute(
            update(AlertDelivery)
            .where(AlertDelivery.state == "pending")
            .values(state="failed", last_error="left over by an earlier test")
        )
        await session.commit()
    return api.services


@pytest.fixture
async def account_id(api) -> int:
    owner = await sign_up(api)
    return await owner.new_account()


async def raise_alerts(services, account_id: int, notifiers: list[str], count: int = 1) -> list[int]:
    """Alerts committed as the ingest step commits them; returns their ids."""
    async with services.write_session() as session:
        alerts = [
            raise_alert(
                session,
                account_id,
                kind="drawdown",
                level="critical",
                message=f"drawdown 21.5% reached the critical threshold of 20% (#{number})",
                now=NOW,
                notifiers=notifiers,
                symbol="EURUSD",
                details={"drawdown_pct": Decimal("21.5"), "equity": Decimal("7850.00")},
            )
            for number in range(count)
        ]
        await session.commit()
    return [alert.id for alert in alerts]


async def deliveries_of(services, alert_ids: list[int]) -> list[AlertDelivery]:
    async with services.sessions() as session:
        rows = await session.scalars(
            select(AlertDelivery).where(AlertDelivery.alert_id.in_(alert_ids)).order_by(AlertDelivery.id)
        )
        return list(rows)


def webhook(http, receiver: Receiver) -> dict:
    return {"webhook": WebhookNotifier(http, f"{receiver.url}/hooks/tradeguard", WEBHOOK_SECRET)}


def telegram(http, base_url: str) -> dict:
    return {"telegram": TelegramNotifier(http, base_url, BOT_TOKEN, CHAT_ID)}


async def test_webhook_arrives_with_the_documented_body_and_a_verifiable_signature(
    services, account_id, receiver, http
):
    [alert_id] = await raise_alerts(services, account_id, ["webhook"])

    sent = await deliver_due(services.write_session, webhook(http, receiver), POLICY, now=NOW)

    assert sent == 1
    [request] = receiver.requests
    assert (request.method, request.path) == ("POST", "/hooks/tradeguard")
    assert request.json() == {
        "id": alert_id,
        "account_id": account_id,
        "kind": "drawdown",
        "level": "critical",
        "symbol": "EURUSD",
        "message": "drawdown 21.5% reached the critical threshold of 20% (#0)",
        "details": {"drawdown_pct": 21.5, "equity": 7850},
        "created_at": "2026-11-25T12:00:00+00:00",
    }
    assert request.headers["x-tradeguard-event"] == "alert"
    assert request.headers["x-tradeguard-delivery"] == str(alert_id)
    timestamp = request.headers["x-tradeguard-timestamp"]
    assert abs(int(timestamp) - time.time()) < 60
    expected = hmac.new(WEBHOOK_SECRET.encode(), f"{timestamp}.".encode() + request.body, hashlib.sha256)
    assert hmac.compare_digest(request.headers["x-tradeguard-signature"], f"sha256={expected.hexdigest()}")
    [delivery] = await deliveries_of(services, [alert_id])
    assert (delivery.state, delivery.attempts, delivery.delivered_at) == ("delivered", 1, NOW)


async def test_telegram_gets_send_message_with_chat_id_and_text_and_no_log_shows_the_token(
    services, account_id, receiver, http, caplog
):
    caplog.set_level(logging.DEBUG)
    [alert_id] = await raise_alerts(services, account_id, ["telegram"])

    await deliver_due(services.write_session, telegram(http, receiver.url), POLICY, now=NOW)

    [request] = receiver.requests
    assert request.path == f"/bot{BOT_TOKEN}/sendMessage"
    assert request.json() == {
        "chat_id": CHAT_ID,
        "text": f"🔴 CRITICAL drawdown · account {account_id} · EURUSD\n"
        "drawdown 21.5% reached the critical threshold of 20% (#0)",
        "disable_web_page_preview": True,
    }
    [delivery] = await deliveries_of(services, [alert_id])
    assert delivery.state == "delivered"
    assert "sendMessage" in caplog.text
    assert BOT_TOKEN not in caplog.text


async def test_failed_sends_are_retried_with_doubling_backoff_until_delivered(
    services, account_id, receiver, http
):
    [alert_id] = await raise_alerts(services, account_id, ["webhook"])
    receiver.script.extend([Reply(500, b"upstream down"), Reply(500, b"upstream down")])
    notifiers = webhook(http, receiver)

    assert await deliver_due(services.write_session, notifiers, POLICY, now=NOW) == 1
    [delivery] = await deliveries_of(services, [alert_id])
    assert (delivery.state, delivery.attempts) == ("pending", 1)
    assert delivery.last_error == "webhook answered 500: upstream down"
    assert delivery.next_attempt_at == NOW + timedelta(seconds=1)

    assert await deliver_due(services.write_session, notifiers, POLICY, now=NOW + timedelta(seconds=0.5)) == 0

    assert await deliver_due(services.write_session, notifiers, POLICY, now=NOW + timedelta(seconds=1)) == 1
    [delivery] = await deliveries_of(services, [alert_id])
    assert (delivery.state, delivery.attempts) == ("pending", 2)
    assert delivery.next_attempt_at == NOW + timedelta(seconds=3)

    assert await deliver_due(services.write_session, notifiers, POLICY, now=NOW + timedelta(seconds=3)) == 1
    [delivery] = await deliveries_of(services, [alert_id])
    assert (delivery.state, delivery.attempts) == ("delivered", 3)
    assert delivery.delivered_at == NOW + timedelta(seconds=3)
    assert [request.headers["x-tradeguard-delivery"] for request in receiver.requests] == [str(alert_id)] * 3


async def test_an_unreachable_notifier_fails_after_max_attempts_and_never_records_the_token(
    services, account_id, http
):
    [alert_id] = await raise_alerts(services, account_id, ["telegram"])
    notifiers = telegram(http, f"http://127.0.0.1:{free_port()}")

    now = NOW
    for attempt in range(1, POLICY.max_attempts + 1):
        assert await deliver_due(services.write_session, notifiers, POLICY, now=now) == 1
        [delivery] = await deliveries_of(services, [alert_id])
        assert delivery.attempts == attempt
        assert delivery.last_error.startswith("telegram unreachable")
        assert BOT_TOKEN not in delivery.last_error
        now = delivery.next_attempt_at

    assert delivery.state == "failed"
    assert await deliver_due(services.write_session, notifiers, POLICY, now=NOW + timedelta(hours=1)) == 0


async def test_a_telegram_bad_request_is_permanent_after_one_attempt(services, account_id, receiver, http):
    [alert_id] = await raise_alerts(services, account_id, ["telegram"])
    receiver.script.append(
        Reply(400, b'{"ok": false, "error_code": 400, "description": "Bad Request: chat not found"}')
    )

    await deliver_due(services.write_session, telegram(http, receiver.url), POLICY, now=NOW)

    [delivery] = await deliveries_of(services, [alert_id])
    assert (delivery.state, delivery.attempts) == ("failed", 1)
    assert delivery.last_error == "telegram answered 400: Bad Request: chat not found"


async def test_a_telegram_rate_limit_sets_the_next_attempt_after_retry_after(
    services, account_id, receiver, http
):
    [alert_id] = await raise_alerts(services, account_id, ["telegram"])
    receiver.script.append(
        Reply(
            429,
            b'{"ok": false, "error_code": 429, "description": "Too Many Requests: retry after 7",'
            b' "parameters": {"retry_after": 7}}',
        )
    )
    notifiers = telegram(http, receiver.url)

    await deliver_due(services.write_session, notifiers, POLICY, now=NOW)

    [delivery] = await deliveries_of(services, [alert_id])
    assert (delivery.state, delivery.attempts) == ("pending", 1)
    assert delivery.next_attempt_at == NOW + timedelta(seconds=7)
    assert await deliver_due(services.write_session, notifiers, POLICY, now=NOW + timedelta(seconds=7)) == 1
    [delivery] = await deliveries_of(services, [alert_id])
    assert delivery.state == "delivered"


async def test_a_delivery_for_a_notifier_no_longer_configured_fails(services, account_id):
    [alert_id] = await raise_alerts(services, account_id, ["telegram"])

    assert await deliver_due(services.write_session, {}, POLICY, now=NOW) == 0

    [delivery] = await deliveries_of(services, [alert_id])
    assert (delivery.state, delivery.attempts, delivery.last_error) == (
        "failed",
        0,
        "notifier not configured",
    )


async def test_concurrent_rounds_deliver_each_alert_exactly_once(services, account_id, receiver, http):
    alert_ids = await raise_alerts(services, account_id, ["webhook"], count=20)
    policy = DeliveryPolicy(max_attempts=3, backoff_seconds=1, timeout_seconds=2, batch=5)
    notifiers = webhook(http, receiver)

    sent = await asyncio.gather(
        *(deliver_due(services.write_session, notifiers, policy, now=NOW) for _ in range(6))
    )

    assert sum(sent) == 20
    delivered_ids = sorted(int(request.headers["x-tradeguard-delivery"]) for request in receiver.requests)
    assert delivered_ids == sorted(alert_ids)
    assert {delivery.state for delivery in await deliveries_of(services, alert_ids)} == {"delivered"}


async def test_raising_an_alert_never_waits_for_a_hanging_notifier(services, account_id, receiver, http):
    receiver.default = Reply(hang_seconds=5)
    policy = DeliveryPolicy(max_attempts=3, backoff_seconds=1, timeout_seconds=8)
    alerts_raised = asyncio.Event()
    loop = DeliveryLoop(
        services.write_session,
        webhook(http, receiver),
        policy,
        interval=60,
        clock=lambda: NOW,
        woken=alerts_raised,
    )
    running = asyncio.create_task(loop.run())
    try:
        first = await raise_alerts(services, account_id, ["webhook"])
        alerts_raised.set()
        await eventually(lambda: len(receiver.requests) == 1, "one delivery")

        second = await asyncio.wait_for(raise_alerts(services, account_id, ["webhook"]), timeout=1)

        receiver.released.set()
        loop.wake()

        async def both_delivered() -> bool:
            deliveries = await deliveries_of(services, first + second)
            return [delivery.state for delivery in deliveries] == ["delivered", "delivered"]

        await eventually(both_delivered, "both alerts delivered")
    finally:
        running.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await running
    assert running.cancelled()


async def test_the_delivery_loop_survives_a_failing_round(services, account_id, receiver, http, caplog):
    [alert_id] = await raise_alerts(services, account_id, ["webhook"])
    failures = iter([ConnectionResetError("database went away")])

    def sessions_failing_once():
        for failure in failures:
            raise failure
        return services.write_session()

    loop = DeliveryLoop(
        sessions_failing_once, webhook(http, receiver), POLICY, interval=0.05, clock=lambda: NOW
    )
    running = asyncio.create_task(loop.run())
    try:

        async def delivered() -> bool:
            [delivery] = await deliveries_of(services, [alert_id])
            return delivery.state == "delivered"

        await eventually(delivered, "the alert delivered")
    finally:
        running.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await running
    assert "alert delivery round failed" in caplog.text


def test_backoff_doubles_from_the_first_delay_up_to_a_cap_and_retry_after_wins():
    policy = DeliveryPolicy(max_attempts=10, backoff_seconds=1.5, timeout_seconds=5, max_backoff_seconds=300)

    assert [policy.retry_delay(attempts).total_seconds() for attempts in (1, 2, 3, 4)] == [1.5, 3, 6, 12]
    assert policy.retry_delay(9) == timedelta(seconds=300)
    assert policy.retry_delay(2, retry_after=7) == timedelta(seconds=7)
