"""Path and query parameters shared by the routers, bounded to what the database can hold."""

from __future__ import annotations

from typing import Annotated

from fastapi import Path, Query

from tradeguard.values import MAX_BIGINT as MAX_ID
from tradeguard.values import text

AccountIdPath = Annotated[int, Path(ge=1, le=MAX_ID)]
PositionIdPath = Annotated[int, Path(ge=1, le=MAX_ID)]
AccountIdQuery = Annotated[
    int | None,
    Query(ge=1, le=MAX_ID, description="One account; without it, all the caller's own accounts together."),
]
CursorQuery = Annotated[int | None, Query(ge=1, le=MAX_ID, description="next_cursor of the previous page")]
KeyPath = Annotated[text(64, min_length=1), Path(description="a trade_id, device_id or command_id")]
