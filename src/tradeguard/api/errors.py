"""The one place where a failure kind becomes an HTTP status."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError
from sqlalchemy import exc as sa_exc

from tradeguard.api.responses import JSONBytes, json_response
from tradeguard.errors import Conflict, Forbidden, InvalidInput, NotAuthenticated, NotFound, TradeguardError
from tradeguard.ingest.devices import SecretKeyMismatch

log = logging.getLogger(__name__)

_STATUS = {NotFound: 404, Conflict: 409, NotAuthenticated: 401, Forbidden: 403}

RETRY_AFTER_SECONDS = 5
# Raised by the drivers (a refused connection, a timeout: OSError and its TimeoutError), or by
# SQLAlchemy's pool, when the database cannot be reached or answer in time.
_UNREACHABLE = (OSError, sa_exc.TimeoutError, sa_exc.OperationalError, sa_exc.InterfaceError)
# PostgreSQL's SQLSTATEs for a lost or refused connection, a server shutting down or starting
# up, and too many connections.
_UNAVAILABLE_SQLSTATES = ("08", "57P", "53300")


async def _tradeguard_error(_request: Request, exc: TradeguardError) -> JSONBytes:
    status = _STATUS.get(type(exc), 400)
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return json_response({"detail": str(exc)}, status, headers)


async def _invalid_input(_request: Request, exc: InvalidInput) -> JSONBytes:
    """Refused after parsing (against the server's clock, say): listed like a validation error."""
    return _unprocessable([{"loc": exc.location, "msg": str(exc), "type": "value_error"}])


async def _validation_error(_request: Request, exc: RequestValidationError) -> JSONBytes:
    return _unprocessable(exc.errors())


async def _body_validation_error(_request: Request, exc: ValidationError) -> JSONBytes:
    """Bodies parsed in code (to verify a signature first, or to keep decimals exact) are reported like
    FastAPI's own, their locations under `body`."""
    return _unprocessable([{**error, "loc": ("body", *error["loc"])} for error in exc.errors()])


def _unprocessable(errors: list[dict]) -> JSONBytes:
    """`errors` lists each problem at the path of its field; `detail` says them all in one line."""
    plain = [
        {"loc": list(error["loc"]), "msg": error["msg"].removeprefix("Value error, "), "type": error["type"]}
        for error in errors
    ]
    problems = [
        f"{'.'.join(str(part) for part in error['loc'])}: {error['msg']}" if error["loc"] else error["msg"]
        for error in plain
    ]
    return json_response({"detail": "; ".join(problems), "errors": plain}, 422)


def database_unreachable(exc: BaseException) -> bool:
    if isinstance(exc, _UNREACHABLE):
        return True
    if isinstance(exc, sa_exc.DBAPIError):
        sqlstate = getattr(exc.orig, "sqlstate", None) or ""
        return exc.connection_invalidated or sqlstate.startswith(_UNAVAILABLE_SQLSTATES)
    return False


async def _secret_key_mismatch(request: Request, exc: SecretKeyMismatch) -> JSONBytes:
    log.error(
        "%s %s: %s; every process of a deployment needs the TRADEGUARD_SECRET_KEY the devices were "
        "registered under",
        request.method,
        request.url.path,
        exc,
    )
    return json_response(
        {
            "detail": "this server cannot check device signatures (its secret key is misconfigured); retry later"
        },
        503,
        {"Retry-After": str(RETRY_AFTER_SECONDS)},
    )


async def _database_error(request: Request, exc: Exception) -> JSONBytes:
    if not database_unreachable(exc):
        log.error("%s %s failed", request.method, request.url.path, exc_info=exc)
        return _internal_error()
    log.warning(
        "%s %s: database unreachable (%s: %s)", request.method, request.url.path, type(exc).__name__, exc
    )
    return json_response(
        {"detail": "the database is unreachable; retry shortly"},
        503,
        {"Retry-After": str(RETRY_AFTER_SECONDS)},
    )


async def _unexpected_error(_request: Request, _exc: Exception) -> JSONBytes:
    # The server logs it with its traceback once this answer is sent.
    return _internal_error()


def _internal_error() -> JSONBytes:
    return json_response({"detail": "internal server error"}, 500)


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(TradeguardError, _tradeguard_error)
    app.add_exception_handler(InvalidInput, _invalid_input)
    app.add_exception_handler(SecretKeyMismatch, _secret_key_mismatch)
    for kind in (*_UNREACHABLE, sa_exc.DBAPIError):
        app.add_exception_handler(kind, _database_error)
    # Anything else is a defect: answered as JSON like every other error, logged with its traceback.
    app.add_exception_handler(Exception, _unexpected_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    # Bodies that must be verified before they are parsed (signed bridge requests) are validated in code.
    app.add_exception_handler(ValidationError, _body_validation_error)
