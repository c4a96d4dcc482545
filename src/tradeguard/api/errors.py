"""The one place where a failure kind becomes an HTTP status."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError

from tradeguard.api.responses import JSONBytes, json_response
from tradeguard.errors import Conflict, Forbidden, InvalidInput, NotAuthenticated, NotFound, TradeguardError

_STATUS = {NotFound: 404, Conflict: 409, InvalidInput: 422, NotAuthenticated: 401, Forbidden: 403}


async def _tradeguard_error(_request: Request, exc: TradeguardError) -> JSONBytes:
    status = _STATUS.get(type(exc), 400)
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return json_response({"detail": str(exc)}, status, headers)


async def _validation_error(_request: Request, exc: RequestValidationError) -> JSONBytes:
    problems = []
    for error in exc.errors():
        where = ".".join(str(part) for part in error["loc"])
        problems.append(f"{where}: {error['msg'].removeprefix('Value error, ')}")
    return json_response({"detail": "; ".join(problems), "errors": _plain(exc.errors())}, 422)


def _plain(errors: list[dict]) -> list[dict]:
    return [{"loc": list(error["loc"]), "msg": error["msg"], "type": error["type"]} for error in errors]


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(TradeguardError, _tradeguard_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
