"""The bridge: what reports an account to tradeguard, and carries out the commands it gets back.

`SimulatedBridge` sends the broker's signed snapshots with `BridgeClient`, as an MT5 bridge would;
`ReportedElsewhere` stands for a real bridge outside the simulation and only reads back, through
the platform, what tradeguard made of the account.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

import httpx

from tradeguard.bridges.broker import CloseOutcome, OutcomeStatus
from tradeguard.bridges.client import BridgeClient, BridgeError
from tradeguard.bridges.simulator.broker import SimulatedBroker
from tradeguard.bridges.simulator.clock import wall_clock
from tradeguard.bridges.simulator.platform import SimulatedPlatform
from tradeguard.domain.model import CloseReason

log = logging.getLogger(__name__)

Note = Callable[[int | None, str], None]
"""Tells the simulation what happened to an account (None: to the market), for the step's report."""

# What a server answers when it lacks an endpoint (an older tradeguard): worth one warning, not one a step.
_ABSENT = (404, 405)


class SimulatedBridge:
    """An account's bridge: signed snapshots out, close commands in, acknowledgements out.

    Commands arrive at least once (in every snapshot answer and every poll until acknowledged), so
    each command id is carried out once and only its acknowledgement is repeated.
    """

    def __init__(self, account_id: int, broker: SimulatedBroker, client: BridgeClient, note: Note) -> None:
        self.account_id = account_id
        self.broker = broker
        self.last_summary: dict[str, Any] | None = None
        self.commands_executed = 0
        self._client = client
        self._note = note
        self._outcomes: dict[str, CloseOutcome] = {}
        self._acknowledged: set[str] = set()
        self._known_divergences: set[tuple] = set()
        self._warned: set[tuple[str, int]] = set()
        self._deals_reported = 0
        self._broker_time: datetime | None = None

    async def sync(self, taken_at: datetime) -> dict[str, Any]:
        """Send a snapshot, with the deals since the last one, and carry out the commands in the answer.

        Raises BridgeError or httpx.HTTPError.
        """
        self._broker_time = taken_at
        new_deals = self.broker.history[self._deals_reported :]
        self._deals_reported += len(new_deals)
        self._client.report_closed_deals(deal.as_closed_deal() for deal in new_deals)
        summary = await self._client.send_snapshot(self.broker.snapshot(taken_at))
        self.last_summary = summary
        self._note_new_divergences(summary.get("divergences", []))
        await self.carry_out(summary.get("commands", []))
        return summary

    async def poll(self) -> None:
        try:
            commands = await self._client.poll_commands()
        except BridgeError as exc:
            self._warn_unless_absent("poll", "polling commands", exc)
            return
        except httpx.HTTPError as exc:
            log.warning("account %s: polling commands failed: %s", self.account_id, exc)
            return
        await self.carry_out(commands)

    async def carry_out(self, commands: Sequence[Mapping[str, Any]]) -> None:
        for command in commands:
            command_id = str(command["command_id"])
            if command_id in self._acknowledged:
                continue
            outcome = self._outcomes.get(command_id)
            if outcome is None:
                outcome = self._outcomes[command_id] = self._execute(command)
            if await self._acknowledge(command_id, outcome):
                self._acknowledged.add(command_id)

    def _execute(self, command: Mapping[str, Any]) -> CloseOutcome:
        ticket = str(command["ticket"])
        if ticket not in self.broker.positions:
            # Already gone (a stop hit first, or never ours): the broker refuses; the snapshot shows why.
            return CloseOutcome(OutcomeStatus.FAILED, f"ticket {ticket} is not open on the broker")
        volume = Decimal(str(command["volume"])) if command.get("volume") is not None else None
        # Carried out right after the snapshot whose answer (or the poll after it) brought the command.
        at = self._broker_time or wall_clock()
        closed = self.broker.close(ticket, volume, reason=CloseReason.CLOSE_COMMAND, at=at)
        self.commands_executed += 1
        self._note(
            self.account_id,
            f"closed {closed.symbol} {closed.side.value} {closed.volume} (ticket {ticket}) on a "
            f"{command.get('cause', 'guard')} command at {closed.close_price}, P&L {closed.profit}",
        )
        return CloseOutcome(OutcomeStatus.EXECUTED, close_price=closed.close_price, profit=closed.profit)

    async def _acknowledge(self, command_id: str, outcome: CloseOutcome) -> bool:
        """True once tradeguard has the acknowledgement, so it need not be sent again."""
        try:
            await self._client.acknowledge(command_id, **outcome.acknowledgement())
        except BridgeError as exc:
            if exc.status_code == 409:
                # Already acknowledged (an earlier attempt whose answer was lost): nothing left to say.
                return True
            self._warn_unless_absent("ack", f"acknowledging command {command_id}", exc)
            return False
        except httpx.HTTPError as exc:
            # The acknowledgement may or may not have arrived; the command comes again if it did not.
            log.warning("account %s: acknowledging command %s failed: %s", self.account_id, command_id, exc)
            return False
        return True

    def _warn_unless_absent(self, endpoint: str, what: str, exc: BridgeError) -> None:
        if exc.status_code not in _ABSENT:
            log.warning("account %s: %s refused: %s", self.account_id, what, exc)
            return
        if (endpoint, exc.status_code) not in self._warned:
            self._warned.add((endpoint, exc.status_code))
            log.warning(
                "account %s: %s answered %s (a server without this endpoint, or a command it does not "
                "know); carrying on, and not repeating this warning",
                self.account_id,
                what,
                exc.status_code,
            )

    def _note_new_divergences(self, divergences: Sequence[Mapping[str, Any]]) -> None:
        current = {}
        for divergence in divergences:
            key = (divergence.get("trade_id"), divergence.get("ticket"), tuple(divergence.get("reasons", ())))
            current[key] = divergence
        for key, divergence in current.items():
            if key not in self._known_divergences:
                reasons = ", ".join(divergence.get("reasons", ()))
                self._note(self.account_id, f"tradeguard: {reasons}: {divergence.get('message', '')}")
        self._known_divergences = set(current)


class ReportedElsewhere:
    """An account a bridge outside the simulation reports (a `tradeguard bridge` process reading
    the account's terminal): the simulation sends it nothing, and reads what tradeguard made of it."""

    def __init__(
        self, account_id: int, broker: SimulatedBroker, platform: SimulatedPlatform, note: Note
    ) -> None:
        self.account_id = account_id
        self.broker = broker
        self.last_summary: dict[str, Any] | None = None
        self._platform = platform
        self._note = note
        self._events_seen: set[int] = set()

    @property
    def commands_executed(self) -> int:
        return sum(1 for deal in self.broker.history if deal.reason is CloseReason.CLOSE_COMMAND)

    async def sync(self, taken_at: datetime) -> dict[str, Any]:
        """Raises BridgeError or httpx.HTTPError."""
        self.last_summary = await self._platform.reconciliation_status(self.account_id)
        for event in reversed(self.last_summary.get("recent_events", [])):
            if event["event_type"] == "divergence" and event["id"] not in self._events_seen:
                self._note(self.account_id, f"tradeguard: {event['reason']}: {event['message']}")
            self._events_seen.add(event["id"])
        return self.last_summary

    async def poll(self) -> None:
        """The bridge polls for its commands itself."""
