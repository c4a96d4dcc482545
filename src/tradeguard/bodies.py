"""What every request body shares: unknown fields refused, `null` for a field that may be left
out, and rules over several fields reported at a field.

A 422 names each problem by the path of the field it is about (`errors[].loc`), so a client can
show it beside that field. A model validator's own errors have no such place, only the model's;
`invalid_fields` gives them one.
"""

from __future__ import annotations

import types
import typing
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, GetJsonSchemaHandler, ValidationError, model_validator
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema, InitErrorDetails

Location = tuple[str | int, ...]


class RequestBody(BaseModel):
    """A JSON body a client sends.

    A field it does not know is refused (422 at that field's path), on every endpoint alike.
    `null` for a field that may be left out but has no "none" of its own means it was left out:
    its default, or in a partial update its stored value. Where `null` is a value (no stop loss,
    no daily loss limit), it is taken as that value.
    """

    model_config = ConfigDict(extra="forbid")

    _null_means_left_out: ClassVar[frozenset[str]] = frozenset()

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        cls._null_means_left_out = frozenset(
            name
            for name, field in cls.model_fields.items()
            if not field.is_required() and not _admits_none(field.annotation)
        )

    @model_validator(mode="before")
    @classmethod
    def _drop_nulls_of_fields_left_out(cls, data: Any) -> Any:
        # Checked first: this runs for each position of every snapshot.
        if not isinstance(data, dict) or None not in data.values():
            return data
        return {
            name: value
            for name, value in data.items()
            if value is not None or name not in cls._null_means_left_out
        }

    @classmethod
    def __get_pydantic_json_schema__(
        cls, core_schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        schema = handler(core_schema)
        properties = handler.resolve_ref_schema(schema).get("properties", {})
        for name in cls._null_means_left_out:
            properties[name] = _or_null(properties[name])
        return schema


def invalid_fields(model: type[BaseModel], problems: list[tuple[Location, str, Any]]) -> ValidationError:
    """An error for each `(location, message, value)`, to raise from a model validator.

    The locations are within the model; pydantic puts the model's own path in front, so a quote's
    `("ask",)` is reported at `quotes.1.ask`.
    """
    return ValidationError.from_exception_data(
        model.__name__,
        [
            InitErrorDetails(type="value_error", loc=location, input=value, ctx={"error": message})
            for location, message, value in problems
        ],
    )


def _admits_none(annotation: Any) -> bool:
    if annotation is None or annotation is type(None) or annotation is Any:
        return True
    if typing.get_origin(annotation) is typing.Annotated:
        return _admits_none(typing.get_args(annotation)[0])
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return any(_admits_none(member) for member in typing.get_args(annotation))
    return False


def _or_null(schema: JsonSchemaValue) -> JsonSchemaValue:
    described = {key: schema.pop(key) for key in ("title", "description", "default") if key in schema}
    variants = schema["anyOf"] if set(schema) == {"anyOf"} else [schema]
    return {"anyOf": [*variants, {"type": "null"}], **described}
