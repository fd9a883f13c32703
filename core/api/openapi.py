"""The problems each operation can answer, written into the OpenAPI document in one place.

Every route answers its errors as RFC 9457 problem+json (:mod:`core.api.problems`); which
statuses follows from what the route is, not from each handler:

* every operation: 400 (malformed), 422 (invalid input, a control character), 429 (rate limit);
* an operation that needs an API key (its handler names a ``scope``): 401, 403; one that needs
  none says so with ``security: []``;
* an operation with an id in its path: 404;
* an operation that changes something (POST, PUT, PATCH, DELETE): 404 and 409 (the state
  forbids it: an invoice already credited, a service already stopped...);
* an operation that takes a body: 413 (too large) and 415 (not JSON, see :mod:`core.api.bodies`).

:func:`document` gives each route handler an operation class that adds them when Litestar
writes the document (lazily, at the first request for ``/schema``); the responses themselves
are shared components (``#/components/responses/...``).
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass

from litestar._openapi.schema_generation import SchemaCreator
from litestar._openapi.schema_generation.plugins.struct import StructSchemaPlugin
from litestar.handlers import HTTPRouteHandler
from litestar.typing import FieldDefinition

from core.api.common import MAX_ID
from litestar.params import ParameterKwarg
from litestar.openapi.spec import OpenAPIMediaType, OpenAPIResponse, Operation, Reference, Schema
from litestar.openapi.spec.enums import OpenAPIType

PROBLEM_MEDIA_TYPE = "application/problem+json"

_STRING = Schema(type=OpenAPIType.STRING)
PROBLEM = Schema(
    type=OpenAPIType.OBJECT,
    description="An RFC 9457 problem: `code` is stable, `detail` is in the caller's language",
    required=["type", "title", "status", "code", "detail", "instance"],
    properties={
        "type": _STRING, "title": _STRING, "status": Schema(type=OpenAPIType.INTEGER), "code": _STRING,
        "detail": _STRING, "instance": _STRING,
        "errors": Schema(type=OpenAPIType.ARRAY, description="One problem per field (or line, or record)",
                         items=Schema(type=OpenAPIType.OBJECT, properties={"field": Schema(one_of=[_STRING, Schema(type=OpenAPIType.NULL)]),
                                                                            "code": _STRING, "message": _STRING})),
    },
)

# status -> (component name, description)
PROBLEMS = {
    400: ("BadRequest", "Malformed: the body is not JSON, or nested too deep, or a parameter has the wrong type (`invalid_request`, "
                        "`nesting_too_deep`)"),
    401: ("Unauthenticated", "No valid API key (`unauthenticated`)"),
    403: ("Forbidden", "The key lacks the scope, or the caller the role (`scope_missing`, `forbidden`)"),
    404: ("NotFound", "No such object, or not the caller's (`not_found`)"),
    409: ("Conflict", "The current state forbids it (`conflict`, `invalid_state`...)"),
    413: ("TooLarge", "The body is larger than the route accepts (`too_large`)"),
    415: ("UnsupportedMediaType", "The body is not sent as `application/json` (`unsupported_media_type`)"),
    422: ("InvalidInput", "Well-formed but not valid: the stable `code` says why, `errors` lists each field (`invalid_input`, "
                         "`control_character`, `amount_out_of_range`...)"),
    429: ("TooManyRequests", "Too many requests; `Retry-After` says when to come back (`too_many_requests`)"),
}
COMPONENTS = {name: OpenAPIResponse(description=description, content={PROBLEM_MEDIA_TYPE: OpenAPIMediaType(schema=PROBLEM)})
              for name, description in PROBLEMS.values()}
WRITES = {"POST", "PUT", "PATCH", "DELETE"}


class StrictStructs(StructSchemaPlugin):
    """msgspec structs that refuse unknown fields (``forbid_unknown_fields=True``, every request
    schema) say so: ``additionalProperties: false``."""

    def to_openapi_schema(self, field_definition: FieldDefinition, schema_creator: SchemaCreator) -> Schema:
        schema = super().to_openapi_schema(field_definition, schema_creator)
        if field_definition.type_.__struct_config__.forbid_unknown_fields:
            schema.additional_properties = False
        return schema


def statuses(handler: HTTPRouteHandler, method: str) -> list[int]:
    """The problem statuses an operation of ``handler`` can answer."""
    params = inspect.signature(handler.fn).parameters
    answers = {400, 422, 429}
    if "scope" in handler.opt:
        answers |= {401, 403}
    if any("{" in path for path in handler.paths) or (method in WRITES and "scope" in handler.opt):
        answers.add(404)
    if method in WRITES:
        answers.add(409)
    if "data" in params or "body" in params:
        answers |= {413, 415}
    return sorted(answers)


def document(handlers: list[HTTPRouteHandler]) -> None:
    """Give each handler of the API (once) the operation class that documents its problems."""
    for handler in handlers:
        if getattr(handler.operation_class, "documents_problems", False) or not handler.include_in_schema:
            continue
        handler.operation_class = _operation_class(handler)


def _operation_class(handler: HTTPRouteHandler) -> type[Operation]:
    base = handler.operation_class
    public = "scope" not in handler.opt
    method = next(iter(handler.http_methods))
    problems = statuses(handler, method)
    floors = _floors(handler)

    @dataclass
    class ProblemsOperation(base):  # type: ignore[valid-type,misc]
        documents_problems = True

        def __post_init__(self) -> None:
            if hasattr(base, "__post_init__"):
                base.__post_init__(self)
            self.responses = dict(self.responses or {})
            for status in problems:
                self.responses[str(status)] = Reference(ref=f"#/components/responses/{PROBLEMS[status][0]}")
            if public:
                self.security = []  # no key needed
            for parameter in self.parameters or []:
                _exact_bounds(parameter.schema, floors.get(parameter.name))

    return ProblemsOperation


def _floors(handler: HTTPRouteHandler) -> dict[str, float]:
    """The lower bounds of the handler's parameters (``ge=0`` included: Litestar drops a zero)."""
    found = {}
    for name, field in handler.parsed_fn_signature.parameters.items():
        kwarg = field.kwarg_definition
        if isinstance(kwarg, ParameterKwarg) and kwarg.ge is not None:
            found[kwarg.query or kwarg.header or name] = kwarg.ge
    return found


def _exact_bounds(schema: Schema | Reference | None, floor: float | None = None) -> None:
    """Write a parameter's bounds as the API checks them: a lower bound of zero (Litestar drops
    it), and a 64-bit bound as the exact integer (9.223372036854776e18 is 2^63, one more than an
    id can be). Else the schema allows what the API refuses."""
    if isinstance(schema, Schema):
        if floor is not None and schema.minimum is None and schema.exclusive_minimum is None:
            schema.minimum = floor
        if isinstance(schema.maximum, float) and schema.maximum >= 2**53:
            schema.maximum = MAX_ID
