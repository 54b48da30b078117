"""SDNext's wire formats: error envelopes, txt2img defaults and FastAPI/pydantic-style (lax) validation."""

from __future__ import annotations

import json
from typing import Any

NOT_FOUND = {"detail": "Not Found"}
METHOD_NOT_ALLOWED = {"detail": "Method Not Allowed"}


def envelope(code: int, detail: str) -> dict[str, Any]:
    """The envelope SDNext's error handler writes for an HTTPException (§5.1)."""
    return {"error": "HTTPException", "code": code, "detail": detail, "body": "", "errors": f"{code}: {detail}"}


def crash_envelope(error: str, message: str) -> dict[str, Any]:
    """The envelope for any other exception escaping a handler (500)."""
    return {"error": error, "code": 500, "detail": "", "body": "", "errors": message}


def sampler_not_found() -> dict[str, Any]:
    return envelope(404, "Sampler not found")


# (default, type) for the txt2img fields the fake knows; every field is optional, unknown keys are ignored.
TXT2IMG_FIELDS: dict[str, tuple[Any, str]] = {
    "prompt": ("", "str"),
    "negative_prompt": ("", "str"),
    "styles": (None, "list"),
    "seed": (-1, "int"),
    "subseed": (-1, "int"),
    "subseed_strength": (0.0, "float"),
    "seed_resize_from_h": (-1, "int"),
    "seed_resize_from_w": (-1, "int"),
    "batch_size": (1, "int"),
    "n_iter": (1, "int"),
    "steps": (20, "int"),
    "cfg_scale": (6.0, "float"),
    "cfg_end": (1.0, "float"),
    "cfg_rescale": (0.0, "float"),
    "cfg_true": (0.0, "float"),
    "cfg_adaptive": (0.5, "float"),
    "guidance_name": ("Default", "str"),
    "guidance_scale": (6.0, "float"),
    "guidance_rescale": (0.0, "float"),
    "guidance_start": (0.0, "float"),
    "guidance_stop": (1.0, "float"),
    "clip_skip": (1, "int"),
    "width": (1024, "int"),
    "height": (1024, "int"),
    "sampler_name": ("Default", "str"),
    "sampler_index": (0, "any"),
    "hr_sampler_name": ("Same as primary", "str"),
    "eta": (None, "float"),
    "tiling": (False, "bool"),
    "vae_type": ("Full", "str"),
    "denoising_strength": (0.3, "float"),
    "send_images": (True, "bool"),
    "save_images": (False, "bool"),
    "override_settings": (None, "dict"),
    "override_settings_restore_afterwards": (True, "bool"),
    "sd_model_checkpoint": (None, "str"),
    "script_name": ("", "str"),
    "script_args": ([], "list"),
    "alwayson_scripts": ({}, "dict"),
    "enable_hr": (False, "bool"),
    "hr_scale": (2.0, "float"),
    "hr_upscaler": (None, "str"),
    "hr_second_pass_steps": (0, "int"),
    "hr_denoising_strength": (0.0, "float"),
    "refiner_steps": (5, "int"),
    "refiner_start": (0.0, "float"),
    "refiner_prompt": ("", "str"),
    "refiner_negative": ("", "str"),
    "detailer_enabled": (False, "bool"),
    "schedulers_sigma": (None, "str"),
    "samples_format": (None, "str"),
    "return_grid": (None, "bool"),
    "keep_incomplete": (None, "bool"),
    "extra_networks_default_multiplier": (None, "float"),
    "lora_apply_te": (None, "bool"),
    "extra": ({}, "dict"),
}

_MESSAGES = {
    "int_type": "Input should be a valid integer",
    "int_parsing": "Input should be a valid integer, unable to parse string as an integer",
    "int_from_float": "Input should be a valid integer, got a number with a fractional part",
    "float_type": "Input should be a valid number",
    "float_parsing": "Input should be a valid number, unable to parse string as a number",
    "string_type": "Input should be a valid string",
    "bool_type": "Input should be a valid boolean",
    "bool_parsing": "Input should be a valid boolean, unable to interpret input",
    "dict_type": "Input should be a valid dictionary",
    "list_type": "Input should be a valid list",
}
_TRUE = {"1", "on", "t", "true", "y", "yes"}
_FALSE = {"0", "off", "f", "false", "n", "no"}


class Invalid(Exception):
    def __init__(self, kind: str) -> None:
        super().__init__(kind)
        self.kind = kind


def _to_int(value: Any) -> int:
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        if value.is_integer():
            return int(value)
        raise Invalid("int_from_float")
    if isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError:
            raise Invalid("int_parsing")
    raise Invalid("int_type")


def _to_float(value: Any) -> float:
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value.strip())
        except ValueError:
            raise Invalid("float_parsing")
    raise Invalid("float_type")


def _to_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
        return value.strip().lower() in _TRUE
    raise Invalid("bool_parsing" if isinstance(value, str | int) else "bool_type")


def _coerce(value: Any, kind: str) -> Any:
    if value is None or kind == "any":
        return value
    if kind == "int":
        return _to_int(value)
    if kind == "float":
        return _to_float(value)
    if kind == "bool":
        return _to_bool(value)
    expected = {"str": str, "dict": dict, "list": list}[kind]
    if not isinstance(value, expected):
        raise Invalid({"str": "string_type", "dict": "dict_type", "list": "list_type"}[kind])
    return value


def error_item(kind: str, loc: list[Any], value: Any) -> dict[str, Any]:
    return {"type": kind, "loc": loc, "msg": _MESSAGES[kind], "input": value}


def parse_body(raw: bytes) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """(decoded JSON object, None) or (None, FastAPI 422 body) for bad JSON or a non-object body."""
    try:
        body = json.loads(raw.decode("utf-8") if raw else "{}")
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        item = {"type": "json_invalid", "loc": ["body", 0], "msg": "JSON decode error", "input": {}}
        item["ctx"] = {"error": getattr(exc, "msg", str(exc))}
        return None, {"detail": [item]}
    if not isinstance(body, dict):
        msg = "Input should be a valid dictionary or object to extract fields from"
        return None, {"detail": [{"type": "model_attributes_type", "loc": ["body"], "msg": msg, "input": body}]}
    return body, None


def validate_txt2img(body: dict[str, Any]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Merge the body over the defaults with pydantic-v2 lax coercion; returns (parameters, 422 error items)."""
    params = {name: json.loads(json.dumps(default)) for name, (default, _) in TXT2IMG_FIELDS.items()}
    errors: list[dict[str, Any]] = []
    for name, value in body.items():
        if name not in TXT2IMG_FIELDS:
            continue
        try:
            params[name] = _coerce(value, TXT2IMG_FIELDS[name][1])
        except Invalid as exc:
            errors.append(error_item(exc.kind, ["body", name], value))
    return params, errors


def example_422() -> dict[str, Any]:
    """The 422 the validation_422 fault answers with."""
    return {"detail": [error_item("int_parsing", ["body", "steps"], "abc")]}
