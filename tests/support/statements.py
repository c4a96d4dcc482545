"""The SQL statements an app sends, for tests that bound how many a read takes."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from sqlalchemy import event


@contextlib.contextmanager
def statements_sent(api) -> Iterator[list[str]]:
    """Every statement the app's engine sends while the block runs, in order."""
    sent: list[str] = []

    def record(_connection, _cursor, statement, _parameters, _context, _executemany) -> None:
        sent.append(statement)

    engine = api.services.engine.sync_engine
    event.listen(engine, "before_cursor_execute", record)
    try:
        yield sent
    finally:
        event.remove(engine, "before_cursor_execute", record)
