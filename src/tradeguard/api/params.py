"""Path and query parameters shared by the routers, bounded to what the database can hold."""

from __future__ import annotations

from typing import Annotated

from fastapi import Path, Query

MAX_ID = 2**63 - 1
"""The largest BIGINT: a larger id cannot exist, and SQLite refuses to even compare with it."""

AccountIdPath = Annotated[int, Path(ge=1, le=MAX_ID)]
PositionIdPath = Annotated[int, Path(ge=1, le=MAX_ID)]
AccountIdQuery = Annotated[
    int | None,
    Query(ge=1, le=MAX_ID, description="One account; without it, all the caller's own accounts together."),
]
CursorQuery = Annotated[int | None, Query(ge=1, le=MAX_ID, description="next_cursor of the previous page")]
