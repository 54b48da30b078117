"""URL configuration: the API under ``/api/v1/`` and ``/v1/``, open pages, admin, media."""

from __future__ import annotations

from django.contrib import admin
from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from analytics.pages import dashboard_page
from loraforge.api import api_patterns
from loraforge.auth import OpenEndpoint
from loraforge.errors import not_found_view
from loraforge.media_views import media_route
from loraforge.views import health

api = api_patterns()
# Open pages ignore credentials: a stale key sent by habit must not lock a client out of the docs.
OPEN = {"authentication_classes": [], "permission_classes": [OpenEndpoint]}

urlpatterns = [
    re_path(r"^api/health/?$", health, name="health"),
    re_path(r"^health/?$", health),
    re_path(r"^api/schema/?$", SpectacularAPIView.as_view(**OPEN), name="schema"),
    re_path(r"^api/docs/?$", SpectacularSwaggerView.as_view(url_name="schema", **OPEN), name="swagger-ui"),
    path("api/v1/", include((api, "api"), namespace="v1")),
    path("v1/", include((api, "api"), namespace="v1-compat")),
    re_path(r"^(api|v1)/?$", not_found_view),
    re_path(r"^api/", not_found_view),
    path("admin/", admin.site.urls),
    re_path(r"^$", dashboard_page, name="dashboard"),
    media_route(),
]

handler400 = "loraforge.errors.bad_request_view"
handler404 = "loraforge.errors.not_found_view"
handler500 = "loraforge.errors.server_error_view"
