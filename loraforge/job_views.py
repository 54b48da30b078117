"""REST endpoints of background jobs (SPEC 5.11): list, detail, cancel."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import mixins, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from loraforge.errors import NotFound
from loraforge.job_filters import BackgroundJobFilterSet
from loraforge.job_serializers import (
    BackgroundJobEnvelopeSerializer,
    BackgroundJobSerializer,
    JobCancelResultSerializer,
)
from loraforge.jobs import JOB_CANCELLED, job_cancel
from loraforge.models import BackgroundJob
from loraforge.pagination import JobPagination
from loraforge.views import UUID_RE

JOB_NOT_FOUND = "Job not found"


class BackgroundJobViewSet(mixins.ListModelMixin, viewsets.GenericViewSet[BackgroundJob]):
    queryset = BackgroundJob.objects.order_by("-created_at", "-id")
    serializer_class = BackgroundJobSerializer
    filterset_class = BackgroundJobFilterSet
    pagination_class = JobPagination
    # Any segment routes here, so an id that is not a UUID gets "Job not found" (SPEC 7), not a bare 404.
    lookup_value_regex = "[^/]+"

    def get_object(self) -> BackgroundJob:
        pk = self.kwargs["pk"]
        job = BackgroundJob.objects.filter(pk=pk).first() if UUID_RE.fullmatch(pk) else None
        if job is None:
            raise NotFound(JOB_NOT_FOUND)
        return job

    @extend_schema(responses={200: BackgroundJobEnvelopeSerializer})
    def retrieve(self, request: Request, pk: str) -> Response:
        return Response({"job": BackgroundJobSerializer(self.get_object()).data})

    @extend_schema(request=None, responses={200: JobCancelResultSerializer})
    @action(detail=True, methods=["post"])
    def cancel(self, request: Request, pk: str) -> Response:
        job = job_cancel(job=self.get_object())
        return Response({"success": True, "status": job.status, "message": JOB_CANCELLED})
