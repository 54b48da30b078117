"""Result image files (SPEC 3.4, 6.3.4 step 5): atomic writes under the media root, partial files removed on
a disk error, and a deleted ``GenerationResult`` takes its file with it (only inside the media root)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest

from deliveries.models import DeliveryJob
from generation.models import GenerationResult
from generation.results.files import StorageError, files_delete, images_write, job_directory

CREATED = datetime(2025, 3, 1, 23, 30, tzinfo=UTC)


@pytest.fixture
def media(settings, tmp_path) -> Path:
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


def test_files_are_written_under_the_job_creation_date(media):
    job_id = uuid.uuid4()
    paths = images_write(job_id=job_id, created_at=CREATED, images=[(0, "jpg", b"\xff\xd8\xffA"), (2, "png", b"P")])
    assert paths == [f"generations/2025/03/01/{job_id}/000.jpg", f"generations/2025/03/01/{job_id}/002.png"]
    assert (media / paths[0]).read_bytes() == b"\xff\xd8\xffA"
    assert sorted(path.name for path in (media / job_directory(job_id, CREATED)).iterdir()) == ["000.jpg", "002.png"]


def test_a_disk_error_removes_the_files_already_written(media):
    job_id = uuid.uuid4()
    folder = media / job_directory(job_id, CREATED)
    (folder / "001.jpg").mkdir(parents=True)  # the second rename cannot replace a folder
    with pytest.raises(StorageError) as raised:
        images_write(job_id=job_id, created_at=CREATED, images=[(0, "jpg", b"a"), (1, "jpg", b"b")])
    assert raised.value.reason == "Is a directory"
    assert sorted(path.name for path in folder.iterdir()) == ["001.jpg"]  # no 000.jpg, no temp file


def test_files_delete_ignores_paths_outside_the_media_root(media, tmp_path):
    outside = tmp_path / "precious.txt"
    outside.write_text("keep")
    job_id = uuid.uuid4()
    (path,) = images_write(job_id=job_id, created_at=CREATED, images=[(0, "jpg", b"a")])
    files_delete([path, "../precious.txt", str(outside)])
    assert outside.exists()
    assert not (media / path).exists()
    assert not (media / path).parent.exists()  # the emptied job folder goes too


@pytest.mark.django_db(transaction=True)
def test_deleting_a_result_row_deletes_its_file(media):
    job = DeliveryJob.objects.create(kind="generation", mode="sdnext", prompt="p")
    (path,) = images_write(job_id=job.pk, created_at=job.created_at, images=[(0, "jpg", b"a")])
    result = GenerationResult.objects.create(job=job, index=0, file=path, content_type="image/jpeg", size_bytes=1)
    result.delete()
    assert not (media / path).exists()


@pytest.mark.django_db(transaction=True)
def test_deleting_a_job_deletes_its_result_files_but_nothing_outside(media, tmp_path):
    outside = tmp_path / "outside.jpg"
    outside.write_bytes(b"keep")
    job = DeliveryJob.objects.create(kind="generation", mode="sdnext", prompt="p")
    (path,) = images_write(job_id=job.pk, created_at=job.created_at, images=[(0, "jpg", b"a")])
    GenerationResult.objects.create(job=job, index=0, file=path, content_type="image/jpeg", size_bytes=1)
    GenerationResult.objects.create(job=job, index=1, file="../outside.jpg", content_type="image/jpeg", size_bytes=4)
    job.delete()
    assert not (media / path).exists()
    assert outside.read_bytes() == b"keep"


@pytest.mark.django_db
def test_a_rolled_back_delete_keeps_the_file(media, django_capture_on_commit_callbacks):
    job = DeliveryJob.objects.create(kind="generation", mode="sdnext", prompt="p")
    (path,) = images_write(job_id=job.pk, created_at=job.created_at, images=[(0, "jpg", b"a")])
    result = GenerationResult.objects.create(job=job, index=0, file=path, content_type="image/jpeg", size_bytes=1)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        result.delete()
    assert len(callbacks) == 1
    assert (media / path).exists()  # nothing happens before the commit
    callbacks[0]()
    assert not (media / path).exists()
