"""The fake SDNext server speaks SDNext's wire protocol (SDNEXT.md §1, §3, §4, §5, §7)."""

from __future__ import annotations

import base64
import io
import json
import socket
import subprocess
import sys
import threading
import time
from typing import Any

import pytest
import requests
from PIL import Image

from tests.fakes.sdnext import FakeSDNext

TXT2IMG = "/sdapi/v1/txt2img"
SMALL = {"prompt": "a cat", "steps": 3, "width": 64, "height": 64}


@pytest.fixture
def fake():
    server = FakeSDNext(steps_delay=0.002)
    server.start()
    yield server
    server.stop()


def post(fake: FakeSDNext, payload: dict[str, Any], **kwargs: Any) -> requests.Response:
    return requests.post(fake.url + TXT2IMG, json=payload, timeout=kwargs.pop("timeout", 10), **kwargs)


def decode(image: str) -> Image.Image:
    return Image.open(io.BytesIO(base64.b64decode(image, validate=True)))


def run_in_thread(target: Any) -> tuple[threading.Thread, dict[str, Any]]:
    result: dict[str, Any] = {}

    def wrapper() -> None:
        try:
            result["value"] = target()
        except Exception as exc:
            result["error"] = exc

    thread = threading.Thread(target=wrapper, daemon=True)
    thread.start()
    return thread, result


def wait_for_job(fake: FakeSDNext, job: str = "Inference", timeout: float = 5) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        body = requests.get(fake.url + "/sdapi/v1/progress", timeout=5).json()
        if body["state"]["job"] == job:
            return body
        time.sleep(0.001)
    raise AssertionError(f"job {job!r} never showed in /progress")


# txt2img


def test_txt2img_records_the_exact_payload(fake: FakeSDNext) -> None:
    payload = {**SMALL, "seed": 7, "unknown_key": [1, 2]}
    post(fake, payload)
    recorded = fake.requests[-1]
    assert (recorded.method, recorded.path, recorded.body) == ("POST", TXT2IMG, payload)
    assert recorded.headers["Content-Type"] == "application/json"


def test_txt2img_returns_batch_size_times_n_iter_jpeg_images_floored_to_8(fake: FakeSDNext) -> None:
    body = post(fake, {**SMALL, "width": 70, "height": 100, "batch_size": 2, "n_iter": 2}).json()
    assert len(body["images"]) == 4
    images = [decode(image) for image in body["images"]]
    assert {(image.format, image.size) for image in images} == {("JPEG", (64, 96))}


def test_txt2img_returns_png_when_the_samples_format_option_is_png(fake: FakeSDNext) -> None:
    requests.post(fake.url + "/sdapi/v1/options", json={"samples_format": "png"}, timeout=5)
    image = decode(post(fake, SMALL).json()["images"][0])
    assert image.format == "PNG"
    assert image.info["parameters"].startswith("a cat\nSteps: 3, Size: 64x64")


def test_send_images_false_returns_no_images(fake: FakeSDNext) -> None:
    assert post(fake, {**SMALL, "send_images": False}).json()["images"] == []


def test_info_is_a_json_string_with_sequential_seeds(fake: FakeSDNext) -> None:
    body = post(fake, {**SMALL, "batch_size": 3}).json()
    assert isinstance(body["info"], str)
    info = json.loads(body["info"])
    seed = info["seed"]
    assert 0 <= seed <= 4294967293
    assert info["all_seeds"] == [seed, seed + 1, seed + 2]
    assert (info["width"], info["height"], info["steps"]) == (64, 64, 3)
    assert len(info["infotexts"]) == 3
    assert info["infotexts"][0] == (
        f"a cat\nSteps: 3, Size: 64x64, Seed: {seed}, CFG scale: 6.0, App: SD.Next, Version: f4ke5d1, "
        "Operations: txt2img, Model: sdxl-base-1.0"
    )


def test_a_given_seed_is_kept(fake: FakeSDNext) -> None:
    info = json.loads(post(fake, {**SMALL, "seed": 42, "n_iter": 2}).json()["info"])
    assert info["all_seeds"] == [42, 43]


def test_parameters_echo_the_request_merged_with_sdnext_defaults(fake: FakeSDNext) -> None:
    parameters = post(fake, {**SMALL, "steps": "3"}).json()["parameters"]
    assert parameters["steps"] == 3
    assert (parameters["sampler_name"], parameters["cfg_scale"], parameters["seed"]) == ("Default", 6.0, -1)
    assert "unknown_key" not in parameters


def test_lora_tags_resolve_by_name_relative_path_and_dotted_stem(fake: FakeSDNext) -> None:
    prompt = "x <lora:styles/my.style.v1:0.8> <lora:detail_tweaker> <lora:pixel_art:1:te=0.5>"
    info = json.loads(post(fake, {**SMALL, "prompt": prompt}).json()["info"])
    assert info["extra_generation_params"]["LoRA networks"] == "my_style_v1, detail_tweaker, pixel_art"
    assert info["all_prompts"] == [prompt]
    assert requests.get(fake.url + "/sdapi/v1/loaded-loras", timeout=5).json() == [
        "my_style_v1",
        "detail_tweaker",
        "pixel_art",
    ]


def test_unknown_alias_and_zero_weight_loras_are_silently_dropped(fake: FakeSDNext) -> None:
    prompt = "<lora:nope:1> <lora:MyStyle:1> <lora:Detail_Tweaker:1> <lora:pixel_art:0> <lora:my.style.v1>"
    response = post(fake, {**SMALL, "prompt": prompt})
    assert response.status_code == 200
    assert json.loads(response.json()["info"])["extra_generation_params"] == {"LoRA networks": "my_style_v1"}


def test_no_lora_networks_key_when_none_loaded(fake: FakeSDNext) -> None:
    assert json.loads(post(fake, SMALL).json()["info"])["extra_generation_params"] == {}


@pytest.mark.parametrize("name", ["Default", "euler a", "DPM++ 2M"])
def test_samplers_match_case_insensitively_and_default_is_accepted(fake: FakeSDNext, name: str) -> None:
    assert post(fake, {**SMALL, "sampler_name": name}).status_code == 200


@pytest.mark.parametrize("name", ["DPM++ 2M Karras", "", None])
def test_unknown_or_empty_sampler_gives_the_404_envelope(fake: FakeSDNext, name: str | None) -> None:
    response = post(fake, {**SMALL, "sampler_name": name})
    assert response.status_code == 404
    assert response.json() == {
        "error": "HTTPException",
        "code": 404,
        "detail": "Sampler not found",
        "body": "",
        "errors": "404: Sampler not found",
    }


def test_wrong_types_give_a_fastapi_422_detail_list(fake: FakeSDNext) -> None:
    response = post(fake, {"steps": "abc", "width": 12.5, "prompt": 3})
    assert response.status_code == 422
    assert response.json()["detail"] == [
        {
            "type": "int_parsing",
            "loc": ["body", "steps"],
            "msg": "Input should be a valid integer, unable to parse string as an integer",
            "input": "abc",
        },
        {
            "type": "int_from_float",
            "loc": ["body", "width"],
            "msg": "Input should be a valid integer, got a number with a fractional part",
            "input": 12.5,
        },
        {"type": "string_type", "loc": ["body", "prompt"], "msg": "Input should be a valid string", "input": 3},
    ]


def test_bad_json_gives_json_invalid(fake: FakeSDNext) -> None:
    response = requests.post(fake.url + TXT2IMG, data=b"{nope", timeout=5)
    assert response.status_code == 422
    assert response.json()["detail"][0]["type"] == "json_invalid"
    assert response.json()["detail"][0]["loc"] == ["body", 0]


# progress, lock, interrupt, skip


def test_progress_advances_mid_generation_and_resets_per_phase() -> None:
    fake = FakeSDNext(steps_delay=0.01)
    fake.start()
    try:
        thread, _ = run_in_thread(lambda: post(fake, {**SMALL, "steps": 10}))
        seen = []
        while thread.is_alive():
            seen.append(requests.get(fake.url + "/sdapi/v1/progress?skip_current_image=true", timeout=5).json())
        thread.join()
        # The response can reach the client a moment before the server's state goes idle: poll briefly.
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            seen.append(requests.get(fake.url + "/sdapi/v1/progress?skip_current_image=true", timeout=5).json())
            if seen[-1]["state"]["job"] == "":
                break
            time.sleep(0.01)
    finally:
        fake.stop()
    inference = [body for body in seen if body["state"]["job"] == "Inference"]
    steps = [body["state"]["sampling_step"] for body in inference]
    assert steps == sorted(steps)
    assert len(set(steps)) > 3
    assert all(body["state"]["sampling_steps"] == 10 for body in inference)
    assert {body["current_image"] for body in seen} == {None}
    jobs = [body["state"]["job"] for body in seen]
    assert {"API-TXT", "Process", "Base", "TE Encode", "VAE Decode"} <= set(jobs)
    top = max(index for index, body in enumerate(seen) if body["progress"] == 1.0)
    after = seen[top:]
    assert any(body["state"]["job"] == "VAE Decode" and body["progress"] == 0 for body in after)
    assert len({body["id"] for body in seen if body["id"]}) >= 5
    assert (seen[-1]["state"]["job"], seen[-1]["progress"]) == ("", 0)


def test_progress_before_the_first_job_has_id_zero_and_eight_state_keys(fake: FakeSDNext) -> None:
    body = requests.get(fake.url + "/sdapi/v1/progress", timeout=5).json()
    assert body["id"] == 0
    assert (body["progress"], body["eta_relative"], body["current_image"], body["textinfo"]) == (0, 0, None, None)
    assert set(body["state"]) == {
        "skipped",
        "interrupted",
        "job",
        "job_count",
        "job_timestamp",
        "job_no",
        "sampling_step",
        "sampling_steps",
    }


def test_progress_includes_a_preview_unless_skipped() -> None:
    fake = FakeSDNext(steps_delay=0.01)
    fake.start()
    try:
        thread, _ = run_in_thread(lambda: post(fake, {**SMALL, "steps": 8}))
        previews = []
        while thread.is_alive():
            body = requests.get(fake.url + "/sdapi/v1/progress", timeout=5).json()
            if body["state"]["job"] == "Inference" and body["state"]["sampling_step"] > 0:
                previews.append(body["current_image"])
        thread.join()
    finally:
        fake.stop()
    assert previews
    assert decode(previews[0]).format == "JPEG"


def test_concurrent_txt2img_calls_serialise_on_one_lock() -> None:
    fake = FakeSDNext(steps_delay=0.01)
    fake.start()
    try:
        start = time.monotonic()
        post(fake, {**SMALL, "steps": 8})
        single = time.monotonic() - start
        start = time.monotonic()
        started = [run_in_thread(lambda: post(fake, {**SMALL, "steps": 8})) for _ in range(2)]
        for thread, _ in started:
            thread.join(10)
        both = time.monotonic() - start
    finally:
        fake.stop()
    assert all(result["value"].status_code == 200 for _, result in started)
    assert both >= 1.8 * single


def test_interrupt_ends_a_running_call_with_200_and_no_images(fake: FakeSDNext) -> None:
    fake.set_fault("hang")
    thread, result = run_in_thread(lambda: post(fake, SMALL))
    wait_for_job(fake)
    response = requests.post(fake.url + "/sdapi/v1/interrupt", timeout=5)
    thread.join(5)
    assert response.status_code == 204
    assert response.content == b""
    assert fake.interrupts == 1
    answer = result["value"]
    assert answer.status_code == 200
    assert answer.json()["images"] == []
    assert isinstance(json.loads(answer.json()["info"]), dict)
    status = requests.get(fake.url + "/sdapi/v1/status", timeout=5).json()
    assert status["status"] == "interrupted"


def test_an_interrupt_sent_while_idle_is_lost_when_the_next_job_starts(fake: FakeSDNext) -> None:
    requests.post(fake.url + "/sdapi/v1/interrupt", timeout=5)
    assert requests.get(fake.url + "/sdapi/v1/progress", timeout=5).json()["state"]["interrupted"] is True
    assert len(post(fake, SMALL).json()["images"]) == 1


def test_skip_drops_the_current_iteration_only(fake: FakeSDNext) -> None:
    fake.set_fault("hang")
    thread, result = run_in_thread(lambda: post(fake, {**SMALL, "n_iter": 2}))
    wait_for_job(fake)
    # Skipped while the first iteration hangs, then released: releasing first let a busy machine finish both
    # iterations before the skip arrived.
    assert requests.post(fake.url + "/sdapi/v1/skip", timeout=5).status_code == 204
    fake.set_fault(None)
    thread.join(5)
    assert len(result["value"].json()["images"]) == 1


# faults


RATE_LIMITED = "127.0.0.1:/sdapi/v1/txt2img: rate limit exceeded"
OOM = {"error": "RuntimeError", "code": 500, "detail": "", "body": "", "errors": "CUDA out of memory"}


def http_exception(code: int, detail: str) -> dict[str, Any]:
    return {"error": "HTTPException", "code": code, "detail": detail, "body": "", "errors": f"{code}: {detail}"}


@pytest.mark.parametrize(
    ("fault", "status", "body"),
    [
        ("error_500", 500, OOM),
        ("sampler_404", 404, http_exception(404, "Sampler not found")),
        ("rate_limit_429", 429, http_exception(429, RATE_LIMITED)),
    ],
)
def test_error_faults_answer_with_sdnext_envelopes(fake: FakeSDNext, fault: str, status: int, body: dict) -> None:
    fake.set_fault(fault)
    response = post(fake, SMALL)
    assert (response.status_code, response.json()) == (status, body)


def test_validation_fault_gives_a_422_detail_list(fake: FakeSDNext) -> None:
    fake.set_fault("validation_422")
    response = post(fake, SMALL)
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "steps"]


def test_faults_last_until_cleared(fake: FakeSDNext) -> None:
    fake.set_fault("error_500")
    assert [post(fake, SMALL).status_code for _ in range(2)] == [500, 500]
    fake.set_fault(None)
    assert post(fake, SMALL).status_code == 200


def test_unknown_fault_is_rejected(fake: FakeSDNext) -> None:
    with pytest.raises(ValueError, match="unknown fault"):
        fake.set_fault("explode")


def test_no_images_fault_returns_200_with_empty_images(fake: FakeSDNext) -> None:
    fake.set_fault("no_images")
    body = post(fake, SMALL).json()
    assert (body["images"], body["info"], body["parameters"]["steps"]) == ([], "", 3)


def test_hang_fault_outlasts_the_client_read_timeout_and_keeps_the_lock(fake: FakeSDNext) -> None:
    fake.set_fault("hang")
    with pytest.raises(requests.ReadTimeout):
        post(fake, SMALL, timeout=(2, 0.2))
    assert requests.get(fake.url + "/sdapi/v1/status", timeout=5).json()["status"] == "running"
    assert fake.generation_lock.locked()


def test_reset_fault_closes_the_connection_without_a_response(fake: FakeSDNext) -> None:
    fake.set_fault("reset")
    with pytest.raises(requests.ConnectionError):
        post(fake, SMALL)


def test_refused_fault_stops_listening_until_cleared(fake: FakeSDNext) -> None:
    url = fake.url
    fake.set_fault("refused")
    with pytest.raises(requests.ConnectionError):
        requests.get(url + "/sdapi/v1/version", timeout=2)
    fake.set_fault(None)
    assert fake.url == url
    assert requests.get(url + "/sdapi/v1/version", timeout=2).status_code == 200


def test_invalid_json_fault_returns_200_with_an_unparsable_body(fake: FakeSDNext) -> None:
    fake.set_fault("invalid_json")
    response = post(fake, SMALL)
    assert response.status_code == 200
    with pytest.raises(requests.JSONDecodeError):
        response.json()


def test_bad_images_fault_returns_undecodable_base64(fake: FakeSDNext) -> None:
    fake.set_fault("bad_images")
    images = post(fake, SMALL).json()["images"]
    assert len(images) == 1
    with pytest.raises(ValueError, match=r"base64|Non-base64"):
        base64.b64decode(images[0], validate=True)


def test_empty_info_fault_returns_images_with_an_empty_info_string(fake: FakeSDNext) -> None:
    fake.set_fault("empty_info")
    body = post(fake, SMALL).json()
    assert body["info"] == ""
    assert base64.b64decode(body["images"][0], validate=True)[:3] == b"\xff\xd8\xff"


# auth, routing, other endpoints


@pytest.fixture
def guarded():
    server = FakeSDNext(auth=("user", "pwd"), steps_delay=0.002)
    server.start()
    yield server
    server.stop()


@pytest.mark.parametrize(("auth", "detail"), [(None, "Not authenticated"), (("user", "nope"), "Unauthorized")])
def test_auth_failures_give_the_401_envelope_without_www_authenticate(
    guarded: FakeSDNext, auth: tuple[str, str] | None, detail: str
) -> None:
    response = requests.get(guarded.url + "/sdapi/v1/version", auth=auth, timeout=5)
    assert response.status_code == 401
    assert response.json() == http_exception(401, detail)
    assert "WWW-Authenticate" not in response.headers


def test_right_credentials_pass(guarded: FakeSDNext) -> None:
    assert requests.post(guarded.url + TXT2IMG, json=SMALL, auth=("user", "pwd"), timeout=5).status_code == 200


def test_unknown_route_and_wrong_method_bodies(fake: FakeSDNext) -> None:
    missing = requests.get(fake.url + "/sdapi/v1/nope", timeout=5)
    wrong = requests.get(fake.url + TXT2IMG, timeout=5)
    assert (missing.status_code, missing.json()) == (404, {"detail": "Not Found"})
    assert (wrong.status_code, wrong.json()) == (405, {"detail": "Method Not Allowed"})


def test_every_response_carries_x_process_time(fake: FakeSDNext) -> None:
    assert float(requests.get(fake.url + "/sdapi/v1/nope", timeout=5).headers["X-Process-Time"]) >= 0
    assert float(post(fake, SMALL).headers["X-Process-Time"]) > 0


def test_info_endpoints_have_sdnext_shapes(fake: FakeSDNext) -> None:
    def get(path: str) -> Any:
        return requests.get(fake.url + "/sdapi/v1/" + path, timeout=5).json()

    assert get("version")["app"] == "sd.next"
    assert get("loras")[1] == {
        "name": "my_style_v1",
        "alias": "MyStyle",
        "path": "/models/Lora/styles/my.style.v1.safetensors",
        "metadata": {},
    }
    assert {"Euler a", "DPM++ 2M", "UniPC"} <= {sampler["name"] for sampler in get("samplers")}
    assert get("options")["samples_format"] == "jpg"
    assert get("memory")["cuda"] == {"error": "unavailable"}
    assert get("status")["status"] == "idle"
    assert get("lora?lora=nope")["detail"] == "Lora 'nope' not found"


def test_posting_options_reports_what_changed(fake: FakeSDNext) -> None:
    response = requests.post(
        fake.url + "/sdapi/v1/options", json={"samples_format": "png", "return_grid": True, "bogus": 1}, timeout=5
    )
    assert response.json() == {"updated": [{"samples_format": True}, {"return_grid": False}, {"bogus": False}]}


def test_fixture_serves_a_running_fake(fake_sdnext: FakeSDNext) -> None:
    assert requests.get(fake_sdnext.url + "/sdapi/v1/version", timeout=5).status_code == 200


def test_runs_standalone_from_the_command_line() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    command = [sys.executable, "-m", "tests.fakes.sdnext", "--port", str(port), "--auth", "u:p"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                response = requests.get(f"http://127.0.0.1:{port}/sdapi/v1/version", auth=("u", "p"), timeout=1)
                break
            except requests.ConnectionError:
                assert time.monotonic() < deadline, "the fake never started listening"
                time.sleep(0.05)
        assert response.json()["app"] == "sd.next"
    finally:
        process.terminate()
        process.wait(5)
