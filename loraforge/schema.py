"""OpenAPI (drf-spectacular) extensions and hooks."""

from __future__ import annotations

from typing import Any

from drf_spectacular.extensions import OpenApiAuthenticationExtension


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
