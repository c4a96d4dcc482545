"""Exposure maths: net and gross volume, P&L per currency, what a 1 % move costs."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from tradeguard.domain.exposure import OpenLot, exposure_by_signal, exposure_by_symbol
from tradeguard.domain.instruments import Instrument, InstrumentTable, quote_currency
from tradeguard.domain.model import Side

TABLE = InstrumentTable({})


def lot(symbol="EURUSD", side=Side.BUY, volume="1", price="1.10000", pnl="0", **fields) -> OpenLot:
    return OpenLot(
        **{
            "account_id": 1,
            "account_currency": "USD",
            "symbol": symbol,
            "side": side,
            "volume": Decimal(volume),
            "current_price": Decimal(price),
            "floating_pnl": Decimal(pnl),
            **fields,
        }
    )


def only(lots, table=TABLE):
    (entry,) = exposure_by_symbol(lots, table)
    return entry


def test_net_is_bought_minus_sold_and_gross_their_sum():
    entry = only([lot(volume="1.5"), lot(side=Side.SELL, volume="0.5", account_id=2)])

    assert (entry.net_volume, entry.gross_volume) == (Decimal("1.0"), Decimal("2.0"))
    assert (entry.positions, entry.accounts) == (2, 2)


def test_a_one_percent_move_against_a_long_eurusd_lot_costs_one_percent_of_its_value_in_dollars():
    entry = only([lot(volume="2", price="1.10000")])

    # 2 lots × 100,000 EUR × 1.1 USD/EUR × 1 %.
    assert entry.one_percent_move_cost == Decimal("2200")
    assert (entry.cost_currency, entry.cost_currency_differs) == ("USD", False)


def test_the_cost_is_in_the_quote_currency_and_says_so_for_accounts_in_another():
    entry = only([lot(symbol="USDJPY", price="150.00", account_currency="EUR")])

    assert entry.one_percent_move_cost == Decimal("150000")
    assert (entry.cost_currency, entry.cost_currency_differs) == ("JPY", True)


def test_an_instrument_without_a_known_quote_currency_names_none():
    entry = only([lot(symbol="US30", price="40000")])

    assert entry.cost_currency is None
    assert entry.cost_currency_differs is True


def test_the_instrument_tables_contract_size_prices_the_move():
    table = InstrumentTable({"XAUUSD": Instrument("XAUUSD", Decimal("0.01"), Decimal("10"))})

    entry = only([lot(symbol="XAUUSD", price="2000")], table)

    assert entry.one_percent_move_cost == Decimal("200")


def test_a_flat_net_position_costs_nothing():
    assert only([lot(), lot(side=Side.SELL)]).one_percent_move_cost == 0


def test_broker_suffixes_are_one_instrument():
    entry = only([lot(symbol="EURUSD.M"), lot(symbol="EURUSD")])

    assert (entry.symbol, entry.broker_symbols) == ("EURUSD", ("EURUSD", "EURUSD.M"))


def test_pnl_is_summed_per_account_currency():
    entry = only(
        [
            lot(pnl="10", account_currency="USD"),
            lot(pnl="-4", account_currency="EUR", account_id=2),
            lot(pnl="5", account_currency="USD", account_id=3),
        ]
    )

    assert entry.floating_pnl == {"EUR": Decimal("-4"), "USD": Decimal("15")}


def test_per_signal_leaves_out_positions_of_no_signal():
    lots = [lot(signal_id="S1"), lot(signal_id="S1", symbol="GBPUSD"), lot(signal_id=None, volume="5")]

    (signal,) = exposure_by_signal(lots, TABLE)

    assert signal.signal_id == "S1"
    assert [(entry.symbol, entry.gross_volume) for entry in signal.symbols] == [
        ("EURUSD", Decimal("1")),
        ("GBPUSD", Decimal("1")),
    ]


def test_quote_currencies():
    assert [quote_currency(s) for s in ["EURUSD.m", "XAUEUR", "BTCUSD", "US30", "EURXYZ"]] == [
        "USD",
        "EUR",
        "USD",
        None,
        None,
    ]


volumes = st.decimals(min_value=Decimal("0.01"), max_value=Decimal("100"), places=2)
prices = st.decimals(min_value=Decimal("0.5"), max_value=Decimal("2"), places=5)
lots_strategy = st.lists(
    st.builds(
        lot,
        symbol=st.sampled_from(["EURUSD", "EURUSD.M", "GBPUSD", "USDJPY"]),
        side=st.sampled_from(Side),
        volume=volumes.map(str),
        price=prices.map(str),
        pnl=st.decimals(min_value=-1000, max_value=1000, places=2).map(str),
        account_id=st.integers(1, 5),
        account_currency=st.sampled_from(["USD", "EUR", "JPY"]),
    ),
    min_size=1,
    max_size=12,
)


def _flipped(one: OpenLot) -> OpenLot:
    return replace(one, side=Side.SELL if one.side is Side.BUY else Side.BUY)


@given(lots_strategy)
def test_net_never_exceeds_gross(lots):
    for entry in exposure_by_symbol(lots, TABLE):
        assert abs(entry.net_volume) <= entry.gross_volume


@given(lots_strategy)
def test_flipping_every_side_flips_the_net_and_keeps_gross_and_cost(lots):
    straight = exposure_by_symbol(lots, TABLE)
    flipped = exposure_by_symbol([_flipped(one) for one in lots], TABLE)

    for before, after in zip(straight, flipped, strict=True):
        assert after.net_volume == -before.net_volume
        assert after.gross_volume == before.gross_volume
        assert after.one_percent_move_cost == before.one_percent_move_cost


@given(lots_strategy, st.integers(min_value=2, max_value=50))
def test_a_one_percent_moves_cost_scales_linearly_with_volume(lots, factor):
    scaled = [replace(one, volume=one.volume * factor) for one in lots]

    for before, after in zip(exposure_by_symbol(lots, TABLE), exposure_by_symbol(scaled, TABLE), strict=True):
        assert after.one_percent_move_cost == before.one_percent_move_cost * factor
        assert after.net_volume == before.net_volume * factor


@given(lots_strategy)
def test_grouping_by_currency_never_mixes_currencies(lots):
    for entry in exposure_by_symbol(lots, TABLE):
        held = [one for one in lots if entry.symbol == one.symbol.split(".")[0]]
        for currency, total in entry.floating_pnl.items():
            assert total == sum(one.floating_pnl for one in held if one.account_currency == currency)
        assert set(entry.floating_pnl) == {one.account_currency for one in held}


@given(lots_strategy, prices)
def test_at_one_price_the_cost_is_one_percent_of_the_net_positions_value(lots, price):
    at_one_price = [replace(one, current_price=price) for one in lots]

    for entry in exposure_by_symbol(at_one_price, TABLE):
        assert entry.one_percent_move_cost == abs(entry.net_volume) * 100_000 * price / 100
