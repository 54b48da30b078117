"""Records besides adapters are checked by the write that reads them (one pass over each member, SPEC 6.10.2
step 9 inside the one transaction of 6.10.3): an invalid record found after rows were inserted and files staged, or
among records already present, rolls everything back. Nothing is written: no row, no file, no staging folder."""

from __future__ import annotations

import gc
from types import SimpleNamespace

import pytest

from backups.archive.apply import part_write
from backups.archive.apply.context import GC_YOUNG_THRESHOLD, fewer_collections
from backups.archive.format import ArchiveError, image_member
from backups.archive.reader import ValidatedArchive
from backups.archive.records import row_record
from deliveries.models import DeliveryJob
from generation.models import GenerationResult
from tests.analytics.report_jobs import NOW, make_job
from tests.backups.apply_archives import apply, dump, folders, listing, merged, table_rows

pytestmark = pytest.mark.django_db
__all__ = ["folders"]

JOBS = 1_500  # more than one batch of 1,000: the first batch is inserted before the last records are read


def job_records(count: int) -> list[dict[str, object]]:
    return [
        {"id": f"5d6e0000-0000-4000-8000-{number:012d}", "kind": "generation", "mode": "sdnext", "prompt": "p"}
        for number in range(1, count + 1)
    ]


def result_with_image(job_id: str) -> tuple[dict[str, object], dict[str, bytes]]:
    member = image_member(job_id, 0, "png")
    record = {
        "id": "7e000000-0000-4000-8000-000000000001", "job_id": job_id, "index": 0,
        "file": "generations/checked/000.png", "content_type": "image/png", "size_bytes": 3, "member": member,
    }  # fmt: skip
    return record, {member: b"img"}


@pytest.mark.parametrize("where", ["late in the jobs", "a job already present", "the last part"])
def test_an_invalid_record_after_writes_began_rolls_everything_back(folders, tmp_path, where):
    present = make_job(NOW)  # merge skips it, but its record is checked all the same
    jobs = [*job_records(JOBS), row_record(present)]
    result, images = result_with_image(str(jobs[0]["id"]))
    samples = [{"recorded_at": NOW.isoformat(), "host": "h", "cpu_percent": 1, "memory_percent": 2,
                "memory_used_mb": 3}]  # fmt: skip
    if where == "late in the jobs":
        jobs[JOBS - 1]["status"] = "exploded"
    elif where == "a job already present":
        jobs[-1]["status"] = "exploded"
    else:
        samples.append({**samples[0], "host": "other", "cpu_percent": "busy"})
    members = merged(
        {
            "generations/jobs.jsonl": dump(jobs),
            "generations/results.jsonl": dump([result]),
            "analytics/resource_samples.jsonl": dump(samples),
        },
        images,
    )
    rows, files = table_rows(), listing(folders["data"], folders["loras"])

    with pytest.raises(ArchiveError) as raised:
        apply(tmp_path, members)

    member, kind = (
        ("analytics/resource_samples.jsonl", "resource sample")
        if where == "the last part"
        else ("generations/jobs.jsonl", "generation job")
    )
    field = "cpu_percent" if where == "the last part" else "status"
    assert str(raised.value).startswith(f"Invalid {kind} record in {member}: {field}: ")
    assert table_rows() == rows
    assert listing(folders["data"], folders["loras"]) == files  # the staged image is gone with its folder
    assert not (folders["tmp"] / "import-test").exists()


def test_the_same_archive_without_the_invalid_record_is_written_whole(folders, tmp_path):
    """The control of the test above: the archive it refuses, minus the bad value, writes every part."""
    jobs = job_records(JOBS)
    result, images = result_with_image(str(jobs[0]["id"]))
    members = merged({"generations/jobs.jsonl": dump(jobs), "generations/results.jsonl": dump([result])}, images)

    report = apply(tmp_path, members)

    assert report["parts"]["generation_jobs"] == JOBS == DeliveryJob.objects.count()
    assert GenerationResult.objects.count() == 1
    assert (folders["media"] / "generations/checked/000.png").read_bytes() == b"img"


def test_an_apply_collects_garbage_less_often_and_puts_the_thresholds_back(folders, tmp_path, monkeypatch):
    before = gc.get_threshold()
    seen = []
    monkeypatch.setattr(part_write, "samples_write", lambda context: seen.append(gc.get_threshold()))

    apply(tmp_path, {"generations/jobs.jsonl": dump(job_records(1))})

    assert seen == [(max(before[0], GC_YOUNG_THRESHOLD), *before[1:])]
    assert gc.get_threshold() == before


def test_the_thresholds_come_back_after_a_failure():
    before = gc.get_threshold()
    inside = []

    def failing_apply() -> None:
        with fewer_collections():
            inside.append(gc.get_threshold()[0])
            raise RuntimeError("apply failed")

    with pytest.raises(RuntimeError):
        failing_apply()
    assert inside == [max(before[0], GC_YOUNG_THRESHOLD)]
    assert gc.get_threshold() == before


@pytest.mark.parametrize(
    ("counts", "declared"),
    [({"generation_jobs": 40_000}, 40_000), ({}, 0), (None, 0), ({"generation_jobs": -5}, 0),
     ({"generation_jobs": "many"}, 0), ({"generation_jobs": True}, 0), ([1, 2], 0)],
)  # fmt: skip
def test_the_bulk_load_is_chosen_by_the_manifest_s_count_which_may_lie(tmp_path, counts, declared):
    """With no check pass, nothing counts the records before the write: whether the jobs are bulk-loaded (triggers
    off, rollups rebuilt) is decided by the count the manifest declares, a hint that never decides which rows are
    written (a wrong one only costs time, and the rebuild is exact either way)."""
    manifest = {"format": "loraforge-archive"} if counts is None else {"counts": counts}
    context = SimpleNamespace(archive=ValidatedArchive(path=tmp_path / "a.zip", manifest=manifest))
    assert context.archive.declared_count("generation_jobs") == declared
    big_table = 3 * declared + 1
    assert part_write._bulk_load(context, inserted=part_write.BULK_JOBS, existing=2 * declared) is True
    assert part_write._bulk_load(context, inserted=part_write.BULK_JOBS, existing=big_table) is False
    assert part_write._bulk_load(context, inserted=part_write.BULK_JOBS - 1, existing=0) is False
