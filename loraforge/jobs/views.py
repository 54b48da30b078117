"""REST endpoints of background jobs (SPEC 5.11): list, detail, cancel."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import mixins, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from loraforge.jobs.background import JOB_CANCELLED, job_cancel
from loraforge.jobs.filters import BackgroundJobFilterSet
from loraforge.jobs.serializers import (
    BackgroundJobEnvelopeSerializer,
    BackgroundJobSerializer,
    JobCancelResultSerializer,
)
from loraforge.models import BackgroundJob
from loraforge.pagination import JobPagination
from loraforge.schema import CONFLICT
from loraforge.views import UUIDLookupMixin

JOB_NOT_FOUND = "Job not found"


class BackgroundJobViewSet(UUIDLookupMixin, mixins.ListModelMixin, viewsets.GenericViewSet[BackgroundJob]):
    queryset = BackgroundJob.objects.order_by("-created_at", "-id")
    serializer_class = BackgroundJobSerializer
    filterset_class = BackgroundJobFilterSet
    pagination_class = JobPagination
    not_found_detail = JOB_NOT_FOUND

    @extend_schema(responses={200: BackgroundJobEnvelopeSerializer})
    def retrieve(self, request: Request, pk: str) -> Response:
        return Response({"job": BackgroundJobSerializer(self.get_object()).data})

    @extend_schema(request=None, responses={200: JobCancelResultSerializer, 409: CONFLICT})
    @action(detail=True, methods=["post"])
    def cancel(self, request: Request, pk: str) -> Response:
        job = job_cancel(job=self.get_object())
        return Response({"success": True, "status": job.status, "message": JOB_CANCELLED})
