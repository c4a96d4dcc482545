"""SQL expressions that mean the same on every supported database, each written in its dialect."""

from __future__ import annotations

from sqlalchemy import BigInteger
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import FunctionElement

from tradeguard.store.types import ExactDecimal

_UNIX_EPOCH_JULIAN_MS = 210_866_760_000_000  # the Unix epoch (1970-01-01 00:00 UTC) as a Julian day, in ms


class time_bucket(FunctionElement):
    """time_bucket(moment, origin_ms, width_ms): the bucket of a grid of `width_ms` milliseconds, starting
    at `origin_ms` after the Unix epoch, that `moment` (to the nearest millisecond) falls into; moments
    before the origin are not expected. All in whole milliseconds, so a moment on a bucket's edge is in
    the same bucket on every database."""

    type = BigInteger()
    inherit_cache = True


@compiles(time_bucket, "postgresql")
def _time_bucket_postgresql(element: time_bucket, compiler, **kw) -> str:
    # In double precision, not EXTRACT's numeric: several times faster over a month of snapshots, and
    # exact to well under a millisecond this side of the year 9999. Rounded to the nearest millisecond,
    # as SQLite does when it reads a time.
    moment, origin, width = (compiler.process(clause, **kw) for clause in element.clauses)
    return f"CAST(floor((floor(date_part('epoch', {moment}) * 1000 + 0.5) - {origin}) / {width}) AS BIGINT)"


@compiles(time_bucket, "sqlite")
def _time_bucket_sqlite(element: time_bucket, compiler, **kw) -> str:
    # SQLite reads a time as whole milliseconds (rounded); julianday() gives them back as a double exact
    # to well under a millisecond, so rounding it recovers them. Integer division floors (all >= 0).
    moment, origin, width = (compiler.process(clause, **kw) for clause in element.clauses)
    return (
        f"((CAST(round(julianday({moment}) * 86400000.0) AS INTEGER)"
        f" - {_UNIX_EPOCH_JULIAN_MS} - {origin}) / {width})"
    )


class _DecimalExtreme(FunctionElement):
    """min() or max() of an ExactDecimal column, compared as numbers."""

    type = ExactDecimal()
    inherit_cache = True
    name: str


class decimal_min(_DecimalExtreme):
    name = "min"
    inherit_cache = True


class decimal_max(_DecimalExtreme):
    name = "max"
    inherit_cache = True


@compiles(_DecimalExtreme)
def _decimal_extreme(element: _DecimalExtreme, compiler, **kw) -> str:
    return f"{element.name}({compiler.process(element.clauses, **kw)})"


@compiles(_DecimalExtreme, "sqlite")
def _decimal_extreme_sqlite(element: _DecimalExtreme, compiler, **kw) -> str:
    # SQLite keeps these columns as text, which min() and max() would compare letter by letter. As REAL
    # they compare as numbers, and come back as text with 15 significant digits: every amount the API
    # sends (as a JSON number, a double) survives the round trip.
    return f"CAST({element.name}(CAST({compiler.process(element.clauses, **kw)} AS REAL)) AS TEXT)"
