"""OpenAPI (drf-spectacular) extensions and hooks."""

from __future__ import annotations

from typing import Any

from drf_spectacular import openapi
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.plumbing import is_list_serializer
from drf_spectacular.utils import OpenApiResponse


class ApiKeyScheme(OpenApiAuthenticationExtension):
    target_class = "loraforge.auth.ApiKeyAuthentication"
    name = "ApiKeyAuth"

    def get_security_definition(self, auto_schema: Any) -> dict[str, str]:
        return {"type": "apiKey", "in": "header", "name": "X-API-Key"}


class StaffSessionScheme(OpenApiAuthenticationExtension):
    target_class = "loraforge.auth.StaffSessionAuthentication"
    name = "StaffSession"

    def get_security_definition(self, auto_schema: Any) -> dict[str, str]:
        return {"type": "apiKey", "in": "cookie", "name": "sessionid"}


Endpoint = tuple[str, str, str, Any]


def document_canonical_paths(endpoints: list[Endpoint], **kwargs: Any) -> list[Endpoint]:
    """Document each route once, under ``/api/v1/``, without the optional trailing slash (SPEC 4.1)."""
    documented = []
    for path, path_regex, method, callback in endpoints:
        if not path.startswith("/api/v1/"):
            continue
        documented.append((path.replace("/?", "/").rstrip("/"), path_regex, method, callback))
    return documented


class AutoSchema(openapi.AutoSchema):
    """drf-spectacular's schema with one correction: an unpaginated ``list`` action that declares its response
    answers that object (e.g. ``{"backends": [...], "sdnext": true}``), not an array of it."""

    def _is_list_view(self, serializer: Any = None) -> bool:
        if getattr(self.view, "action", None) == "list" and getattr(self.view, "pagination_class", None) is None:
            declared = serializer if serializer is not None else self.get_response_serializers()
            if isinstance(declared, dict) and declared:
                declared = declared[min(declared, key=str)]
            return is_list_serializer(declared)
        return bool(super()._is_list_view(serializer))

    def get_operation_id(self) -> str:
        operation_id = str(super().get_operation_id())
        if getattr(self.view, "action", None) == "list" and operation_id.endswith("_retrieve"):
            return operation_id.removesuffix("_retrieve") + "_list"
        return operation_id


# --- problem responses (SPEC 4.4) ----------------------------------------------------------------

PROBLEM_MEDIA_TYPE = "application/problem+json"
PROBLEM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "RFC 9457 problem details; extension members such as `job_id` may follow.",
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "instance": {"type": "string"},
        "errors": {"type": "object", "additionalProperties": {"type": "array", "items": {"type": "string"}}},
    },
    "required": ["type", "title", "status", "detail", "instance"],
    "additionalProperties": True,
}
PROBLEM_DESCRIPTIONS = {
    400: "Validation failed, or a malformed request",
    401: "Authentication required, or an invalid API key",
    403: "Permission denied (read-only key, non-staff session, CSRF)",
    404: "Not found",
    409: "Conflict with the resource's current state",
    413: "Request body too large",
    415: "Unsupported media type",
    503: "Service unavailable (task queue down, database busy or unavailable)",
}
# Declared by the views that answer them beyond their shape: ``@extend_schema(responses={..., 409: CONFLICT})``.
CONFLICT = OpenApiResponse(description=PROBLEM_DESCRIPTIONS[409])
NOT_FOUND = OpenApiResponse(description=PROBLEM_DESCRIPTIONS[404])
BODY_METHODS = frozenset({"post", "put", "patch", "delete"})


def _problem_statuses(path: str, method: str, operation: dict[str, Any]) -> list[int]:
    """The problem statuses every operation of this shape can answer (SPEC 4.2-4.6, 7)."""
    has_body = "requestBody" in operation or method in BODY_METHODS
    has_query = any(parameter.get("in") == "query" for parameter in operation.get("parameters", []))
    statuses = [401, 403, 503]
    if has_body or has_query:
        statuses.append(400)
    if "{" in path:
        statuses.append(404)
    if "requestBody" in operation:
        statuses += [413, 415]
    return statuses


def document_problems(result: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    """Postprocessing hook: every operation documents the problem responses it can answer, once, here, and
    that an empty query value is the same as leaving the parameter out (``allowEmptyValue``)."""
    result.setdefault("components", {}).setdefault("schemas", {})["Problem"] = PROBLEM_SCHEMA
    content = {PROBLEM_MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}}
    for path, operations in result.get("paths", {}).items():
        for method, operation in operations.items():
            for parameter in operation.get("parameters", []):
                if parameter.get("in") == "query":
                    parameter["allowEmptyValue"] = True  # everywhere, an empty value means "not given"
            responses = operation.setdefault("responses", {})
            for code in _problem_statuses(path, method, operation):
                responses.setdefault(str(code), {"description": PROBLEM_DESCRIPTIONS[code]})
            for code, response in responses.items():
                if int(code) >= 400:
                    response["content"] = content
    return result
