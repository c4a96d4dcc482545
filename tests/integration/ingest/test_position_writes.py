"""A snapshot that only moves prices writes less than one that changes positions, and the open
positions read shows exactly what it would show had each snapshot been the account's first."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from tests.support.bridging import Follower, position, register_follower, snapshot
from tests.support.builders import sign_up

OPEN_POSITIONS = "/api/v1/positions/open"


async def _open_positions(follower: Follower) -> dict:
    answer = await follower.owner.get(OPEN_POSITIONS, account_id=follower.account_id)
    assert answer.status_code == 200, answer.text
    read = answer.json()
    # What names the account and its rows differs between accounts; the rest must not.
    assert read.pop("account_id") == follower.account_id
    for row in read["positions"]:
        assert row.pop("account_id") == follower.account_id
        row.pop("position_id")
    return read


async def test_each_snapshot_reads_back_as_if_it_were_the_first(api):
    owner = await sign_up(api)
    steady = await register_follower(api, owner)
    await steady.expect("T1", stop_loss="1.08000")
    opened_at = (datetime.now(UTC) - timedelta(minutes=2)).isoformat()
    start = datetime.now(UTC) - timedelta(seconds=1)
    steps = [
        [
            position(1, stop_loss="1.08000", opened_at=opened_at),
            position(2, symbol="USDJPY", opened_at=opened_at),
        ],
        # Prices and profits only.
        [
            position(1, stop_loss="1.08000", current_price="1.08700", profit="20.00", opened_at=opened_at),
            position(
                2, symbol="USDJPY", current_price="1.08400", profit="-3.10", swap="-0.20", opened_at=opened_at
            ),
        ],
        # A stop loss moved, so the trade diverges: more than the market.
        [
            position(1, stop_loss="1.07900", current_price="1.08650", profit="15.00", opened_at=opened_at),
            position(
                2, symbol="USDJPY", current_price="1.08400", profit="-3.10", swap="-0.20", opened_at=opened_at
            ),
        ],
        # The same amounts written with other digits, and prices moved.
        [
            position(
                1,
                stop_loss="1.0790000",
                volume="0.1",
                current_price="1.08660",
                profit="16.00",
                opened_at=opened_at,
            ),
            position(
                2, symbol="USDJPY", current_price="1.08410", profit="-2.10", swap="-0.2", opened_at=opened_at
            ),
        ],
        # The bridge tells the magic numbers and comments: more than the market.
        [
            position(1, stop_loss="1.07900", magic=1234, comment="T1", opened_at=opened_at),
            position(2, symbol="USDJPY", magic=0, comment="", opened_at=opened_at),
        ],
        # One comment changed, prices moved.
        [
            position(
                1, stop_loss="1.07900", magic=1234, comment="T1 [sl]", profit="12.00", opened_at=opened_at
            ),
            position(2, symbol="USDJPY", magic=0, comment="", profit="-1.10", opened_at=opened_at),
        ],
    ]
    for index, positions in enumerate(steps):
        body = snapshot(*positions, taken_at=start + timedelta(milliseconds=index))
        first_time = await register_follower(api, owner)
        await first_time.expect("T1", stop_loss="1.08000")

        applied = await steady.bridge.send_snapshot(body)
        fresh = await first_time.bridge.send_snapshot(body)

        assert applied["applied"] and fresh["applied"]
        assert (applied["status"], applied["divergences"]) == (fresh["status"], fresh["divergences"])
        assert await _open_positions(steady) == await _open_positions(first_time)
