"""Request bodies that handlers read as raw bytes (to verify a signature first) still get documented."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Request
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel

_REF_TEMPLATE = "#/components/schemas/{model}"
_raw_body_models: list[type[BaseModel]] = []


def raw_json_body(model: type[BaseModel]) -> dict:
    """`openapi_extra` for a route that parses `model` from the body itself."""
    _raw_body_models.append(model)
    return {
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": {"$ref": _REF_TEMPLATE.format(model=model.__name__)}}},
        }
    }


def exact_json_body(model: type[BaseModel], context: Callable[[Request], dict] | None = None) -> Any:
    """A body parameter parsed by pydantic straight from the bytes, with `context(request)` as its validation context.

    FastAPI's own body parsing goes through `json.loads`, which turns every number into a binary
    float before pydantic sees it; parsing the bytes keeps 0.1 exactly 0.1. Use the returned
    annotation with `openapi_extra=raw_json_body(model)` on the route.
    """

    async def parse(request: Request) -> BaseModel:
        body = await request.body()
        return model.model_validate_json(body, context=context(request) if context else None)

    return Annotated[model, Depends(parse)]


def install_openapi(app: FastAPI) -> None:
    def openapi() -> dict:
        if app.openapi_schema is None:
            schema = get_openapi(title=app.title, version=app.version, summary=app.summary, routes=app.routes)
            components = schema.setdefault("components", {}).setdefault("schemas", {})
            for model in _raw_body_models:
                model_schema = model.model_json_schema(ref_template=_REF_TEMPLATE)
                components.update(model_schema.pop("$defs", {}))
                components[model.__name__] = model_schema
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi
