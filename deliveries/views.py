"""REST endpoints of the deliveries app: ``POST /compose`` (SPEC 5.3)."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from adapters.composition import prompt_compose
from deliveries.serializers import ComposeRequestSerializer, ComposeResponseSerializer
from loraforge.errors import ServiceUnavailable

EMPTY_PROMPT = "Composed prompt is empty; nothing to deliver"
NO_BACKEND = "No enabled generation backend is configured"
DELIVERIES_UNAVAILABLE = "Deliveries are not available yet"


def _refuse_delivery(delivery: dict[str, Any], prompt: str) -> None:
    """Until DeliveryJob exists, a valid delivery request ends here (400 for an empty prompt, else 503)."""
    if not prompt:
        raise ValidationError({"non_field_errors": [EMPTY_PROMPT]})
    if delivery["mode"] == "sdnext":
        raise ServiceUnavailable(NO_BACKEND)
    raise ServiceUnavailable(DELIVERIES_UNAVAILABLE)


class ComposeView(APIView):
    @extend_schema(
        request=ComposeRequestSerializer,
        responses={200: ComposeResponseSerializer},
        summary="Compose a prompt from adapters and optionally deliver it",
    )
    def post(self, request: Request) -> Response:
        serializer = ComposeRequestSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        composition = prompt_compose(
            prefix=data["prefix"],
            suffix=data["suffix"],
            include_triggers=data["include_triggers"],
            adapter_ids=data["adapter_ids"],
            weight_overrides=data["weight_overrides"],
        )
        if data["delivery"] is not None:
            _refuse_delivery(data["delivery"], composition.prompt)
        return Response(ComposeResponseSerializer({**asdict(composition), "delivery": None}).data)
