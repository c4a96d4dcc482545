"""The business metrics on /metrics: the database's numbers at the time of the scrape."""

from __future__ import annotations

from datetime import UTC, datetime

from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import update

from tests.support.builders import NOW, Caller, sign_up, write_state
from tests.support.platform import ACCOUNTS_BY_ATTENTION, add_commands
from tradeguard.api.routes import health
from tradeguard.store.models import Alert, AlertDelivery, CloseCommand

LONG_AGO = datetime(2020, 1, 1, tzinfo=UTC)
BUSINESS = (
    "tradeguard_accounts",
    "tradeguard_close_commands",
    "tradeguard_alert_deliveries",
    "tradeguard_oldest_sent",
    "tradeguard_business",
)
STATUSES = (
    "halted",
    "critical",
    "stale_feed",
    "divergent",
    "commands_outstanding",
    "commands_failed",
    "warning",
    "ok",
)


async def _scrape(api, operator: Caller) -> dict[tuple[str, tuple], float]:
    text = (await api.http.get("/metrics", headers=operator.headers)).text
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name.startswith(BUSINESS)
    }


async def _fail_deliveries(api, account_id: int, notifiers: list[str]) -> None:
    async with api.session() as session:
        alert = Alert(account_id=account_id, created_at=NOW, kind="drawdown", level="critical", message="x")
        session.add(alert)
        await session.flush()
        for notifier in notifiers:
            session.add(
                AlertDelivery(
                    alert_id=alert.id, notifier=notifier, state="failed", attempts=5, next_attempt_at=NOW
                )
            )
        session.add(
            AlertDelivery(
                alert_id=alert.id, notifier="webhook", state="delivered", attempts=1, next_attempt_at=NOW
            )
        )
        await session.commit()


async def _send_long_ago(api, account_id: int) -> None:
    async with api.session() as session:
        await session.execute(
            update(CloseCommand)
            .where(CloseCommand.account_id == account_id, CloseCommand.state == "sent")
            .values(sent_at=LONG_AGO)
        )
        await session.commit()


def _delta(after: dict, before: dict, name: str, **labels) -> float:
    key = (name, tuple(sorted(labels.items())))
    return after.get(key, 0) - before.get(key, 0)


async def test_accounts_commands_and_failures_in_every_state(api):
    operator = await sign_up(api, role="owner")
    before = await _scrape(api, operator)
    follower = await sign_up(api)
    ids = {}
    for name, state, commands in ACCOUNTS_BY_ATTENTION:
        ids[name] = await follower.new_account(name)
        if state:
            await write_state(api, ids[name], **state)
        if commands:
            await add_commands(api, ids[name], commands)
    await _send_long_ago(api, ids["outstanding"])
    await _fail_deliveries(api, ids["halted deep"], ["telegram", "webhook"])

    after = await _scrape(api, operator)

    assert after[("tradeguard_business_metrics_up", ())] == 1
    by_status = {status: _delta(after, before, "tradeguard_accounts", status=status) for status in STATUSES}
    assert by_status == {
        "halted": 2,
        "critical": 1,
        "stale_feed": 1,
        "divergent": 1,
        "commands_outstanding": 1,
        "commands_failed": 1,
        "warning": 2,
        "ok": 2,
    }
    assert _delta(after, before, "tradeguard_accounts_halted") == 2
    # The critical account's feed is stale too: counted here, though ranked as critical.
    assert _delta(after, before, "tradeguard_accounts_feed_stale") == 2
    assert _delta(after, before, "tradeguard_close_commands", state="pending") == 1
    assert _delta(after, before, "tradeguard_close_commands", state="sent") == 1
    assert _delta(after, before, "tradeguard_close_commands", state="failed") == 2
    assert _delta(after, before, "tradeguard_alert_deliveries_failed", notifier="telegram") == 1
    assert _delta(after, before, "tradeguard_alert_deliveries_failed", notifier="webhook") == 1
    age = after[("tradeguard_oldest_sent_close_command_age_seconds", ())]
    expected_age = (datetime.now(UTC) - LONG_AGO).total_seconds()
    assert expected_age - 60 < age <= expected_age


async def test_a_database_too_slow_leaves_the_process_metrics_and_says_so(api, monkeypatch):
    monkeypatch.setattr(health, "BUSINESS_METRICS_TIMEOUT_SECONDS", 0)

    operator = await sign_up(api, role="admin")

    text = (await api.http.get("/metrics", headers=operator.headers)).text

    assert "tradeguard_business_metrics_up 0.0" in text
    assert "tradeguard_accounts{" not in text
    assert 'tradeguard_cache_hits_total{view="alerts"}' in text


async def test_only_an_operators_scrape_gets_the_platforms_numbers(api, monkeypatch):
    follower = await sign_up(api)
    await follower.new_account()
    monkeypatch.setattr(api.services.settings, "metrics_token", "the-scrapers-token")

    anonymous = await api.http.get("/metrics")
    as_follower = await api.http.get("/metrics", headers=follower.headers)
    with_metrics_token = await api.http.get(
        "/metrics", headers={"Authorization": "Bearer the-scrapers-token"}
    )
    with_a_wrong_token = await api.http.get("/metrics", headers={"Authorization": "Bearer not-a-token"})

    for response in (anonymous, as_follower):
        assert response.status_code == 200
        assert 'tradeguard_cache_hits_total{view="alerts"}' in response.text
        assert "tradeguard_accounts" not in response.text
        assert "tradeguard_business_metrics_up" not in response.text
    assert with_metrics_token.status_code == 200
    assert "tradeguard_business_metrics_up 1.0" in with_metrics_token.text
    assert 'tradeguard_accounts{status="ok"}' in with_metrics_token.text
    assert with_a_wrong_token.status_code == 401
