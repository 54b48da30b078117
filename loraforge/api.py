"""The one DRF router: every app's viewsets are registered here."""

from __future__ import annotations

from django.urls import URLPattern, URLResolver, re_path
from rest_framework.routers import SimpleRouter

from adapters.views import AdapterViewSet
from deliveries.views import DeliveryJobViewSet
from generation.backends.views import GenerationBackendViewSet
from generation.jobs.views import GenerationJobViewSet
from generation.results.views import GenerationResultViewSet
from loraforge.errors import not_found_view
from loraforge.jobs.views import BackgroundJobViewSet


class OptionalSlashRouter(SimpleRouter):
    """Every route answers with or without a trailing slash; nothing redirects."""

    def __init__(self) -> None:
        super().__init__()
        self.trailing_slash = "/?"


router = OptionalSlashRouter()
router.register("adapters", AdapterViewSet, basename="adapter")
router.register("jobs", BackgroundJobViewSet, basename="job")
router.register("deliveries", DeliveryJobViewSet, basename="delivery")
router.register("generation/backends", GenerationBackendViewSet, basename="generation-backend")
router.register("generation/jobs", GenerationJobViewSet, basename="generation-job")
router.register("generation/results", GenerationResultViewSet, basename="generation-result")


def _extra_routes() -> list[URLPattern | URLResolver]:
    from analytics.views import analytics_routes
    from backups.views import backup_routes
    from deliveries.views import ComposeView
    from generation.jobs import views as job_views
    from recommendations.views import recommendation_routes

    return [
        re_path(r"^compose/?$", ComposeView.as_view(), name="compose"),
        *job_views.generation_routes(),
        *recommendation_routes(),
        *analytics_routes(),
        *backup_routes(),
    ]


def api_patterns() -> list[URLPattern | URLResolver]:
    return [*router.urls, *_extra_routes(), re_path(r"^.*$", not_found_view)]
