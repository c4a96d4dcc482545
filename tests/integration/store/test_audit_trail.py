"""The audit trail as a write adds it: written at commit in the order added, alerts linked, read back
inside the write, forgotten with a rollback."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import select

from tests.support.builders import account_without_api, sign_up
from tradeguard.actions.alerts import raise_alert
from tradeguard.actions.audit import audit_event, committed_audit_events
from tradeguard.store.models import Alert, AlertDelivery, ReconciliationEvent
from tradeguard.store.reconciliation_log import entries_of_tickets

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


async def test_a_writes_entries_get_ids_in_the_order_added_and_alerts_their_links_and_deliveries(api):
    owner = await sign_up(api)
    account_id = await account_without_api(api, owner)
    async with api.session() as session:
        first = audit_event(session, account_id, "guard_level", "first", at=NOW, reason="drawdown")
        alert = raise_alert(
            session,
            account_id,
            kind="drawdown",
            level="critical",
            message="drawdown 25 %",
            now=NOW,
            notifiers=["webhook", "telegram"],
        )
        last = audit_event(session, account_id, "halted", "last", at=NOW, details={"trading_allowed": False})
        await session.commit()
        written = committed_audit_events(session)
        stored = (
            await session.scalars(
                select(ReconciliationEvent)
                .where(ReconciliationEvent.account_id == account_id)
                .order_by(ReconciliationEvent.id)
            )
        ).all()
        alerts = (await session.scalars(select(Alert).where(Alert.account_id == account_id))).all()
        deliveries = (
            await session.scalars(select(AlertDelivery).where(AlertDelivery.alert_id == alert.id))
        ).all()

    assert [entry.message for entry in written] == ["first", "drawdown 25 %", "last"]
    assert written[0] is first and written[-1] is last
    assert [row.id for row in stored] == [entry.id for entry in written]
    assert [row.event_type for row in stored] == ["guard_level", "alert", "halted"]
    assert [alert_row.id for alert_row in alerts] == [alert.id]
    assert stored[1].alert_id == alert.id == written[1].alert_id
    assert stored[0].alert_id is None
    assert stored[2].details == '{"trading_allowed":false}'
    assert sorted(delivery.notifier for delivery in deliveries) == ["telegram", "webhook"]
    assert {delivery.state for delivery in deliveries} == {"pending"}


async def test_a_write_reads_back_the_entries_it_added_before_committing(api):
    owner = await sign_up(api)
    account_id = await account_without_api(api, owner)
    async with api.session() as session:
        audit_event(session, account_id, "closed_on_broker", "closed", at=NOW, ticket="501", symbol="EURUSD")
        read_back = await entries_of_tickets(session, account_id, ["501"], ["closed_on_broker"])
        await session.rollback()

    assert [(entry.event_type, entry.ticket) for entry in read_back] == [("closed_on_broker", "501")]


async def test_the_entries_and_alerts_of_a_rolled_back_write_are_never_written(api):
    owner = await sign_up(api)
    account_id = await account_without_api(api, owner)
    async with api.session() as session:
        audit_event(session, account_id, "guard_level", "rolled back", at=NOW)
        raise_alert(
            session,
            account_id,
            kind="drawdown",
            level="warning",
            message="rolled back",
            now=NOW,
            notifiers=[],
        )
        await session.rollback()
        audit_event(session, account_id, "guard_level", "kept", at=NOW)
        await session.commit()
        written = committed_audit_events(session)
        messages = (
            await session.scalars(
                select(ReconciliationEvent.message).where(ReconciliationEvent.account_id == account_id)
            )
        ).all()
        alerts = (await session.scalars(select(Alert).where(Alert.account_id == account_id))).all()

    assert [entry.message for entry in written] == ["kept"]
    assert messages == ["kept"]
    assert alerts == []
