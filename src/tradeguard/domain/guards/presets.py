"""The prop firms' published drawdown rules as rule sets, one per programme.

Each preset follows the firm's own rule text, cited beside it: what its limits measure (equity,
floating results included), from what (the initial balance, the balance or the higher of balance
and equity at the day's start, the highest end-of-day balance), and where its day begins. Every
limit the firms publish ends the account when reached, so every step closes everything.

A firm that draws its day at the broker's server midnight (FundedNext) needs that server's time
zone; the others draw theirs in a zone of their own and take none.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import time
from decimal import Decimal
from functools import partial
from types import MappingProxyType

from tradeguard.domain.guards.rules import (
    Basis,
    InvalidRule,
    Metric,
    Reference,
    Rule,
    RuleSet,
    Step,
    Threshold,
    Tier,
)
from tradeguard.domain.periods import InvalidPeriod, Period, PeriodKind

DAILY_LOSS = "daily_loss"
MAX_LOSS = "max_loss"

_PRAGUE = "Europe/Prague"
_NEW_YORK = "America/New_York"


def _day(time_zone: str, reset: time = time(0, 0)) -> Period:
    return Period(PeriodKind.DAY, time_zone, reset)


def _limit(percent: Decimal, of: Basis) -> tuple[Step, ...]:
    return (Step(Tier.CLOSE_ALL, Threshold(percent=percent, percent_of=of), label="limit"),)


def _daily_loss(reference: Reference, period: Period, percent: Decimal, of: Basis) -> Rule:
    return Rule(
        id=DAILY_LOSS,
        label="daily loss",
        metric=Metric.EQUITY,
        reference=reference,
        period=period,
        steps=_limit(percent, of),
    )


def _static_max_loss(percent: Decimal) -> Rule:
    return Rule(
        id=MAX_LOSS,
        label="maximum loss",
        metric=Metric.EQUITY,
        reference=Reference.INITIAL_BALANCE,
        steps=_limit(percent, Basis.INITIAL_BALANCE),
    )


def _refuse_server_zone(server_time_zone: str | None, firm: str, time_zone: str) -> None:
    if server_time_zone is not None:
        raise InvalidRule(
            None, "server_time_zone", f"{firm} draws its day in {time_zone}, whatever the server's zone"
        )


def _ftmo(
    initial_balance: Decimal, server_time_zone: str | None, *, daily_pct: Decimal, trailing: bool
) -> RuleSet:
    """FTMO, https://academy.ftmo.com/lesson/maximum-daily-loss: "Account balance at midnight
    CE(S)T of the previous day – 5% of the Initial Simulated Capital" (2-Step; the 1-Step's is 3 %,
    https://promo.ftmo.oanda.com/new-1-step-challenge), "On the first day, the account balance used
    for the calculation is the Initial Simulated Capital".

    2-Step, https://academy.ftmo.com/?p=47: "the equity on your trading account must not drop below
    90% of the initial account balance at any given time".
    1-Step, https://ftmo.com/au/?p=1671: the Maximum Loss Limit is "recalculated every midnight
    CE(S)T" from "the highest account balance achieved at the end of any preceding trading day or,
    if higher, the Initial Simulated Capital" less 10 % of the initial capital; "The limit can only
    increase, but never decrease."
    """
    _refuse_server_zone(server_time_zone, "FTMO", _PRAGUE)
    midnight = _day(_PRAGUE)
    daily = _daily_loss(Reference.PERIOD_START_BALANCE, midnight, daily_pct, Basis.INITIAL_BALANCE)
    if not trailing:
        return RuleSet(rules=(daily, _static_max_loss(Decimal(10))), initial_balance=initial_balance)
    trailing_max = Rule(
        id=MAX_LOSS,
        label="maximum loss",
        metric=Metric.EQUITY,
        reference=Reference.TRAILING_HIGH_BALANCE,
        period=midnight,
        steps=_limit(Decimal(10), Basis.INITIAL_BALANCE),
        # Not locked: FTMO's text sets no ceiling on the limit ("The limit can only increase"), so
        # it keeps trailing the best end-of-day balance past the initial capital.
        lock_at_initial=False,
    )
    return RuleSet(rules=(daily, trailing_max), initial_balance=initial_balance)


def _the5ers_high_stakes(initial_balance: Decimal, server_time_zone: str | None) -> RuleSet:
    """The5ers High Stakes,
    https://help.the5ers.com/what-is-the-maximum-loss-and-the-maximum-daily-loss-in-the-high-stakes-program:
    "The maximum loss is 10% of the initial balance. Daily loss is 5% of the starting equity of the
    day OR the starting balance of the day (the highest between them) at 5PM EST or 00:00 UTC+3
    (Server time)." Its day begins at 17:00 in New York, summer time included."""
    _refuse_server_zone(server_time_zone, "The5ers", _NEW_YORK)
    daily = _daily_loss(
        Reference.PERIOD_START_HIGHER, _day(_NEW_YORK, time(17, 0)), Decimal(5), Basis.REFERENCE
    )
    return RuleSet(rules=(daily, _static_max_loss(Decimal(10))), initial_balance=initial_balance)


def _fundednext_stellar(
    initial_balance: Decimal, server_time_zone: str | None, *, daily_pct: Decimal, max_pct: Decimal
) -> RuleSet:
    """FundedNext Stellar,
    https://help.fundednext.com/en/articles/9941519-daily-drawdown-limit-vs-overall-drawdown-limit:
    the Daily Loss Limit is "based on a percentage of your initial account balance" (5 % on the
    2-Step, 3 % on the 1-Step) and "resets every day at midnight, 00:00 server time"; the Maximum
    Loss Limit "is 10% of your initial balance" (6 % on the 1-Step).
    https://help.fundednext.com/en/articles/8019811-how-can-i-calculate-the-daily-drawdown: "Daily
    loss limit = Your Last day's Balance - Today's Balance / Equity": the day's loss runs from the
    balance at the server's midnight, not from the equity.
    https://help.fundednext.com/en/articles/8394309-when-does-the-daily-loss-limit-reset-with-fundednext-cfd:
    the server is on GMT+3 in summer and GMT+2 otherwise: the broker's zone, given by the caller."""
    if server_time_zone is None:
        raise InvalidRule(
            None, "server_time_zone", "FundedNext resets at the broker's server midnight: give its zone"
        )
    try:
        midnight = _day(server_time_zone)
    except InvalidPeriod as error:
        raise InvalidRule(None, "server_time_zone", str(error)) from None
    daily = _daily_loss(Reference.PERIOD_START_BALANCE, midnight, daily_pct, Basis.INITIAL_BALANCE)
    return RuleSet(rules=(daily, _static_max_loss(max_pct)), initial_balance=initial_balance)


PresetBuilder = Callable[[Decimal, str | None], RuleSet]

PRESETS: Mapping[str, PresetBuilder] = MappingProxyType(
    {
        "ftmo-2-step": partial(_ftmo, daily_pct=Decimal(5), trailing=False),
        "ftmo-1-step": partial(_ftmo, daily_pct=Decimal(3), trailing=True),
        "the5ers-high-stakes": _the5ers_high_stakes,
        "fundednext-stellar-2-step": partial(_fundednext_stellar, daily_pct=Decimal(5), max_pct=Decimal(10)),
        "fundednext-stellar-1-step": partial(_fundednext_stellar, daily_pct=Decimal(3), max_pct=Decimal(6)),
    }
)


def preset(name: str, *, initial_balance: Decimal, server_time_zone: str | None = None) -> RuleSet:
    """The rule set of the firm's programme `name` for an account starting with `initial_balance`."""
    build = PRESETS.get(name)
    if build is None:
        raise InvalidRule(None, "preset", f"unknown preset {name!r}; known: {', '.join(PRESETS)}")
    return build(initial_balance, server_time_zone)
