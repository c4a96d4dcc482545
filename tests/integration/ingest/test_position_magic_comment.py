"""A position's magic number and comment: taken from the snapshot, stored, kept up to date and read
back as sent; 0 and the empty comment are values of their own, not "unknown"."""

from __future__ import annotations

import pytest

from tests.support.bridging import Follower, position, register_follower, snapshot
from tradeguard.bridges.client import SNAPSHOTS_PATH

OPEN_POSITIONS = "/api/v1/positions/open"
LARGEST_MAGIC = 2**63 - 1


@pytest.fixture
async def follower(api) -> Follower:
    return await register_follower(api)


async def held(follower: Follower) -> dict[str, tuple]:
    """By ticket, the (magic, comment) of each open position, read back through the API."""
    answer = await follower.owner.get(OPEN_POSITIONS, account_id=follower.account_id)
    assert answer.status_code == 200, answer.text
    return {row["ticket"]: (row["magic"], row["comment"]) for row in answer.json()["positions"]}


async def test_magic_and_comment_are_stored_and_read_back_as_sent(follower):
    await follower.bridge.send_snapshot(
        snapshot(
            position(1, magic=1234, comment="copier T-1"),
            position(2, magic=0, comment=""),
            position(3),
            position(4, magic=None, comment=None),
            position(5, magic=LARGEST_MAGIC, comment="é" * 32 + "x" * 32),
        )
    )

    assert await held(follower) == {
        "1": (1234, "copier T-1"),
        # MT5 reports a trade placed by hand with magic 0 and no comment: known, not unknown.
        "2": (0, ""),
        "3": (None, None),
        "4": (None, None),
        "5": (LARGEST_MAGIC, "é" * 32 + "x" * 32),
    }


async def test_the_position_read_by_id_carries_them_too(follower):
    await follower.bridge.send_snapshot(snapshot(position(1, magic=77, comment="grid #3")))
    [row] = (await follower.owner.get(OPEN_POSITIONS, account_id=follower.account_id)).json()["positions"]

    answer = await follower.owner.get(f"/api/v1/positions/{row['position_id']}")

    assert answer.status_code == 200, answer.text
    assert (answer.json()["magic"], answer.json()["comment"]) == (77, "grid #3")


async def test_a_held_positions_new_magic_or_comment_is_stored(follower):
    readings = [
        {"magic": 1234, "comment": "copier T-1"},
        # Prices only: what was stored stays.
        {"magic": 1234, "comment": "copier T-1", "current_price": "1.08650", "profit": "15.00"},
        {"magic": 1234, "comment": "copier T-1 [sl 1.08]"},
        {"magic": 5678, "comment": "copier T-1 [sl 1.08]", "current_price": "1.08700", "profit": "20.00"},
        {"magic": 0, "comment": ""},
        {},
        {"magic": 1234, "comment": "copier T-1"},
    ]
    for reading in readings:
        await follower.bridge.send_snapshot(snapshot(position(1, **reading), position(2, magic=9)))

        expected = (reading.get("magic"), reading.get("comment"))
        assert await held(follower) == {"1": expected, "2": (9, None)}, reading


BAD_VALUES = {
    "negative-magic": ("magic", -1, "Input should be greater than or equal to 0"),
    "magic-past-bigint": ("magic", 2**63, f"Input should be less than or equal to {LARGEST_MAGIC}"),
    "magic-true": ("magic", True, "Input should be a valid integer"),
    "magic-as-text": ("magic", "1234", "Input should be a valid integer"),
    "magic-as-float": ("magic", 1234.0, "Input should be a valid integer"),
    "comment-too-long": ("comment", "x" * 65, "String should have at most 64 characters"),
    "comment-not-text": ("comment", 17, "Input should be a valid string"),
    "comment-line-break": ("comment", "copier\nT-1", "must not contain a control character"),
    "comment-nul": ("comment", "copier\x00T-1", "must not contain a control character"),
    "comment-escape-sequence": ("comment", "\x1b[31mred", "must not contain a control character"),
    "comment-del": ("comment", "copier\x7f", "must not contain a control character"),
    "comment-c1-control": ("comment", "copier\x85T-1", "must not contain a control character"),
}


@pytest.mark.parametrize(("field", "value", "message"), BAD_VALUES.values(), ids=BAD_VALUES.keys())
async def test_a_bad_magic_or_comment_is_a_422_naming_the_field_and_stores_nothing(
    follower, field, value, message
):
    body = snapshot(position(1, magic=7, comment="fine"), position(2, **{field: value}))

    response = await follower.bridge.request("POST", SNAPSHOTS_PATH, body)

    assert response.status_code == 422, response.text
    [error] = response.json()["errors"]
    assert error["loc"] == ["body", "positions", 1, field]
    assert message in error["msg"]
    assert response.json()["detail"] == f"body.positions.1.{field}: {error['msg']}"
    status = await follower.status()
    assert (status["total_syncs"], status["open_positions_count"]) == (0, 0)
    assert await held(follower) == {}


async def test_the_api_schema_documents_them_in_the_snapshot_and_the_positions_read(sqlite_api):
    components = (await sqlite_api.http.get("/openapi.json")).json()["components"]["schemas"]
    sent, read = components["PositionIn"]["properties"], components["PositionOut"]["properties"]

    assert sent["magic"]["anyOf"] == [
        {"type": "integer", "minimum": 0, "maximum": LARGEST_MAGIC},
        {"type": "null"},
    ]
    assert sent["comment"]["anyOf"] == [{"type": "string", "maxLength": 64}, {"type": "null"}]
    assert "magic" not in components["PositionIn"].get("required", [])
    assert read["magic"]["anyOf"] == [{"type": "integer"}, {"type": "null"}]
    assert read["comment"]["anyOf"] == [{"type": "string"}, {"type": "null"}]
    assert {"magic", "comment"} <= set(components["PositionOut"]["required"])
