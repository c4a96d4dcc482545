"""The API's own bodies: sign-in, accounts, devices, health, and the bridges' answers; the read models are `queries.read_models`."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, create_model, model_validator

from tradeguard.accounts.guard_config import GuardConfig
from tradeguard.accounts.risk_rules import RuleIn, RuleSetIn
from tradeguard.actions.bulk import Selection
from tradeguard.bodies import RequestBody, invalid_fields
from tradeguard.ingest.validation import Symbol
from tradeguard.queries.read_models import Number, SyncStatus
from tradeguard.values import ExternalId, Text, text


class LoginForm(BaseModel):
    """The OAuth2 password form of `POST /auth/token`; its other fields (`grant_type`, `scope`) are not used."""

    username: Text
    password: str


class Token(BaseModel):
    access_token: str
    token_type: Literal["bearer"] = "bearer"
    expires_in: int


class Me(BaseModel):
    id: int
    email: str
    role: str
    created_at: datetime


class AccountCreate(RequestBody):
    model_config = ConfigDict(str_strip_whitespace=True)

    name: text(120, min_length=1)
    broker: text(120) | None = None
    login: ExternalId | None = None
    currency: str = Field(default="USD", pattern=r"^[A-Z]{3,6}$")


class AccountOut(BaseModel):
    id: int
    owner_id: int
    name: str
    broker: str | None
    login: str | None
    currency: str
    created_at: datetime


class AccountList(BaseModel):
    accounts: list[AccountOut]
    next_cursor: int | None


class GuardConfigOut(GuardConfig):
    model_config = ConfigDict(extra="ignore")

    account_id: int


class StepStandingOut(BaseModel):
    tier: str
    label: str
    limit: Number | None = Field(description="the acting limit on the loss, in money; null for a floor")
    headroom: Number = Field(description="what may still be lost before the step, in money; negative past it")
    headroom_pct: Number = Field(description="the headroom in percent of the rule's basis")
    breached: bool


class RuleStandingOut(BaseModel):
    rule: str
    shadow: bool
    value: Number = Field(
        description="the metric's value: equity, balance, or balance plus the scope's floating P&L"
    )
    reference: Number
    loss: Number = Field(description="reference minus value; negative is a gain")
    loss_pct: Number
    step: int | None = Field(description="the index of the step the rule stands at, null below all")
    steps: list[StepStandingOut]


class GuardRulesOut(BaseModel):
    account_id: int
    source: Literal["settings", "rules"] = Field(
        description="settings: the rule set the account's drawdown settings describe; rules: one set for it"
    )
    rule_set: RuleSetIn = Field(description="the set as given: a preset, its own rules, the set's settings")
    rules: list[RuleIn] = Field(description="every rule the account is judged by, a preset's spelled out")
    standings: list[RuleStandingOut] = Field(
        description="each rule judged on the last snapshot; empty before one"
    )


GuardConfigUpdate = create_model(
    "GuardConfigUpdate",
    __base__=RequestBody,
    __doc__="A partial update: fields left out (or null, where null is not a value) keep their value; "
    "the merged whole is validated.",
    **{
        # The default is never used: only the fields sent are merged (`exclude_unset`).
        name: (Annotated[field.annotation, *field.metadata, Field()], None)
        for name, field in GuardConfig.model_fields.items()
    },
)


class RearmRequest(RequestBody):
    reset_peak: bool = Field(
        default=False,
        description="Start a new high-water mark at the current equity instead of keeping the old peak.",
    )


class ComponentCheck(BaseModel):
    status: Literal["ok", "down"]
    backend: str
    latency_ms: float | None = None
    detail: str | None = None


class Health(BaseModel):
    status: Literal["healthy", "degraded", "unhealthy"]
    timestamp: datetime
    service: Literal["trading-api"] = "trading-api"
    version: str
    checks: dict[str, ComponentCheck]


class ErrorBody(BaseModel):
    detail: str


class NoFields(RequestBody):
    """The body of an endpoint that takes no fields: none at all, or `{}`."""


class DeviceCreated(BaseModel):
    device_id: str
    account_id: int
    secret: str = Field(
        description="Shown this once; store it in the bridge. tradeguard cannot show it again."
    )
    created_at: datetime


class DeviceOut(BaseModel):
    device_id: str
    account_id: int
    created_at: datetime
    revoked_at: datetime | None


class DivergenceOut(BaseModel):
    reasons: list[str]
    trade_id: str | None
    ticket: str | None
    symbol: str
    message: str


class CommandOut(BaseModel):
    command_id: str
    account_id: int
    ticket: str
    symbol: str
    volume: Number
    cause: str
    state: str
    attempts: int
    created_at: datetime
    outcome_unknown: bool


class CommandList(BaseModel):
    commands: list[CommandOut]


class SyncSummary(BaseModel):
    applied: bool = Field(description="false when the snapshot was not newer than the last one applied")
    account_id: int
    clock_offset_seconds: float = Field(
        description="taken_at minus the server's clock when the snapshot arrived: about zero, or a few "
        "milliseconds below it, when the bridge's clock is right"
    )
    status: SyncStatus
    total_syncs: int
    open_positions_count: int
    matched_positions: int
    divergences_detected: int
    pending_trades: int
    divergences: list[DivergenceOut]
    closed_on_broker: list[str] = Field(
        description="tickets that left the broker since the previous snapshot"
    )
    commands: list[CommandOut]


SignalId = text(64, min_length=1)
Broker = text(120, min_length=1)


class AccountSelector(RequestBody):
    """Exactly one of `signal` (the accounts holding an open expected trade of it) and `broker`
    (the accounts registered with that broker name, exactly as given)."""

    signal: SignalId | None = None
    broker: Broker | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> AccountSelector:
        if (self.signal is None) == (self.broker is None):
            problem = "give exactly one of signal and broker"
            raise invalid_fields(
                type(self), [(("signal",), problem, self.signal), (("broker",), problem, self.broker)]
            )
        return self

    def selection(self) -> Selection:
        return Selection(signal=self.signal, broker=self.broker)


class BulkHalt(AccountSelector):
    reason: text(500, min_length=1) | None = Field(
        default=None, description="the halt's reason; by default `halted by user {id}`"
    )


class BulkCloseSymbol(RequestBody):
    symbol: Symbol
    signal: SignalId | None = Field(
        default=None, description="only the positions matched to an expected trade of this signal"
    )


class TradingChangeOut(BaseModel):
    account_id: int
    outcome: Literal["halted", "already_halted", "rearmed", "not_halted"]


class BulkTradingOut(BaseModel):
    bulk_action_id: str
    accounts: list[TradingChangeOut]


class SymbolCloseOut(BaseModel):
    account_id: int
    commands: list[CommandOut] = Field(description="the close commands issued")
    not_issued: list[str] = Field(
        description="tickets given no new command: one of cause `operator` is still live, or it had its attempts"
    )


class BulkCloseOut(BaseModel):
    bulk_action_id: str
    accounts: list[SymbolCloseOut]
