"""RFC 9457 problem details for every error under ``/api/``, ``/v1/`` and ``/media/`` (SPEC 4.4)."""

from __future__ import annotations

import logging
import secrets
from collections.abc import Mapping
from http import HTTPStatus
from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig, SuspiciousOperation, TooManyFieldsSent
from django.db import DatabaseError, OperationalError
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from rest_framework import exceptions, status
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response

logger = logging.getLogger("loraforge.errors")

PROBLEM_CONTENT_TYPE = "application/problem+json"
PROBLEM_PREFIXES = ("/api/", "/v1/", "/media/")

_TYPES: dict[int, tuple[str, str]] = {
    400: ("validation-error", "Validation failed"),
    401: ("authentication-required", "Authentication required"),
    403: ("permission-denied", "Permission denied"),
    404: ("not-found", "Not found"),
    405: ("method-not-allowed", "Method not allowed"),
    409: ("conflict", "Conflict"),
    413: ("payload-too-large", "Payload too large"),
    415: ("unsupported-media-type", "Unsupported media type"),
    500: ("internal-error", "Internal server error"),
    503: ("service-unavailable", "Service unavailable"),
}


class ApiProblem(exceptions.APIException):
    """An error with an explicit status, detail and optional extension members."""

    def __init__(
        self,
        detail: str,
        *,
        status_code: int,
        problem: str | None = None,
        extensions: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status_code = status_code
        self.problem = problem
        self.extensions = dict(extensions or {})


class MalformedRequest(ApiProblem):
    def __init__(self, detail: str) -> None:
        super().__init__(detail, status_code=400, problem="malformed-request")


class Conflict(ApiProblem):
    def __init__(self, detail: str, **extensions: Any) -> None:
        super().__init__(detail, status_code=409, extensions=extensions)


class ServiceUnavailable(ApiProblem):
    def __init__(self, detail: str, **extensions: Any) -> None:
        super().__init__(detail, status_code=503, extensions=extensions)


class NotFound(ApiProblem):
    def __init__(self, detail: str = "Not found") -> None:
        super().__init__(detail, status_code=404)


class PayloadTooLarge(ApiProblem):
    def __init__(self, detail: str) -> None:
        super().__init__(detail, status_code=413)


def problem_body(
    status_code: int,
    detail: str,
    instance: str,
    *,
    problem: str | None = None,
    errors: Mapping[str, list[str]] | None = None,
    extensions: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    kind, title = _TYPES.get(status_code) or _generic_type(status_code)
    if problem == "malformed-request":
        kind, title = problem, "Malformed request"
    elif problem == "invalid-api-key":
        kind, title = problem, "Invalid API key"
    body: dict[str, Any] = {
        "type": f"urn:loraforge:problem:{kind}",
        "title": title,
        "status": status_code,
        "detail": detail,
        "instance": instance,
    }
    if errors:
        body["errors"] = dict(errors)
    if extensions:
        body.update(extensions)
    return body


def _generic_type(status_code: int) -> tuple[str, str]:
    """Statuses the table does not list (406, 429, ...) keep their own name, never "internal-error"."""
    try:
        phrase = HTTPStatus(status_code).phrase
    except ValueError:
        return "internal-error", "Internal server error"
    return phrase.lower().replace(" ", "-").replace("'", ""), phrase.capitalize()


def problem_response(request: HttpRequest, status_code: int, detail: str, **kwargs: Any) -> JsonResponse:
    body = problem_body(status_code, detail, request.path, **kwargs)
    return JsonResponse(body, status=status_code, content_type=PROBLEM_CONTENT_TYPE)


def flatten_errors(data: Any, prefix: str = "") -> dict[str, list[str]]:
    """DRF's nested error structure as ``{"a.b.0": ["message"]}``."""
    flat: dict[str, list[str]] = {}
    if isinstance(data, Mapping):
        for key, value in data.items():
            flat.update(flatten_errors(value, f"{prefix}.{key}" if prefix else str(key)))
    elif isinstance(data, list) and data and all(isinstance(item, str) for item in data):
        flat[prefix or "non_field_errors"] = [str(item) for item in data]
    elif isinstance(data, list):
        for index, value in enumerate(data):
            if value in ({}, [], None):
                continue
            flat.update(flatten_errors(value, f"{prefix}.{index}" if prefix else str(index)))
    elif data is not None:
        flat[prefix or "non_field_errors"] = [str(data)]
    return flat


def _error_reference() -> str:
    return secrets.token_hex(6)


def internal_error_body(instance: str, exc: BaseException | None) -> dict[str, Any]:
    reference = _error_reference()
    logger.error("Unhandled error (reference %s) on %s", reference, instance, exc_info=exc)
    return problem_body(500, f"An unexpected error occurred (reference {reference}).", instance)


def _database_problem(exc: DatabaseError) -> tuple[str, int]:
    text = str(exc).lower()
    if isinstance(exc, OperationalError) and ("locked" in text or "busy" in text):
        return "Database is busy; retry the request", 503
    return "Database unavailable", 503


def problem_exception_handler(exc: Exception, context: Mapping[str, Any]) -> Response | None:
    from rest_framework.views import set_rollback

    request = context.get("request")
    instance = request.path if request is not None else ""
    if request is not None:
        # A problem is JSON whatever the client accepts: a browser asking for HTML gets JSON too.
        request.accepted_renderer = JSONRenderer()
        request.accepted_media_type = PROBLEM_CONTENT_TYPE
    headers: dict[str, str] = {}
    extensions: dict[str, Any] = {}
    errors: dict[str, list[str]] | None = None
    problem: str | None = None

    if isinstance(exc, Http404):
        exc = exceptions.NotFound(str(exc) if str(exc) else "Not found")
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()
    elif isinstance(exc, RequestDataTooBig):
        exc = PayloadTooLarge(request_too_large_detail())
    elif isinstance(exc, SuspiciousOperation):  # e.g. more query parameters than Django parses
        exc = MalformedRequest(suspicious_detail(exc))
    elif isinstance(exc, OperationalError | DatabaseError) and _is_connection_problem(exc):
        detail, code = _database_problem(exc)
        logger.warning("Database error on %s: %s", instance, exc)
        set_rollback()
        return Response(problem_body(code, detail, instance), status=code, content_type=PROBLEM_CONTENT_TYPE)

    if not isinstance(exc, exceptions.APIException):
        set_rollback()
        return Response(internal_error_body(instance, exc), status=500, content_type=PROBLEM_CONTENT_TYPE)

    status_code = exc.status_code
    if isinstance(exc, ApiProblem):
        problem = exc.problem
        extensions = exc.extensions
        detail = str(exc.detail)
    elif isinstance(exc, exceptions.ValidationError):
        errors = flatten_errors(exc.detail)
        first = next(iter(errors.values()), ["Invalid input."])
        detail = first[0]
    elif isinstance(exc, exceptions.ParseError):
        problem = "malformed-request"
        detail = "Request body is not valid JSON."
    elif isinstance(exc, exceptions.UnsupportedMediaType):
        detail = "Content-Type must be application/json"
    elif isinstance(exc, exceptions.MethodNotAllowed):
        detail = f"Method {context['request'].method} not allowed" if request is not None else "Method not allowed"
    elif isinstance(exc, exceptions.NotFound):
        detail = str(exc.detail) if str(exc.detail) != "Not found." else "Not found"
    elif isinstance(exc, exceptions.NotAuthenticated):  # also DRF's own "credentials were not provided"
        detail = "Authentication required"
    else:
        detail = str(exc.detail)

    if status_code == 401:
        headers["WWW-Authenticate"] = 'ApiKey header="X-API-Key"'
        if detail == "Invalid API key":
            problem = "invalid-api-key"
    set_rollback()
    body = problem_body(status_code, detail, instance, problem=problem, errors=errors, extensions=extensions)
    return Response(body, status=status_code, headers=headers, content_type=PROBLEM_CONTENT_TYPE)


def _is_connection_problem(exc: DatabaseError) -> bool:
    return isinstance(exc, OperationalError)


def request_too_large_detail() -> str:
    from django.conf import settings

    return f"Request body too large (limit {settings.LORAFORGE_MAX_BODY_MB} MB)"


def wants_problem(path: str) -> bool:
    return path.startswith(PROBLEM_PREFIXES) or path in ("/api", "/v1")


@csrf_exempt  # an unknown path is 404 for every method, never a CSRF page (SPEC 4.1, 4.4)
def not_found_view(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    if wants_problem(request.path):
        return problem_response(request, status.HTTP_404_NOT_FOUND, "Not found")
    from django.views.defaults import page_not_found

    return page_not_found(request, exception or Http404())


def suspicious_detail(exc: BaseException | None) -> str:
    if isinstance(exc, TooManyFieldsSent):
        from django.conf import settings

        return f"Too many parameters (limit {settings.DATA_UPLOAD_MAX_NUMBER_FIELDS})"
    return "Bad request"


def bad_request_view(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    """Django's own 400s (a disallowed Host header, too many parameters outside DRF)."""
    if wants_problem(request.path):
        return problem_response(request, 400, suspicious_detail(exception), problem="malformed-request")
    from django.views.defaults import bad_request

    return bad_request(request, exception or SuspiciousOperation())


def server_error_view(request: HttpRequest) -> HttpResponse:
    if wants_problem(request.path):
        body = internal_error_body(request.path, None)
        return JsonResponse(body, status=500, content_type=PROBLEM_CONTENT_TYPE)
    from django.views.defaults import server_error

    return server_error(request)
