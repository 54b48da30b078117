"""DRF authentication and permission classes (SPEC 4.2).

Order: a present ``X-API-Key`` must be valid (a session does not rescue it); otherwise a staff
session (with CSRF on unsafe methods); otherwise the request is anonymous.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication, SessionAuthentication
from rest_framework.permissions import SAFE_METHODS, BasePermission
from rest_framework.request import Request

from loraforge.api_keys import api_key_authenticate

API_KEY_HEADER = "HTTP_X_API_KEY"
WWW_AUTHENTICATE = 'ApiKey header="X-API-Key"'


class AuthenticationRequired(exceptions.NotAuthenticated):
    default_detail = "Authentication required"
    default_code = "authentication_required"


class InvalidApiKey(exceptions.AuthenticationFailed):
    default_detail = "Invalid API key"
    default_code = "invalid_api_key"


class ApiKeyAuthentication(BaseAuthentication):
    def authenticate(self, request: Request) -> tuple[Any, Any] | None:
        presented = request.META.get(API_KEY_HEADER)
        if presented is None or not settings.LORAFORGE_AUTH:
            return None
        principal = api_key_authenticate(presented.strip())
        if principal is None:
            raise InvalidApiKey()
        return (None, principal)

    def authenticate_header(self, request: Request) -> str:
        return WWW_AUTHENTICATE


class StaffSessionAuthentication(SessionAuthentication):
    def enforce_csrf(self, request: Request) -> None:
        try:
            super().enforce_csrf(request)
        except exceptions.PermissionDenied:
            raise exceptions.PermissionDenied("CSRF token missing or incorrect") from None


def _is_key_principal(request: Request) -> bool:
    return request.auth is not None


class IsApiPrincipal(BasePermission):
    """An API key (read-only keys: safe methods only) or an active staff session."""

    def has_permission(self, request: Request, view: Any) -> bool:
        if not settings.LORAFORGE_AUTH:
            return True
        if _is_key_principal(request):
            if getattr(request.auth, "read_only", False) and request.method not in SAFE_METHODS:
                raise exceptions.PermissionDenied("This API key is read-only")
            return True
        user = request.user
        if user is None or not user.is_authenticated:
            raise AuthenticationRequired()
        if not (user.is_active and user.is_staff):
            raise exceptions.PermissionDenied("Staff access required")
        return True


class OpenEndpoint(BasePermission):
    def has_permission(self, request: Request, view: Any) -> bool:
        return True
