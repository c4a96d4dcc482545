"""Responses whose bodies are already serialized (from the cache or a pydantic serializer)."""

from __future__ import annotations

import orjson
from fastapi import Response


class JSONBytes(Response):
    media_type = "application/json"


def json_response(payload, status_code: int = 200, headers: dict | None = None) -> JSONBytes:
    return JSONBytes(orjson.dumps(payload), status_code=status_code, headers=headers)


def model_response(model, status_code: int = 200) -> JSONBytes:
    return JSONBytes(model.__pydantic_serializer__.to_json(model), status_code=status_code)
