"""The one place where a failure kind becomes an HTTP status."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError

from tradeguard.api.responses import JSONBytes, json_response
from tradeguard.errors import Conflict, Forbidden, InvalidInput, NotAuthenticated, NotFound, TradeguardError

_STATUS = {NotFound: 404, Conflict: 409, NotAuthenticated: 401, Forbidden: 403}


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


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(TradeguardError, _tradeguard_error)
    app.add_exception_handler(InvalidInput, _invalid_input)
    app.add_exception_handler(RequestValidationError, _validation_error)
    # Bodies that must be verified before they are parsed (signed bridge requests) are validated in code.
    app.add_exception_handler(ValidationError, _body_validation_error)
