"""Reconciliation: invariants over generated accounts, then one table per divergence reason."""

from __future__ import annotations

from collections import Counter
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tradeguard.domain.instruments import InstrumentTable
from tradeguard.domain.model import BrokerPosition, ClosedDeal, CloseReason, ExpectedTrade, Side
from tradeguard.domain.reconcile import (
    ClosedOnBroker,
    DealHistory,
    DivergenceReason,
    PnlSource,
    PreviousSnapshot,
    ReconcileSettings,
    Reconciliation,
    ReconciliationStatus,
    RecordedClose,
    reconcile,
)

NOW = datetime(2024, 5, 6, 12, 0, tzinfo=UTC)
INSTRUMENTS = InstrumentTable({})
SETTINGS = ReconcileSettings()
NO_DEAL_HISTORY = DealHistory()
R = DivergenceReason

REFERENCE_PRICE = {"EURUSD": Decimal("1.10000"), "USDJPY": Decimal("150.000"), "XAUUSD": Decimal("2300.00")}


def pip_size(symbol: str) -> Decimal:
    return INSTRUMENTS.get(symbol).pip_size


def seconds_ago(seconds: int) -> datetime:
    return NOW - timedelta(seconds=seconds)


def make_trade(
    trade_id: str = "T1",
    symbol: str = "EURUSD",
    side: Side = Side.BUY,
    volume: str = "0.10",
    entry_price: str = "1.10000",
    *,
    age_seconds: int = 120,
    ticket: str | None = None,
    stop_loss: str | None = None,
    take_profit: str | None = None,
) -> ExpectedTrade:
    return ExpectedTrade(
        trade_id=trade_id,
        symbol=symbol,
        side=side,
        volume=Decimal(volume),
        entry_price=Decimal(entry_price),
        received_at=seconds_ago(age_seconds),
        opened_at=seconds_ago(age_seconds),
        stop_loss=Decimal(stop_loss) if stop_loss else None,
        take_profit=Decimal(take_profit) if take_profit else None,
        ticket=ticket,
    )


def make_position(
    ticket: str = "1001",
    symbol: str = "EURUSD",
    side: Side = Side.BUY,
    volume: str = "0.10",
    open_price: str = "1.10000",
    *,
    age_seconds: int = 120,
    stop_loss: str | None = None,
    take_profit: str | None = None,
    profit: str = "0",
) -> BrokerPosition:
    return BrokerPosition(
        ticket=ticket,
        symbol=symbol,
        side=side,
        volume=Decimal(volume),
        open_price=Decimal(open_price),
        current_price=Decimal(open_price),
        opened_at=seconds_ago(age_seconds),
        profit=Decimal(profit),
        stop_loss=Decimal(stop_loss) if stop_loss else None,
        take_profit=Decimal(take_profit) if take_profit else None,
    )


def mirror(trade: ExpectedTrade, ticket: str) -> BrokerPosition:
    """The position a broker holds when it did exactly what the trade asked."""
    return BrokerPosition(
        ticket=ticket,
        symbol=trade.symbol,
        side=trade.side,
        volume=trade.volume,
        open_price=trade.entry_price,
        current_price=trade.entry_price,
        opened_at=trade.age_anchor,
        profit=Decimal(0),
        stop_loss=trade.stop_loss,
        take_profit=trade.take_profit,
    )


def run(
    expected: list[ExpectedTrade],
    positions: list[BrokerPosition],
    *,
    previous: PreviousSnapshot | None = None,
    settings: ReconcileSettings = SETTINGS,
    deals: list[ClosedDeal] = (),
    history: DealHistory = NO_DEAL_HISTORY,
) -> Reconciliation:
    return reconcile(
        expected,
        positions,
        instruments=INSTRUMENTS,
        now=NOW,
        settings=settings,
        previous=previous,
        closed_deals=deals,
        deal_history=history,
    )


def only_divergence_reasons(result: Reconciliation) -> tuple[DivergenceReason, ...]:
    (divergence,) = result.divergences
    return divergence.reasons


symbols = st.sampled_from(sorted(REFERENCE_PRICE))
sides = st.sampled_from(Side)
# Few distinct values, so that generated accounts often tie on volume, price and open time:
# ties are where a matcher that depends on input order would show it.
volumes = st.sampled_from([Decimal(v) for v in ("0.01", "0.05", "0.10", "0.50", "1.00")])
pip_offsets = st.integers(-4, 4)
open_times = st.sampled_from([seconds_ago(age) for age in (10, 40, 90, 140, 400, 800)])
known_tickets = st.none() | st.integers(0, 5).map(lambda number: f"P{number:03d}")


@st.composite
def trades(draw: st.DrawFn, *, mirrorable: bool = False) -> list[ExpectedTrade]:
    """Trades of one account. Mirrorable trades each open at their own second and name at
    most their own ticket `P<index>`; the others share open times and may name any ticket."""
    built = []
    for index in range(draw(st.integers(0, 8))):
        symbol = draw(symbols)
        pip = pip_size(symbol)
        entry = REFERENCE_PRICE[symbol] + draw(pip_offsets) * pip
        if mirrorable:
            anchor = seconds_ago(40 + 13 * index)
            ticket = f"P{index:03d}" if draw(st.booleans()) else None
        else:
            anchor = draw(open_times)
            ticket = draw(known_tickets)
        built.append(
            ExpectedTrade(
                trade_id=f"T{index:03d}",
                symbol=symbol,
                side=draw(sides),
                volume=draw(volumes),
                entry_price=entry,
                received_at=anchor,
                opened_at=draw(st.sampled_from([anchor, None])),
                stop_loss=draw(st.none() | st.just(entry - 30 * pip)),
                take_profit=draw(st.none() | st.just(entry + 30 * pip)),
                ticket=ticket,
            )
        )
    return built


@st.composite
def mirrored_accounts(draw: st.DrawFn) -> tuple[list[ExpectedTrade], list[BrokerPosition]]:
    expected = draw(trades(mirrorable=True))
    return expected, [mirror(trade, f"P{index:03d}") for index, trade in enumerate(expected)]


@st.composite
def positions(
    draw: st.DrawFn, ticket_prefix: str = "P", min_size: int = 0, max_size: int = 8
) -> list[BrokerPosition]:
    built = []
    for index in range(draw(st.integers(min_size, max_size))):
        symbol = draw(symbols)
        pip = pip_size(symbol)
        built.append(
            BrokerPosition(
                ticket=f"{ticket_prefix}{index:03d}",
                symbol=symbol,
                side=draw(sides),
                volume=draw(volumes),
                open_price=REFERENCE_PRICE[symbol] + draw(pip_offsets) * pip,
                current_price=REFERENCE_PRICE[symbol],
                opened_at=draw(open_times),
                profit=Decimal(draw(st.integers(-500, 500))),
                stop_loss=draw(st.none() | st.just(REFERENCE_PRICE[symbol] - 30 * pip)),
            )
        )
    return built


@st.composite
def accounts(draw: st.DrawFn) -> tuple[list[ExpectedTrade], list[BrokerPosition], PreviousSnapshot]:
    """Trades and positions copied, now and then with another volume, from a few shared
    templates, so that they often agree and often tie; a few unrelated positions; and a
    previous snapshot holding some of today's positions and some that have since closed."""
    templates = draw(trades().filter(bool))[:3]
    expected = []
    for index in range(draw(st.integers(0, 6))):
        template = draw(st.sampled_from(templates))
        expected.append(
            replace(
                template,
                trade_id=f"T{index:03d}",
                ticket=draw(known_tickets),
                volume=draw(st.just(template.volume) | volumes),
            )
        )
    held = []
    for index in range(draw(st.integers(0, 6))):
        copied = mirror(draw(st.sampled_from(templates)), f"P{index:03d}")
        held.append(replace(copied, volume=draw(st.just(copied.volume) | volumes)))
    held += draw(positions(ticket_prefix="Q", max_size=2))

    closed_since = draw(positions(ticket_prefix="C", max_size=2))
    previously_held = draw(st.lists(st.sampled_from(held), unique_by=lambda p: p.ticket)) if held else []
    previous_tickets = [position.ticket for position in previously_held + closed_since]
    trade_ids = [trade.trade_id for trade in expected]
    pairing = (
        draw(st.dictionaries(st.sampled_from(previous_tickets), st.sampled_from(trade_ids)))
        if previous_tickets and trade_ids
        else {}
    )
    return expected, held, PreviousSnapshot(tuple(previously_held + closed_since), pairing)


@given(accounts())
def test_every_position_and_every_trade_lands_in_exactly_one_outcome(account):
    expected, held, previous = account
    result = run(expected, held, previous=previous)

    tickets = [pair.position.ticket for pair in result.matches] + [p.ticket for p in result.unexpected]
    assert sorted(tickets) == sorted(position.ticket for position in held)

    closed_trade_ids = {event.trade_id for event in result.closed}
    trade_ids = (
        [pair.trade.trade_id for pair in result.matches]
        + [pending.trade.trade_id for pending in result.pending]
        + [trade.trade_id for trade in result.missing]
        + [trade.trade_id for trade in expected if trade.trade_id in closed_trade_ids]
    )
    assert sorted(trade_ids) == sorted(trade.trade_id for trade in expected)


@given(accounts(), st.randoms(use_true_random=False))
def test_result_does_not_depend_on_input_order(account, random):
    expected, held, previous = account
    shuffled_expected, shuffled_held, shuffled_previous = list(expected), list(held), list(previous.positions)
    for items in (shuffled_expected, shuffled_held, shuffled_previous):
        random.shuffle(items)

    shuffled = run(
        shuffled_expected,
        shuffled_held,
        previous=PreviousSnapshot(tuple(shuffled_previous), previous.trade_id_by_ticket),
    )
    assert shuffled == run(expected, held, previous=previous)


@given(accounts())
def test_counts_add_up_to_the_outcomes(account):
    expected, held, previous = account
    result = run(expected, held, previous=previous)
    divergent_pairs = [pair for pair in result.matches if not pair.is_clean]

    assert result.open_positions_count == len(held)
    assert result.matched_positions + len(divergent_pairs) + len(result.unexpected) == len(held)
    assert result.divergences_detected == len(divergent_pairs) + len(result.unexpected) + len(result.missing)
    assert (result.status is ReconciliationStatus.WARNING) == (result.divergences_detected > 0)


@given(accounts())
def test_a_pair_always_agrees_on_symbol_and_side(account):
    expected, held, previous = account
    for pair in run(expected, held, previous=previous).matches:
        assert (pair.trade.symbol, pair.trade.side) == (pair.position.symbol, pair.position.side)


@given(mirrored_accounts())
def test_a_broker_that_did_exactly_what_was_asked_gives_only_clean_matches(account):
    expected, held = account
    result = run(expected, held)

    assert len(result.matches) == len(expected)
    assert result.matched_positions == len(expected)
    assert result.divergences == ()
    assert result.status is (ReconciliationStatus.HEALTHY if expected else ReconciliationStatus.IDLE)


@given(mirrored_accounts(), positions(ticket_prefix="X", min_size=1, max_size=1))
def test_one_extra_broker_position_is_exactly_one_unexpected_on_broker(account, extra):
    expected, held = account
    result = run(expected, held + extra)

    assert len(result.matches) == len(expected)
    assert [divergence.reasons for divergence in result.divergences] == [(R.UNEXPECTED_ON_BROKER,)]
    assert result.divergences_detected == 1


@given(mirrored_accounts(), st.data())
def test_volume_and_price_differences_never_leave_a_pair_unmatched(account, data):
    expected, held = account
    drifted = [
        replace(
            position,
            volume=data.draw(volumes),
            open_price=position.open_price + data.draw(pip_offsets) * pip_size(position.symbol),
            stop_loss=None,
        )
        for position in held
    ]
    result = run(expected, drifted)

    assert len(result.matches) == len(expected)
    assert result.missing == () and result.unexpected == ()


def test_expected_trade_absent_after_grace_is_missing_on_broker():
    result = run([make_trade("T1", age_seconds=120)], [])

    assert [trade.trade_id for trade in result.missing] == ["T1"]
    (divergence,) = result.divergences
    assert divergence.reasons == (R.MISSING_ON_BROKER,)
    assert divergence.message == "EURUSD buy 0.10 expected (trade T1) not on broker"
    assert result.status is ReconciliationStatus.WARNING


def test_position_nobody_expected_is_unexpected_on_broker():
    result = run([], [make_position("555", side=Side.SELL, volume="0.50")])

    (divergence,) = result.divergences
    assert divergence.reasons == (R.UNEXPECTED_ON_BROKER,)
    assert (divergence.trade_id, divergence.ticket) == (None, "555")
    assert divergence.message == "EURUSD sell 0.50 on broker (ticket 555) not expected"


@pytest.mark.parametrize(
    ("broker_volume", "reasons"),
    [
        ("0.10", ()),
        ("0.100000001", ()),
        ("0.05", (R.PARTIAL_FILL,)),
        ("0.15", (R.VOLUME_MISMATCH,)),
    ],
)
def test_volume_below_expected_is_a_partial_fill_and_above_is_a_volume_mismatch(broker_volume, reasons):
    result = run([make_trade(volume="0.10")], [make_position(volume=broker_volume)])

    (pair,) = result.matches
    assert pair.reasons == reasons
    assert result.missing == () and result.unexpected == ()


@pytest.mark.parametrize(
    ("symbol", "entry_price", "open_price", "slipped"),
    [
        ("EURUSD", "1.10000", "1.10020", False),
        ("EURUSD", "1.10000", "1.10021", True),
        ("EURUSD", "1.10000", "1.09979", True),
        ("USDJPY", "150.000", "150.020", False),
        ("USDJPY", "150.000", "150.021", True),
        ("USDJPY", "150.000", "150.0003", False),
        ("XAUUSD", "2300.00", "2300.02", False),
        ("XAUUSD", "2300.00", "2300.03", True),
    ],
)
def test_entry_slippage_counts_in_pips_of_the_instrument(symbol, entry_price, open_price, slipped):
    result = run(
        [make_trade(symbol=symbol, entry_price=entry_price)],
        [make_position(symbol=symbol, open_price=open_price)],
    )

    (pair,) = result.matches
    assert pair.reasons == ((R.ENTRY_SLIPPAGE,) if slipped else ())


@pytest.mark.parametrize(
    ("expected_stop", "broker_stop", "mismatch"),
    [
        (None, None, False),
        (None, "1.09000", False),
        ("1.09500", "1.09500", False),
        ("1.09500", "1.09510", False),
        ("1.09500", "1.09511", True),
        ("1.09500", None, True),
    ],
)
def test_stop_loss_and_take_profit_are_checked_only_when_the_trade_sets_them(
    expected_stop, broker_stop, mismatch
):
    stop_loss_result = run([make_trade(stop_loss=expected_stop)], [make_position(stop_loss=broker_stop)])
    take_profit_result = run(
        [make_trade(take_profit=expected_stop)], [make_position(take_profit=broker_stop)]
    )

    assert stop_loss_result.matches[0].reasons == ((R.SL_MISMATCH,) if mismatch else ())
    assert take_profit_result.matches[0].reasons == ((R.TP_MISMATCH,) if mismatch else ())


def test_a_pair_with_several_problems_is_one_divergence_and_stays_matched():
    trade = make_trade("T1", volume="0.10", entry_price="1.10000", stop_loss="1.09500", take_profit="1.11000")
    position = make_position("77", volume="0.04", open_price="1.10300")

    result = run([trade], [position])

    assert result.missing == () and result.unexpected == ()
    assert only_divergence_reasons(result) == (R.PARTIAL_FILL, R.ENTRY_SLIPPAGE, R.SL_MISMATCH, R.TP_MISMATCH)
    assert result.divergences[0].message == (
        "EURUSD buy 0.10 (trade T1) held as ticket 77: partial fill 0.04 of 0.10 lots; "
        "entry 1.10300, 1.10000 expected (30.0 pips); stop loss missing on broker, 1.09500 expected; "
        "take profit missing on broker, 1.11000 expected"
    )
    assert (result.open_positions_count, result.matched_positions, result.divergences_detected) == (1, 0, 1)


@pytest.mark.parametrize(
    ("age_seconds", "outcome"),
    [(0, "pending"), (29, "pending"), (30, "missing"), (600, "missing")],
)
def test_a_trade_not_yet_on_broker_is_pending_within_grace_and_missing_after(age_seconds, outcome):
    result = run([make_trade("T1", age_seconds=age_seconds)], [])

    assert (len(result.pending), len(result.missing)) == ((1, 0) if outcome == "pending" else (0, 1))
    if outcome == "pending":
        assert result.pending[0].grace_ends_at == seconds_ago(age_seconds) + timedelta(seconds=30)
        assert result.divergences == ()
        assert result.status is ReconciliationStatus.HEALTHY


def test_grace_counts_from_arrival_when_the_trade_has_no_open_time():
    trade = replace(make_trade("T1", age_seconds=600), opened_at=None, received_at=seconds_ago(10))

    assert len(run([trade], []).pending) == 1


def test_a_position_gone_since_the_previous_snapshot_is_closed_on_broker_with_its_trade():
    trade = make_trade("T1")
    position = replace(
        make_position("1001", profit="42.50"), swap=Decimal("-1.25"), commission=Decimal("-0.7")
    )
    first = run([trade], [position])

    result = run([trade], [], previous=first.as_previous())

    assert result.closed == (
        ClosedOnBroker(
            ticket="1001",
            symbol="EURUSD",
            side=Side.BUY,
            volume=Decimal("0.10"),
            open_price=Decimal("1.10000"),
            last_price=Decimal("1.10000"),
            last_floating_pnl=Decimal("40.55"),
            opened_at=position.opened_at,
            trade_id="T1",
        ),
    )
    assert result.closed[0].net_profit == Decimal("40.55")
    assert result.closed[0].pnl_source is PnlSource.LAST_FLOATING
    assert result.missing == () and result.divergences == ()
    assert result.status is ReconciliationStatus.IDLE


def test_a_closed_position_nobody_expected_carries_no_trade_id():
    previous = run([], [make_position("9")]).as_previous()

    (event,) = run([], [], previous=previous).closed
    assert (event.ticket, event.trade_id) == ("9", None)


def test_the_ticket_pairs_before_symbol_side_and_volume_do():
    trade = make_trade("T1", volume="0.10", ticket="B")
    exact_but_other_ticket = make_position("A", volume="0.10")
    named_by_ticket = make_position("B", volume="0.05", age_seconds=3600)

    result = run([trade], [exact_but_other_ticket, named_by_ticket])

    assert result.trade_id_by_ticket() == {"B": "T1"}
    assert result.matches[0].reasons == (R.PARTIAL_FILL,)
    assert [position.ticket for position in result.unexpected] == ["A"]


def test_a_ticket_on_another_symbol_is_not_trusted_and_the_trade_falls_back_to_symbol_and_side():
    trade = make_trade("T1", symbol="EURUSD", ticket="9")
    same_ticket_other_symbol = make_position("9", symbol="GBPUSD")
    same_symbol_and_side = make_position("10", symbol="EURUSD")

    result = run([trade], [same_ticket_other_symbol, same_symbol_and_side])

    assert result.trade_id_by_ticket() == {"10": "T1"}
    assert [position.ticket for position in result.unexpected] == ["9"]


def test_the_closest_volume_wins_then_the_closest_entry_price():
    trade = make_trade("T1", volume="0.10", entry_price="1.10000")
    far_volume = make_position("1", volume="0.30", open_price="1.10000")
    close_volume_far_price = make_position("2", volume="0.11", open_price="1.10090")
    close_volume_close_price = make_position("3", volume="0.11", open_price="1.10010")

    result = run([trade], [far_volume, close_volume_far_price, close_volume_close_price])

    assert result.trade_id_by_ticket() == {"3": "T1"}


@pytest.mark.parametrize("order", [1, -1])
def test_two_trades_naming_one_ticket_leave_it_to_the_lowest_trade_id_in_any_order(order):
    claimants = [make_trade("T1", ticket="7"), make_trade("T2", ticket="7")][::order]

    result = run(claimants, [make_position("7")])

    assert result.trade_id_by_ticket() == {"7": "T1"}
    assert [trade.trade_id for trade in result.missing] == ["T2"]


def test_matching_is_one_to_one():
    result = run([make_trade("T1"), make_trade("T2")], [make_position("1")])

    assert len(result.matches) == 1
    assert [trade.trade_id for trade in result.missing] == ["T2"]


def test_a_position_opened_outside_the_window_is_not_paired_by_symbol_and_side():
    trade = make_trade("T1", age_seconds=60)
    position = make_position("1", age_seconds=60 + 301)

    result = run([trade], [position])

    assert result.matches == ()
    assert {divergence.reasons for divergence in result.divergences} == {
        (R.MISSING_ON_BROKER,),
        (R.UNEXPECTED_ON_BROKER,),
    }


def test_symbols_pair_after_normalization():
    result = run([make_trade("T1", symbol="EURUSD")], [make_position("1", symbol=" eurusd")])

    assert result.matched_positions == 1


@pytest.mark.parametrize(
    ("expected", "held", "status"),
    [
        ([], [], ReconciliationStatus.IDLE),
        ([make_trade("T1", age_seconds=5)], [], ReconciliationStatus.HEALTHY),
        ([make_trade("T1")], [make_position("1")], ReconciliationStatus.HEALTHY),
        ([make_trade("T1")], [make_position("1", volume="0.20")], ReconciliationStatus.WARNING),
        ([make_trade("T1")], [], ReconciliationStatus.WARNING),
        ([], [make_position("1")], ReconciliationStatus.WARNING),
    ],
    ids=["nothing", "pending only", "all matched", "divergent pair", "missing", "unexpected"],
)
def test_status_is_warning_on_any_divergence_healthy_when_on_track_and_idle_when_empty(
    expected, held, status
):
    assert run(expected, held).status is status


def test_the_same_problem_on_the_next_snapshot_has_the_same_divergence_key():
    trade = make_trade("T1")
    first = run([trade], [make_position("1", volume="0.05")])
    again = run([trade], [make_position("1", volume="0.05")], previous=first.as_previous())
    filled = run([trade], [make_position("1", volume="0.10")], previous=again.as_previous())

    assert first.divergence_keys() == again.divergence_keys() == {("T1", "1", (R.PARTIAL_FILL,))}
    assert filled.divergence_keys() == frozenset()


@pytest.mark.parametrize(
    ("expected", "held"),
    [
        ([make_trade("T1"), make_trade("T1")], []),
        ([], [make_position("1"), make_position("1")]),
    ],
)
def test_repeated_trade_ids_or_tickets_are_rejected(expected, held):
    with pytest.raises(ValueError, match="repeated"):
        run(expected, held)


def test_negative_tolerances_are_rejected():
    with pytest.raises(ValueError, match="grace_seconds"):
        ReconcileSettings(grace_seconds=-1)


def make_deal(
    ticket: str = "1001",
    profit: str = "0",
    *,
    close_price: str = "1.10000",
    seconds_before_now: int = 2,
    reason: CloseReason = CloseReason.STOP_LOSS,
    swap: str = "0",
    commission: str = "0",
    deal_id: str | None = None,
) -> ClosedDeal:
    return ClosedDeal(
        ticket=ticket,
        close_price=Decimal(close_price),
        profit=Decimal(profit),
        closed_at=seconds_ago(seconds_before_now),
        reason=reason,
        swap=Decimal(swap),
        commission=Decimal(commission),
        deal_id=deal_id,
    )


def test_a_stop_loss_filled_through_a_gap_is_closed_at_the_pnl_it_realized_not_the_last_floating_one():
    gold = make_position("7", symbol="XAUUSD", volume="0.02", open_price="2650.00", profit="-3.38")
    previous = run([], [gold]).as_previous()
    stop = make_deal("7", "-637.14", close_price="2331.43", commission="-1.60")

    [closed] = run([], [], previous=previous, deals=[stop]).closed

    assert closed.pnl_source is PnlSource.REALIZED
    assert closed.net_profit == Decimal("-638.74")
    assert closed.last_floating_pnl == Decimal("-3.38")
    assert (closed.close_price, closed.realized.reason) == (Decimal("2331.43"), CloseReason.STOP_LOSS)
    assert closed.realized.closed_at == stop.closed_at


def test_a_close_without_deals_keeps_the_last_floating_pnl_labelled_as_such():
    previous = run([], [make_position("7", profit="-3.38")]).as_previous()

    [closed] = run([], [], previous=previous).closed

    assert (closed.pnl_source, closed.net_profit, closed.realized) == (
        PnlSource.LAST_FLOATING,
        Decimal("-3.38"),
        None,
    )
    assert closed.close_price == closed.last_price


def test_the_deals_of_one_close_add_up_with_swap_and_commission_and_the_last_one_says_how():
    previous = run([], [make_position("7")]).as_previous()
    first_fill = make_deal("7", "-20", seconds_before_now=3, reason=CloseReason.MANUAL, swap="-1")
    last_fill = make_deal("7", "-30", close_price="1.09500", seconds_before_now=1, commission="-0.5")

    [closed] = run([], [], previous=previous, deals=[last_fill, first_fill]).closed

    assert closed.net_profit == Decimal("-51.5")
    assert (closed.realized.profit, closed.realized.swap, closed.realized.commission) == (
        Decimal("-50"),
        Decimal("-1"),
        Decimal("-0.5"),
    )
    assert (closed.close_price, closed.realized.reason) == (Decimal("1.09500"), CloseReason.STOP_LOSS)


def test_a_deal_for_a_position_still_held_is_a_partial_close_not_a_close():
    held = make_position("7", volume="0.05")
    previous = run([], [make_position("7")]).as_previous()

    result = run([], [held], previous=previous, deals=[make_deal("7", "-12", reason=CloseReason.MANUAL)])

    assert result.closed == ()
    [partial] = result.partial_closes
    assert (partial.position, partial.realized.net_profit) == (held, Decimal("-12"))


def test_a_deal_for_a_ticket_the_account_never_held_is_unmatched_and_refuses_nothing():
    result = run([], [make_position("8")], deals=[make_deal("9", "-40")])

    [unmatched] = result.unmatched_deals
    assert (unmatched.realized.ticket, unmatched.realized.net_profit) == ("9", Decimal("-40"))
    assert result.closed == () and result.partial_closes == () and result.closes_realized == ()
    assert result.open_positions_count == 1


def _recorded(ticket: str, net_profit: str, source: PnlSource) -> RecordedClose:
    return RecordedClose(
        ticket=ticket,
        symbol="XAUUSD",
        volume=Decimal("0.02"),
        trade_id="T1",
        net_profit=Decimal(net_profit),
        pnl_source=source,
    )


def test_a_deal_arriving_after_its_close_replaces_the_last_floating_pnl_recorded():
    history = DealHistory(closes={"7": _recorded("7", "-3.38", PnlSource.LAST_FLOATING)})

    result = run([], [], deals=[make_deal("7", "-638.74")], history=history)

    [late] = result.closes_realized
    assert (late.close.net_profit, late.net_profit) == (Decimal("-3.38"), Decimal("-638.74"))
    assert result.unmatched_deals == ()


def test_a_further_deal_after_a_realized_close_adds_to_what_it_realized():
    history = DealHistory(closes={"7": _recorded("7", "-600", PnlSource.REALIZED)})

    [late] = run([], [], deals=[make_deal("7", "-38.74")], history=history).closes_realized

    assert late.net_profit == Decimal("-638.74")


def test_a_deal_already_recorded_or_listed_twice_counts_once():
    stop = make_deal("7", "-638.74")
    previous = run([], [make_position("7")]).as_previous()

    resent = run([], [], deals=[stop], history=DealHistory(recorded=frozenset({stop})))
    twice = run([], [], previous=previous, deals=[stop, stop])

    assert (resent.closes_realized, resent.unmatched_deals) == ((), ())
    assert twice.closed[0].net_profit == Decimal("-638.74")


def test_two_fills_alike_in_every_field_but_their_deal_id_are_two_deals():
    previous = run([], [make_position("7", volume="1.00")]).as_previous()
    halves = [make_deal("7", "-100", deal_id="D1"), make_deal("7", "-100", deal_id="D2")]

    [closed] = run([], [], previous=previous, deals=halves).closed

    assert closed.net_profit == Decimal("-200")


@st.composite
def deals_of(draw: st.DrawFn, tickets: list[str]) -> list[ClosedDeal]:
    return draw(
        st.lists(
            st.builds(
                make_deal,
                st.sampled_from(tickets),
                st.integers(-900, 900).map(str),
                seconds_before_now=st.integers(0, 30),
                reason=st.sampled_from(CloseReason),
                commission=st.sampled_from(["0", "-0.70"]),
                deal_id=st.none() | st.sampled_from(["D1", "D2", "D3"]),
            ),
            max_size=8,
        )
    )


@given(accounts(), st.data())
def test_every_new_deal_lands_in_exactly_one_outcome_and_its_pnl_is_counted_once(account, data):
    expected, held, previous = account
    tickets = sorted({p.ticket for p in held} | {p.ticket for p in previous.positions} | {"R1", "U1"})
    deals = data.draw(deals_of(tickets))
    recorded = frozenset(data.draw(st.lists(st.sampled_from(deals)))) if deals else frozenset()
    history = DealHistory(recorded, {"R1": _recorded("R1", "-3.38", PnlSource.LAST_FLOATING)})

    result = run(expected, held, previous=previous, deals=deals, history=history)

    new_deals = set(deals) - recorded
    landed = [
        *(closed.realized for closed in result.closed if closed.realized is not None),
        *(partial.realized for partial in result.partial_closes),
        *(late.realized for late in result.closes_realized),
        *(unmatched.realized for unmatched in result.unmatched_deals),
    ]
    assert Counter(deal for realized in landed for deal in realized.deals) == Counter(new_deals)
    assert sum((realized.net_profit for realized in landed), Decimal(0)) == sum(
        (deal.net_profit for deal in new_deals), Decimal(0)
    )
    assert len({realized.ticket for realized in landed}) == len(landed)


@given(accounts(), st.data(), st.randoms(use_true_random=False))
def test_what_deals_realize_does_not_depend_on_the_order_they_are_listed_in(account, data, random):
    expected, held, previous = account
    tickets = sorted({p.ticket for p in held} | {p.ticket for p in previous.positions} | {"U1"})
    deals = data.draw(deals_of(tickets))
    shuffled = list(deals)
    random.shuffle(shuffled)

    assert run(expected, held, previous=previous, deals=shuffled) == run(
        expected, held, previous=previous, deals=deals
    )
