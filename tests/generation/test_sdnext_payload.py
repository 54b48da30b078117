"""The txt2img request (SPEC 6.3.1, 6.3.2): exactly these keys, what the fake SDNext receives on the wire,
with Basic auth, our User-Agent and ``/progress?skip_current_image=true`` polls."""

from __future__ import annotations

import base64

import pytest

from generation.sdnext.payload import txt2img_payload
from loraforge import __version__
from tests.fakes.sdnext import FakeSDNext
from tests.generation.factories import GenerationBackendFactory

TXT2IMG = "/sdapi/v1/txt2img"
PROGRESS = "/sdapi/v1/progress"


def test_defaults_come_from_the_settings(settings):
    settings.SDNEXT_DEFAULT_STEPS = 25
    settings.SDNEXT_DEFAULT_SAMPLER = "Euler a"
    settings.SDNEXT_DEFAULT_CFG_SCALE = 5.5
    assert txt2img_payload("a cat", {}) == {
        "prompt": "a cat",
        "negative_prompt": "",
        "steps": 25,
        "sampler_name": "Euler a",
        "cfg_scale": 5.5,
        "width": 512,
        "height": 512,
        "seed": -1,
        "batch_size": 1,
        "n_iter": 1,
        "send_images": True,
        "save_images": False,
    }


def test_null_values_get_the_defaults_and_denoising_is_left_out(settings):
    params = {"negative_prompt": None, "steps": None, "denoising_strength": None, "override_settings": None}
    payload = txt2img_payload("p", params)
    assert payload["negative_prompt"] == ""
    assert payload["steps"] == settings.SDNEXT_DEFAULT_STEPS
    assert "denoising_strength" not in payload
    assert "override_settings" not in payload
    assert "override_settings_restore_afterwards" not in payload


def test_checkpoint_goes_into_override_settings_never_top_level():
    payload = txt2img_payload("p", {"checkpoint": "sdxl-turbo", "override_settings": {"CLIP_stop_at_last_layers": 2}})
    assert payload["override_settings"] == {"CLIP_stop_at_last_layers": 2, "sd_model_checkpoint": "sdxl-turbo"}
    assert payload["override_settings_restore_afterwards"] is True
    assert "sd_model_checkpoint" not in payload


def test_checkpoint_alone():
    payload = txt2img_payload("p", {"checkpoint": "sdxl-turbo"})
    assert payload["override_settings"] == {"sd_model_checkpoint": "sdxl-turbo"}


def test_the_prompt_is_the_jobs_not_the_params():
    assert txt2img_payload("final prompt", {"prompt": "raw prompt"})["prompt"] == "final prompt"


# --- on the wire --------------------------------------------------------------------------------


@pytest.fixture
def secured():
    server = FakeSDNext(auth=("forge", "letmein"), steps_delay=0.01)
    server.start()
    yield server
    server.stop()


@pytest.mark.django_db(transaction=True)
def test_the_fake_receives_exactly_the_payload(secured, sdnext_settings, generation_job, start_job, wait_for):
    GenerationBackendFactory(name="main", url=secured.url, username="forge", password="letmein")
    job = generation_job(
        prompt="portrait <lora:detail_tweaker:0.75>",
        negative_prompt="blurry",
        steps=6,
        sampler_name="Euler a",
        cfg_scale=6.5,
        width=64,
        height=72,
        seed=77,
        batch_size=2,
        n_iter=1,
        denoising_strength=0.4,
        checkpoint="sdxl-base-1.0",
        override_settings={"CLIP_stop_at_last_layers": 2},
    )
    secured.set_fault("hang")  # hold sampling until we have seen the progress polls
    thread = start_job(job)
    wait_for(lambda: any(r.path == PROGRESS for r in secured.requests), what="a progress poll")
    secured.set_fault(None)
    thread.join(timeout=30)
    job.refresh_from_db()
    assert job.status == "succeeded", job.error

    (call,) = [request for request in secured.requests if request.path == TXT2IMG]
    assert call.body == {
        "prompt": "portrait <lora:detail_tweaker:0.75>",
        "negative_prompt": "blurry",
        "steps": 6,
        "sampler_name": "Euler a",
        "cfg_scale": 6.5,
        "width": 64,
        "height": 72,
        "seed": 77,
        "batch_size": 2,
        "n_iter": 1,
        "denoising_strength": 0.4,
        "override_settings": {"CLIP_stop_at_last_layers": 2, "sd_model_checkpoint": "sdxl-base-1.0"},
        "override_settings_restore_afterwards": True,
        "send_images": True,
        "save_images": False,
    }
    basic = "Basic " + base64.b64encode(b"forge:letmein").decode()
    polls = [request for request in secured.requests if request.path == PROGRESS]
    assert polls
    for request in [call, *polls]:
        assert request.headers["Authorization"] == basic
        assert request.headers["User-Agent"] == f"LoRAForge/{__version__}"
        assert request.headers["Accept"] == "application/json"
    assert all(request.method == "GET" and request.query == {"skip_current_image": "true"} for request in polls)
    assert job.result["generation_info"]["seed"] == 77
