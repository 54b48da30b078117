"""Progress mapping (SPEC 6.3.3): SDNext's global, phase-based value never moves the job backwards and stays
below 1 until the txt2img answer arrives."""

from __future__ import annotations

from generation.sdnext.progress import Progress, map_progress


def body(progress, *, step=0, steps=0, eta=0.0) -> dict:
    state = {"job": "Inference", "job_count": 1, "job_no": 0, "sampling_step": step, "sampling_steps": steps}
    return {"id": "abc", "progress": progress, "eta_relative": eta, "state": state, "current_image": None}


def test_sampling_progress_steps_and_eta():
    assert map_progress(Progress(), body(0.5, step=10, steps=20, eta=1.2)) == Progress(0.5, 10, 20, 1.2)


def test_progress_never_goes_back():
    """VAE decode and the next n_iter iteration restart SDNext's value at 0."""
    state = map_progress(Progress(), body(0.8, step=16, steps=20, eta=0.5))
    after = map_progress(state, body(0.0))
    assert after == Progress(0.8, 16, 20, None)


def test_progress_stays_below_one_while_running():
    assert map_progress(Progress(), body(1.0, step=20, steps=20)).progress == 0.99


def test_out_of_range_and_odd_values_are_clamped_or_ignored():
    assert map_progress(Progress(), body(7)).progress == 0.99
    assert map_progress(Progress(0.3), body(-2)).progress == 0.3
    assert map_progress(Progress(0.3, 3, 20), {"progress": "x", "state": None}) == Progress(0.3, 3, 20, None)
    assert map_progress(Progress(), {"progress": True, "eta_relative": -1}) == Progress()
