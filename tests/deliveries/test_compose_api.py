"""``POST /compose`` as a client sees it (SPEC 5.3, 4.3, 4.4, 4.6, 7)."""

from __future__ import annotations

import json
import uuid

import pytest

from deliveries.models import DeliveryJob
from tests.factories import AdapterFactory
from tests.generation.factories import GenerationBackendFactory

pytestmark = pytest.mark.django_db
URL = "/api/v1/compose"
SERVICE_UNAVAILABLE = "urn:loraforge:problem:service-unavailable"


def post(client, body, url=URL):
    return client.post(url, data=json.dumps(body), content_type="application/json")


def assert_invalid(response, key: str, message: str) -> None:
    assert response.status_code == 400, response.content
    assert response["Content-Type"] == "application/problem+json"
    body = response.json()
    assert body["type"] == "urn:loraforge:problem:validation-error"
    assert body["errors"][key] == [message], body["errors"]


@pytest.fixture
def allowed_hosts(settings):
    settings.LORAFORGE_DELIVERY_ALLOWED_HOSTS = ["hooks.local", "api.internal:8080", "*.example.com"]
    return settings.LORAFORGE_DELIVERY_ALLOWED_HOSTS


@pytest.fixture
def one_active():
    return AdapterFactory(name="Ink Sketch", sdnext_name="ink-sketch", weight=1.0, active=True)


def http_delivery(**http):
    return {"mode": "http", "http": {"host": "hooks.local", **http}}


# --- success --------------------------------------------------------------------------------


def test_compose_returns_the_documented_shape(api):
    ink = AdapterFactory(name="Ink Sketch", sdnext_name="ink-sketch", weight=1.0, ordinal=1, active=True)
    celestial = AdapterFactory(
        name="Celestial Anime Portraits", sdnext_name="celestial_anime_v2", weight=0.75, ordinal=2, active=True
    )

    response = post(api, {"prefix": "masterpiece, 1girl", "suffix": "soft lighting"})

    assert response.status_code == 200
    assert response["Content-Type"] == "application/json; charset=utf-8"
    assert response.json() == {
        "prompt": "masterpiece, 1girl <lora:ink-sketch:1> <lora:celestial_anime_v2:0.75> soft lighting",
        "tokens": ["<lora:ink-sketch:1>", "<lora:celestial_anime_v2:0.75>"],
        "triggers": [],
        "warnings": [],
        "adapters": [
            {"id": str(ink.pk), "name": "Ink Sketch", "sdnext_name": "ink-sketch", "weight": 1.0},
            {
                "id": str(celestial.pk),
                "name": "Celestial Anime Portraits",
                "sdnext_name": "celestial_anime_v2",
                "weight": 0.75,
            },
        ],
        "delivery": None,
    }


def test_empty_body_composes_every_active_adapter(api, one_active):
    response = post(api, {})

    assert response.status_code == 200
    assert response.json()["prompt"] == "<lora:ink-sketch:1>"


def test_nothing_active_warns(api):
    body = post(api, {"prefix": "hello"}).json()

    assert body["prompt"] == "hello"
    assert body["tokens"] == []
    assert body["warnings"] == ["No active adapters found for composition"]


def test_adapter_ids_weight_overrides_and_triggers_are_applied(api):
    adapter = AdapterFactory(sdnext_name="pony", active=False, triggers=["pony style"])
    unknown = uuid.uuid4()

    body = post(
        api,
        {
            "prefix": "  a cat  ",
            "include_triggers": True,
            "adapter_ids": [str(adapter.pk), str(unknown)],
            "weight_overrides": {str(adapter.pk).upper(): 0.8},
        },
    ).json()

    assert body["prompt"] == "a cat <lora:pony:0.8> pony style"
    assert body["triggers"] == ["pony style"]
    assert body["warnings"] == [f"Unknown adapter ids: {unknown}"]


@pytest.mark.parametrize("url", ["/api/v1/compose/", "/v1/compose", "/v1/compose/"])
def test_compose_answers_on_every_documented_path(api, one_active, url):
    response = post(api, {}, url=url)

    assert response.status_code == 200
    assert response.json()["tokens"] == ["<lora:ink-sketch:1>"]


def test_null_optional_fields_take_their_defaults(api, one_active):
    body = {"prefix": None, "suffix": None, "adapter_ids": None, "delivery": None}

    response = post(api, body)

    assert response.status_code == 200
    assert response.json()["prompt"] == "<lora:ink-sketch:1>"


# --- authentication and body typing -------------------------------------------------------------


def test_anonymous_request_is_refused(anon):
    response = post(anon, {})

    assert response.status_code == 401
    assert response.json()["detail"] == "Authentication required"


def test_unknown_body_key_is_rejected(api):
    assert_invalid(post(api, {"prefixx": "a"}), "prefixx", "Unknown field.")


def test_include_triggers_must_be_a_boolean(api):
    assert_invalid(post(api, {"include_triggers": "yes"}), "include_triggers", "Must be a boolean (true or false).")


def test_include_triggers_may_not_be_null(api):
    assert_invalid(post(api, {"include_triggers": None}), "include_triggers", "This field may not be null.")


def test_prefix_must_be_a_string(api):
    assert_invalid(post(api, {"prefix": 5}), "prefix", "Not a valid string.")


def test_prefix_is_limited_to_5000_characters(api):
    response = post(api, {"prefix": "a" * 5001})

    assert_invalid(response, "prefix", "Ensure this field has no more than 5000 characters.")


def test_weight_override_out_of_range_is_keyed_by_the_id(api):
    adapter_id = str(uuid.uuid4())

    response = post(api, {"weight_overrides": {adapter_id: 6}})

    assert_invalid(response, f"weight_overrides.{adapter_id}", "Ensure this value is less than or equal to 5.0.")


def test_weight_override_must_be_a_number(api):
    adapter_id = str(uuid.uuid4())

    response = post(api, {"weight_overrides": {adapter_id: "0.5"}})

    assert_invalid(response, f"weight_overrides.{adapter_id}", "A valid number is required.")


def test_weight_override_keys_must_be_uuids(api):
    assert_invalid(post(api, {"weight_overrides": {"abc": 1}}), "weight_overrides.abc", "Must be a valid UUID.")


def test_adapter_ids_are_limited_to_200(api):
    ids = [str(uuid.uuid4()) for _ in range(201)]

    assert_invalid(post(api, {"adapter_ids": ids}), "adapter_ids", "Ensure this field has no more than 200 elements.")


def test_adapter_ids_must_be_a_list(api):
    response = post(api, {"adapter_ids": str(uuid.uuid4())})

    assert_invalid(response, "adapter_ids", 'Expected a list of items but got type "str".')


@pytest.mark.parametrize("bad", ["not-a-uuid", 12345])
def test_adapter_ids_items_must_be_uuid_strings(api, bad):
    assert_invalid(post(api, {"adapter_ids": [str(uuid.uuid4()), bad]}), "adapter_ids.1", "Must be a valid UUID.")


# --- delivery validation ----------------------------------------------------------------------


def test_unknown_delivery_mode_is_rejected(api, one_active):
    response = post(api, {"delivery": {"mode": "email"}})

    assert_invalid(
        response, "delivery.mode", "Unknown delivery mode 'email'. Use http, cli, sdnext or a generation backend name."
    )


def test_unknown_key_in_delivery_is_rejected(api, one_active):
    response = post(api, {"delivery": {"mode": "cli", "smtp": {}}})

    assert_invalid(response, "delivery.smtp", "Unknown field.")


def test_http_mode_requires_the_http_object(api, one_active):
    assert_invalid(post(api, {"delivery": {"mode": "http"}}), "delivery.http", "This field is required.")


def test_http_object_must_be_an_object(api, one_active):
    response = post(api, {"delivery": {"mode": "http", "http": "hooks.local"}})

    assert_invalid(response, "delivery.http", "Must be a JSON object.")


def test_http_host_is_required(api, one_active):
    response = post(api, {"delivery": {"mode": "http", "http": {"port": 80}}})

    assert_invalid(response, "delivery.http.host", "This field is required.")


def test_http_host_must_be_allow_listed(api, one_active, allowed_hosts):
    response = post(api, {"delivery": http_delivery(host="evil.test")})

    assert_invalid(response, "delivery.http.host", "Host 'evil.test' is not in LORAFORGE_DELIVERY_ALLOWED_HOSTS")


def test_http_delivery_is_disabled_without_an_allow_list(api, one_active, settings):
    settings.LORAFORGE_DELIVERY_ALLOWED_HOSTS = []

    response = post(api, {"delivery": http_delivery()})

    assert_invalid(response, "delivery.http.host", "Host 'hooks.local' is not in LORAFORGE_DELIVERY_ALLOWED_HOSTS")


@pytest.mark.parametrize(
    ("host", "port"),
    [
        ("hooks.local", 80),
        ("HOOKS.Local", 9000),
        ("api.internal", 8080),
        ("a.example.com", 443),
        ("a.b.example.com", 1),
    ],
)
def test_allow_listed_hosts_pass_validation(api, one_active, allowed_hosts, host, port):
    response = post(api, {"delivery": http_delivery(host=host, port=port)})

    assert response.status_code == 200, response.json()
    job = DeliveryJob.objects.get(pk=response.json()["delivery"]["id"])
    assert (job.params["host"], job.params["port"]) == (host, port)


@pytest.mark.parametrize(("host", "port"), [("api.internal", 8081), ("example.com", 443), ("xexample.com", 80)])
def test_hosts_outside_the_allow_list_patterns_are_rejected(api, one_active, allowed_hosts, host, port):
    response = post(api, {"delivery": http_delivery(host=host, port=port)})

    assert_invalid(response, "delivery.http.host", f"Host '{host}' is not in LORAFORGE_DELIVERY_ALLOWED_HOSTS")


def test_https_scheme_defaults_to_port_443(api, one_active, settings):
    settings.LORAFORGE_DELIVERY_ALLOWED_HOSTS = ["secure.local:443"]

    response = post(api, {"delivery": {"mode": "http", "http": {"host": "secure.local", "scheme": "https"}}})

    assert response.status_code == 200, response.json()
    assert DeliveryJob.objects.get().params["port"] == 443


@pytest.mark.parametrize(
    "host", ["evil.test#.example.com", "user@a.example.com", "a.example.com/x", "a.example.com:80"]
)
def test_http_host_must_be_a_plain_host_name(api, one_active, allowed_hosts, host):
    response = post(api, {"delivery": http_delivery(host=host)})

    assert_invalid(response, "delivery.http.host", "Enter a valid host name.")


@pytest.mark.parametrize("name", ["Host", "content-length", "Transfer-Encoding"])
def test_forbidden_headers_are_rejected(api, one_active, allowed_hosts, name):
    response = post(api, {"delivery": http_delivery(headers={name: "x"})})

    assert_invalid(response, f"delivery.http.headers.{name}", f"Header '{name}' may not be set")


def test_at_most_20_headers(api, one_active, allowed_hosts):
    headers = {f"X-H{index}": "v" for index in range(21)}

    response = post(api, {"delivery": http_delivery(headers=headers)})

    assert_invalid(response, "delivery.http.headers", "At most 20 headers are allowed.")


def test_header_values_are_limited_to_1000_characters(api, one_active, allowed_hosts):
    response = post(api, {"delivery": http_delivery(headers={"X-Token": "v" * 1001})})

    assert_invalid(response, "delivery.http.headers.X-Token", "Ensure this field has no more than 1000 characters.")


def test_header_values_must_not_contain_line_breaks(api, one_active, allowed_hosts):
    response = post(api, {"delivery": http_delivery(headers={"X-Token": "a\r\nX-Evil: 1"})})

    assert_invalid(response, "delivery.http.headers.X-Token", "Header values must not contain line breaks.")


def test_http_path_must_start_with_a_slash(api, one_active, allowed_hosts):
    response = post(api, {"delivery": http_delivery(path="hook")})

    assert_invalid(response, "delivery.http.path", "path must start with '/'")


def test_http_timeout_is_bounded(api, one_active, allowed_hosts):
    response = post(api, {"delivery": http_delivery(timeout_seconds=121)})

    assert_invalid(response, "delivery.http.timeout_seconds", "Ensure this value is less than or equal to 120.")


def test_http_port_must_be_an_integer(api, one_active, allowed_hosts):
    response = post(api, {"delivery": http_delivery(port="80")})

    assert_invalid(response, "delivery.http.port", "A valid integer is required.")


def test_cli_template_must_contain_the_prompt_placeholder(api, one_active):
    response = post(api, {"delivery": {"mode": "cli", "cli": {"template": "echo {text}"}}})

    assert_invalid(response, "delivery.cli.template", "template must contain {prompt}")


def test_sdnext_width_must_be_a_multiple_of_8(api, one_active):
    delivery = {"mode": "sdnext", "sdnext": {"generation_params": {"width": 513}}}

    assert_invalid(
        post(api, {"delivery": delivery}), "delivery.sdnext.generation_params.width", "width must be a multiple of 8"
    )


def test_sdnext_steps_must_be_an_integer(api, one_active):
    delivery = {"mode": "sdnext", "sdnext": {"generation_params": {"steps": 5.5}}}

    assert_invalid(
        post(api, {"delivery": delivery}), "delivery.sdnext.generation_params.steps", "A valid integer is required."
    )


@pytest.mark.parametrize("key", ["outdir_samples", "samples_format", "save_images_add_number", "temp_dir"])
def test_sdnext_override_settings_may_not_touch_output(api, one_active, key):
    delivery = {"mode": "sdnext", "sdnext": {"generation_params": {"override_settings": {key: "x"}}}}

    assert_invalid(
        post(api, {"delivery": delivery}),
        "delivery.sdnext.generation_params.override_settings",
        "override_settings may not change output or save settings",
    )


def test_sdnext_batch_size_times_n_iter_is_limited(api, one_active):
    delivery = {"mode": "sdnext", "sdnext": {"generation_params": {"batch_size": 16, "n_iter": 5}}}

    assert_invalid(
        post(api, {"delivery": delivery}),
        "delivery.sdnext.generation_params.batch_size",
        "batch_size * n_iter must be at most 64",
    )


def test_empty_composed_prompt_cannot_be_delivered(api):
    response = post(api, {"delivery": {"mode": "cli"}})

    assert_invalid(response, "non_field_errors", "Composed prompt is empty; nothing to deliver")
    assert response.json()["detail"] == "Composed prompt is empty; nothing to deliver"


def test_composed_prompt_over_the_prompt_limit_cannot_be_delivered(api, one_active):
    response = post(api, {"prefix": "a" * 5000, "suffix": "b" * 5000, "delivery": {"mode": "cli"}})
    assert response.status_code == 200  # 10 021 characters: within the limit

    many = [AdapterFactory(sdnext_name=f"{'n' * 195}{index:03d}", active=True) for index in range(80)]
    response = post(api, {"prefix": "a" * 5000, "adapter_ids": [str(a.pk) for a in many], "delivery": {"mode": "cli"}})

    assert_invalid(response, "non_field_errors", "Composed prompt is longer than 20000 characters")


# --- delivery outcomes ----------------------------------------------------------------------


def delivery_of(response) -> DeliveryJob:
    assert response.status_code == 200, response.content
    reference = response.json()["delivery"]
    job = DeliveryJob.objects.get(pk=reference["id"])
    assert reference == {"id": str(job.pk), "kind": job.kind, "status": "pending"}
    return job


def test_cli_delivery_creates_a_pending_job(api, one_active):
    response = post(api, {"delivery": {"mode": "cli", "cli": {"template": "prompt: {prompt}"}}})

    job = delivery_of(response)
    assert (job.kind, job.mode, job.status, job.created_via) == ("delivery", "cli", "pending", "compose")
    assert job.prompt == "<lora:ink-sketch:1>"
    assert job.params == {"template": "prompt: {prompt}"}


def test_cli_delivery_without_its_object_writes_the_prompt_alone(api, one_active):
    job = delivery_of(post(api, {"delivery": {"mode": "cli"}}))

    assert job.params == {"template": None}


def test_http_delivery_params_hold_exactly_the_http_object(api, one_active, allowed_hosts):
    response = post(
        api,
        {
            "delivery": {
                "mode": "http",
                "http": {"host": "hooks.local", "headers": {"X-Token": "t"}},
                "cli": {"template": "{prompt}"},
            }
        },
    )

    job = delivery_of(response)
    assert (job.kind, job.mode, job.requested_backend) == ("delivery", "http", "http")
    assert job.params == {
        "host": "hooks.local",
        "port": 80,
        "path": "/",
        "scheme": "http",
        "headers": {"X-Token": "t"},
        "timeout_seconds": 30,
    }


def test_http_timeout_defaults_to_the_setting(api, one_active, allowed_hosts, settings):
    settings.LORAFORGE_DELIVERY_TIMEOUT = 7

    job = delivery_of(post(api, {"delivery": http_delivery()}))

    assert job.params["timeout_seconds"] == 7


def test_prefix_alone_is_deliverable(api):
    job = delivery_of(post(api, {"prefix": "hello", "delivery": {"mode": "cli"}}))

    assert job.prompt == "hello"
    assert job.adapter_links.count() == 0


def test_sdnext_delivery_reports_no_backend(api, one_active):
    response = post(api, {"delivery": {"mode": "sdnext"}})

    assert response.status_code == 503
    assert response["Content-Type"] == "application/problem+json"
    body = response.json()
    assert body["type"] == SERVICE_UNAVAILABLE
    assert body["detail"] == "No enabled generation backend is configured"
    assert not DeliveryJob.objects.exists()


def test_sdnext_delivery_with_only_disabled_backends_reports_no_backend(api, one_active):
    GenerationBackendFactory(enabled=False)

    response = post(api, {"delivery": {"mode": "sdnext"}})

    assert response.status_code == 503
    assert not DeliveryJob.objects.exists()


def test_sdnext_delivery_params_hold_the_generation_object_with_the_composed_prompt(api, one_active):
    GenerationBackendFactory()
    delivery = {"mode": "sdnext", "sdnext": {"generation_params": {"prompt": "ignored", "steps": 30}}}

    job = delivery_of(post(api, {"prefix": "a cat", "delivery": delivery}))

    assert (job.kind, job.mode, job.requested_backend) == ("generation", "sdnext", "sdnext")
    assert job.params == {
        "generation_params": {
            "prompt": "a cat <lora:ink-sketch:1>",
            "negative_prompt": None,
            "steps": 30,
            "sampler_name": "DPM++ 2M",
            "cfg_scale": 7.0,
            "width": 512,
            "height": 512,
            "seed": -1,
            "batch_size": 1,
            "n_iter": 1,
            "denoising_strength": None,
            "checkpoint": None,
            "override_settings": None,
        },
        "mode": "deferred",
        "save_images": True,
        "return_format": "url",
        "backend": "sdnext",
    }


def test_sdnext_delivery_without_its_object_takes_the_defaults(api, one_active):
    GenerationBackendFactory()

    job = delivery_of(post(api, {"delivery": {"mode": "sdnext"}}))

    assert job.params["generation_params"]["prompt"] == "<lora:ink-sketch:1>"
    assert job.params["generation_params"]["steps"] == 20
    assert job.params["mode"] == "deferred"


def test_backend_name_as_mode_pins_the_generation(api, one_active):
    GenerationBackendFactory(name="gpu-2")
    GenerationBackendFactory(name="gpu-1")

    job = delivery_of(post(api, {"delivery": {"mode": "gpu-2", "sdnext": {"return_format": "file_path"}}}))

    assert (job.kind, job.mode, job.requested_backend) == ("generation", "sdnext", "gpu-2")
    assert job.params["backend"] == "gpu-2"
    assert job.params["return_format"] == "file_path"


def test_disabled_backend_as_mode_is_rejected(api, one_active):
    GenerationBackendFactory(name="gpu-1")
    GenerationBackendFactory(name="gpu-off", enabled=False)

    response = post(api, {"delivery": {"mode": "gpu-off"}})

    assert_invalid(response, "delivery.mode", "Generation backend 'gpu-off' is disabled")
    assert not DeliveryJob.objects.exists()


def test_names_that_are_not_backends_stay_unknown_modes(api, one_active):
    GenerationBackendFactory(name="gpu-1")

    response = post(api, {"delivery": {"mode": "gpu-9"}})

    assert_invalid(
        response, "delivery.mode", "Unknown delivery mode 'gpu-9'. Use http, cli, sdnext or a generation backend name."
    )


def test_delivery_is_enqueued_once_the_transaction_commits(api, one_active, broker, django_capture_on_commit_callbacks):
    GenerationBackendFactory()
    with django_capture_on_commit_callbacks(execute=True):
        cli = delivery_of(post(api, {"delivery": {"mode": "cli"}}))
        generation = delivery_of(post(api, {"delivery": {"mode": "sdnext"}}))

    assert broker.job_ids == [str(cli.pk), str(generation.pk)]
    assert [task.options["queue"] for task in broker.sent] == ["default", "generation"]
    cli.refresh_from_db()
    assert cli.celery_task_id
    assert cli.enqueued_at is not None


@pytest.mark.django_db(transaction=True)
def test_queue_unavailable_fails_the_job_and_answers_503(api, one_active, broker):
    broker.down = True

    response = post(api, {"delivery": {"mode": "cli"}})

    assert response.status_code == 503, response.content
    body = response.json()
    assert body["type"] == SERVICE_UNAVAILABLE
    assert body["detail"] == "Task queue unavailable"
    job = DeliveryJob.objects.get(pk=body["job_id"])
    assert (job.status, job.error, job.error_code) == ("failed", "Task queue unavailable", "queue_unavailable")


@pytest.mark.django_db
def test_a_cached_composition_follows_every_change_to_the_catalogue(api):
    """Compose without a delivery is answered from the versioned response cache: a repeated body is a hit,
    and any adapter write (activate, edit, delete) makes the next answer fresh."""
    from loraforge.response_cache import response_cache

    first = AdapterFactory(active=True, ordinal=1, sdnext_name="first_style", weight=0.5)
    body = {"prefix": "masterpiece", "suffix": "soft light"}
    assert "<lora:first_style:0.5>" in post(api, body).json()["prompt"]
    assert post(api, body).json() == post(api, body).json()
    assert response_cache("compose").hits >= 2

    second = AdapterFactory(active=True, ordinal=2, sdnext_name="second_style", weight=0.7)
    assert "<lora:second_style:0.7>" in post(api, body).json()["prompt"]
    api.patch(f"/api/v1/adapters/{first.pk}", data=json.dumps({"weight": 0.9}), content_type="application/json")
    assert "<lora:first_style:0.9>" in post(api, body).json()["prompt"]
    api.delete(f"/api/v1/adapters/{second.pk}")
    assert "second_style" not in post(api, body).json()["prompt"]


@pytest.mark.django_db
def test_an_invalid_body_is_never_cached(api):
    body = {"prefix": 5}
    assert post(api, body).status_code == 400
    assert post(api, body).status_code == 400


@pytest.mark.django_db
@pytest.mark.parametrize("with_delivery", [False, True])
def test_the_compose_payload_is_what_the_documented_serializer_renders(with_delivery):
    """``composition_payload`` skips DRF for speed; it must render exactly what ``ComposeResponseSerializer`` (the
    schema's) renders."""
    from dataclasses import asdict

    from adapters.composition import prompt_compose
    from deliveries.compose_serializers import ComposeResponseSerializer, composition_payload

    AdapterFactory(active=True, ordinal=1, sdnext_name="ink", weight=0.75, trained_words=["ink style"])
    AdapterFactory(active=True, ordinal=2, sdnext_name="glow", weight=1)
    AdapterFactory(active=True, ordinal=3, sdnext_name="bad:name")
    composition = prompt_compose(
        prefix="a", suffix="b", include_triggers=True, adapter_ids=None, weight_overrides={"glow": -0.5}
    )
    delivery = {"id": uuid.uuid4(), "kind": "delivery", "status": "pending"} if with_delivery else None
    expected = ComposeResponseSerializer({**asdict(composition), "delivery": delivery}).data
    payload = composition_payload(composition, delivery)
    assert json.dumps(payload, sort_keys=True) == json.dumps(expected, sort_keys=True)
    assert composition.warnings  # the skipped name made a warning: every list is exercised
