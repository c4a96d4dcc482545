"""The firms' presets judged on worked examples taken from the firms' own rule text.

An equity limit is read as the snapshot's equity less the step's headroom (the money still to lose): the equity at which the
limit is reached. The firms say equity must not drop "below" a limit; reaching it exactly counts as
a breach here (a cent early), so no example asserts what the firms do at exact equality.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from tradeguard.domain.guards.presets import DAILY_LOSS, MAX_LOSS, PRESETS, preset
from tradeguard.domain.guards.rule_evaluation import RulesDecision, evaluate_rules
from tradeguard.domain.guards.rules import InvalidRule, RuleSet
from tradeguard.domain.model import BrokerPosition, Side

D = Decimal
NO_FLOATING = D(0)


def utc(*fields: int) -> datetime:
    return datetime(*fields, tzinfo=UTC)


def position(profit: Decimal, ticket: str = "7") -> BrokerPosition:
    return BrokerPosition(ticket, "EURUSD", Side.BUY, D(1), D("1.1"), D("1.1"), utc(2026, 1, 1), profit)


class Account:
    """Feeds snapshots to `evaluate_rules`, carrying the state and the halt between them."""

    def __init__(self, rule_set: RuleSet) -> None:
        self.rule_set = rule_set
        self.state = None
        self.halted = False

    def snapshot(self, now: datetime, *, balance: Decimal, floating: Decimal = NO_FLOATING) -> RulesDecision:
        positions = (position(floating),) if floating else ()
        decision = evaluate_rules(
            self.rule_set,
            self.state,
            equity=balance + floating,
            balance=balance,
            now=now,
            halted=self.halted,
            positions=positions,
        )
        self.state, self.halted = decision.next_state, decision.halted
        return decision


def result(decision: RulesDecision, rule_id: str):
    return next(r for r in decision.results if r.rule.id == rule_id)


def equity_limit(decision: RulesDecision, rule_id: str) -> Decimal:
    """The equity at which the rule's limit is reached."""
    judged = result(decision, rule_id)
    return judged.value - judged.standings[0].headroom


def breached(decision: RulesDecision, rule_id: str) -> bool:
    return result(decision, rule_id).reached is not None


# FTMO's day begins at midnight in Prague: 23:00 UTC in winter, 22:00 UTC in summer.
FTMO_DAY_1 = utc(2026, 2, 2, 8)
FTMO_MIDNIGHT_1_2 = utc(2026, 2, 2, 23)
FTMO_MIDNIGHT_2_3 = utc(2026, 2, 3, 23)


def test_preset_names_the_known_ones_when_the_name_is_unknown():
    with pytest.raises(InvalidRule) as raised:
        preset("ftmo-3-step", initial_balance=D(100_000))
    assert raised.value.field == "preset"
    assert str(raised.value) == (
        "preset: unknown preset 'ftmo-3-step'; known: ftmo-2-step, ftmo-1-step, the5ers-high-stakes, "
        "fundednext-stellar-2-step, fundednext-stellar-1-step"
    )


def test_every_preset_builds_for_the_given_initial_balance():
    for name in PRESETS:
        zone = "Etc/GMT-2" if name.startswith("fundednext") else None
        rule_set = preset(name, initial_balance=D(50_000), server_time_zone=zone)
        assert rule_set.initial_balance == D(50_000)
        assert {rule.id for rule in rule_set.rules} == {DAILY_LOSS, MAX_LOSS}


def test_preset_refuses_a_float_or_non_positive_initial_balance():
    with pytest.raises(InvalidRule) as raised:
        preset("ftmo-2-step", initial_balance=100_000.0)
    assert raised.value.field == "initial_balance"
    with pytest.raises(InvalidRule) as raised:
        preset("ftmo-2-step", initial_balance=D(0))
    assert raised.value.field == "initial_balance"


def test_a_firm_with_its_own_day_refuses_a_server_time_zone():
    for name in ("ftmo-2-step", "ftmo-1-step", "the5ers-high-stakes"):
        with pytest.raises(InvalidRule) as raised:
            preset(name, initial_balance=D(100_000), server_time_zone="Etc/GMT-2")
        assert raised.value.field == "server_time_zone"


def test_ftmo_2_step_limits_on_the_first_day_are_drawn_from_the_initial_capital():
    # https://academy.ftmo.com/lesson/maximum-daily-loss: "Account balance at midnight CE(S)T of the
    # previous day – 5% of the Initial Simulated Capital". "On the first day, the account balance
    # used for the calculation is the Initial Simulated Capital."
    # https://academy.ftmo.com/?p=47: "with a $100,000 Normal risk account, for example, your equity
    # can never be less than $90,000."
    account = Account(preset("ftmo-2-step", initial_balance=D(100_000)))
    day_1 = account.snapshot(FTMO_DAY_1, balance=D(100_000))
    assert equity_limit(day_1, DAILY_LOSS) == D(95_000)
    assert equity_limit(day_1, MAX_LOSS) == D(90_000)


def test_ftmo_2_step_daily_limit_follows_the_balance_at_midnight_up_and_down():
    # https://academy.ftmo.com/lesson/maximum-daily-loss: "the Maximum Daily Loss limit can increase
    # and decrease depending on the account balance recorded at midnight CE(S)T."
    account = Account(preset("ftmo-2-step", initial_balance=D(100_000)))
    account.snapshot(FTMO_DAY_1, balance=D(100_000))
    day_1_closing = account.snapshot(FTMO_MIDNIGHT_1_2 - timedelta(minutes=5), balance=D(103_000))
    assert equity_limit(day_1_closing, DAILY_LOSS) == D(95_000)
    day_2 = account.snapshot(FTMO_MIDNIGHT_1_2 + timedelta(minutes=5), balance=D(103_000))
    assert equity_limit(day_2, DAILY_LOSS) == D(98_000)
    account.snapshot(FTMO_MIDNIGHT_2_3 - timedelta(minutes=5), balance=D(99_000))
    day_3 = account.snapshot(FTMO_MIDNIGHT_2_3 + timedelta(minutes=5), balance=D(99_000))
    assert equity_limit(day_3, DAILY_LOSS) == D(94_000)
    # The Maximum Loss is static: "must not drop below 90% of the initial account balance".
    assert equity_limit(day_3, MAX_LOSS) == D(90_000)


def test_ftmo_2_step_floating_loss_held_over_midnight_breaches_once_the_limit_resets():
    # https://academy.ftmo.com/lesson/maximum-daily-loss: "If you have a $200,000 FTMO Account, you
    # must never exceed the total equity loss of $10,000 in one day." "your Monday trading session
    # resulted in a closed profit of $4,000. Your Maximum permitted Loss for the rest of the day is
    # now at $14,000. If you would now open a new trade which would go into a $13,000 floating loss,
    # then up until 11:59 PM, you would be still staying within the limit" ... "at 12 AM on Tuesday
    # your permitted loss is by default reset to $10,000. If you would still be carrying the $13,000
    # floating loss, you would exceed"
    monday = utc(2026, 2, 2, 8)  # Monday in Prague
    account = Account(preset("ftmo-2-step", initial_balance=D(200_000)))
    account.snapshot(monday, balance=D(200_000))
    after_profit = account.snapshot(monday + timedelta(hours=4), balance=D(204_000))
    assert result(after_profit, DAILY_LOSS).standings[0].headroom == D(14_000)
    late_monday = account.snapshot(
        FTMO_MIDNIGHT_1_2 - timedelta(minutes=1), balance=D(204_000), floating=D(-13_000)
    )
    assert not breached(late_monday, DAILY_LOSS)
    assert late_monday.to_close == ()
    tuesday = account.snapshot(
        FTMO_MIDNIGHT_1_2 + timedelta(minutes=1), balance=D(204_000), floating=D(-13_000)
    )
    assert breached(tuesday, DAILY_LOSS)
    assert result(tuesday, DAILY_LOSS).standings[0].headroom == D(-3_000)
    assert tuesday.to_close == ("7",)
    assert tuesday.halted


def test_ftmo_2_step_floating_losses_count_against_the_daily_limit():
    # https://academy.ftmo.com/lesson/maximum-daily-loss: "the rule is based on equity, not only on
    # closed results. This means the calculation includes both the results of closed positions and
    # the floating P/L of open positions". Equity just above the limit holds, just below it breaches.
    account = Account(preset("ftmo-2-step", initial_balance=D(100_000)))
    account.snapshot(FTMO_DAY_1, balance=D(100_000))
    above = account.snapshot(FTMO_DAY_1 + timedelta(hours=1), balance=D(97_000), floating=D("-1999.99"))
    assert not breached(above, DAILY_LOSS)
    assert not above.halted
    below = account.snapshot(FTMO_DAY_1 + timedelta(hours=2), balance=D(97_000), floating=D("-2000.01"))
    assert breached(below, DAILY_LOSS)
    assert below.to_close == ("7",)
    assert below.halted


def test_ftmo_2_step_maximum_loss_counts_the_floating_loss():
    # https://academy.ftmo.com/?p=47: "even if your balance would be $92,000, but you had a floating
    # loss of $2,001, the limit would be exceeded."
    account = Account(preset("ftmo-2-step", initial_balance=D(100_000)))
    account.snapshot(FTMO_DAY_1, balance=D(100_000))
    # A new day each time, so that only the Maximum Loss is in play.
    within = account.snapshot(FTMO_MIDNIGHT_1_2 + timedelta(hours=1), balance=D(92_000), floating=D(-1_999))
    assert not breached(within, MAX_LOSS)
    exceeded = account.snapshot(FTMO_MIDNIGHT_2_3 + timedelta(hours=1), balance=D(92_000), floating=D(-2_001))
    assert breached(exceeded, MAX_LOSS)
    assert not breached(exceeded, DAILY_LOSS)
    assert exceeded.to_close == ("7",)


@pytest.mark.parametrize(
    ("midnight", "when"),
    [
        # Europe/Prague moves to summer time on 2026-03-29: the midnight opening that day is still
        # CET (23:00 UTC the evening before); the next one is CEST (22:00 UTC).
        (utc(2026, 3, 28, 23), "the last midnight in winter time"),
        (utc(2026, 3, 29, 22), "the first midnight in summer time"),
    ],
)
def test_ftmo_day_begins_at_midnight_in_prague_across_the_change_to_summer_time(midnight, when):
    account = Account(preset("ftmo-2-step", initial_balance=D(100_000)))
    account.snapshot(midnight - timedelta(hours=12), balance=D(100_000))
    # A closed loss during the day: the day's reference stays at the day's opening balance.
    before = account.snapshot(midnight - timedelta(minutes=30), balance=D(98_000))
    assert result(before, DAILY_LOSS).reference == D(100_000), when
    assert equity_limit(before, DAILY_LOSS) == D(95_000), when
    after = account.snapshot(midnight + timedelta(minutes=30), balance=D(98_000))
    assert result(after, DAILY_LOSS).reference == D(98_000), when
    assert equity_limit(after, DAILY_LOSS) == D(93_000), when


def test_ftmo_1_step_maximum_loss_limit_follows_the_firms_worked_example():
    # https://ftmo.com/au/?p=1671: "Limit for Day 1 = $90,000"; "Balance at midnight CE(S)T between
    # Day 1 and Day 2 = $104,000" ... "Limit for Day 2 = $94,000"; "Balance at midnight CE(S)T
    # between Day 2 and Day 3 = $103,000" ... "Limit for Day 3 = $94,000".
    account = Account(preset("ftmo-1-step", initial_balance=D(100_000)))
    day_1 = account.snapshot(FTMO_DAY_1, balance=D(100_000))
    assert equity_limit(day_1, MAX_LOSS) == D(90_000)
    account.snapshot(FTMO_MIDNIGHT_1_2 - timedelta(minutes=5), balance=D(104_000))
    day_2 = account.snapshot(FTMO_MIDNIGHT_1_2 + timedelta(minutes=5), balance=D(104_000))
    assert equity_limit(day_2, MAX_LOSS) == D(94_000)
    account.snapshot(FTMO_MIDNIGHT_2_3 - timedelta(minutes=5), balance=D(103_000))
    day_3 = account.snapshot(FTMO_MIDNIGHT_2_3 + timedelta(minutes=5), balance=D(103_000))
    assert equity_limit(day_3, MAX_LOSS) == D(94_000)


def test_ftmo_1_step_maximum_loss_limit_moves_only_at_midnight():
    # https://ftmo.com/au/?p=1671: "The Maximum Loss Limit is recalculated every midnight CE(S)T"
    # and "Intraday changes resulting from open positions do not affect the Maximum Loss Limit."
    account = Account(preset("ftmo-1-step", initial_balance=D(100_000)))
    account.snapshot(FTMO_DAY_1, balance=D(100_000))
    richer = account.snapshot(FTMO_DAY_1 + timedelta(hours=3), balance=D(106_000), floating=D(2_000))
    assert equity_limit(richer, MAX_LOSS) == D(90_000)
    # A floating loss below the day's limit breaches, whatever the balance closed at before.
    day_2 = account.snapshot(
        FTMO_MIDNIGHT_1_2 + timedelta(hours=1), balance=D(106_000), floating=D("-10000.01")
    )
    assert equity_limit(day_2, MAX_LOSS) == D(96_000)
    assert breached(day_2, MAX_LOSS)


def test_ftmo_1_step_maximum_loss_limit_keeps_trailing_past_the_initial_capital():
    # https://ftmo.com/au/?p=1671: "The limit can only increase, but never decrease." The text sets
    # no ceiling at the initial capital, so a limit above it keeps rising.
    account = Account(preset("ftmo-1-step", initial_balance=D(100_000)))
    account.snapshot(FTMO_DAY_1, balance=D(100_000))
    day_2 = account.snapshot(FTMO_MIDNIGHT_1_2 + timedelta(minutes=5), balance=D(125_000))
    assert equity_limit(day_2, MAX_LOSS) == D(115_000)
    day_3 = account.snapshot(FTMO_MIDNIGHT_2_3 + timedelta(minutes=5), balance=D(111_000))
    assert equity_limit(day_3, MAX_LOSS) == D(115_000)


def test_ftmo_1_step_daily_loss_is_3_percent_of_the_initial_capital_from_the_midnight_balance():
    # https://promo.ftmo.oanda.com/new-1-step-challenge lists "Max Daily Loss 3%" for every account
    # size; the formula is the 2-Step's (https://academy.ftmo.com/lesson/maximum-daily-loss).
    account = Account(preset("ftmo-1-step", initial_balance=D(100_000)))
    day_1 = account.snapshot(FTMO_DAY_1, balance=D(100_000))
    assert equity_limit(day_1, DAILY_LOSS) == D(97_000)
    day_2 = account.snapshot(FTMO_MIDNIGHT_1_2 + timedelta(minutes=5), balance=D(104_000))
    assert equity_limit(day_2, DAILY_LOSS) == D(101_000)
    below = account.snapshot(
        FTMO_MIDNIGHT_1_2 + timedelta(hours=2), balance=D(104_000), floating=D("-3000.01")
    )
    assert breached(below, DAILY_LOSS)
    assert not breached(below, MAX_LOSS)


# The5ers' day begins at 17:00 in New York: 22:00 UTC in winter, 21:00 UTC in summer.
FIVERS_DAY_1 = utc(2026, 2, 2, 15)
FIVERS_CLOSE_1_2 = utc(2026, 2, 2, 22)


def test_the5ers_daily_loss_is_5_percent_of_the_higher_of_the_days_starting_equity_and_balance():
    # https://help.the5ers.com/what-is-the-maximum-loss-and-the-maximum-daily-loss-in-the-high-stakes-program:
    # "Daily loss is 5% of the starting equity of the day OR the starting balance of the day (the
    # highest between them) at 5PM EST"; "The maximum loss is 10% of the initial balance."
    account = Account(preset("the5ers-high-stakes", initial_balance=D(100_000)))
    day_1 = account.snapshot(FIVERS_DAY_1, balance=D(100_000))
    assert equity_limit(day_1, DAILY_LOSS) == D(95_000)
    assert equity_limit(day_1, MAX_LOSS) == D(90_000)
    # The day opens with a floating profit: equity is the higher, 5 % of 102,000 is 5,100.
    equity_higher = account.snapshot(
        FIVERS_CLOSE_1_2 + timedelta(minutes=5), balance=D(100_000), floating=D(2_000)
    )
    assert result(equity_higher, DAILY_LOSS).reference == D(102_000)
    assert equity_limit(equity_higher, DAILY_LOSS) == D(96_900)
    # The next opens with a floating loss: the balance is the higher.
    balance_higher = account.snapshot(
        FIVERS_CLOSE_1_2 + timedelta(days=1, minutes=5), balance=D(100_000), floating=D(-2_000)
    )
    assert result(balance_higher, DAILY_LOSS).reference == D(100_000)
    assert equity_limit(balance_higher, DAILY_LOSS) == D(95_000)
    assert not breached(balance_higher, DAILY_LOSS)
    above = account.snapshot(
        FIVERS_CLOSE_1_2 + timedelta(days=1, hours=2), balance=D(100_000), floating=D("-4999.99")
    )
    assert not breached(above, DAILY_LOSS)
    below = account.snapshot(
        FIVERS_CLOSE_1_2 + timedelta(days=1, hours=3), balance=D(100_000), floating=D("-5000.01")
    )
    assert breached(below, DAILY_LOSS)
    assert below.to_close == ("7",)


def test_the5ers_maximum_loss_is_static_at_10_percent_of_the_initial_balance():
    account = Account(preset("the5ers-high-stakes", initial_balance=D(100_000)))
    account.snapshot(FIVERS_DAY_1, balance=D(100_000))
    richer = account.snapshot(FIVERS_CLOSE_1_2 + timedelta(minutes=5), balance=D(120_000))
    assert equity_limit(richer, MAX_LOSS) == D(90_000)
    account.snapshot(FIVERS_CLOSE_1_2 + timedelta(days=1, minutes=5), balance=D(93_000))
    below = account.snapshot(
        FIVERS_CLOSE_1_2 + timedelta(days=2, minutes=5), balance=D(93_000), floating=D("-3000.01")
    )
    assert breached(below, MAX_LOSS)
    assert not breached(below, DAILY_LOSS)


@pytest.mark.parametrize(
    ("close", "when"),
    [
        # New York moves to summer time on 2026-03-08 at 02:00: 17:00 on the 7th is EST (22:00 UTC),
        # 17:00 on the 8th is EDT (21:00 UTC).
        (utc(2026, 3, 7, 22), "the last 5 PM in winter time"),
        (utc(2026, 3, 8, 21), "the first 5 PM in summer time"),
    ],
)
def test_the5ers_day_begins_at_5_pm_in_new_york_across_the_change_to_summer_time(close, when):
    account = Account(preset("the5ers-high-stakes", initial_balance=D(100_000)))
    account.snapshot(close - timedelta(hours=12), balance=D(100_000))
    before = account.snapshot(close - timedelta(minutes=30), balance=D(98_000))
    assert result(before, DAILY_LOSS).reference == D(100_000), when
    after = account.snapshot(close + timedelta(minutes=30), balance=D(98_000))
    assert result(after, DAILY_LOSS).reference == D(98_000), when
    assert equity_limit(after, DAILY_LOSS) == D(93_100), when


def test_fundednext_needs_the_brokers_server_time_zone():
    for name in ("fundednext-stellar-2-step", "fundednext-stellar-1-step"):
        with pytest.raises(InvalidRule) as missing:
            preset(name, initial_balance=D(100_000))
        assert missing.value.field == "server_time_zone"
        with pytest.raises(InvalidRule) as unknown:
            preset(name, initial_balance=D(100_000), server_time_zone="Mars/Olympus")
        assert unknown.value.field == "server_time_zone"
        assert "Mars/Olympus" in str(unknown.value)


FUNDEDNEXT_ZONE = "Etc/GMT-3"  # a broker's server on UTC+3: its midnight is 21:00 UTC
FUNDEDNEXT_DAY_1 = utc(2026, 6, 1, 6)
FUNDEDNEXT_MIDNIGHT_1_2 = utc(2026, 6, 1, 21)


def fundednext(name: str = "fundednext-stellar-2-step") -> Account:
    return Account(preset(name, initial_balance=D(100_000), server_time_zone=FUNDEDNEXT_ZONE))


def test_fundednext_stellar_2_step_daily_loss_counts_the_days_profit_as_room():
    # https://help.fundednext.com/en/articles/9941519-daily-drawdown-limit-vs-overall-drawdown-limit:
    # "For a $100,000 account, the daily limit is $5,000." "If you start with $100,000 and make a
    # $2,000 profit by noon, your new loss limit for that day becomes $7,000 ($5,000 + $2,000)."
    # "in the same account, you cannot drop below $90,000 (10%)."
    account = fundednext()
    day_1 = account.snapshot(FUNDEDNEXT_DAY_1, balance=D(100_000))
    assert equity_limit(day_1, DAILY_LOSS) == D(95_000)
    assert equity_limit(day_1, MAX_LOSS) == D(90_000)
    noon = account.snapshot(FUNDEDNEXT_DAY_1 + timedelta(hours=3), balance=D(102_000))
    assert result(noon, DAILY_LOSS).standings[0].headroom == D(7_000)


def test_fundednext_stellar_2_step_closed_and_floating_losses_share_the_daily_limit():
    # https://help.fundednext.com/en/articles/8019811-how-can-i-calculate-the-daily-drawdown:
    # "Suppose you have lost a total of $3000 in your closed trades. In such a case, you cannot lose
    # more than $2000, including floating losses."
    account = fundednext()
    account.snapshot(FUNDEDNEXT_DAY_1, balance=D(100_000))
    closed_loss = account.snapshot(FUNDEDNEXT_DAY_1 + timedelta(hours=1), balance=D(97_000))
    assert result(closed_loss, DAILY_LOSS).standings[0].headroom == D(2_000)
    above = account.snapshot(FUNDEDNEXT_DAY_1 + timedelta(hours=2), balance=D(97_000), floating=D("-1999.99"))
    assert not breached(above, DAILY_LOSS)
    below = account.snapshot(FUNDEDNEXT_DAY_1 + timedelta(hours=3), balance=D(97_000), floating=D("-2000.01"))
    assert breached(below, DAILY_LOSS)
    assert below.to_close == ("7",)


def test_fundednext_day_begins_at_the_servers_midnight_from_that_moments_balance():
    # https://help.fundednext.com/en/articles/8394309-when-does-the-daily-loss-limit-reset-with-fundednext-cfd:
    # "The Daily Loss Limit resets at midnight, based on the server's time."
    # https://help.fundednext.com/en/articles/8019811-how-can-i-calculate-the-daily-drawdown:
    # "Daily loss limit = Your Last day's Balance - Today's Balance / Equity"
    account = fundednext()
    account.snapshot(FUNDEDNEXT_DAY_1, balance=D(100_000))
    before = account.snapshot(
        FUNDEDNEXT_MIDNIGHT_1_2 - timedelta(minutes=30), balance=D(103_000), floating=D(1_000)
    )
    assert equity_limit(before, DAILY_LOSS) == D(95_000)
    # The balance at midnight, not the equity, starts the day; the limit stays 5 % of the initial.
    after = account.snapshot(
        FUNDEDNEXT_MIDNIGHT_1_2 + timedelta(minutes=30), balance=D(103_000), floating=D(1_000)
    )
    assert result(after, DAILY_LOSS).reference == D(103_000)
    assert equity_limit(after, DAILY_LOSS) == D(98_000)


def test_fundednext_server_zone_with_summer_time_moves_the_reset_with_it():
    # A server on GMT+2 in winter and GMT+3 in summer (8394309): Europe/Athens changes on
    # 2026-03-29; its midnight is 22:00 UTC before the change and 21:00 UTC after.
    for midnight in (utc(2026, 3, 28, 22), utc(2026, 3, 29, 21)):
        account = Account(
            preset("fundednext-stellar-2-step", initial_balance=D(100_000), server_time_zone="Europe/Athens")
        )
        account.snapshot(midnight - timedelta(hours=12), balance=D(100_000))
        before = account.snapshot(midnight - timedelta(minutes=30), balance=D(98_000))
        assert result(before, DAILY_LOSS).reference == D(100_000)
        after = account.snapshot(midnight + timedelta(minutes=30), balance=D(98_000))
        assert result(after, DAILY_LOSS).reference == D(98_000)


def test_fundednext_stellar_1_step_limits_are_3_and_6_percent_of_the_initial_balance():
    # https://help.fundednext.com/en/articles/9941519-daily-drawdown-limit-vs-overall-drawdown-limit:
    # "For Stellar 1-Step Accounts: The limit is 3%, meaning a maximum daily loss of $3,000 for a
    # $100,000 account." "The Maximum Loss Limit is 6%, meaning your balance cannot drop below $94,000."
    account = fundednext("fundednext-stellar-1-step")
    day_1 = account.snapshot(FUNDEDNEXT_DAY_1, balance=D(100_000))
    assert equity_limit(day_1, DAILY_LOSS) == D(97_000)
    assert equity_limit(day_1, MAX_LOSS) == D(94_000)
    account.snapshot(FUNDEDNEXT_MIDNIGHT_1_2 + timedelta(minutes=5), balance=D(96_000))
    below = account.snapshot(
        FUNDEDNEXT_MIDNIGHT_1_2 + timedelta(hours=1), balance=D(96_000), floating=D("-2000.01")
    )
    assert breached(below, MAX_LOSS)
    assert not breached(below, DAILY_LOSS)
