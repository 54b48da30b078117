"""Input and output shapes of ``/deliveries``, the delivery modes and generation parameters (SPEC 5.1, 5.3, 5.4,
4.6); ``POST /compose`` itself is in ``deliveries.compose_serializers``."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from django.conf import settings
from rest_framework import serializers

from deliveries.hosts import host_allowed, is_valid_host
from deliveries.representation import DeliverySerializer
from deliveries.runner_registry import generation_targets
from loraforge.fields import (
    BoundedJSONObjectField,
    StrictBooleanField,
    StrictCharField,
    StrictFloatField,
    StrictIntegerField,
    StrictSerializer,
)

DELIVERY_MODES = ("http", "cli", "sdnext")
ANY_BACKEND = "sdnext"
PROMPT_MAX_LENGTH = 20_000
HEADERS_LIMIT = 20
HEADER_VALUE_MAX_LENGTH = 1_000
FORBIDDEN_HEADERS = frozenset({"host", "content-length", "transfer-encoding"})
OVERRIDE_SETTINGS_KEYS_LIMIT = 50
OVERRIDE_SETTINGS_ERROR = "override_settings may not change output or save settings"
TEMPLATE_ERROR = "template must contain {prompt}"
EMPTY_PROMPT_ERROR = "prompt must not be empty"
HTTP_PARAMS = ("host", "port", "path", "scheme", "headers", "timeout_seconds")
SDNEXT_OPTIONS = ("mode", "save_images", "return_format")
# GenerationParams defaults (SPEC 5.1), the one definition: request validation fills them in, the SDNext payload
# falls back on them. The sampler settings come from ``SDNEXT_DEFAULT_*``, read when used so overrides apply.
FIXED_GENERATION_DEFAULTS: dict[str, Any] = {"width": 512, "height": 512, "seed": -1, "batch_size": 1, "n_iter": 1}
_HEADER_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,256}$")
_LINE_BREAK = re.compile(r"[\r\n\x00]")


def unknown_mode_error(mode: str) -> str:
    return f"Unknown delivery mode '{mode}'. Use http, cli, sdnext or a generation backend name."


def host_not_allowed_error(host: str) -> str:
    return f"Host '{host}' is not in LORAFORGE_DELIVERY_ALLOWED_HOSTS"


def validate_delivery_mode(mode: str) -> str:
    """``http``, ``cli``, ``sdnext`` or the name of a generation backend (which pins the job to it)."""
    if mode in DELIVERY_MODES:
        return mode
    targets = generation_targets()
    if targets is None or not targets.is_backend_name(mode):
        raise serializers.ValidationError(unknown_mode_error(mode))
    return mode


def _setting(name: str, fallback: Any) -> Callable[[], Any]:
    """A default read when a request is validated, so settings overrides apply."""
    return lambda: getattr(settings, name, fallback)


class ObjectSerializer(StrictSerializer):
    """A strict nested object whose "not an object" error sits on its own key (``delivery.http``)."""

    def to_internal_value(self, data: Any) -> Any:
        if not isinstance(data, Mapping):
            raise serializers.ValidationError(["Must be a JSON object."])
        return super().to_internal_value(data)


# --- generation parameters ------------------------------------------------------------------


def generation_defaults() -> dict[str, Any]:
    """Every defaulted GenerationParams key with its default (SPEC 5.1)."""
    return {
        "steps": settings.SDNEXT_DEFAULT_STEPS,
        "sampler_name": settings.SDNEXT_DEFAULT_SAMPLER,
        "cfg_scale": settings.SDNEXT_DEFAULT_CFG_SCALE,
        **FIXED_GENERATION_DEFAULTS,
    }


def _generation_default(name: str) -> Callable[[], Any]:
    return lambda: generation_defaults()[name]


def _dimension(name: str) -> StrictIntegerField:
    return StrictIntegerField(min_value=64, max_value=4096, default=FIXED_GENERATION_DEFAULTS[name])


def _check_override_settings(value: dict[str, Any]) -> None:
    if len(value) > OVERRIDE_SETTINGS_KEYS_LIMIT:
        raise serializers.ValidationError(f"override_settings may have at most {OVERRIDE_SETTINGS_KEYS_LIMIT} keys")
    for key in value:
        name = key.lower()
        if name.startswith(("outdir", "save_", "samples_")) or name.endswith("_dir"):
            raise serializers.ValidationError(OVERRIDE_SETTINGS_ERROR)


class GenerationParamsSerializer(ObjectSerializer):
    """SDNext txt2img parameters (SPEC 5.1 GenerationParams)."""

    prompt = StrictCharField(max_length=PROMPT_MAX_LENGTH, allow_blank=True, default="")
    negative_prompt = StrictCharField(max_length=PROMPT_MAX_LENGTH, allow_blank=True, allow_null=True, default=None)
    steps = StrictIntegerField(min_value=1, max_value=150, default=_generation_default("steps"))
    sampler_name = StrictCharField(min_length=1, max_length=100, default=_generation_default("sampler_name"))
    cfg_scale = StrictFloatField(min_value=0, max_value=30, default=_generation_default("cfg_scale"))
    width = _dimension("width")
    height = _dimension("height")
    seed = StrictIntegerField(min_value=-1, max_value=4_294_967_295, default=FIXED_GENERATION_DEFAULTS["seed"])
    batch_size = StrictIntegerField(min_value=1, max_value=16, default=FIXED_GENERATION_DEFAULTS["batch_size"])
    n_iter = StrictIntegerField(min_value=1, max_value=16, default=FIXED_GENERATION_DEFAULTS["n_iter"])
    denoising_strength = StrictFloatField(min_value=0, max_value=1, allow_null=True, default=None)
    checkpoint = StrictCharField(max_length=255, allow_null=True, default=None)
    override_settings = BoundedJSONObjectField(max_kib=64, allow_null=True, default=None)

    def validate_width(self, value: int) -> int:
        if value % 8:
            raise serializers.ValidationError("width must be a multiple of 8")
        return value

    def validate_height(self, value: int) -> int:
        if value % 8:
            raise serializers.ValidationError("height must be a multiple of 8")
        return value

    def validate_override_settings(self, value: dict[str, Any] | None) -> dict[str, Any] | None:
        if value is not None:
            _check_override_settings(value)
        return value

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if attrs["batch_size"] * attrs["n_iter"] > 64:
            raise serializers.ValidationError({"batch_size": ["batch_size * n_iter must be at most 64"]})
        return attrs


# --- delivery modes -------------------------------------------------------------------------


class HttpDeliverySerializer(ObjectSerializer):
    """``delivery.http``: POST the prompt to an allow-listed host (SPEC 6.4)."""

    host = StrictCharField(max_length=255)
    port = StrictIntegerField(min_value=1, max_value=65535, required=False)
    path = StrictCharField(max_length=2048, trim_whitespace=False, default="/")
    scheme = serializers.ChoiceField(choices=["http", "https"], default="http")
    headers = serializers.DictField(
        child=StrictCharField(max_length=HEADER_VALUE_MAX_LENGTH, allow_blank=True, trim_whitespace=False),
        default=dict,
    )
    timeout_seconds = StrictIntegerField(min_value=1, max_value=120, default=_setting("LORAFORGE_DELIVERY_TIMEOUT", 30))

    def validate_host(self, value: str) -> str:
        if not is_valid_host(value):
            raise serializers.ValidationError("Enter a valid host name.")
        return value

    def validate_path(self, value: str) -> str:
        if not value.startswith("/"):
            raise serializers.ValidationError("path must start with '/'")
        if any(character.isspace() or ord(character) < 32 for character in value):
            raise serializers.ValidationError("path must not contain whitespace or control characters")
        return value

    def validate_headers(self, value: dict[str, str]) -> dict[str, str]:
        if len(value) > HEADERS_LIMIT:
            raise serializers.ValidationError(f"At most {HEADERS_LIMIT} headers are allowed.")
        errors: dict[str, list[str]] = {}
        for name, header_value in value.items():
            if name.lower() in FORBIDDEN_HEADERS:
                errors[name] = [f"Header '{name}' may not be set"]
            elif not _HEADER_NAME.match(name):
                errors[name] = ["Not a valid header name."]
            elif _LINE_BREAK.search(header_value):
                errors[name] = ["Header values must not contain line breaks."]
        if errors:
            raise serializers.ValidationError(errors)
        return value

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        attrs.setdefault("port", 443 if attrs["scheme"] == "https" else 80)
        if not host_allowed(attrs["host"], attrs["port"], settings.LORAFORGE_DELIVERY_ALLOWED_HOSTS):
            raise serializers.ValidationError({"host": [host_not_allowed_error(attrs["host"])]})
        return attrs


class CliDeliverySerializer(ObjectSerializer):
    """``delivery.cli``: write the prompt, optionally into a template, to a file (SPEC 6.4)."""

    template = StrictCharField(
        max_length=10_000, trim_whitespace=False, allow_blank=True, allow_null=True, default=None
    )

    def validate_template(self, value: str | None) -> str | None:
        if value is not None and "{prompt}" not in value:
            raise serializers.ValidationError(TEMPLATE_ERROR)
        return value


class SdnextDeliverySerializer(ObjectSerializer):
    """``delivery.sdnext``: generate images with the composed prompt (SPEC 5.3)."""

    generation_params = GenerationParamsSerializer(required=False)
    mode = serializers.ChoiceField(choices=["immediate", "deferred"], default="deferred")
    save_images = StrictBooleanField(default=True)
    return_format = serializers.ChoiceField(choices=["url", "base64", "file_path"], default="url")

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if "generation_params" not in attrs:
            defaults = GenerationParamsSerializer(data={})
            defaults.is_valid(raise_exception=True)
            attrs["generation_params"] = dict(defaults.validated_data)
        return attrs


class ComposeDeliverySerializer(ObjectSerializer):
    """``delivery`` of ``POST /compose``: the mode and the object of each mode."""

    mode = StrictCharField(max_length=64, trim_whitespace=False)
    http = HttpDeliverySerializer(required=False, allow_null=True)
    cli = CliDeliverySerializer(required=False, allow_null=True)
    sdnext = SdnextDeliverySerializer(required=False, allow_null=True)

    def validate_mode(self, value: str) -> str:
        return validate_delivery_mode(value)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        mode = attrs["mode"]
        if mode == "http" and not attrs.get("http"):
            raise serializers.ValidationError({"http": ["This field is required."]})
        if mode == "cli" and not attrs.get("cli"):
            attrs["cli"] = {"template": None}
        if mode not in ("http", "cli") and not attrs.get("sdnext"):
            defaults = SdnextDeliverySerializer(data={})
            defaults.is_valid(raise_exception=True)
            attrs["sdnext"] = dict(defaults.validated_data)
        return attrs


# --- what a validated delivery asks for --------------------------------------------------------


@dataclass(frozen=True)
class DeliveryTarget:
    """The job a delivery request creates: its mode (``sdnext``, ``http``, ``cli``), its ``params`` (exactly the
    object of its mode, SPEC 5.3) and, for generations, the requested backend and the key of backend errors."""

    mode: str
    params: dict[str, Any]
    requested_backend: str = ANY_BACKEND
    backend_field: str = "mode"

    @property
    def is_generation(self) -> bool:
        return self.mode == "sdnext"

    def with_prompt(self, prompt: str) -> DeliveryTarget:
        """Generations carry the final prompt in ``generation_params.prompt``."""
        if not self.is_generation:
            return self
        generation_params = {**self.params["generation_params"], "prompt": prompt}
        return replace(self, params={**self.params, "generation_params": generation_params})


def mode_params(mode: str, data: Mapping[str, Any], *, backend: str = ANY_BACKEND) -> dict[str, Any]:
    """The stored ``params`` of a job from the validated object of its mode."""
    if mode == "http":
        return {name: data[name] for name in HTTP_PARAMS}
    if mode == "cli":
        return {"template": data.get("template")}
    options = {name: data[name] for name in SDNEXT_OPTIONS}
    return {"generation_params": dict(data["generation_params"]), **options, "backend": backend}


def compose_target(delivery: Mapping[str, Any]) -> DeliveryTarget:
    """``delivery`` of ``POST /compose``; a backend name as ``mode`` pins the generation to that backend."""
    mode = delivery["mode"]
    if mode in ("http", "cli"):
        return DeliveryTarget(mode, mode_params(mode, delivery[mode]))
    backend = ANY_BACKEND if mode == "sdnext" else mode
    params = mode_params("sdnext", delivery["sdnext"], backend=backend)
    return DeliveryTarget("sdnext", params, requested_backend=backend, backend_field="delivery.mode")


# --- deliveries -----------------------------------------------------------------------------


class SdnextParamsSerializer(SdnextDeliverySerializer):
    """``params`` of an sdnext delivery (``POST /deliveries``): ``delivery.sdnext`` plus an optional ``backend``."""

    backend = StrictCharField(max_length=64, trim_whitespace=False, required=False)


MODE_PARAMS_SERIALIZERS: dict[str, type[ObjectSerializer]] = {
    "http": HttpDeliverySerializer,
    "cli": CliDeliverySerializer,
    "sdnext": SdnextParamsSerializer,
}


def _request_target(mode: str, params: Mapping[str, Any], prompt: str) -> DeliveryTarget:
    if mode in ("http", "cli"):
        return DeliveryTarget(mode, mode_params(mode, params))
    given = params.get("backend")
    if mode != "sdnext" and given not in (None, ANY_BACKEND, mode):
        raise serializers.ValidationError({"params": {"backend": [f"backend '{given}' conflicts with mode '{mode}'"]}})
    backend, field = (given or ANY_BACKEND, "params.backend") if mode == "sdnext" else (mode, "mode")
    target = DeliveryTarget("sdnext", mode_params("sdnext", params, backend=backend), backend, field)
    return target.with_prompt(prompt)


class DeliveryCreateSerializer(StrictSerializer):
    """Body of ``POST /deliveries``: the prompt, a mode (``http``, ``cli``, ``sdnext`` or a generation backend name)
    and the params of that mode, validated like ``delivery.<mode>`` of ``POST /compose``."""

    prompt = StrictCharField(max_length=PROMPT_MAX_LENGTH, allow_blank=True, trim_whitespace=False)
    mode = StrictCharField(max_length=64, trim_whitespace=False)
    params = BoundedJSONObjectField(max_kib=256, default=dict)

    def validate_prompt(self, value: str) -> str:
        if not value.strip():
            raise serializers.ValidationError(EMPTY_PROMPT_ERROR)
        return value

    def validate_mode(self, value: str) -> str:
        return validate_delivery_mode(value)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        mode = attrs["mode"]
        params = MODE_PARAMS_SERIALIZERS[mode if mode in ("http", "cli") else "sdnext"](data=attrs["params"])
        if not params.is_valid():
            raise serializers.ValidationError({"params": params.errors})
        attrs["target"] = _request_target(mode, params.validated_data, attrs["prompt"])
        return attrs


class DeliveryCreatedSerializer(serializers.Serializer[Any]):
    delivery_id = serializers.UUIDField()
    status = serializers.CharField()


class DeliveryEnvelopeSerializer(serializers.Serializer[Any]):
    delivery = DeliverySerializer()
